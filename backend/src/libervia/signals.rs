//! Daemon events as Libervia signals, in Libervia's shapes and on the right
//! interface (`messageNew` on `.core`, `chatStateReceived` on `.plugin`…).
//!
//! `connected` is special: `connect` must see it go out before its reply, so the
//! call and this forwarder share a set of announced profiles, and whichever sees the
//! profile connected first sends the signal, once.

use std::sync::Arc;

use perch_plugin_api::{ConnectionState, HistoryMessage, Show};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::dispatch::Map;
use super::{CORE_INTERFACE, Lib, PLUGIN_INTERFACE, lock};
use crate::events::Event;

/// One `historyGet` row, also the shape of `messageNew` minus the profile:
/// (uid, timestamp, from, to, {lang: text}, {lang: subject}, type, extra JSON).
pub type HistoryRow = (String, f64, String, String, Map, Map, String, String);

/// Libervia's `show`: `""` when available.
pub fn show(s: Show) -> &'static str {
    match s {
        Show::Available => "",
        other => other.as_str(),
    }
}

/// Presence statuses by language; `default` when none is given.
pub fn statuses(status: Option<&str>) -> Map {
    let mut m = Map::new();
    if let Some(s) = status.filter(|s| !s.is_empty()) {
        m.insert("default".into(), s.to_owned());
    }
    m
}

pub fn history_row(m: &HistoryMessage) -> HistoryRow {
    let micros = crate::time::parse(&m.timestamp).unwrap_or_default();
    // Integer microseconds to float seconds: exact enough for a timestamp.
    #[allow(clippy::cast_precision_loss)]
    let ts = micros as f64 / 1_000_000.0;
    let mut body = Map::new();
    body.insert(String::new(), m.body.clone());
    let mut extra = serde_json::Map::new();
    extra.insert("message_id".into(), m.id.clone().into());
    if let Some(o) = &m.origin_id {
        extra.insert("origin_id".into(), o.clone().into());
    }
    if let Some(s) = &m.stanza_id {
        extra.insert("stanza_id".into(), s.clone().into());
    }
    extra.insert("state".into(), m.state.as_str().into());
    (
        m.id.clone(),
        ts,
        m.from.clone(),
        m.to.clone(),
        body,
        Map::new(),
        m.kind.clone(),
        serde_json::Value::Object(extra).to_string(),
    )
}

/// Sends `connected(jid, profile)` unless it went out already for this connection.
pub async fn announce_connected(lib: &Lib, profile: &str, jid: &str) {
    let first = !lock(&lib.announced).contains(profile);
    if first {
        lib.emit(
            CORE_INTERFACE,
            "connected",
            &(jid.to_owned(), profile.to_owned()),
        )
        .await;
        lock(&lib.announced).insert(profile.to_owned());
        lib.announced_changed.notify_waiters();
    }
}

/// Waits until `connected` went out for `profile` (sent by the event forwarder, in
/// order with the session's other state changes); after `bound`, sends it itself.
pub async fn wait_connected(lib: &Lib, profile: &str, jid: &str, bound: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        let changed = lib.announced_changed.notified();
        if lock(&lib.announced).contains(profile) {
            return;
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            announce_connected(lib, profile, jid).await;
            return;
        }
    }
}

/// Sends `disconnected(profile)` once per connection.
pub async fn announce_disconnected(lib: &Lib, profile: &str) {
    let was = lock(&lib.announced).remove(profile);
    if was {
        lib.emit(CORE_INTERFACE, "disconnected", &(profile.to_owned(),))
            .await;
    }
}

/// Forwards daemon events as signals until the daemon stops.
pub async fn forward(lib: Arc<Lib>, mut rx: Receiver<Event>) {
    loop {
        let ev = match rx.recv().await {
            Ok(ev) => ev,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "Libervia signals dropped: events came too fast");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        emit(&lib, ev).await;
    }
}

