//! XEP-0313: Message Archive Management — catching up.
//!
//! Why: a profile only hears live what arrives while it is connected. After every
//! connection this plugin asks the account's archive for what came since the last
//! message it knows an archive id of (each joined room's archive too, when the room
//! keeps one: on `room.joined`), page by page (XEP-0059), oldest first. A profile
//! that knows no archive id yet (a new profile) fetches a bounded recent window
//! (`initial_window`, 50 messages by default). An archived id that the archive
//! forgot (expired) starts over with that window.
//!
//! The results arrive as messages wrapping the archived one; they are unwrapped
//! where they enter (`message.received`, after carbons) so the core files them like
//! any message: with the archive's timestamp, marked as coming from an archive (no
//! receipt is owed), and with the archive's id (XEP-0359 `stanza-id`), which is how
//! history keeps one copy of a message heard live and fetched again.
//!
//! Only answers to our own queries are taken: a result must carry the id of a query
//! this plugin sent and come from the archive it asked (our own account, or that
//! room). Anyone can send us a message that looks like a result.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::signals::{self, CatchUp};
use perch_plugin_api::Signals;
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::Message;
use perch_plugin_api::parsers::ns;
use perch_plugin_api::points::{IncomingMessage, MessageReceived, RoomJoined, RoomJoinedPoint};
use perch_plugin_api::{
    BuildResult, Flow, Host, HostError, Plugin, PluginError, PluginFactory, PluginInfo, Source,
};

use perch_codec::dom::Attr;

pub const IMPORT_NAME: &str = "XEP-0313";

/// After carbons (1000), before everything else: later handlers see the archived
/// message itself.
pub const PRIORITY: i32 = 900;

/// Messages per page.
const PAGE: u32 = 100;

/// The recent window a profile with no archive id yet fetches, unless configured.
pub const DEFAULT_WINDOW: u32 = 50;

/// A query's results are taken for this long after it was sent (they all come
/// before its answer, but may wait in the inbox behind other messages).
const QUERY_LIFETIME: Duration = Duration::from_secs(600);

/// A query in flight: whose archive, for which profile.
#[derive(Debug, Clone)]
struct Pending {
    profile: String,
    archive: BareJid,
    sent: Instant,
}

pub struct Archive {
    host: Arc<dyn Host>,
    queries: Mutex<HashMap<String, Pending>>,
    /// Messages a profile with no archive id yet fetches (`initial_window`).
    window: u32,
}

/// What an incoming message is, for this plugin.
#[derive(Debug, PartialEq)]
pub enum Got {
    /// Not an archive result.
    No,
    /// A result of query `query`: the archived message (with the archive's stamp and
    /// id added), the archive it claims to come from.
    Archived {
        query: String,
        message: Box<Message>,
    },
    /// Looks like a result but is unusable (no message inside).
    Broken,
}

/// Reads an archive result; `archive_of(query id)` says whose archive that query
/// went to (`None`: not one of ours), whose `stanza-id` is written into the message.
pub fn unwrap(m: &Message, archive_of: impl Fn(&str) -> Option<BareJid>) -> Got {
    let Some(result) = m.payloads.iter().find(|p| p.is("result", ns::MAM)) else {
        return Got::No;
    };
    let (Some(query), Some(id)) = (result.attr("queryid"), result.attr("id")) else {
        return Got::Broken;
    };
    let Some(archive) = archive_of(query) else {
        return Got::Broken;
    };
    let Some(forwarded) = result.get_child("forwarded", ns::FORWARD) else {
        return Got::Broken;
    };
    let Some(mut inner) = forwarded
        .get_child("message", ns::DEFAULT_NS)
        .and_then(|e| Message::try_from(e.clone()).ok())
    else {
        return Got::Broken;
    };
    let by = archive.to_string();
    // The archive's word on when and under which id, over whatever the message says.
    inner
        .payloads
        .retain(|p| !(p.is("stanza-id", ns::SID) && p.attr("by") == Some(by.as_str())));
    inner.payloads.push(
        Element::builder("stanza-id", ns::SID)
            .a("by", by.as_str())
            .a("id", id)
            .build(),
    );
    if let Some(delay) = forwarded.get_child("delay", ns::DELAY) {
        inner.payloads.retain(|p| !p.is("delay", ns::DELAY));
        inner.payloads.push(delay.clone());
    }
    Got::Archived {
        query: query.to_owned(),
        message: Box::new(inner),
    }
}

/// The query for one page: after `after` (oldest first), or the newest `max`.
pub fn query(queryid: &str, after: Option<&str>, max: u32) -> Element {
    let mut set = Element::builder("set", ns::RSM)
        .append(Element::builder("max", ns::RSM).append(max.to_string()))
        .build();
    match after {
        Some(a) => set.append_child(Element::builder("after", ns::RSM).append(a).build()),
        None => set.append_child(Element::builder("before", ns::RSM).build()),
    };
    Element::builder("query", ns::MAM)
        .a("queryid", queryid)
        .append(set)
        .build()
}

