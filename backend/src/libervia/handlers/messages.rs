//! Messages: sending, the history, chat states, and end-to-end encryption (OMEMO,
//! through the `XEP-0384` plugin's actions: a conversation is encrypted per contact,
//! and `messageSend` to it is encrypted by the plugin).

use serde_json::{Value, json};

use crate::libervia::context::Lib;
use crate::libervia::encryption;
use crate::libervia::errors::{LibError, NOT_FOUND};
use crate::libervia::reply::{Answer, Map, out, unit};
use crate::libervia::room_commands::{self, Text};
use crate::libervia::rooms;
use crate::libervia::shapes::{self, HistoryRow, bare};
use crate::libervia::trust_ui;
use perch_actions::{NoArgs, messages, muc};
use perch_plugin_api::HistoryMessage;
use perch_plugin_api::minidom::Element;

use super::{action, typed, upload_attachments};

/// `messageSend(to, message, subject, type, extra, profile_key)`: the body in the
/// default language (else any); `auto` is `groupchat` to a room we are in (a bare
/// JID), else `chat`. A room message may be a room command (`/kick`…, run instead).
/// The files of `extra.attachments` (`{"path"}`) are uploaded first (XEP-0363) and
/// their links added to the body, each on its own line, as 0.9 does; the stored
/// message lists them in its `extra.attachments`. `extra.xhtml` (or
/// `xhtml_<lang>`) is sent as XEP-0071 XHTML-IM, filtered, its text the body when
/// there is none. The subject goes with the message; to a room, a subject without a
/// body changes the room's subject.
pub async fn send(
    lib: &Lib,
    (to, message, subject, kind, extra, key): (String, Map, Map, String, String, String),
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
    let subject = subject
        .get("")
        .or_else(|| subject.values().next())
        .filter(|s| !s.trim().is_empty())
        .cloned();
    let (payloads, text) = xhtml_payloads(&extra_v)?;
    if body.trim().is_empty() {
        body = text.unwrap_or_default();
    }
    if kind == "groupchat"
        && body.trim().is_empty()
        && let Some(subject) = subject
    {
        let room = bare(&to);
        typed::<muc::Subject>(lib, &p, muc::RoomSubject { room, subject }).await?;
        return unit();
    }
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
    let sent = lib
        .daemon
        .send_message_with(&p, &to, &body, kind, subject.as_deref(), payloads)
        .await?;
    if !files.is_empty() {
        let list = serde_json::to_value(&files).unwrap_or_default();
        lib.daemon
            .set_message_extra(&p, &sent.id, "attachments", list)
            .await?;
    }
    unit()
}

/// The XEP-0071 payload for `extra`'s `xhtml` / `xhtml_<lang>` keys (0.9's), with
/// the text of the first one; `rich` (0.9's own syntaxes) is refused by name.
fn xhtml_payloads(extra: &Value) -> Result<(Vec<Element>, Option<String>), LibError> {
    let Some(map) = extra.as_object() else {
        return Ok((Vec::new(), None));
    };
    if map.keys().any(|k| k == "rich" || k.starts_with("rich_")) {
        return Err(LibError::value(
            "extra.rich: rich text syntaxes are not supported; send XHTML (extra.xhtml)",
        ));
    }
    let mut bodies = Vec::new();
    let mut text = None;
    for (key, value) in map {
        let lang = match key.as_str() {
            "xhtml" => "",
            k => match k.strip_prefix("xhtml_") {
                Some(lang) => lang,
                None => continue,
            },
        };
        let markup = value
            .as_str()
            .ok_or_else(|| LibError::value(&format!("extra.{key} must be a string")))?;
        let (html, plain) = perch_codec::xep_0071::build(markup, lang)
            .map_err(|e| LibError::value(&format!("extra.{key}: {e}")))?;
        text.get_or_insert(plain);
        bodies.extend(html.children().cloned());
    }
    if bodies.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut html = Element::builder("html", perch_codec::xep_0071::NS).build();
    for b in bodies {
        html.append_child(b);
    }
    Ok((vec![html], text))
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
        .ok_or_else(|| LibError::exc(NOT_FOUND, &format!("message {uid} not found"), ""))
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

/// `messageEncryptionGet(to, profile)`: `{name, namespace}` (JSON) when the
/// conversation is encrypted, else `""`.
pub async fn encryption_get(lib: &Lib, (to, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    out(encryption::get(lib, &p, &to).await?)
}

/// `encryptionPluginsGet`: OMEMO's two versions when the plugin is loaded.
pub async fn encryption_plugins(lib: &Lib) -> Answer {
    out(encryption::plugins_json(lib))
}

/// `encryptionNamespaceGet(name)`: by plugin name; `omemo` too, for the best
/// version (what `message send -e omemo` asks).
pub async fn encryption_namespace(lib: &Lib, (name,): (String,)) -> Answer {
    out(encryption::namespace(lib, &name)?)
}

/// `messageEncryptionStart(to, namespace, replace, profile)`, with 0.9's rules
/// (`libervia::encryption::start`); the plugin's `encryption_started` is sent on as
/// `messageEncryptionStarted`.
pub async fn encryption_start(
    lib: &Lib,
    (to, namespace, replace, key): (String, String, bool, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    encryption::start(lib, &p, &to, &namespace, replace).await?;
    unit()
}

/// `messageEncryptionStop(to, profile)`; `NotFound` when nothing is encrypted. The
/// plugin's `encryption_stopped` is sent on as `messageEncryptionStopped`.
pub async fn encryption_stop(lib: &Lib, (to, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    encryption::stop(lib, &p, &to).await?;
    unit()
}

/// `encryptionTrustUIGet(to, namespace, profile)`: the OMEMO trust form
/// (`trust_ui`), submitted through `launchAction`.
pub async fn encryption_trust_ui(
    lib: &Lib,
    (to, namespace, key): (String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    out(trust_ui::get(lib, &p, &to, &namespace).await?)
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
