//! Group chats as Libervia's frontends see them: which rooms are *live* (announced
//! with `mucRoomJoined`), our nick and the status codes of our own presence in each,
//! and the room shapes of the calls and signals (occupants, statuses, the echo of our
//! own messages).
//!
//! Why the bridge keeps its own set of live rooms beside the XEP-0045 plugin's: 0.9
//! sends a room's messages, subject changes and occupants' comings and goings only
//! once the room is announced; before that they are part of the announcement (the
//! occupants, the subject) or of the history the frontend asks for when it opens the
//! room's widget. A message signalled before `mucRoomJoined` would make the frontends
//! open a one-to-one chat with the room. The plugin's own state says whether we are
//! in the room; this set says whether the frontends were told.

use std::collections::HashMap;
use std::sync::Mutex;

use perch_plugin_api::HistoryMessage;
use serde_json::Value;

use super::reply::OrderedMap;
use super::shapes::{HistoryRow, bare};

/// Occupants by nick, each `{nick, entity, affiliation, role}` (`a{sa{ss}}`), in the
/// order given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Occupants(pub Vec<(String, OrderedMap)>);

impl serde::Serialize for Occupants {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl zbus::Type for Occupants {
    const SIGNATURE: &'static zbus::Signature =
        <HashMap<String, HashMap<String, String>> as zbus::Type>::SIGNATURE;
}

/// A joined room as `mucGetRoomsJoined` lists it and `mucRoomJoined` announces it
/// (without the profile): (room, occupants, our nick, subject, statuses).
pub type RoomArgs = (String, Occupants, String, String, Vec<String>);

/// The live rooms, by profile then room; and each profile's MUC service once found.
#[derive(Debug, Default)]
pub struct Rooms {
    /// Our nick in each live room.
    live: Mutex<HashMap<String, HashMap<String, String>>>,
    services: Mutex<HashMap<String, String>>,
    /// Woken each time a room becomes live.
    announced: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Rooms {
    /// The room was announced (`mucRoomJoined`); true if it was not live before.
    pub fn set_live(&self, profile: &str, room: &str, nick: &str) -> bool {
        let new = lock(&self.live)
            .entry(profile.to_owned())
            .or_default()
            .insert(room.to_owned(), nick.to_owned())
            .is_none();
        self.announced.notify_waiters();
        new
    }

    /// Waits until the room is live (announced), at most `bound`; whether it is.
    pub async fn wait_live(&self, profile: &str, room: &str, bound: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let changed = self.announced.notified();
            if self.is_live(profile, room) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.is_live(profile, room);
            }
        }
    }

    /// We are out of the room; true if it was live.
    pub fn set_left(&self, profile: &str, room: &str) -> bool {
        lock(&self.live)
            .get_mut(profile)
            .and_then(|m| m.remove(room))
            .is_some()
    }

    pub fn is_live(&self, profile: &str, room: &str) -> bool {
        lock(&self.live)
            .get(profile)
            .is_some_and(|m| m.contains_key(room))
    }

    /// Our nick in a live room.
    pub fn nick(&self, profile: &str, room: &str) -> Option<String> {
        lock(&self.live)
            .get(profile)
            .and_then(|m| m.get(room))
            .cloned()
    }

    /// Our nick in a live room changed.
    pub fn renamed(&self, profile: &str, room: &str, nick: &str) {
        if let Some(n) = lock(&self.live)
            .get_mut(profile)
            .and_then(|m| m.get_mut(room))
        {
            nick.clone_into(n);
        }
    }

    /// The profile's session ended: no room is live any more (rejoins announce them
    /// again).
    pub fn clear(&self, profile: &str) {
        lock(&self.live).remove(profile);
        lock(&self.services).remove(profile);
    }

    /// The profile's MUC service found earlier (`mucGetService`), for this session.
    pub fn service(&self, profile: &str) -> Option<String> {
        lock(&self.services).get(profile).cloned()
    }

    pub fn set_service(&self, profile: &str, service: &str) {
        lock(&self.services).insert(profile.to_owned(), service.to_owned());
    }
}

/// The names 0.9 gives the status codes of our own presence (Wokkel's
/// `STATUS_CODE`), in the codes' order; unknown codes are left out.
pub fn status_names(codes: &Value) -> Vec<String> {
    let mut codes: Vec<u64> = codes
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_u64)
        .collect();
    codes.sort_unstable();
    codes
        .into_iter()
        .filter_map(|c| status_name(c).map(str::to_owned))
        .collect()
}

