//! What the unit tests share: the property tests' configuration.
//!
//! Why one place: every property runs 256 cases, so that the whole suite adds about
//! a second to `cargo test`; `PROPTEST_CASES=N` runs N instead, for a deeper search
//! (doc/reliability.rst, "Property tests").

use proptest::test_runner::Config;

pub fn proptest_config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    Config::with_cases(cases)
}
