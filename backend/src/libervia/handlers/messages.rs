//! Messages: sending, the history, chat states, and end-to-end encryption (none in
//! perchd: no plugin, no session encryption).

use serde_json::{Value, json};

use crate::libervia::context::Lib;
use crate::libervia::errors::LibError;
use crate::libervia::reply::{Answer, Map, out, unit};
use crate::libervia::room_commands::{self, Text};
use crate::libervia::rooms;
use crate::libervia::shapes::{self, HistoryRow, bare};
use perch_actions::{NoArgs, messages, muc};
use perch_plugin_api::HistoryMessage;

use crate::libervia::errors;

use super::{action, typed, upload_attachments};

/// `messageSend(to, message, subject, type, extra, profile_key)`: the body in the
/// default language (else any); `auto` is `groupchat` to a room we are in (a bare
/// JID), else `chat`. A room message may be a room command (`/kick`…, run instead).
/// The files of `extra.attachments` (`{"path"}`) are uploaded first (XEP-0363) and
/// their links added to the body, each on its own line, as 0.9 does; the stored
/// message lists them in its `extra.attachments`.
pub async fn send(
    lib: &Lib,
    (to, message, _subject, kind, extra, key): (String, Map, Map, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let mut extra_v = Value::Null;
    if !extra.trim().is_empty() {
        extra_v = serde_json::from_str::<Value>(&extra)
            .map_err(|e| LibError::value(&format!("extra is not JSON: {e}")))?;
    }
    let mut body = message
        .get("")
        .or_else(|| message.values().next())
        .cloned()
        .unwrap_or_default();
    let kind = match kind.as_str() {
        "auto" | "" if !to.contains('/') && in_room(lib, &p, &to).await => "groupchat",
        "auto" | "" => "chat",
        k => k,
    };
    if kind == "groupchat" {
        match room_commands::read(&body) {
            Text::Command(name, args) => {
                room_commands::run(lib, &p, &bare(&to), name, args).await?;
                return unit();
            }
            Text::Send(text) => body = text.to_owned(),
        }
    }
    let files = upload_attachments(lib, &p, &extra_v).await?;
    if !files.is_empty() {
        let links: Vec<&str> = files.iter().map(|f| f.url.as_str()).collect();
        if !body.trim().is_empty() {
            body.push('\n');
        }
        body.push_str(&links.join("\n"));
    }
    let sent = lib.daemon.send_message(&p, &to, &body, kind).await?;
    if !files.is_empty() {
        let list = serde_json::to_value(&files).unwrap_or_default();
        lib.daemon
            .set_message_extra(&p, &sent.id, "attachments", list)
            .await?;
    }
    unit()
}

/// Whether `room` is a room the profile is in.
async fn in_room(lib: &Lib, profile: &str, room: &str) -> bool {
    let Ok(rooms) = typed::<muc::List>(lib, profile, NoArgs {}).await else {
        return false;
    };
    rooms
        .iter()
        .any(|r| r["room"] == room && r["joined"].as_bool() == Some(true))
}

/// The stored message a Libervia uid (our history id) names.
async fn by_uid(lib: &Lib, profile: &str, uid: &str) -> Result<HistoryMessage, LibError> {
    if uid.is_empty() {
        return Err(LibError::value("message_id can't be empty"));
    }
    lib.daemon
        .message_by_id(profile, uid)
        .await?
        .ok_or_else(|| LibError::exc(errors::NOT_FOUND, &format!("message {uid} not found"), ""))
}

/// `messageRetract(message_id, profile)` (XEP-0424): one of our messages, by its
/// uid.
pub async fn retract(lib: &Lib, (uid, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let m = by_uid(lib, &p, &uid).await?;
    let args = messages::MessageRetractArgs {
        groupchat: m.kind == "groupchat",
        to: m.peer,
        id: uid,
    };
    typed::<messages::MessageRetract>(lib, &p, args).await?;
    unit()
}

/// `messageReactionsSet(message_id, profile, reactions)` (XEP-0444): our whole set
/// of reactions to a message, by its uid.
pub async fn reactions_set(
    lib: &Lib,
    (uid, key, reactions): (String, String, Vec<String>),
) -> Answer {
    let p = lib.profile(&key).await?;
    let m = by_uid(lib, &p, &uid).await?;
    let args = messages::MessageReactArgs {
        groupchat: m.kind == "groupchat",
        to: m.peer,
        id: uid,
        reactions,
    };
    typed::<messages::MessageReact>(lib, &p, args).await?;
    unit()
}

/// `historyGet(from, to, limit, between, filters, profile)`.
pub async fn history_get(
    lib: &Lib,
    (from, to, limit, _between, filters, key): (String, String, i32, bool, Map, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    out(history(lib, &p, &from, &to, limit, &filters).await?)
}

/// `messageEncryptionGet`: no session is encrypted.
pub async fn encryption_get(lib: &Lib, (_to, key): (String, String)) -> Answer {
    lib.profile(&key).await?;
    out(String::new())
}

/// `encryptionPluginsGet`: none.
pub async fn encryption_plugins(_lib: &Lib) -> Answer {
    out("[]".to_owned())
}

/// `chatStateComposing` (plugin interface).
pub async fn composing(lib: &Lib, (to, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    action(
        lib,
        &p,
        "chat_state_send",
        json!({"to": to, "state": "composing"}),
    )
    .await?;
    unit()
}

/// `historyGet`: the conversation between our account and the other JID, oldest
/// first. `limit` -1 is the profile's History param (default 20), -2 no limit.
async fn history(
    lib: &Lib,
    profile: &str,
    from: &str,
    to: &str,
    limit: i32,
    filters: &Map,
) -> Result<Vec<HistoryRow>, LibError> {
    let m = lib.daemon.profile(profile).await?;
    let own = bare(&m.jid);
    // Our nick in a room we are no longer in: the default one.
    let own_nick = own.split('@').next().unwrap_or_default();
    let peer = if bare(from) == own || from.is_empty() {
        to
    } else {
        from
    };
    let limit = match limit {
        0 => return Ok(Vec::new()),
        -1 => Some(u64::from(lib.params.history_limit(profile).await?)),
        n if n < 0 => None,
        n => u64::try_from(n).ok(),
    };
    let after = match filters.get("timestamp_start") {
        Some(t) => Some(
            crate::time::parse(t)
                .ok_or_else(|| LibError::value(&format!("timestamp_start {t:?} is not a time")))?,
        ),
        None => None,
    };
    let q = crate::history::Query {
        with: (!peer.is_empty()).then(|| bare(peer)),
        after,
        before: None,
        limit,
    };
    let rows = lib.daemon.query_history(m.id, &q).await?;
    let types = filters
        .get("types")
        .map(|t| t.split_whitespace().collect::<Vec<_>>());
    let not_types = filters
        .get("not_types")
        .map(|t| t.split_whitespace().collect::<Vec<_>>());
    Ok(rows
        .iter()
        .filter(|r| types.as_ref().is_none_or(|t| t.contains(&r.kind.as_str())))
        .filter(|r| {
            not_types
                .as_ref()
                .is_none_or(|t| !t.contains(&r.kind.as_str()))
        })
        .filter(|r| {
            filters
                .get("body")
                .is_none_or(|b| r.body.contains(b.as_str()))
        })
        .map(|m| {
            let mut row = shapes::history_row(m);
            if rooms::own_groupchat(m) {
                let nick = lib.rooms.nick(profile, &bare(&m.peer));
                rooms::as_echo(&mut row, m, nick.as_deref().unwrap_or(own_nick));
            }
            row
        })
        .collect())
}
