//! Group chats (plugin interface, 0.9's `XEP-0045` plugin): joining, leaving, nick,
//! subject, occupants, the joined rooms, the MUC service. Each method runs the
//! group chat plugin's `muc_*` action; the room shapes are [`crate::libervia::rooms`],
//! the signals [`crate::libervia::room_events`].
//!
//! As in 0.9: a room given without a service (`room`) is on the profile's MUC
//! service, an empty one is a new unique room there; a taken nick is tried again with
//! `_` appended; every method on a room we are not in is `NotFound` ("This room has
//! not been joined"); a room that is not a JID is `InvalidFormat`.

use perch_actions::muc;
use perch_actions::{NoArgs, disco};
use serde_json::Value;

use crate::error::Error;
use crate::libervia::actions;
use crate::libervia::context::{Lib, PLUGIN_INTERFACE};
use crate::libervia::errors::{self, LibError};
use crate::libervia::reply::{Answer, Map, out, unit};
use crate::libervia::rooms::{self, RoomArgs};

use super::typed;

/// How many times a join is tried again with `_` appended to a taken nick.
const NICK_RETRIES: usize = 5;

/// How long `mucJoin` waits for `mucRoomJoined` to go out before it answers.
const ANNOUNCE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// 0.9's `FeatureNotFound`.
const FEATURE_NOT_FOUND: &str = "sat.core.exceptions.FeatureNotFound";