/// What a query's answer says: complete, and the last id of the page.
pub fn fin(answer: Option<&Element>) -> (bool, Option<String>) {
    let Some(fin) = answer.filter(|e| e.is("fin", ns::MAM)) else {
        return (true, None);
    };
    let complete = matches!(fin.attr("complete"), Some("true" | "1"));
    let last = fin
        .get_child("set", ns::RSM)
        .and_then(|s| s.get_child("last", ns::RSM))
        .map(|l| l.text())
        .filter(|l| !l.is_empty());
    (complete, last)
}

impl Archive {
    fn register(&self, profile: &str, archive: &BareJid) -> String {
        let id = format!("perch-mam-{}", perch_plugin_api::ids::random_hex(8));
        let mut q = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        q.retain(|_, p| p.sent.elapsed() < QUERY_LIFETIME);
        q.insert(
            id.clone(),
            Pending {
                profile: profile.to_owned(),
                archive: archive.clone(),
                sent: Instant::now(),
            },
        );
        id
    }

    fn pending(&self, query: &str) -> Option<Pending> {
        let q = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        q.get(query).cloned()
    }

    /// Fetches what archive `room` (`None`: our account's) has that we don't:
    /// after `start` when given (a room: read before the join), else after the
    /// newest archive id stored.
    async fn catch_up(
        self: Arc<Self>,
        profile: String,
        room: Option<BareJid>,
        start: Option<Option<String>>,
    ) {
        let host = self.host.clone();
        let archive = match &room {
            Some(r) => r.clone(),
            None => match host.bound_jid(&profile).await {
                Some(j) => j.to_bare(),
                None => return,
            },
        };
        let to = room.clone().map(Jid::from);
        let window = self.window;
        let mut after = match start {
            Some(s) => s,
            None => match host.last_archive_id(&profile, &archive.to_string()).await {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(%profile, %archive, error = %e, "archive catch-up: reading history failed");
                    return;
                }
            },
        };
        let mut pages = 0u32;
        loop {
            let qid = self.register(&profile, &archive);
            let max = if after.is_some() { PAGE } else { window };
            let answer = host
                .iq(
                    &profile,
                    to.clone(),
                    true,
                    query(&qid, after.as_deref(), max),
                )
                .await;
            let answer = match answer {
                Ok(a) => a,
                Err(HostError::Stanza(e)) if after.is_some() && e.condition == "item-not-found" => {
                    // The archive forgot where we were: start over with the window.
                    tracing::info!(%profile, %archive, "archive catch-up: our last archive id is gone; fetching the recent window");
                    after = None;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%profile, %archive, error = %e, "archive catch-up failed");
                    return;
                }
            };
            pages += 1;
            let (complete, last) = fin(answer.as_ref());
            match (after.is_some(), complete, last) {
                (true, false, Some(last)) => after = Some(last),
                _ => break,
            }
        }
        tracing::debug!(%profile, %archive, pages, "archive catch-up done");
        let done = CatchUp {
            archive: archive.to_string(),
            pages,
        };
        host.signal(signals::CatchUpDone, &profile, &done);
    }
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Message Archive Management",
    description: "Catches up with the account's and joined rooms' archives after every connection",
    dependencies: &[],
    recommendations: &["XEP-0030", "XEP-0059"],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

/// `initial_window` from the plugin's options.
fn initial_window(options: &serde_json::Value) -> Result<u32, PluginError> {
    match options.get("initial_window") {
        None => Ok(DEFAULT_WINDOW),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                PluginError(format!(
                    "plugins.options.\"{IMPORT_NAME}\".initial_window: {v} is not a whole number from 1 to 10000"
                ))
            }),
    }
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let me = Arc::new(Archive {
        window: initial_window(&host.options())?,
        host: host.clone(),
        queries: Mutex::default(),
    });
    host.add_feature(ns::MAM);
    host.declare(signals::CatchUpDone);
    let t = host.triggers();
    t.add_with::<MessageReceived, _>(PRIORITY, me.clone(), on_received)?;
    t.add_with::<RoomJoinedPoint, _>(0, me.clone(), on_room_joined)?;
    Ok(me)
}

