//! Daemon events as Libervia signals, in Libervia's shapes and on the right
//! interface (`messageNew` on `.core`, `chatStateReceived` on `.plugin`…). Plugin
//! signals become 0.9's where 0.9 has one (`chat_state`, the room events, OMEMO's
//! `encryption_started`/`stopped` as `messageEncryptionStarted`/`Stopped`).
//!
//! `connected` is special: `connect` must see it go out before its reply, so the
//! call and this forwarder share a set of announced profiles, and whichever sees the
//! profile connected first sends the signal, once.

use std::collections::HashMap;
use std::sync::Arc;

use perch_actions::Signal;
use perch_actions::signals::{ChatState, ContactState};
use perch_plugin_api::{ConnectionState, HistoryMessage};
use serde_json::Value;
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::context::{CORE_INTERFACE, Lib, PLUGIN_INTERFACE, lock};
use super::shapes;
use super::{actions, room_events};
use crate::events::{Event, JobPhase};

/// Sends `connected(jid, profile)` unless it went out already for this connection.
pub async fn announce_connected(lib: &Lib, profile: &str, jid: &str) {
    let first = !lock(&lib.announced).contains(profile);
    if first {
        // Dialogs about this connection first, as 0.9 sends them.
        actions::on_connected(lib, profile).await;
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
    actions::forget(lib, profile);
    lib.rooms.clear(profile);
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

/// `messageNew` for a stored message, when 0.9 would signal it.
async fn message_new(lib: &Lib, profile: &str, message: &HistoryMessage) {
    let Some((uid, ts, from, to, body, subject, kind, extra)) =
        room_events::message_row(lib, profile, message)
    else {
        return;
    };
    lib.emit(
        CORE_INTERFACE,
        "messageNew",
        &(
            uid,
            ts,
            from,
            to,
            body,
            subject,
            kind,
            extra,
            profile.to_owned(),
        ),
    )
    .await;
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
        Event::Message { profile, message } => message_new(lib, &profile, &message).await,
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
                    shapes::show(presence.show).to_owned(),
                    i32::from(presence.priority),
                    shapes::statuses(presence.status.as_deref()),
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
                let (jid, attrs, groups) = shapes::contact(&item);
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
            plugin,
            name,
            profile,
            data,
        } => plugin_signal(lib, &plugin, &name, profile, &data).await,
        Event::Job {
            phase,
            id,
            profile,
            data,
        } => file_progress(lib, phase, id, profile, data).await,
    }
}

/// A plugin's signal as 0.9's, where 0.9 has one: chat states, the room events,
/// the OMEMO plugin's `encryption_started`/`stopped` (however encryption changed).
async fn plugin_signal(lib: &Lib, plugin: &str, name: &str, profile: String, data: &Value) {
    if name == <ChatState as Signal>::NAME {
        let s: ContactState = serde_json::from_value(data.clone()).unwrap_or_default();
        lib.emit(
            PLUGIN_INTERFACE,
            "chatStateReceived",
            &(s.from, s.state, profile),
        )
        .await;
    } else if plugin == room_events::PLUGIN {
        room_events::on_signal(lib, name, &profile, data).await;
    } else {
        super::encryption::on_signal(lib, name, &profile, data).await;
    }
}

/// A file transfer's job as 0.9's `progressStarted`, `progressFinished` and
/// `progressError` (what `fileUpload` and `fileDownload` callers wait for); other
/// jobs have no 0.9 counterpart and stay off this bridge.
async fn file_progress(lib: &Lib, phase: JobPhase, id: String, profile: String, data: Value) {
    let file_job = match lib.daemon.job(&id).await {
        Ok(j) => j.plugin == "XEP-0363" || j.plugin == "XEP-0066",
        Err(_) => false,
    };
    if !file_job {
        return;
    }
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match phase {
        JobPhase::Started => {
            let direction = if data["kind"] == "download" {
                "in"
            } else {
                "out"
            };
            let meta = HashMap::from([
                ("type".to_owned(), "file".to_owned()),
                ("direction".to_owned(), direction.to_owned()),
                ("name".to_owned(), text(&data["description"])),
            ]);
            lib.emit(CORE_INTERFACE, "progressStarted", &(id, meta, profile))
                .await;
        }
        JobPhase::Finished => {
            let meta: HashMap<String, String> = data
                .as_object()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                .unwrap_or_default();
            lib.emit(CORE_INTERFACE, "progressFinished", &(id, meta, profile))
                .await;
        }
        JobPhase::Error => {
            let error = text(&data["error"]);
            lib.emit(CORE_INTERFACE, "progressError", &(id, error, profile))
                .await;
        }
        JobPhase::Progress => {}
    }
}
