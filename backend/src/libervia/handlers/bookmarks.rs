//! Bookmarks and invitations as Libervia 0.9 offers them (its `XEP-0048` and
//! `XEP-0249` plugins): `bookmarksList`, `bookmarksAdd`, `bookmarksRemove` and
//! `inviteMUC`, over the group chat plugin's `muc_bookmark*` and `muc_invite`
//! actions.
//!
//! Where the bookmarks live: 0.9 keeps room bookmarks in three places, `local`
//! (its own database), `private` (XEP-0049 private XML storage, on the server) and
//! `pubsub` (never filled in 0.9). perchd keeps them in one, on the server, as
//! XEP-0402 PEP items, which servers (Prosody's `mod_bookmarks`, ejabberd) show to
//! XEP-0049 readers as the same list. So perchd answers them as `private`, what a
//! 0.9 backend on the same account reads there, with `local` and `pubsub` empty; an
//! added bookmark goes to the server whatever the location asked (a bookmark kept
//! only on one machine is one the user's other clients never see). URL bookmarks,
//! which perchd does not keep, list empty and are refused when added.

use perch_actions::muc::{BookmarkArgs, BookmarkRemove, BookmarkSet, Bookmarks, Invite};
use perch_actions::{NoArgs, muc};
use serde_json::Value;
use std::collections::HashMap;

use crate::libervia::context::Lib;
use crate::libervia::errors::LibError;
use crate::libervia::reply::{Answer, Map, out, unit};

use super::typed;

const MUC: &str = "muc";
const URL: &str = "url";
const LOCATIONS: [&str; 3] = ["local", "private", "pubsub"];

fn kind(type_: &str) -> Result<&str, LibError> {
    match type_ {
        MUC | URL => Ok(if type_ == MUC { MUC } else { URL }),
        other => Err(LibError::value(&format!(
            "unknown bookmark type {other:?} (muc or url)"
        ))),
    }
}

/// One bookmark as 0.9 lists it: its attributes as strings.
fn listed(b: &Value) -> HashMap<String, String> {
    let mut data = HashMap::new();
    data.insert(
        "autojoin".to_owned(),
        if b["autojoin"] == true {
            "true"
        } else {
            "false"
        }
        .to_owned(),
    );
    for key in ["name", "nick"] {
        if let Some(v) = b[key].as_str() {
            data.insert(key.to_owned(), v.to_owned());
        }
    }
    data
}

/// `bookmarksList(type, location, profile_key)` →
/// `{location: {room: {autojoin, name, nick}}}`.
pub async fn list(lib: &Lib, (type_, location, key): (String, String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let kind = kind(&type_)?;
    if location != "all" && !LOCATIONS.contains(&location.as_str()) {
        return Err(LibError::value(&format!(
            "unknown storage location {location:?} (all, local, private or pubsub)"
        )));
    }
    let mut all: HashMap<String, HashMap<String, HashMap<String, String>>> = HashMap::new();
    for loc in LOCATIONS {
        if location == "all" || location == loc {
            all.insert(loc.to_owned(), HashMap::new());
        }
    }
    if kind == MUC
        && let Some(private) = all.get_mut("private")
    {
        for b in typed::<Bookmarks>(lib, &p, NoArgs {}).await? {
            if let Some(room) = b["room"].as_str() {
                private.insert(room.to_owned(), listed(&b));
            }
        }
    }
    out(all)
}

/// `bookmarksAdd(type, location, data, storage, profile_key)`: `location` is the
/// room; `data` may hold `name`, `nick`, `autojoin` ("true") and `password`.
pub async fn add(
    lib: &Lib,
    (type_, room, data, _storage, key): (String, String, Map, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    if kind(&type_)? == URL {
        return Err(LibError::value("perchd keeps no URL bookmarks"));
    }
    let args = BookmarkArgs {
        room,
        name: data.get("name").cloned(),
        nick: data.get("nick").cloned(),
        autojoin: data
            .get("autojoin")
            .is_some_and(|a| a == "true" || a == "1"),
        password: data.get("password").cloned(),
    };
    typed::<BookmarkSet>(lib, &p, args).await?;
    unit()
}

/// `bookmarksRemove(type, location, storage, profile_key)`.
pub async fn remove(
    lib: &Lib,
    (type_, room, _storage, key): (String, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    if kind(&type_)? == URL {
        return unit();
    }
    typed::<BookmarkRemove>(lib, &p, muc::RoomArgs { room }).await?;
    unit()
}

/// `inviteMUC(guest, room, options, profile_key)`: `options` may hold `reason` and
/// `password` (0.9 ignores, with a warning, any other key; so does perchd).
pub async fn invite(
    lib: &Lib,
    (guest, room, options, key): (String, String, Map, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    for k in options
        .keys()
        .filter(|k| !matches!(k.as_str(), "reason" | "password" | "thread"))
    {
        tracing::warn!(profile = %p, option = %k, "inviteMUC: an unknown option is ignored");
    }
    let args = muc::InviteArgs {
        room,
        jid: guest,
        reason: options.get("reason").cloned(),
        password: options.get("password").cloned(),
    };
    typed::<Invite>(lib, &p, args).await?;
    unit()
}
