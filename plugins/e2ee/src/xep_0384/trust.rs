//! Trust in identity keys: blind trust before verification (BTBV), as
//! Conversations and Dino do.
//!
//! Why: asking the user to compare fingerprints before the first message would
//! make encryption unused; trusting every key for ever would make verification
//! pointless. So until the user verified one key of a contact, each new key of it is
//! trusted blindly (`blind`); once one is verified, the blindly trusted ones and
//! every new one are `undecided` — not encrypted to until the user trusts them
//! (frontends are told with `omemo_new_key`). A `distrusted` key never gets a
//! message key.

use perch_actions::encryption::{NewKey, NewKeySeen};
use perch_plugin_api::{HostError, Signals};

use super::{Omemo, store};

pub const BLIND: &str = "blind";
pub const VERIFIED: &str = "verified";
pub const UNDECIDED: &str = "undecided";
pub const DISTRUSTED: &str = "distrusted";

/// Whether a key of this trust gets message keys.
pub fn encrypts_to(trust: &str) -> bool {
    trust == BLIND || trust == VERIFIED
}

/// The trust a key seen for the first time gets, given the account's others.
pub fn first_trust(others: &[(String, String)]) -> &'static str {
    if others.iter().any(|(_, t)| t == VERIFIED) {
        UNDECIDED
    } else {
        BLIND
    }
}

/// A fingerprint as typed by a user (spaces, colons, upper case) in its stored
/// form; `None` if it is not 64 hex digits.
pub fn normalise(fp: &str) -> Option<String> {
    let hex: String = fp
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then_some(hex)
}

impl Omemo {
    /// The trust of `fp` of `jid`; a key seen for the first time is given its
    /// first trust, stored and signalled.
    pub(crate) async fn trust_of(
        &self,
        profile: &str,
        pid: i32,
        jid: &str,
        device: u32,
        fp: &str,
    ) -> Result<String, HostError> {
        let db = self.host.store();
        if let Some(t) = store::trust(db, pid, jid, fp).await? {
            return Ok(t);
        }
        let others = store::trusts(db, pid, jid).await?;
        let t = first_trust(&others);
        store::set_trust(db, pid, jid, fp, t).await?;
        tracing::info!(%profile, %jid, device, trust = t, "a new OMEMO key");
        self.host.signal(
            NewKeySeen,
            profile,
            &NewKey {
                jid: jid.to_owned(),
                device_id: device,
                fingerprint: fp.to_owned(),
                trust: t.to_owned(),
            },
        );
        Ok(t.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blind_until_one_is_verified() {
        assert_eq!(first_trust(&[]), BLIND);
        let blind = vec![("a".to_owned(), BLIND.to_owned())];
        assert_eq!(first_trust(&blind), BLIND);
        let verified = vec![("a".to_owned(), VERIFIED.to_owned())];
        assert_eq!(first_trust(&verified), UNDECIDED);
        assert!(encrypts_to(BLIND) && encrypts_to(VERIFIED));
        assert!(!encrypts_to(UNDECIDED) && !encrypts_to(DISTRUSTED));
    }

    #[test]
    fn fingerprints_as_users_type_them() {
        let fp = "0123456789abcdef".repeat(4);
        let grouped = "01234567 89ABCDEF ".repeat(4);
        assert_eq!(normalise(&grouped).as_deref(), Some(fp.as_str()));
        assert_eq!(normalise(&fp[..60]), None);
        assert_eq!(normalise(&"g".repeat(64)), None);
    }
}
