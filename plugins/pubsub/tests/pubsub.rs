//! The pubsub plugins' state machines against a mock host: the test is the pubsub
//! service and the core; each test takes milliseconds.

// A test reads as one scenario, start to end: the one-screen rule is for the code
// under test (`[workspace.lints]`).
#![allow(clippy::too_many_lines)]

#[path = "pubsub/cache.rs"]
mod cache;