async fn emit(lib: &Lib, ev: Event) {
    match ev {
        Event::ConnectionState {
            profile,
            state,
            jid,
            ..
        } => match state {
            ConnectionState::Connected => announce_connected(lib, &profile, &jid).await,
            // A lost connection that perchd re-establishes is, to Libervia's
            // frontends, `disconnected` then `connected` again.
            ConnectionState::Disconnected | ConnectionState::Connecting => {
                announce_disconnected(lib, &profile).await;
            }
        },
        Event::Message { profile, message } => {
            let (uid, ts, from, to, body, subject, kind, extra) = history_row(&message);
            lib.emit(
                CORE_INTERFACE,
                "messageNew",
                &(uid, ts, from, to, body, subject, kind, extra, profile),
            )
            .await;
        }
        Event::MessageUpdated { profile, message } => {
            lib.emit(
                PLUGIN_INTERFACE,
                "messageState",
                &(
                    message.id.clone(),
                    message.state.as_str().to_owned(),
                    profile,
                ),
            )
            .await;
        }
        Event::Presence { profile, presence } => {
            lib.emit(
                CORE_INTERFACE,
                "presenceUpdate",
                &(
                    presence.jid.clone(),
                    show(presence.show).to_owned(),
                    i32::from(presence.priority),
                    statuses(presence.status.as_deref()),
                    profile,
                ),
            )
            .await;
        }
        Event::Roster { profile, item } => {
            if item.subscription == "remove" {
                lib.emit(
                    CORE_INTERFACE,
                    "contactDeleted",
                    &(item.jid.clone(), profile),
                )
                .await;
            } else {
                let (jid, attrs, groups) = super::core::contact(&item);
                lib.emit(CORE_INTERFACE, "newContact", &(jid, attrs, groups, profile))
                    .await;
            }
        }
        Event::Subscription {
            profile,
            action,
            jid,
        } => {
            lib.sub_requested(&profile, &jid, &action);
            lib.emit(CORE_INTERFACE, "subscribe", &(action, jid, profile))
                .await;
        }
        Event::Plugin {
            name,
            profile,
            data,
            ..
        } if name == "chat_state" => {
            let from = data["from"].as_str().unwrap_or_default().to_owned();
            let state = data["state"].as_str().unwrap_or_default().to_owned();
            lib.emit(
                PLUGIN_INTERFACE,
                "chatStateReceived",
                &(from, state, profile),
            )
            .await;
        }
        Event::Plugin { .. } | Event::Job { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_rows_have_libervia_shape() {
        let m = HistoryMessage {
            id: "m1".into(),
            timestamp: "2026-01-01T00:00:01.5Z".into(),
            direction: perch_plugin_api::Direction::In,
            peer: "bob@example.org".into(),
            from: "bob@example.org/x".into(),
            to: "alice@example.org/y".into(),
            kind: "chat".into(),
            body: "hi\n".into(),
            state: perch_plugin_api::MessageState::Received,
            origin_id: Some("o1".into()),
            stanza_id: None,
            extra: serde_json::Map::new(),
        };
        let (uid, ts, from, to, body, subject, kind, extra) = history_row(&m);
        assert_eq!(uid, "m1");
        assert!((ts - 1_767_225_601.5).abs() < 1e-6, "{ts}");
        assert_eq!(
            (from.as_str(), to.as_str()),
            ("bob@example.org/x", "alice@example.org/y")
        );
        assert_eq!(body[""], "hi\n");
        assert!(subject.is_empty());
        assert_eq!(kind, "chat");
        let extra: serde_json::Value = serde_json::from_str(&extra).unwrap();
        assert_eq!(extra["origin_id"], "o1");
        assert_eq!(extra["message_id"], "m1");
    }

    #[test]
    fn available_is_an_empty_show_and_statuses_go_under_default() {
        assert_eq!(show(Show::Available), "");
        assert_eq!(show(Show::Away), "away");
        assert_eq!(statuses(Some("busy"))["default"], "busy");
        assert!(statuses(Some("")).is_empty());
    }
}
