//! The send path: `message.send`, last of all handlers. A message to a conversation
//! the user encrypted leaves as ciphertext for every trusted device of the contact
//! and of our own account, or not at all.
//!
//! Why refuse rather than fall back: a user who started encryption relies on it;
//! a message silently sent in clear because a contact's device list vanished would
//! break that promise unnoticed. The caller gets `NotEncrypted` naming why.

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_omemo::{Session, Version, fingerprint, payload};
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::parsers::message::{Lang, Message, MessageType};
use perch_plugin_api::points::OutgoingMessage;
use perch_plugin_api::{Flow, HostError};
use std::sync::Arc;

use super::store::{self, Device};
use super::trust::encrypts_to;
use super::{Me, Omemo, clear, room, wire};

/// `message.send`: encrypts a message of an encrypted conversation, or refuses it
/// (content that would travel in clear: [`clear`]).
pub(crate) fn on_send(me: Arc<Omemo>, args: &mut OutgoingMessage) -> BoxFuture<'_, Flow<String>> {
    async move {
        let Some(to) = args.message.to.clone() else {
            return Flow::Continue;
        };
        let body = args.message.bodies.values().next().cloned();
        // Metadata only (a marker, a chat state): as it is, without a store read.
        if body.is_none() && clear::refusal(&args.message).is_none() {
            return Flow::Continue;
        }
        match me.encrypted(&args.profile, &to).await {
            Ok(true) => {}
            Ok(false) => return Flow::Continue,
            Err(e) => {
                args.refused = Some(e);
                return Flow::Stop;
            }
        }
        let checked = match (clear::refusal(&args.message), body) {
            (Some(why), _) => Err(HostError::NotEncrypted(why)),
            (None, Some(body)) => Ok(body),
            (None, None) => return Flow::Continue,
        };
        let sent = match checked {
            Ok(body) => {
                clear::drop_repeats(&mut args.message);
                match me.recipients(&args.profile, &args.message, &to).await {
                    Ok((accounts, named)) => me
                        .encrypt_message(&args.profile, &accounts, &named, &body, &mut args.message)
                        .await
                        .map(|v| (v, body)),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        match sent {
            Ok((v, body)) => {
                args.history_body = Some(body);
                args.extra
                    .insert("encryption".into(), v.namespace().into());
                Flow::Continue
            }
            Err(e) => {
                tracing::info!(profile = %args.profile, %to, error = %e, "an encrypted conversation's message not sent");
                args.refused = Some(e);
                Flow::Stop
            }
        }
    }
    .boxed()
}

/// The best version `devices` offer among `ours` (which comes best first).
pub fn best_version(ours: &[Version], devices: &[Device]) -> Option<Version> {
    ours.iter()
        .copied()
        .find(|v| devices.iter().any(|d| d.active && d.version == *v))
}

/// The best version among `ours` that every account has a device for; refused
/// naming who has no device, or what each has when no version is common.
pub fn common_version(
    ours: &[Version],
    accounts: &[(BareJid, Vec<Device>)],
) -> Result<Version, HostError> {
    if let Some((jid, _)) = accounts
        .iter()
        .find(|(_, ds)| best_version(ours, ds).is_none())
    {
        return Err(HostError::NotEncrypted(format!(
            "{jid} publishes no OMEMO device"
        )));
    }
    ours.iter()
        .copied()
        .find(|v| {
            accounts
                .iter()
                .all(|(_, ds)| best_version(&[*v], ds).is_some())
        })
        .ok_or_else(|| {
            let each: Vec<String> = accounts
                .iter()
                .map(|(jid, ds)| {
                    let vs: Vec<&str> = ours
                        .iter()
                        .filter(|v| best_version(&[**v], ds).is_some())
                        .map(|v| store::vname(*v))
                        .collect();
                    format!("{jid}: {}", vs.join(", "))
                })
                .collect();
            HostError::NotEncrypted(format!(
                "no OMEMO version every recipient speaks ({})",
                each.join("; ")
            ))
        })
}

/// Why no device of the contact got a key, in words.
fn no_key_reason(to: &BareJid, v: Version, skipped: &[(u32, String)]) -> String {
    if skipped.is_empty() {
        return format!("{to} has no OMEMO {} device", store::vname(v));
    }
    let why: Vec<String> = skipped
        .iter()
        .map(|(d, r)| format!("device {d}: {r}"))
        .collect();
    format!("no device of {to} can receive it ({})", why.join("; "))
}

/// The ciphertext, IV (0.3) and key material of `body` in version `v`; OMEMO 2's
/// envelope names `from` and `to`.
fn seal(v: Version, body: &str, from: &str, to: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    match v {
        Version::V03 => {
            let p = payload::encrypt_v03(body.as_bytes());
            (p.ciphertext, p.iv, p.key_material)
        }
        Version::V2 => {
            let env = wire::envelope(body, from, to, &rpad());
            let p = payload::encrypt_v2(String::from(&env).as_bytes());
            (p.ciphertext, Vec::new(), p.key_material)
        }
    }
}

impl Omemo {
    /// Whether `profile`'s conversation with `to` (its bare JID) is encrypted.
    async fn encrypted(&self, profile: &str, to: &Jid) -> Result<bool, HostError> {
        let pid = self.host.profile_id(profile).await?;
        store::encrypted(self.host.store(), pid, to.to_bare().as_str()).await
    }

    /// The accounts a message to `to` is encrypted to: a room's other occupants
    /// (group chat), one occupant's real JID (a private message in a room we
    /// have), else the contact. With them, whom OMEMO 2's envelope names as the
    /// recipient: the room, the occupant, the contact's bare JID.
    pub(crate) async fn recipients(
        &self,
        profile: &str,
        m: &Message,
        to: &Jid,
    ) -> Result<(Vec<BareJid>, Jid), HostError> {
        let bare = to.to_bare();
        match m.type_ {
            MessageType::Groupchat => {
                let own = self.own_jid(profile).await?;
                let r = self
                    .room(profile, &bare)
                    .await
                    .ok_or_else(|| HostError::NotEncrypted(format!("not in room {bare}")))?;
                self.check_non_anonymous(profile, &bare).await?;
                Ok((room::recipients(&bare, &r, &own)?, Jid::from(bare)))
            }
            MessageType::Chat | MessageType::Normal => match to.resource() {
                Some(nick) if self.room(profile, &bare).await.is_some() => {
                    let jid = self
                        .occupant_jid(profile, &bare, nick.as_str(), m)
                        .await
                        .map_err(HostError::NotEncrypted)?;
                    Ok((vec![jid], to.clone()))
                }
                _ => Ok((vec![bare.clone()], Jid::from(bare))),
            },
            _ => Err(HostError::NotEncrypted(
                "only chat and group chat messages are encrypted".into(),
            )),
        }
    }

    /// The devices of each account (fetched when none is known), ours left out.
    async fn devices_of(
        &self,
        profile: &str,
        me: &Me,
        accounts: &[BareJid],
    ) -> Result<Vec<(BareJid, Vec<Device>)>, HostError> {
        let db = self.host.store();
        let mut out = Vec::new();
        for jid in accounts {
            let mut ds = store::devices(db, me.pid, jid.as_str()).await?;
            if !ds.iter().any(|d| d.active) {
                self.refresh_devices(profile, me.pid, jid).await?;
                ds = store::devices(db, me.pid, jid.as_str()).await?;
            }
            ds.retain(|d| !(*jid == me.jid && d.id == me.device));
            out.push((jid.clone(), ds));
        }
        Ok(out)
    }

    /// The keys for the active devices of `v` among `devices`, and why the others
    /// got none.
    async fn keys_for(
        &self,
        profile: &str,
        me: &Me,
        devices: &[Device],
        v: Version,
        key_material: &[u8],
    ) -> Result<(Vec<wire::Key>, Vec<(u32, String)>), HostError> {
        let (mut keys, mut skipped) = (Vec::new(), Vec::new());
        for d in devices.iter().filter(|d| d.active && d.version == v) {
            match self.key_for(profile, me, d, key_material).await? {
                Ok(k) => keys.push(k),
                Err(why) => skipped.push((d.id, why)),
            }
        }
        Ok((keys, skipped))
    }

    /// Replaces `message`'s body with its encryption for every trusted device of
    /// `accounts` and our own other devices; the version used. Refused when one
    /// account has no device that can read it.
    pub(crate) async fn encrypt_message(
        &self,
        profile: &str,
        accounts: &[BareJid],
        to: &Jid,
        body: &str,
        message: &mut Message,
    ) -> Result<Version, HostError> {
        let _g = self.lock(profile).await;
        let me = self.me(profile).await?;
        let theirs = self.devices_of(profile, &me, accounts).await?;
        let ours = self
            .conversation_versions(me.pid, to.to_bare().as_str())
            .await?;
        let v = common_version(&ours, &theirs)?;
        let (ciphertext, iv, key_material) = seal(v, body, me.jid.as_str(), &to.to_string());
        let mut keys = Vec::new();
        for (jid, devices) in &theirs {
            let (got, skipped) = self
                .keys_for(profile, &me, devices, v, &key_material)
                .await?;
            if got.is_empty() {
                return Err(HostError::NotEncrypted(no_key_reason(jid, v, &skipped)));
            }
            keys.extend(got);
        }
        if !accounts.contains(&me.jid) {
            let mut mine = store::devices(self.host.store(), me.pid, me.jid.as_str()).await?;
            mine.retain(|d| d.id != me.device);
            keys.extend(
                self.keys_for(profile, &me, &mine, v, &key_material)
                    .await?
                    .0,
            );
        }
        tracing::trace!(%profile, %to, version = ?v, devices = keys.len(), "message encrypted");
        let enc = wire::Encrypted {
            version: v,
            sid: me.device,
            keys,
            iv,
            payload: Some(ciphertext),
        };
        message.bodies.clear();
        message
            .bodies
            .insert(Lang(String::new()), wire::FALLBACK.to_owned());
        message.payloads.push(enc.element());
        message.payloads.push(wire::eme(v));
        message.payloads.push(wire::store_hint());
        Ok(v)
    }

    /// The `<key/>` for device `d`: its session (opened from its bundle if there is
    /// none) encrypts `key_material`. `Ok(Err(why))`: the device gets no key
    /// (not trusted, no usable bundle); `Err`: the store failed.
    pub(crate) async fn key_for(
        &self,
        profile: &str,
        me: &Me,
        d: &Device,
        key_material: &[u8],
    ) -> Result<Result<wire::Key, String>, HostError> {
        let db = self.host.store();
        let stored = store::session(db, me.pid, &d.jid, d.version, d.id).await?;
        let (session, bundle) = match stored {
            Some(s) => (Some(s), None),
            None => match self.fetch_bundle(profile, &d.jid, d.version, d.id).await {
                Ok(b) => (None, Some(b)),
                Err(why) => return Ok(Err(why)),
            },
        };
        let curve = match (&session, &bundle) {
            (Some(s), _) => s.peer_curve(),
            (None, Some(b)) => match b.identity_curve() {
                Ok(c) => c,
                Err(e) => return Ok(Err(e.to_string())),
            },
            (None, None) => return Ok(Err("no session".into())),
        };
        let fp = fingerprint(&curve);
        store::note_device(db, me.pid, &d.jid, d.version, d.id, &fp).await?;
        let trust = self.trust_of(profile, me.pid, &d.jid, d.id, &fp).await?;
        if !encrypts_to(&trust) {
            return Ok(Err(format!("key {trust}")));
        }
        let (session, enc) = match (session, bundle) {
            (Some(mut s), _) => {
                let enc = s.encrypt(&me.identity, key_material);
                (s, enc)
            }
            (None, Some(b)) => match Session::initiate(&me.identity, &b, key_material) {
                Ok(x) => x,
                Err(e) => return Ok(Err(e.to_string())),
            },
            (None, None) => return Ok(Err("no session".into())),
        };
        store::save_session(db, me.pid, &d.jid, d.id, &session).await?;
        Ok(Ok(wire::Key {
            jid: Some(d.jid.clone()),
            rid: d.id,
            kex: enc.key_exchange,
            data: enc.bytes,
        }))
    }
}

/// OMEMO 2's random padding: 0 to 200 characters, so the length of the text does
/// not show.
fn rpad() -> String {
    use rand_core::RngCore;
    let mut bytes = [0u8; 151];
    rand_core::OsRng.fill_bytes(&mut bytes);
    let n = usize::from(bytes[0]) % 150;
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes[1..=n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(jid: &str, v: Version, active: bool) -> Device {
        Device {
            jid: jid.into(),
            version: v,
            id: 1,
            active,
            fingerprint: None,
        }
    }

    fn account(jid: &str, ds: &[(Version, bool)]) -> (BareJid, Vec<Device>) {
        let devices = ds.iter().map(|(v, a)| dev(jid, *v, *a)).collect();
        (BareJid::new(jid).unwrap(), devices)
    }

    #[test]
    fn the_best_version_every_recipient_has() {
        let both = [Version::V2, Version::V03];
        let bob = account("bob@x", &[(Version::V2, true), (Version::V03, true)]);
        let carol = account("carol@x", &[(Version::V03, true), (Version::V2, false)]);
        assert_eq!(
            common_version(&both, std::slice::from_ref(&bob)).unwrap(),
            Version::V2
        );
        assert_eq!(
            common_version(&both, &[bob.clone(), carol.clone()]).unwrap(),
            Version::V03
        );
        let dave = account("dave@x", &[(Version::V2, true)]);
        let Err(HostError::NotEncrypted(why)) = common_version(&both, &[carol, dave]) else {
            panic!("a common version");
        };
        assert_eq!(
            why,
            "no OMEMO version every recipient speaks (carol@x: 0.3; dave@x: 2)"
        );
        let eve = account("eve@x", &[(Version::V2, false)]);
        let Err(HostError::NotEncrypted(why)) = common_version(&both, &[bob, eve]) else {
            panic!("eve has no device");
        };
        assert_eq!(why, "eve@x publishes no OMEMO device");
    }
}
