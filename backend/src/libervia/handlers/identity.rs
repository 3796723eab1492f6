//! Avatars as Libervia 0.9's identity plugin offers them: `avatarGet` and
//! `avatarSet`, over perchd's `avatar_get` and `avatar_set` actions, and the avatar
//! part of `identityGet` (`misc::identity`).
//!
//! 0.9's avatar is a JSON dict `{path, filename, media_type, cache_uid}` (a file in
//! its cache, which frontends open on the same machine), or `null`; perchd's kept
//! copy is that file, named by its SHA-1, which is also the cache uid. 0.9 scales
//! an avatar to 128×128 before publishing it; perchd publishes the image as given
//! (at most 1 MiB), which every client scales when it shows it.

use perch_actions::identity::{
    Avatar, AvatarGet, AvatarGetArgs, AvatarSet, AvatarSetArgs, NickGet, NickGetArgs, Nickname,
};
use serde_json::{Value, json};

use crate::libervia::context::{CORE_INTERFACE, Lib};
use crate::libervia::errors::LibError;
use crate::libervia::reply::{Answer, out, unit};
use crate::libervia::shapes::bare;

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

/// `identityGet(jid, metadata_filter, use_cache, profile)` (plugin): the nickname
/// the user gave the contact and the one it chose (XEP-0172), else its capitalised
/// local part, and its avatar
/// (`handlers::identity`); the nickname is also announced with `entityDataUpdated`,
/// for the frontends' entity cache, as 0.9 does. A filter keeps only the metadata
/// it names.
pub async fn identity_get(
    lib: &Lib,
    (jid, filter, use_cache, key): (String, Vec<String>, bool, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let bare = bare(&jid);
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| f == name);
    let mut id = serde_json::Map::new();
    if wanted("nicknames") {
        let nicks = nicknames(lib, &p, &bare, use_cache).await;
        lib.emit(
            CORE_INTERFACE,
            "entityDataUpdated",
            &(
                bare.clone(),
                "nicknames",
                json!(nicks).to_string(),
                p.clone(),
            ),
        )
        .await;
        id.insert("nicknames".into(), json!(nicks));
    }
    if wanted("avatar") {
        let avatar = avatar_of(lib, &p, &bare, use_cache).await;
        id.insert("avatar".into(), avatar);
    }
    out(Value::Object(id).to_string())
}

/// The nicknames of `bare` for `identityGet`, as 0.9 orders them: the name the user
/// gave it in the roster, then the one it chose itself (XEP-0172), else its
/// capitalised local part.
async fn nicknames(lib: &Lib, profile: &str, bare: &str, use_cache: bool) -> Vec<String> {
    let mut nicks = Vec::new();
    let from_roster = lib.daemon.roster(profile).await.ok().and_then(|r| {
        r.into_iter()
            .find(|i| i.jid == bare)
            .and_then(|i| i.name)
            .filter(|n| !n.is_empty())
    });
    nicks.extend(from_roster);
    let args = NickGetArgs {
        jid: Some(bare.to_owned()),
        refresh: !use_cache,
    };
    match typed::<NickGet>(lib, profile, args).await {
        Ok(Nickname { nick: Some(n), .. }) if !nicks.contains(&n) => nicks.push(n),
        Ok(_) => {}
        Err(e) => tracing::debug!(%profile, %bare, error = ?e, "identityGet: no XEP-0172 nickname"),
    }
    if nicks.is_empty() {
        nicks.push(capitalised_local(bare));
    }
    nicks
}

/// `alice@example.org` → `Alice`: Libervia's last-resort nickname.
fn capitalised_local(bare: &str) -> String {
    let local = bare.split_once('@').map_or(bare, |(l, _)| l);
    let mut c = local.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_nickname_is_the_capitalised_local_part() {
        assert_eq!(capitalised_local("alice@example.org"), "Alice");
        assert_eq!(capitalised_local("example.org"), "Example.org");
    }
}
