//! The session's side of the stored roster: what it asks the server for, and the
//! writer task that stores what the server answers and pushes.
//!
//! Why a writer task: the session task never waits on the database (a slow disk must
//! not hold up the stream); it hands each change, in order, to a task of its own
//! that applies them one after the other, so the stored roster and its version
//! follow the server's order. The in-memory roster (what `roster()` answers) is
//! updated by the session task at once.
//!
//! Roster versioning (RFC 6121 §2.6): when the stream features carry
//! `<ver xmlns='urn:xmpp:features:rosterver'/>`, the roster get carries the stored
//! version (`""` when none is stored); an empty result means the stored roster is
//! current, and the changes since come as pushes, each with its new version.
//! Without the feature the get carries no version and the answer is the whole
//! roster, as before.

use perch_plugin_api::RosterItem;
use tokio::sync::mpsc;
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::{roster::Roster, stream_features::StreamFeatures};

use crate::roster::{RosterStore, StoredRoster};

/// The stream feature by which a server says it versions rosters.
pub const NS_ROSTERVER: &str = "urn:xmpp:features:rosterver";

/// Whether the server versions rosters (RFC 6121 §2.6.1).
pub fn versioning(features: &StreamFeatures) -> bool {
    features.others.iter().any(|e| e.is("ver", NS_ROSTERVER))
}

/// The roster get for a fresh stream: with our stored version when the server
/// versions rosters (`""`: we have none), without one otherwise.
pub fn query(versioning: bool, stored_ver: Option<&str>) -> Element {
    Roster {
        ver: versioning.then(|| stored_ver.unwrap_or_default().to_owned()),
        items: vec![],
    }
    .into()
}

/// How the server answered the roster get.
pub enum Answer {
    /// The whole roster.
    Full(Roster),
    /// An empty result to a versioned get: what we stored is current.
    Current,
    /// An error, a timeout, or something that is no roster.
    Failed(String),
}

impl Answer {
    pub fn of(answer: Result<Option<Element>, String>) -> Self {
        match answer {
            Ok(Some(e)) => match Roster::try_from(e) {
                Ok(r) => Answer::Full(r),
                Err(e) => Answer::Failed(format!("unreadable roster: {e}")),
            },
            Ok(None) => Answer::Current,
            Err(e) => Answer::Failed(e),
        }
    }
}

/// A change to store.
pub enum Op {
    Replace(StoredRoster),
    Push {
        /// Boxed: see [`super::Command::Iq`].
        item: Box<RosterItem>,
        ver: Option<String>,
    },
}

/// Starts the writer task of a session; it ends when the session drops its sender.
pub fn spawn_writer(
    store: RosterStore,
    profile_id: i32,
    profile: String,
    account: String,
) -> mpsc::UnboundedSender<Op> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Op>();
    tokio::spawn(async move {
        // The writes' futures are boxed: this task waits for the next change all
        // the time, and should keep only this loop.
        // Once a write failed, the stored items miss a change: no version is stored
        // from then on (the next stream fetches the whole roster) until a whole
        // roster is stored again.
        let mut behind = false;
        while let Some(op) = rx.recv().await {
            let r = match &op {
                Op::Replace(roster) => {
                    let r = Box::pin(store.replace(profile_id, &profile, roster)).await;
                    behind = r.is_err();
                    r
                }
                Op::Push { item, ver } => {
                    let ver = ver.as_deref().filter(|_| !behind);
                    let r = Box::pin(store.push(profile_id, &profile, &account, item, ver)).await;
                    behind |= r.is_err();
                    r
                }
            };
            if let Err(e) = r {
                tracing::warn!(%profile, error = %e, "storing the roster failed");
                if let Err(e) = Box::pin(store.forget_version(profile_id)).await {
                    tracing::warn!(%profile, error = %e, "forgetting the roster version failed");
                }
            }
        }
    });
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roster_get_carries_the_stored_version_only_when_versioning() {
        let q = |v, ver| String::from(&query(v, ver));
        assert_eq!(
            q(true, Some("42")),
            "<query xmlns='jabber:iq:roster' ver='42'/>"
        );
        assert_eq!(q(true, None), "<query xmlns='jabber:iq:roster' ver=''/>");
        assert_eq!(q(false, Some("42")), "<query xmlns='jabber:iq:roster'/>");
    }

    #[test]
    fn answers() {
        assert!(matches!(Answer::of(Ok(None)), Answer::Current));
        let full: Element =
            "<query xmlns='jabber:iq:roster' ver='7'><item jid='bob@example.org'/></query>"
                .parse()
                .unwrap();
        assert!(
            matches!(Answer::of(Ok(Some(full))), Answer::Full(r) if r.ver.as_deref() == Some("7"))
        );
        let other: Element = "<x xmlns='urn:example'/>".parse().unwrap();
        assert!(matches!(Answer::of(Ok(Some(other))), Answer::Failed(_)));
        assert!(matches!(
            Answer::of(Err("timeout".into())),
            Answer::Failed(_)
        ));
    }

    #[test]
    fn the_stream_feature() {
        let with: StreamFeatures =
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>\
            <ver xmlns='urn:xmpp:features:rosterver'/></stream:features>"
                .parse::<Element>()
                .unwrap()
                .try_into()
                .unwrap();
        assert!(versioning(&with));
        let without: StreamFeatures =
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>"
                .parse::<Element>()
                .unwrap()
                .try_into()
                .unwrap();
        assert!(!versioning(&without));
    }
}
