//! XEP-0191: Blocking Command, with XEP-0377 spam and abuse reports on blocking.
//!
//! Why it is shaped this way:
//! - **The server blocks; we keep a copy.** Blocking is the server's job (it drops
//!   what a blocked JID sends, for every resource of the account). The plugin keeps
//!   the list in its `blocked_jid` table so it is known before the connection and
//!   after a restart, fetched again at every session start (which is also what makes
//!   the server push changes to this resource: XEP-0191 §3.4 pushes only to
//!   resources that asked for the list), and kept in step with the server's pushes of
//!   `<block/>` and `<unblock/>` (ours, or another resource's), each answered with a
//!   result. `blocking_changed` goes out whenever the stored list changes, whoever
//!   changed it.
//! - **Our own changes are applied on the server's word.** `blocking_block` and
//!   `blocking_unblock` store the change once the server answered the IQ with a
//!   result; the push of the same change that follows changes nothing more.
//! - **A server without it is a typed error.** When the server answers the list,
//!   block or unblock with `service-unavailable` or `feature-not-implemented`, the
//!   actions fail with `feature-not-implemented` naming XEP-0191, and the list
//!   action does so too once the connection's fetch learnt it.
//! - **Reports ride on the block** (XEP-0377 §3.1): a `<report/>` inside each
//!   `<item/>` of the `<block/>`, with the reason's URI. A server that does not know
//!   reports still blocks.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::NoArgs;
use perch_actions::blocking::{
    self as actions, BlockArgs, BlockingChanged, Blocklist, Report, UnblockArgs,
};
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use perch_plugin_api::{
    BuildResult, Host, HostError, IqAnswer, IqRequest, Plugin, PluginFactory, PluginInfo, Serve,
    Signals,
};

pub mod store;

use perch_codec::dom::Attr;

pub const IMPORT_NAME: &str = "XEP-0191";
/// The blocking command's namespace.
pub const NS: &str = "urn:xmpp:blocking";
/// XEP-0377's namespace.
pub const NS_REPORTING: &str = "urn:xmpp:reporting:1";

/// What the plugin knows of the server's support, per profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Support {
    Yes,
    No,
}

pub struct Blocking {
    host: Arc<dyn Host>,
    /// profile → what the last session's fetch learnt.
    support: Mutex<HashMap<String, Support>>,
    /// One change of a stored list at a time (a push may cross our own answer).
    changing: tokio::sync::Mutex<()>,
}

/// What changes the stored list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The whole list, as the server answered it.
    Replace(BTreeSet<String>),
    Add(BTreeSet<String>),
    Remove(BTreeSet<String>),
    /// Everything unblocked.
    Clear,
}

impl Change {
    fn apply(self, mut list: BTreeSet<String>) -> BTreeSet<String> {
        match self {
            Self::Replace(all) => return all,
            Self::Add(jids) => list.extend(jids),
            Self::Remove(jids) => list.retain(|j| !jids.contains(j)),
            Self::Clear => list.clear(),
        }
        list
    }
}

/// `<blocklist/>`, the request for the list.
pub fn request() -> Element {
    Element::builder("blocklist", NS).build()
}

/// `<block/>` of these JIDs, each with a report when asked.
pub fn block(jids: &BTreeSet<String>, report: Option<Report>) -> Element {
    let items = jids.iter().map(|j| {
        let item = Element::builder("item", NS).a("jid", j.as_str());
        match report {
            Some(r) => item.append(
                Element::builder("report", NS_REPORTING)
                    .a("reason", r.reason())
                    .build(),
            ),
            None => item,
        }
        .build()
    });
    Element::builder("block", NS).append_all(items).build()
}

/// `<unblock/>` of these JIDs; none: every JID.
pub fn unblock(jids: &BTreeSet<String>) -> Element {
    let items = jids
        .iter()
        .map(|j| Element::builder("item", NS).a("jid", j.as_str()).build());
    Element::builder("unblock", NS).append_all(items).build()
}

/// The JIDs of a `<blocklist/>`, `<block/>` or `<unblock/>`'s items, normalised; an
/// item whose JID does not parse is logged and skipped.
pub fn items(e: &Element) -> BTreeSet<String> {
    e.children()
        .filter(|c| c.is("item", NS))
        .filter_map(|c| {
            let raw = c.attr("jid").unwrap_or("");
            match Jid::new(raw) {
                Ok(j) => Some(j.to_string()),
                Err(err) => {
                    tracing::warn!(jid = %raw, error = %err, "a blocklist item with a bad JID, skipped");
                    None
                }
            }
        })
        .collect()
}