/// `message.received`: a result of one of our queries is unwrapped; anything that
/// looks like a result but is not ours is dropped.
fn on_received(me: Arc<Archive>, args: &mut IncomingMessage) -> BoxFuture<'_, Flow<()>> {
    // Whose archive the query named went to (none: not our query).
    let archive = result_query(&args.message)
        .and_then(|q| me.pending(q))
        .filter(|p| p.profile == args.profile)
        .map(|p| p.archive);
    let flow = match unwrap(&args.message, |_| archive.clone()) {
        Got::No => Flow::Continue,
        Got::Archived { message, .. } => {
            // From the archive we asked: our account (no `from`, or our bare JID) or
            // that room.
            let from_ok = match (&args.message.from, &archive) {
                (None, Some(a)) => args.message.to.as_ref().is_some_and(|t| t.to_bare() == *a),
                (Some(f), Some(a)) => f.resource().is_none() && f.to_bare() == *a,
                _ => false,
            };
            if from_ok {
                args.message = *message;
                args.source = Source::Archive;
                Flow::Continue
            } else {
                tracing::warn!(profile = %args.profile, from = ?args.message.from, "an archive result from another archive than the one asked; dropped");
                Flow::Stop
            }
        }
        Got::Broken => {
            tracing::debug!(profile = %args.profile, from = ?args.message.from, "an archive result not ours or unusable; dropped");
            Flow::Stop
        }
    };
    async move { flow }.boxed()
}

/// `room.joined`: catch up with the room's archive.
fn on_room_joined(me: Arc<Archive>, args: &mut RoomJoined) -> BoxFuture<'_, Flow<()>> {
    if args.archived
        && let Ok(room) = args.room.parse::<BareJid>()
    {
        // Never on the caller's path: the answers come through this very session.
        tokio::spawn(me.catch_up(args.profile.clone(), Some(room), Some(args.after.clone())));
    }
    async { Flow::Continue }.boxed()
}

impl Plugin for Archive {
    fn session_started(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            tokio::spawn(self.catch_up(profile, None, None));
        }
        .boxed()
    }
}

/// The query id of an archive result.
fn result_query(m: &Message) -> Option<&str> {
    m.payloads
        .iter()
        .find(|p| p.is("result", ns::MAM))
        .and_then(|r| r.attr("queryid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(xml: &str) -> Message {
        let e: Element = xml.parse().expect("xml");
        Message::try_from(e).expect("message")
    }

    const RESULT: &str = "<message xmlns='jabber:client' to='a@x/perch'>\
        <result xmlns='urn:xmpp:mam:2' queryid='q1' id='A7'>\
        <forwarded xmlns='urn:xmpp:forward:0'>\
        <delay xmlns='urn:xmpp:delay' stamp='2026-11-30T10:00:00Z'/>\
        <message xmlns='jabber:client' from='b@x/r' to='a@x/phone' type='chat' id='b1'>\
        <body>while you were away</body>\
        <stanza-id xmlns='urn:xmpp:sid:0' by='a@x' id='forged'/></message>\
        </forwarded></result></message>";

    fn own(q: &str) -> Option<BareJid> {
        (q == "q1").then(|| "a@x".parse().expect("jid"))
    }

    #[test]
    fn a_result_unwraps_with_the_archive_stamp_and_id() {
        let Got::Archived { query, message } = unwrap(&msg(RESULT), own) else {
            panic!("not archived")
        };
        assert_eq!(query, "q1");
        let xml = String::from(&Element::from(*message));
        assert!(
            xml.contains("<stanza-id xmlns='urn:xmpp:sid:0' by='a@x' id='A7'/>"),
            "{xml}"
        );
        assert!(!xml.contains("forged"), "{xml}");
        assert!(xml.contains("stamp='2026-11-30T10:00:00Z'"), "{xml}");
        assert!(xml.contains("<body>while you were away</body>"), "{xml}");
    }

    #[test]
    fn results_of_unknown_queries_are_refused() {
        let other = RESULT.replacen("queryid='q1'", "queryid='q2'", 1);
        assert_eq!(unwrap(&msg(&other), own), Got::Broken);
        let plain = msg("<message xmlns='jabber:client' from='b@x/r'><body>hi</body></message>");
        assert_eq!(unwrap(&plain, own), Got::No);
    }

    #[test]
    fn queries_and_answers() {
        let q = String::from(&query("q1", Some("A7"), 100));
        assert_eq!(
            q,
            "<query xmlns='urn:xmpp:mam:2' queryid='q1'><set xmlns='http://jabber.org/protocol/rsm'>\
             <max>100</max><after>A7</after></set></query>"
        );
        let w = String::from(&query("q2", None, 50));
        assert!(w.contains("<max>50</max><before/>"), "{w}");
        let answer: Element = "<fin xmlns='urn:xmpp:mam:2' complete='false'>\
            <set xmlns='http://jabber.org/protocol/rsm'><first>A1</first><last>A9</last></set></fin>"
            .parse()
            .expect("xml");
        assert_eq!(fin(Some(&answer)), (false, Some("A9".into())));
        let done: Element = "<fin xmlns='urn:xmpp:mam:2' complete='true'/>"
            .parse()
            .expect("xml");
        assert_eq!(fin(Some(&done)), (true, None));
        assert_eq!(fin(None), (true, None));
    }
}
