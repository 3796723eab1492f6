//! The group chat plugin's signals (`XEP-0045`) and a room's messages as Libervia
//! 0.9's signals: `mucRoomJoined`, `mucRoomLeft`, `mucRoomUserChangedNick`,
//! `mucRoomNewSubject` on the plugin interface; an occupant's arrival or departure as
//! an `info` `messageNew`, an occupant's new show or status as `presenceUpdate`.
//!
//! Why here and not in the plugin: the plugin tells what happened in Perch's terms;
//! what 0.9's frontends expect (a room announced once with its occupants and subject,
//! nothing about it before, our own messages as the room echoes them) is the bridge's
//! business. Which rooms are announced is kept in [`super::rooms`].

use perch_actions::muc;
use perch_plugin_api::HistoryMessage;
use serde_json::{Value, json};

use super::context::{CORE_INTERFACE, Lib, PLUGIN_INTERFACE};
use super::reply::Map;
use super::rooms::{self, own_groupchat, room_args};
use super::shapes::{self, HistoryRow, bare};

/// The import name of the group chat plugin, whose signals come here.
pub const PLUGIN: &str = "XEP-0045";

/// One signal of the group chat plugin.
pub async fn on_signal(lib: &Lib, name: &str, profile: &str, data: &Value) {
    let room = text(&data["room"]);
    match name {
        "room_joined" => joined(lib, profile, &room).await,
        "room_left" if lib.rooms.set_left(profile, &room) => {
            lib.emit(PLUGIN_INTERFACE, "mucRoomLeft", &(room, profile.to_owned()))
                .await;
        }
        "nick_changed" => {
            let (old, new) = (text(&data["old"]), text(&data["new"]));
            if data["own"].as_bool() == Some(true) {
                lib.rooms.renamed(profile, &room, &new);
            }
            if lib.rooms.is_live(profile, &room) {
                lib.emit(
                    PLUGIN_INTERFACE,
                    "mucRoomUserChangedNick",
                    &(room, old, new, profile.to_owned()),
                )
                .await;
            }
        }
        // The subject a room sends as we join comes with `mucRoomJoined`.
        "subject" if lib.rooms.is_live(profile, &room) => {
            lib.emit(
                PLUGIN_INTERFACE,
                "mucRoomNewSubject",
                &(room, text(&data["subject"]), profile.to_owned()),
            )
            .await;
        }
        "occupant" if lib.rooms.is_live(profile, &room) => {
            occupant(lib, profile, &room, data).await;
        }
        _ => {}
    }
}

/// `mucRoomJoined(room, occupants, nick, subject, statuses, profile)`, after a join
/// or a rejoin; the room is live from now on.
async fn joined(lib: &Lib, profile: &str, room: &str) {
    let args = muc::RoomArgs {
        room: room.to_owned(),
    };
    let answer = match lib.daemon.action::<muc::Occupants>(profile, &args).await {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(profile, room, error = %e, "room joined then gone: not announced");
            return;
        }
    };
    let (room, occupants, nick, subject, statuses) = room_args(&answer);
    lib.rooms.set_live(profile, &room, &nick);
    lib.emit(
        PLUGIN_INTERFACE,
        "mucRoomJoined",
        &(room, occupants, nick, subject, statuses, profile.to_owned()),
    )
    .await;
}

/// Another occupant came, went or changed its presence, in a live room.
async fn occupant(lib: &Lib, profile: &str, room: &str, data: &Value) {
    let o = &data["occupant"];
    let nick = text(&o["nick"]);
    let (info_type, line) = match data["event"].as_str() {
        Some("joined") => ("ROOM_USER_JOINED", format!("=> {nick} has joined the room")),
        Some("left") => ("ROOM_USER_LEFT", format!("<= {nick} has left the room")),
        Some("changed") => {
            let show = match o["show"].as_str() {
                Some("available") | None => "",
                Some(s) => s,
            };
            let mut statuses = Map::new();
            statuses.insert("default".into(), text(&o["status"]));
            lib.emit(
                CORE_INTERFACE,
                "presenceUpdate",
                &(
                    format!("{room}/{nick}"),
                    show.to_owned(),
                    0i32,
                    statuses,
                    profile.to_owned(),
                ),
            )
            .await;
            return;
        }
        _ => return,
    };
    let mut extra = json!({
        "info_type": info_type,
        "user_affiliation": text(&o["affiliation"]),
        "user_role": text(&o["role"]),
        "user_nick": nick,
    });
    if let Some(entity) = o["jid"].as_str() {
        extra["user_entity"] = entity.into();
    }
    let mut body = Map::new();
    body.insert(String::new(), line);
    // Integer microseconds to float seconds: exact enough for a timestamp.
    #[allow(clippy::cast_precision_loss)]
    let now = crate::time::now_micros() as f64 / 1_000_000.0;
    lib.emit(
        CORE_INTERFACE,
        "messageNew",
        &(
            super::actions::uuid4(),
            now,
            room.to_owned(),
            own_full_jid(lib, profile).await,
            body,
            Map::new(),
            "info".to_owned(),
            extra.to_string(),
            profile.to_owned(),
        ),
    )
    .await;
}

/// Our full JID while connected, else the profile's JID.
async fn own_full_jid(lib: &Lib, profile: &str) -> String {
    if let Some(j) = lib
        .daemon
        .session(profile)
        .await
        .ok()
        .and_then(|s| s.bound_jid())
    {
        return j.to_string();
    }
    lib.daemon
        .profile(profile)
        .await
        .map(|m| m.jid)
        .unwrap_or_default()
}

/// A stored message as `messageNew` gives it, or `None` when 0.9 would not signal
/// it: a room's message before the room is announced (it is in the history the
/// frontend asks for then). Our own message to a room is shaped as its echo.
pub fn message_row(lib: &Lib, profile: &str, m: &HistoryMessage) -> Option<HistoryRow> {
    let mut row = shapes::history_row(m);
    if m.kind != "groupchat" {
        return Some(row);
    }
    let room = bare(&m.peer);
    if !lib.rooms.is_live(profile, &room) {
        return None;
    }
    if own_groupchat(m) {
        let nick = lib.rooms.nick(profile, &room).unwrap_or_default();
        rooms::as_echo(&mut row, m, &nick);
    }
    Some(row)
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
