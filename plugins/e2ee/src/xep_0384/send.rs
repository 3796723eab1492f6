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
use perch_plugin_api::jid::BareJid;
use perch_plugin_api::parsers::message::{Lang, Message, MessageType};
use perch_plugin_api::points::OutgoingMessage;
use perch_plugin_api::{Flow, HostError};
use std::sync::Arc;

use super::store::{self, Device};
use super::trust::encrypts_to;
use super::{Me, Omemo, wire};

/// `message.send`: encrypts a message of an encrypted conversation, or refuses it.
pub(crate) fn on_send(me: Arc<Omemo>, args: &mut OutgoingMessage) -> BoxFuture<'_, Flow<String>> {
    async move {
        let chat = matches!(args.message.type_, MessageType::Chat | MessageType::Normal);
        let Some(to) = args.message.to.as_ref().map(|t| t.to_bare()) else {
            return Flow::Continue;
        };
        let Some(body) = args.message.bodies.values().next().cloned() else {
            return Flow::Continue;
        };
        let on = match me.host.profile_id(&args.profile).await {
            Ok(pid) => store::encrypted(me.host.store(), pid, to.as_str()).await,
            Err(e) => Err(e),
        };
        match on {
            Ok(true) => {}
            Ok(false) => return Flow::Continue,
            Err(e) => {
                args.refused = Some(e);
                return Flow::Stop;
            }
        }
        if !chat {
            args.refused = Some(HostError::NotEncrypted(
                "only one-to-one chats are encrypted".into(),
            ));
            return Flow::Stop;
        }
        match me.encrypt_message(&args.profile, &to, &body, &mut args.message).await {
            Ok(v) => {
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

impl Omemo {
    /// Replaces `message`'s body with its encryption for every trusted device;
    /// the version used.
    pub(crate) async fn encrypt_message(
        &self,
        profile: &str,
        to: &BareJid,
        body: &str,
        message: &mut Message,
    ) -> Result<Version, HostError> {
        let _g = self.lock.lock().await;
        let me = self.me(profile).await?;
        let db = self.host.store();
        let mut theirs = store::devices(db, me.pid, to.as_str()).await?;
        if !theirs.iter().any(|d| d.active) {
            self.refresh_devices(profile, me.pid, to).await?;
            theirs = store::devices(db, me.pid, to.as_str()).await?;
        }
        let v = best_version(&self.versions, &theirs)
            .ok_or_else(|| HostError::NotEncrypted(format!("{to} publishes no OMEMO device")))?;
        let (ciphertext, iv, key_material) = match v {
            Version::V03 => {
                let p = payload::encrypt_v03(body.as_bytes());
                (p.ciphertext, p.iv, p.key_material)
            }
            Version::V2 => {
                let env = wire::envelope(body, me.jid.as_str(), to.as_str(), &rpad());
                let p = payload::encrypt_v2(String::from(&env).as_bytes());
                (p.ciphertext, Vec::new(), p.key_material)
            }
        };
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for d in theirs.iter().filter(|d| d.active && d.version == v) {
            match self.key_for(profile, &me, d, &key_material).await? {
                Ok(k) => keys.push(k),
                Err(why) => skipped.push((d.id, why)),
            }
        }
        if keys.is_empty() {
            return Err(HostError::NotEncrypted(no_key_reason(to, v, &skipped)));
        }
        if me.jid != *to {
            for d in store::devices(db, me.pid, me.jid.as_str()).await? {
                if d.active
                    && d.version == v
                    && d.id != me.device
                    && let Ok(k) = self.key_for(profile, &me, &d, &key_material).await?
                {
                    keys.push(k);
                }
            }
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