/// The `jids` argument, each parsed: a bad one is `InvalidJid` naming it.
pub fn jids_arg(jids: &[String]) -> Result<BTreeSet<String>, HostError> {
    jids.iter()
        .map(|j| {
            Jid::new(j)
                .map(|j| j.to_string())
                .map_err(|e| HostError::InvalidJid {
                    jid: j.clone(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// The server does not do XEP-0191.
fn unsupported() -> HostError {
    HostError::Stanza(perch_plugin_api::StanzaError::new(
        "feature-not-implemented",
        Some(format!(
            "the server does not support blocking (XEP-0191, {NS})"
        )),
    ))
}

/// Whether a server's error says it lacks the protocol.
fn lacks_it(e: &HostError) -> bool {
    matches!(e, HostError::Stanza(s)
        if s.condition == "service-unavailable" || s.condition == "feature-not-implemented")
}

fn refuse(condition: DefinedCondition, text: &str) -> StanzaError {
    StanzaError::new(ErrorType::Cancel, condition, "en", text)
}

impl Blocking {
    /// Applies a change to a profile's stored list; signals when it changed. Answers
    /// the list after it.
    pub async fn update(&self, profile: &str, change: Change) -> Result<Vec<String>, HostError> {
        let _one = self.changing.lock().await;
        let db = self.host.store();
        let id = self.host.profile_id(profile).await?;
        let before = store::list(db, id).await?;
        let after = change.apply(before.clone());
        if after != before {
            store::replace(db, id, &after).await?;
            let jids: Vec<String> = after.iter().cloned().collect();
            tracing::info!(%profile, blocked = jids.len(), "blocklist changed");
            self.host
                .signal(BlockingChanged, profile, &Blocklist { jids: jids.clone() });
            return Ok(jids);
        }
        Ok(after.into_iter().collect())
    }

    /// The profile's stored list, sorted.
    pub async fn stored(&self, profile: &str) -> Result<Vec<String>, HostError> {
        let id = self.host.profile_id(profile).await?;
        Ok(store::list(self.host.store(), id)
            .await?
            .into_iter()
            .collect())
    }

    fn support(&self, profile: &str) -> Option<Support> {
        self.support
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(profile)
            .copied()
    }

    fn set_support(&self, profile: &str, s: Support) {
        self.support
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(profile.to_owned(), s);
    }

    /// Sends a blocking IQ set; a server without XEP-0191 is [`unsupported`].
    async fn set(&self, profile: &str, payload: Element) -> Result<(), HostError> {
        match self.host.iq(profile, None, true, payload).await {
            Ok(_) => {
                self.set_support(profile, Support::Yes);
                Ok(())
            }
            Err(e) if lacks_it(&e) => {
                self.set_support(profile, Support::No);
                Err(unsupported())
            }
            Err(e) => Err(e),
        }
    }

    /// Fetches the server's list and makes it the stored one.
    pub async fn refresh(&self, profile: &str) -> Result<Vec<String>, HostError> {
        let reply = match self.host.iq(profile, None, false, request()).await {
            Ok(r) => r,
            Err(e) if lacks_it(&e) => {
                self.set_support(profile, Support::No);
                return Err(unsupported());
            }
            Err(e) => return Err(e),
        };
        self.set_support(profile, Support::Yes);
        let list = reply
            .as_ref()
            .filter(|r| r.is("blocklist", NS))
            .ok_or_else(|| HostError::Xmpp("the server's answer has no <blocklist/>".into()))?;
        self.update(profile, Change::Replace(items(list))).await
    }

    /// A push (`<block/>` or `<unblock/>` IQ set) from our own account.
    async fn on_push(&self, req: IqRequest) -> IqAnswer {
        let own = self.host.bound_jid(&req.profile).await.map(|j| j.to_bare());
        let from_us = match &req.from {
            None => true,
            Some(f) => own.as_ref().is_some_and(|o| f.to_bare() == *o),
        };
        if !from_us {
            tracing::warn!(profile = %req.profile, from = ?req.from, "a blocklist push from another entity, refused");
            return Err(refuse(
                DefinedCondition::ServiceUnavailable,
                "blocklist pushes come from our own account only",
            ));
        }
        let jids = items(&req.payload);
        let change = match (req.payload.name(), jids.is_empty()) {
            ("block", _) => Change::Add(jids),
            (_, true) => Change::Clear,
            (_, false) => Change::Remove(jids),
        };
        match self.update(&req.profile, change).await {
            Ok(_) => Ok(None),
            Err(e) => {
                tracing::warn!(profile = %req.profile, error = %e, "storing a blocklist push failed");
                Err(refuse(
                    DefinedCondition::InternalServerError,
                    "the blocklist could not be stored",
                ))
            }
        }
    }
}

impl Plugin for Blocking {
    fn session_started(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            // Off the inbox: the answer comes through this very session.
            tokio::spawn(async move {
                match self.refresh(&profile).await {
                    Ok(list) => {
                        tracing::debug!(%profile, blocked = list.len(), "blocklist fetched")
                    }
                    Err(e) => tracing::info!(%profile, error = %e, "no blocklist from the server"),
                }
            });
        }
        .boxed()
    }
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Blocking Command",
    description: "Blocks and unblocks JIDs on the server (with spam reports), keeps the blocklist",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &["blocked_jid"],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let b = Arc::new(Blocking {
        host: host.clone(),
        support: Mutex::new(HashMap::new()),
        changing: tokio::sync::Mutex::new(()),
    });
    host.add_feature(NS);
    host.declare(BlockingChanged);
    for name in ["block", "unblock"] {
        let b = b.clone();
        host.add_iq_handler(
            true,
            name,
            NS,
            Arc::new(move |req| {
                let b = b.clone();
                async move { b.on_push(req).await }.boxed()
            }),
        );
    }
    host.serve(actions::List, b.clone(), list);
    host.serve(actions::Block, b.clone(), block_jids);
    host.serve(actions::Unblock, b.clone(), unblock_jids);
    Ok(b)
}

/// `blocking_list`: the stored list, fetched at the session's start and kept in step;
/// offline, as stored at the last connection.
async fn list(b: Arc<Blocking>, profile: String, _: NoArgs) -> Result<Vec<String>, HostError> {
    match b.support(&profile) {
        Some(Support::No) => Err(unsupported()),
        Some(Support::Yes) => b.stored(&profile).await,
        // No session has answered yet: ask now, or read the copy when offline.
        None => match b.refresh(&profile).await {
            Err(HostError::NotConnected(_)) => b.stored(&profile).await,
            other => other,
        },
    }
}

/// `blocking_block`.
async fn block_jids(
    b: Arc<Blocking>,
    profile: String,
    a: BlockArgs,
) -> Result<Vec<String>, HostError> {
    let jids = jids_arg(&a.jids)?;
    if jids.is_empty() {
        return Err(HostError::BadArgument("jids: nothing to block".into()));
    }
    b.set(&profile, block(&jids, a.report)).await?;
    b.update(&profile, Change::Add(jids)).await
}

/// `blocking_unblock`: none unblocks every JID.
async fn unblock_jids(
    b: Arc<Blocking>,
    profile: String,
    a: UnblockArgs,
) -> Result<Vec<String>, HostError> {
    let jids = jids_arg(&a.jids)?;
    b.set(&profile, unblock(&jids)).await?;
    let change = if jids.is_empty() {
        Change::Clear
    } else {
        Change::Remove(jids)
    };
    b.update(&profile, change).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(jids: &[&str]) -> BTreeSet<String> {
        jids.iter().map(|j| (*j).to_owned()).collect()
    }

    #[test]
    fn a_block_with_a_report_carries_it_in_each_item() {
        let xml = String::from(&block(&set(&["b@x", "spam.example"]), Some(Report::Spam)));
        assert_eq!(
            xml,
            "<block xmlns='urn:xmpp:blocking'>\
             <item jid='b@x'><report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'/></item>\
             <item jid='spam.example'><report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'/></item>\
             </block>"
        );
        assert_eq!(
            String::from(&unblock(&BTreeSet::new())),
            "<unblock xmlns='urn:xmpp:blocking'/>"
        );
    }

    #[test]
    fn bad_jids_are_named() {
        let e = jids_arg(&["ok@x".into(), "@bad".into()]).expect_err("refused");
        assert!(
            matches!(&e, HostError::InvalidJid { jid, .. } if jid == "@bad"),
            "{e:?}"
        );
    }

    #[test]
    fn changes_apply_to_the_list() {
        let l = set(&["a@x", "b@x"]);
        assert_eq!(Change::Add(set(&["c@x"])).apply(l.clone()).len(), 3);
        assert_eq!(
            Change::Remove(set(&["a@x"])).apply(l.clone()),
            set(&["b@x"])
        );
        assert!(Change::Clear.apply(l).is_empty());
    }
}