fn status_name(code: u64) -> Option<&'static str> {
    Some(match code {
        100 => "REALJID_PUBLIC",
        101 => "AFFILIATION_CHANGED",
        102 => "UNAVAILABLE_SHOWN",
        103 => "UNAVAILABLE_NOT_SHOWN",
        104 => "CONFIGURATION_CHANGED",
        110 => "SELF_PRESENCE",
        170 => "LOGGING_ENABLED",
        171 => "LOGGING_DISABLED",
        172 => "NON_ANONYMOUS",
        173 => "SEMI_ANONYMOUS",
        174 => "FULLY_ANONYMOUS",
        201 => "ROOM_CREATED",
        210 => "NICK_ASSIGNED",
        301 => "BANNED",
        303 => "NEW_NICK",
        307 => "KICKED",
        321 => "REMOVED_AFFILIATION",
        322 => "REMOVED_MEMBERSHIP",
        332 => "REMOVED_SHUTDOWN",
        _ => return None,
    })
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// One occupant (`{nick, jid?, role, affiliation, …}` of the plugin) as 0.9 gives
/// it: `{nick, entity, affiliation, role}`, an unknown real JID as `""`.
pub fn occupant(o: &Value) -> OrderedMap {
    OrderedMap(vec![
        ("nick".into(), text(&o["nick"])),
        ("entity".into(), text(&o["jid"])),
        ("affiliation".into(), text(&o["affiliation"])),
        ("role".into(), text(&o["role"])),
    ])
}

/// The occupants of a `muc_occupants` answer, by nick.
pub fn occupants(answer: &Value) -> Occupants {
    Occupants(
        answer["occupants"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| (text(&o["nick"]), occupant(o)))
            .collect(),
    )
}

/// A room's arguments from its `muc_occupants` answer (the statuses from the codes
/// of our own presence).
pub fn room_args(answer: &Value) -> RoomArgs {
    (
        text(&answer["room"]),
        occupants(answer),
        text(&answer["nick"]),
        text(&answer["subject"]),
        status_names(&answer["codes"]),
    )
}

/// Our own message to a room, shaped as the room's echo of it, which is what 0.9
/// signals and stores: from `room/nick`, to our full JID.
pub fn as_echo(row: &mut HistoryRow, m: &HistoryMessage, nick: &str) {
    row.2 = format!("{}/{nick}", bare(&m.peer));
    row.3.clone_from(&m.from);
}

/// Whether a stored message is one of ours to a room.
pub fn own_groupchat(m: &HistoryMessage) -> bool {
    m.kind == "groupchat" && m.direction == perch_plugin_api::Direction::Out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn statuses_are_wokkel_names_in_code_order() {
        assert_eq!(
            status_names(&json!([201, 110, 170, 999])),
            ["SELF_PRESENCE", "LOGGING_ENABLED", "ROOM_CREATED"]
        );
        assert!(status_names(&Value::Null).is_empty());
    }

    #[test]
    fn occupants_have_libervia_keys_in_order() {
        let a = json!({"room": "r@c", "nick": "alice", "subject": null, "codes": [110],
                       "occupants": [
            {"nick": "alice", "jid": "alice@x/r", "role": "moderator", "affiliation": "owner",
             "show": "available"},
            {"nick": "bob", "role": "participant", "affiliation": "none", "show": "away"},
        ]});
        let (room, occ, nick, subject, statuses) = room_args(&a);
        assert_eq!(
            (room.as_str(), nick.as_str(), subject.as_str()),
            ("r@c", "alice", "")
        );
        assert_eq!(statuses, ["SELF_PRESENCE"]);
        assert_eq!(occ.0[0].0, "alice");
        let keys: Vec<&str> = occ.0[0].1.0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["nick", "entity", "affiliation", "role"]);
        assert_eq!(occ.0[0].1.0[1].1, "alice@x/r");
        assert_eq!(occ.0[1].1.0[1].1, "");
    }

    #[test]
    fn live_rooms_come_and_go_per_profile() {
        let r = Rooms::default();
        assert!(r.set_live("p", "r@c", "alice"));
        assert!(!r.set_live("p", "r@c", "alice"));
        assert!(r.is_live("p", "r@c") && !r.is_live("q", "r@c"));
        r.renamed("p", "r@c", "alicia");
        assert_eq!(r.nick("p", "r@c").as_deref(), Some("alicia"));
        assert!(r.set_left("p", "r@c"));
        assert!(!r.set_left("p", "r@c"));
        r.set_live("p", "r@c", "alice");
        r.clear("p");
        assert!(!r.is_live("p", "r@c"));
    }
}
