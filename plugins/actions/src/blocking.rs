//! Blocking (XEP-0191), with spam and abuse reports (XEP-0377) on blocking.
//!
//! The blocklist is the server's: blocking asks the server to drop what the blocked
//! JIDs send us (and what we send them), for every resource of the account. perchd
//! keeps a copy, refreshed at each connection and kept in step with the server's
//! pushes, and signals [`BlockingChanged`] whenever it changes.

use serde::{Deserialize, Serialize};

use crate::signals::signal;
use crate::{ActionInfo, NoArgs, action, info};

/// Why a blocked JID is reported to the server (XEP-0377).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    /// `urn:xmpp:reporting:spam`.
    Spam,
    /// `urn:xmpp:reporting:abuse`.
    Abuse,
}

impl Report {
    /// The reason's URI in the `<report/>` element.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Spam => "urn:xmpp:reporting:spam",
            Self::Abuse => "urn:xmpp:reporting:abuse",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockArgs {
    /// The JIDs to block: bare, full or a domain.
    pub jids: Vec<String>,
    /// Report them as spam or abuse too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<Report>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnblockArgs {
    /// The JIDs to unblock; empty: every blocked JID.
    #[serde(default)]
    pub jids: Vec<String>,
}

action!(
    /// The blocked JIDs, sorted, as the server has them; while the profile is not
    /// connected, as it had them at the last connection.
    List = "blocking_list", NoArgs => Vec<String>,
    "The blocked JIDs (XEP-0191), as the server has them (offline: as stored at the last connection)",
    [],
    no_session
);

action!(
    /// Blocks JIDs (with a spam or abuse report when asked); answers the blocklist
    /// after it. A server without XEP-0191 gives `FeatureNotImplemented`; a bad JID,
    /// `InvalidJid` naming it.
    Block = "blocking_block", BlockArgs => Vec<String>,
    "Blocks JIDs (XEP-0191): the server drops what they send us; report: spam or abuse also reports them (XEP-0377). Answers the blocklist",
    [
        req("jids", List, "the JIDs to block (bare, full or a domain)"),
        opt("report", String, "spam or abuse: also report them to the server (XEP-0377)"),
    ]
);

action!(
    /// Unblocks JIDs; an empty list unblocks every JID (as XEP-0191 allows). Answers
    /// the blocklist after it.
    Unblock = "blocking_unblock", UnblockArgs => Vec<String>,
    "Unblocks JIDs (XEP-0191); an empty list unblocks every blocked JID. Answers the blocklist",
    [opt("jids", List, "the JIDs to unblock (none: all)").or("[]")]
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![info::<List>(), info::<Block>(), info::<Unblock>()]
}

/// The blocklist after a change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocklist {
    /// Every blocked JID, sorted.
    pub jids: Vec<String>,
}

signal!(
    /// The blocklist changed: by us, by another of our resources, or at a connection
    /// (the server's list differed from the stored one).
    BlockingChanged = "blocking_changed", Blocklist,
    "the blocklist changed (XEP-0191): {\"jids\": every blocked JID, sorted}"
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_report_is_its_lowercase_name_on_the_wire() {
        let a = BlockArgs {
            jids: vec!["b@x".into()],
            report: Some(Report::Spam),
        };
        assert_eq!(
            serde_json::to_value(&a).expect("serialises"),
            json!({"jids": ["b@x"], "report": "spam"})
        );
        let u: UnblockArgs = serde_json::from_value(json!({})).expect("defaults");
        assert!(u.jids.is_empty());
        assert!(serde_json::from_value::<BlockArgs>(json!({"jids": [], "report": "ham"})).is_err());
    }
}
