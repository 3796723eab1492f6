//! Running a typed plugin action: the arguments and the result are the serde types
//! `perch-actions` declares, and JSON text exists only here, at the D-Bus edge.
//!
//! Why: `ActionRun` takes and returns JSON text, so that every language can call it.
//! A Rust frontend that built that text by hand would find a misspelt action or
//! parameter name only at run time; through [`run`] the compiler checks both.

use perch_actions::Action;

use crate::{Error, Perch1Proxy, Result};

/// Runs action `A` for `profile` (`""`: the default profile) with `args`.
///
/// A result that does not fit `A::Output` (a perchd of another version) is
/// [`Error::DBus`].
pub async fn run<A: Action>(
    proxy: &Perch1Proxy<'_>,
    profile: &str,
    args: &A::Args,
) -> Result<A::Output> {
    let text = serde_json::to_string(args)
        .map_err(|e| Error::DBus(format!("{}: unserialisable arguments: {e}", A::NAME)))?;
    let reply = proxy.action_run(profile, A::NAME, &text).await?;
    decode::<A>(&reply)
}

/// `A`'s result from the JSON text `ActionRun` returned.
pub fn decode<A: Action>(reply: &str) -> Result<A::Output> {
    serde_json::from_str(reply).map_err(|e| {
        Error::DBus(format!(
            "perchd returned an unexpected {} result (is it the same version?): {e}",
            A::NAME
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_actions::disco::{Ping, Pong};

    #[test]
    fn results_decode_to_their_type_or_name_the_action() {
        let pong = decode::<Ping>(r#"{"jid": "a@b", "rtt_ms": 1.5}"#).expect("fits");
        assert_eq!(
            pong,
            Pong {
                jid: "a@b".into(),
                rtt_ms: 1.5
            }
        );
        let e = decode::<Ping>(r#"{"jid": 5}"#).unwrap_err();
        assert_eq!(e.name(), "DBus");
        assert!(e.message().contains("unexpected ping result"), "{e}");
    }
}
