//! Avatars as Libervia 0.9's identity plugin offers them: `avatarGet` and
//! `avatarSet`, over perchd's `avatar_get` and `avatar_set` actions, and the avatar
//! part of `identityGet` (`misc::identity`).
//!
//! 0.9's avatar is a JSON dict `{path, filename, media_type, cache_uid}` (a file in
//! its cache, which frontends open on the same machine), or `null`; perchd's kept
//! copy is that file, named by its SHA-1, which is also the cache uid. 0.9 scales
//! an avatar to 128×128 before publishing it; perchd publishes the image as given
//! (at most 1 MiB), which every client scales when it shows it.

use perch_actions::identity::{Avatar, AvatarGet, AvatarGetArgs, AvatarSet, AvatarSetArgs};
use serde_json::{Value, json};

use crate::libervia::context::Lib;
use crate::libervia::errors::LibError;
use crate::libervia::reply::{Answer, out, unit};

use super::typed;

/// An avatar as 0.9 serialises it.
pub fn shown(a: Option<&Avatar>) -> Value {
    a.map_or(Value::Null, |a| {
        json!({"path": a.path, "filename": a.hash, "media_type": a.media_type,
               "cache_uid": a.hash})
    })
}

/// The bare JID `entity` names; empty: the profile's own.
async fn whose(lib: &Lib, profile: &str, entity: &str) -> Result<String, LibError> {
    if entity.is_empty() {
        return Ok(lib.daemon.profile(profile).await?.jid);
    }
    Ok(crate::daemon::parse_jid(entity)?.to_bare().to_string())
}

/// The avatar of `jid` for `identityGet`: `null` when it has none or it could not be
/// had (an identity is still answered).
pub async fn avatar_of(lib: &Lib, profile: &str, jid: &str, use_cache: bool) -> Value {
    let args = AvatarGetArgs {
        jid: jid.to_owned(),
        refresh: !use_cache,
    };
    match typed::<AvatarGet>(lib, profile, args).await {
        Ok(a) => shown(a.as_ref()),
        Err(e) => {
            tracing::debug!(%profile, %jid, error = ?e, "identityGet: no avatar");
            Value::Null
        }
    }
}

/// `avatarGet(entity, use_cache, profile_key)`.
pub async fn get(lib: &Lib, (entity, use_cache, key): (String, bool, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let jid = whose(lib, &p, &entity).await?;
    let args = AvatarGetArgs {
        jid,
        refresh: !use_cache,
    };
    let a = typed::<AvatarGet>(lib, &p, args).await?;
    out(shown(a.as_ref()).to_string())
}

/// `avatarSet(file_path, entity, profile_key)`: our own avatar only (0.9 may also
/// set a room's, as its owner; perchd does not).
pub async fn set(lib: &Lib, (path, entity, key): (String, String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let own = whose(lib, &p, "").await?;
    if !entity.is_empty() && whose(lib, &p, &entity).await? != own {
        return Err(LibError::value("perchd sets only the account's own avatar"));
    }
    typed::<AvatarSet>(lib, &p, AvatarSetArgs { path }).await?;
    unit()
}