/// `mucJoin(room, nick, options, profile)` →
/// `(already_joined, room, occupants, nick, subject, statuses, profile)`; `options`
/// may hold the room's `password`.
pub async fn join(lib: &Lib, (room, nick, options, key): (String, String, Map, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let room = room_to_join(lib, &p, &room).await?;
    if joined(lib, &p).await?.contains(&room) {
        return out(with_flag(true, room_args(lib, &p, &room).await?, p));
    }
    lib.emit(
        PLUGIN_INTERFACE,
        "mucRoomPrepareJoin",
        &(room.clone(), p.clone()),
    )
    .await;
    let nick = if nick.is_empty() {
        own_local_part(lib, &p).await
    } else {
        nick
    };
    if let Err(e) = enter(lib, &p, &room, nick, options.get("password").cloned()).await {
        join_failed(lib, &p, &room, &e).await;
        return Err(e.into());
    }
    // `mucRoomJoined` goes out before the reply, as in 0.9.
    lib.rooms.wait_live(&p, &room, ANNOUNCE_WAIT).await;
    out(with_flag(false, room_args(lib, &p, &room).await?, p))
}

/// Joins, with `_` appended to the nick while the room says it is taken.
async fn enter(
    lib: &Lib,
    profile: &str,
    room: &str,
    mut nick: String,
    password: Option<String>,
) -> Result<(), Error> {
    let mut tries = 0;
    loop {
        let args = muc::JoinArgs {
            room: room.to_owned(),
            nick: Some(nick.clone()),
            password: password.clone(),
        };
        match lib.daemon.action::<muc::Join>(profile, &args).await {
            Err(Error::Stanza(s)) if s.condition == "conflict" && tries < NICK_RETRIES => {
                tries += 1;
                nick.push('_');
            }
            other => return other.map(drop),
        }
    }
}

/// 0.9 tells the user in a dialog too.
async fn join_failed(lib: &Lib, profile: &str, room: &str, e: &Error) {
    let suffix = match e {
        Error::Stanza(s) => format!(" with condition \"{}\"", s.condition),
        other => format!(": {other}"),
    };
    let message = format!("Error while joining the room {room}{suffix}");
    tracing::info!(profile, room, error = %e, "joining a room for a Libervia frontend failed");
    actions::error_note(lib, profile, "Group chat error", &message).await;
}

/// The reply of `mucJoin`: whether we were in already, then `mucRoomJoined`'s
/// arguments, profile included.
fn with_flag(
    already: bool,
    (room, occupants, nick, subject, statuses): RoomArgs,
    profile: String,
) -> (
    bool,
    String,
    rooms::Occupants,
    String,
    String,
    Vec<String>,
    String,
) {
    (already, room, occupants, nick, subject, statuses, profile)
}

/// `mucLeave(room, profile)`.
pub async fn leave(lib: &Lib, (room, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let room = joined_room(lib, &p, &room).await?;
    typed::<muc::Leave>(lib, &p, muc::RoomArgs { room }).await?;
    unit()
}

/// `mucNick(room, nick, profile)`: done when the room accepted the new nick.
pub async fn nick(lib: &Lib, (room, nick, key): (String, String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let room = joined_room(lib, &p, &room).await?;
    typed::<muc::Nick>(lib, &p, muc::RoomNick { room, nick }).await?;
    unit()
}

/// `mucNickGet(room, profile)`: our nick in the room.
pub async fn nick_get(lib: &Lib, (room, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let room = joined_room(lib, &p, &room).await?;
    let o = occupants_of(lib, &p, &room).await?;
    out(o["nick"].as_str().unwrap_or_default().to_owned())
}

/// `mucOccupantsGet(room, profile)`: `{nick: {nick, entity, affiliation, role}}`.
pub async fn occupants(lib: &Lib, (room, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let room = joined_room(lib, &p, &room).await?;
    out(rooms::occupants(&occupants_of(lib, &p, &room).await?))
}

/// `mucConfigureRoom(room, profile)`: the room's configuration form as XMLUI
/// (`libervia/room_config.rs`), submitted back through `launchAction`.
pub async fn configure_room(lib: &Lib, (room, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let room = joined_room(lib, &p, &room).await?;
    out(crate::libervia::room_config::form(lib, &p, &room).await?)
}

/// `mucSubject(room, subject, profile)`.
pub async fn subject(lib: &Lib, (room, subject, key): (String, String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let room = joined_room(lib, &p, &room).await?;
    typed::<muc::Subject>(lib, &p, muc::RoomSubject { room, subject }).await?;
    unit()
}

/// `mucGetRoomsJoined(profile)`: the rooms we are in, as `mucRoomJoined` gives them;
/// none while the profile is not connected.
pub async fn rooms_joined(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    let mut all = Vec::new();
    let rooms = match lib.daemon.action::<muc::List>(&p, &NoArgs {}).await {
        Err(Error::NotConnected(_)) => return out(all),
        other => other?,
    };
    let rooms = rooms
        .iter()
        .filter(|r| r["joined"].as_bool() == Some(true))
        .filter_map(|r| r["room"].as_str());
    for room in rooms {
        match room_args(lib, &p, room).await {
            Ok(args) => all.push(args),
            // Left between the two calls.
            Err(e) => tracing::debug!(profile = %p, %room, error = ?e, "room gone"),
        }
    }
    out(all)
}

/// `mucGetUniqueRoomName(service, profile)`: a new room's JID (a random name) on
/// `service`, else on the profile's MUC service.
pub async fn unique_name(lib: &Lib, (service, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    out(unique_room(lib, &p, &service).await?)
}

/// `mucGetDefaultService()`: the room the frontends offer to join (`[libervia]
/// default_muc`), as 0.9's `[plugin muc] default_muc`.
pub async fn default_service(lib: &Lib) -> Answer {
    out(lib.daemon.config().libervia.default_muc.clone())
}

/// `mucGetService(jid, profile)`: the first MUC service (identity conference/text,
/// not an IRC gateway) among the items of `jid`, else of our server; `""` if none.
pub async fn service(lib: &Lib, (jid, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    out(find_service(lib, &p, &jid).await?.unwrap_or_default())
}

async fn find_service(lib: &Lib, profile: &str, jid: &str) -> Result<Option<String>, LibError> {
    if jid.is_empty()
        && let Some(s) = lib.rooms.service(profile)
    {
        return Ok(Some(s));
    }
    let target = if jid.is_empty() {
        domain_of(&lib.daemon.profile(profile).await?.jid)
    } else {
        jid.to_owned()
    };
    let items = typed::<disco::DiscoItems>(lib, profile, disco_args(&target)).await?;
    for item in items["items"].as_array().into_iter().flatten() {
        let Some(entity) = item["jid"].as_str() else {
            continue;
        };
        if entity.contains(".irc.") {
            continue;
        }
        let Ok(info) = typed::<disco::DiscoInfo>(lib, profile, disco_args(entity)).await else {
            continue;
        };
        let conference = info["identities"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["category"] == "conference" && i["type"] == "text");
        if conference {
            if jid.is_empty() {
                lib.rooms.set_service(profile, entity);
            }
            return Ok(Some(entity.to_owned()));
        }
    }
    Ok(None)
}

fn disco_args(jid: &str) -> disco::DiscoArgs {
    disco::DiscoArgs {
        jid: jid.to_owned(),
        node: None,
        use_cache: true,
    }
}

fn domain_of(jid: &str) -> String {
    let bare = jid.split('/').next().unwrap_or_default();
    bare.rsplit('@').next().unwrap_or_default().to_owned()
}

async fn default_muc_service(lib: &Lib, profile: &str) -> Result<String, LibError> {
    find_service(lib, profile, "")
        .await?
        .ok_or_else(|| LibError::exc(FEATURE_NOT_FOUND, "No MUC service found on main server", ""))
}

async fn unique_room(lib: &Lib, profile: &str, service: &str) -> Result<String, LibError> {
    let service = if service.is_empty() {
        default_muc_service(lib, profile).await?
    } else {
        bare_jid(service)?
    };
    Ok(format!("{}@{service}", actions::uuid4()))
}

/// The room `mucJoin` names: empty → a new unique room; `name` → `name@service`.
async fn room_to_join(lib: &Lib, profile: &str, room: &str) -> Result<String, LibError> {
    if room.is_empty() {
        return unique_room(lib, profile, "").await;
    }
    let invalid = || {
        LibError::exc(
            errors::INVALID_JID,
            &format!(
                "Invalid room identifier: {room}'. Please give a room short or full \
                 identifier like 'room' or 'room@<service>'."
            ),
            "",
        )
    };
    let jid = crate::daemon::parse_jid(room).map_err(|_| invalid())?;
    match jid.node() {
        Some(_) => Ok(jid.to_bare().to_string()),
        None => {
            let service = default_muc_service(lib, profile).await?;
            let full = format!("{}@{service}", jid.domain());
            crate::daemon::parse_jid(&full)
                .map(|j| j.to_bare().to_string())
                .map_err(|_| invalid())
        }
    }
}

fn bare_jid(s: &str) -> Result<String, LibError> {
    Ok(crate::daemon::parse_jid(s)?.to_bare().to_string())
}

/// The room of a call, which must be a JID of a room we are in.
async fn joined_room(lib: &Lib, profile: &str, room: &str) -> Result<String, LibError> {
    let room = bare_jid(room)?;
    if joined(lib, profile).await?.contains(&room) {
        Ok(room)
    } else {
        Err(LibError::exc(
            errors::NOT_FOUND,
            "This room has not been joined",
            "",
        ))
    }
}

/// The rooms we are in (not those being joined or rejoined).
async fn joined(lib: &Lib, profile: &str) -> Result<Vec<String>, LibError> {
    let list = typed::<muc::List>(lib, profile, NoArgs {}).await?;
    Ok(list
        .iter()
        .filter(|r| r["joined"].as_bool() == Some(true))
        .filter_map(|r| r["room"].as_str().map(str::to_owned))
        .collect())
}

async fn occupants_of(lib: &Lib, profile: &str, room: &str) -> Result<Value, LibError> {
    let args = muc::RoomArgs {
        room: room.to_owned(),
    };
    typed::<muc::Occupants>(lib, profile, args).await
}

async fn room_args(lib: &Lib, profile: &str, room: &str) -> Result<RoomArgs, LibError> {
    Ok(rooms::room_args(&occupants_of(lib, profile, room).await?))
}

async fn own_local_part(lib: &Lib, profile: &str) -> String {
    lib.daemon
        .profile(profile)
        .await
        .ok()
        .and_then(|m| m.jid.split('@').next().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_domain_of_a_jid() {
        assert_eq!(domain_of("alice@localhost/res"), "localhost");
        assert_eq!(domain_of("localhost"), "localhost");
    }
}
