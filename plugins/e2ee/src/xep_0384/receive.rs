//! The receive path: `message.received`, after carbons and archive results are
//! unwrapped. An OMEMO message's body becomes its plaintext (`extra.encryption`
//! says with what), and the other elements OMEMO 2's envelope carried (a reaction,
//! a reply's reference) join the message, as if they had come in clear; one that can't be decrypted is kept with a placeholder body and
//! `extra.decryption_error`, and signalled — never lost, never shown as if the
//! fallback were the text. Empty messages (heartbeats) are not stored.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::encryption::{DecryptionFailed, Undecryptable};
use perch_omemo::{Error as CryptoError, Session, Version, fingerprint, payload};
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::{Id, Lang, Message, MessageType};
use perch_plugin_api::points::IncomingMessage;
use perch_plugin_api::{Flow, HostError, Signals};

use super::{Me, Omemo, pep, store, wire};

/// What a message that could not be decrypted shows instead of its text.
pub const PLACEHOLDER: &str = "[encrypted message that could not be decrypted]";

/// Why our own message can't be read back: OMEMO does not encrypt for the sending
/// device (history has its plaintext from when it was sent).
pub const SENT_BY_US: &str = "sent by this device";

/// Why a second copy of a message can't be read: its key was used.
pub const COPY: &str = "already decrypted (a copy)";

/// What decrypting gave.
#[derive(Debug, PartialEq)]
pub enum Decrypted {
    /// The text (none: OMEMO 2 carried elements only, a reaction say), and the
    /// elements OMEMO 2's envelope carried beside it.
    Content {
        body: Option<String>,
        elements: Vec<Element>,
    },
    /// An empty message: a heartbeat or a key exchange without text.
    Empty,
    /// Why it could not be read.
    Failed(String),
}

/// `message.received`: device list notifications are stored; OMEMO messages
/// decrypted.
pub(crate) fn on_received(me: Arc<Omemo>, args: &mut IncomingMessage) -> BoxFuture<'_, Flow<()>> {
    async move {
        let el = Element::from(args.message.clone());
        if let Some(from) = args.message.from.as_ref().map(|f| f.to_bare()) {
            for (v, ids) in pep::devicelist_events(&el) {
                me.on_devicelist_event(&args.profile, &from, v, ids).await;
            }
        }
        let Some(found) = args.message.payloads.iter().find_map(wire::Encrypted::parse) else {
            return Flow::Continue;
        };
        let ns = match &found {
            Ok(e) => e.version.namespace(),
            Err(_) => "",
        };
        let outcome = match found {
            Ok(enc) if me.versions.contains(&enc.version) => me.decrypt(&args.profile, &args.message, &enc).await,
            Ok(_) => Decrypted::Failed("this OMEMO version is disabled".into()),
            Err(why) => Decrypted::Failed(format!("malformed: {why}")),
        };
        match outcome {
            Decrypted::Content { body, elements } => {
                match body {
                    Some(text) => set_body(&mut args.message, text),
                    // The fallback body is not the message: what it carried is.
                    None => args.message.bodies.clear(),
                }
                args.message.payloads.extend(elements);
                args.extra.insert("encryption".into(), ns.into());
                Flow::Continue
            }
            Decrypted::Empty => Flow::Stop,
            Decrypted::Failed(reason) => {
                tracing::info!(profile = %args.profile, from = ?args.message.from, %reason, "an OMEMO message could not be decrypted");
                set_body(&mut args.message, PLACEHOLDER.to_owned());
                args.extra.insert("encryption".into(), ns.into());
                args.extra.insert("decryption_error".into(), reason.clone().into());
                let payload = Undecryptable {
                    id: args.message.id.as_ref().map(|i| i.0.clone()).unwrap_or_default(),
                    from: args.message.from.as_ref().map(ToString::to_string).unwrap_or_default(),
                    reason,
                };
                // Our own message come back, or a copy of one already read (the
                // archive): history has its text, nothing to tell.
                if payload.reason != SENT_BY_US && payload.reason != COPY {
                    me.host.signal(DecryptionFailed, &args.profile, &payload);
                }
                Flow::Continue
            }
        }
    }
    .boxed()
}

fn set_body(m: &mut Message, text: String) {
    m.bodies.clear();
    m.bodies.insert(Lang(String::new()), text);
}

/// Why a decryption failed, as users read it.
fn reason(e: &CryptoError) -> String {
    match e {
        CryptoError::UnknownPreKey(_) => "the key exchange uses a prekey we no longer have".into(),
        CryptoError::Duplicate => COPY.into(),
        other => other.to_string(),
    }
}

impl Omemo {
    /// Decrypts `enc`, which came in `m`; answers a key exchange with a heartbeat.
    pub(crate) async fn decrypt(
        self: &Arc<Self>,
        profile: &str,
        m: &Message,
        enc: &wire::Encrypted,
    ) -> Decrypted {
        let sender = match self.sender(profile, m).await {
            Ok(s) => s,
            Err(why) => return Decrypted::Failed(why),
        };
        let (outcome, answer) = match self.decrypt_locked(profile, &sender, enc).await {
            Ok(x) => x,
            Err(e) => return Decrypted::Failed(format!("storage: {e}")),
        };
        if answer {
            self.spawn_heartbeat(profile, sender, enc.version, enc.sid);
        }
        outcome
    }

    /// Whose account sent `m`: the occupant's real JID for a room's message (or
    /// a private message from a room we have), else the sender's bare JID.
    async fn sender(&self, profile: &str, m: &Message) -> Result<BareJid, String> {
        let from = m.from.as_ref().ok_or("no sender")?;
        let bare = from.to_bare();
        let nick = from.resource().map(|r| r.to_string());
        match (&m.type_, nick) {
            (MessageType::Groupchat, None) => Err("a message of the room itself".into()),
            (MessageType::Groupchat, Some(nick)) => {
                self.occupant_jid(profile, &bare, &nick, m).await
            }
            (_, Some(nick)) if self.room(profile, &bare).await.is_some() => {
                self.occupant_jid(profile, &bare, &nick, m).await
            }
            _ => Ok(bare),
        }
    }

    /// Under the lock: the key for us, the session (opened from a key exchange if
    /// need be), the payload. With it: whether to answer with a heartbeat.
    async fn decrypt_locked(
        &self,
        profile: &str,
        sender: &BareJid,
        enc: &wire::Encrypted,
    ) -> Result<(Decrypted, bool), HostError> {
        let _g = self.lock(profile).await;
        let me = self.me(profile).await?;
        let own = me.jid.as_str();
        let key = enc
            .keys
            .iter()
            .find(|k| k.rid == me.device && k.jid.as_deref().is_none_or(|j| j == own));
        let Some(key) = key else {
            if enc.payload.is_none() {
                // Another device's heartbeat: nothing to read, nothing to keep.
                return Ok((Decrypted::Empty, false));
            }
            let why = if enc.sid == me.device && *sender == me.jid {
                SENT_BY_US
            } else {
                "not for this device"
            };
            return Ok((Decrypted::Failed(why.into()), false));
        };
        let (km, answer) = match self.open_key(profile, &me, sender, enc, key).await? {
            Ok(x) => x,
            Err(why) => return Ok((Decrypted::Failed(why), false)),
        };
        let out = open_payload(enc, &km, sender);
        if matches!(out, Decrypted::Content { .. }) {
            tracing::trace!(%profile, %sender, device = enc.sid, "message decrypted");
        }
        Ok((out, answer))
    }

    /// The key material of `key`, from the stored session or a new one (a key
    /// exchange: its prekey replaced and the bundle republished). `Ok(Err(why))`:
    /// it can't be read.
    async fn open_key(
        &self,
        profile: &str,
        me: &Me,
        sender: &BareJid,
        enc: &wire::Encrypted,
        key: &wire::Key,
    ) -> Result<Result<(Vec<u8>, bool), String>, HostError> {
        let db = self.host.store();
        let (v, jid) = (enc.version, sender.as_str());
        if let Some(mut s) = store::session(db, me.pid, jid, v, enc.sid).await? {
            match s.decrypt(&key.data, key.kex) {
                Ok(km) => {
                    store::save_session(db, me.pid, jid, enc.sid, &s).await?;
                    return Ok(Ok((km, false)));
                }
                Err(CryptoError::ForeignKeyExchange) => {}
                Err(e) => return Ok(Err(reason(&e))),
            }
        }
        if !key.kex {
            return Ok(Err("no session".into()));
        }
        let mut keys = self.device_keys(me, v).await?;
        let r = match Session::respond(&me.identity, &keys, &key.data) {
            Ok(r) => r,
            Err(e) => return Ok(Err(reason(&e))),
        };
        let fp = fingerprint(&r.session.peer_curve());
        store::save_session(db, me.pid, jid, enc.sid, &r.session).await?;
        store::note_device(db, me.pid, jid, v, enc.sid, &fp).await?;
        self.trust_of(profile, me.pid, jid, enc.sid, &fp).await?;
        keys.remove_prekey(r.prekey_id);
        keys.refill_prekeys(super::PREKEYS as usize);
        store::save_keys(db, me.pid, &keys).await?;
        if let Err(e) = self
            .publish_bundle(profile, me, &keys.bundle(&me.identity))
            .await
        {
            tracing::warn!(%profile, error = %e, "republishing our bundle after a used prekey failed");
        }
        tracing::debug!(%profile, %sender, device = enc.sid, "OMEMO session opened by the peer");
        Ok(Ok((r.key_material.clone(), true)))
    }

    /// Sends an empty message to a device, in a task of its own (the lock is taken
    /// there, once this message's handling released it).
    fn spawn_heartbeat(self: &Arc<Self>, profile: &str, to: BareJid, v: Version, device: u32) {
        let (this, profile) = (self.clone(), profile.to_owned());
        tokio::spawn(async move {
            if let Err(e) = this.heartbeat(&profile, &to, v, device).await {
                tracing::info!(%profile, %to, device, error = %e, "answering a key exchange failed");
            }
        });
    }

    /// An empty OMEMO message to one device: it moves the peer's ratchet after a
    /// key exchange it sent. Not stored (it has no text), never through
    /// `message.send`.
    pub(crate) async fn heartbeat(
        &self,
        profile: &str,
        to: &BareJid,
        v: Version,
        device: u32,
    ) -> Result<(), HostError> {
        let _g = self.lock(profile).await;
        let me = self.me(profile).await?;
        let db = self.host.store();
        let Some(mut s) = store::session(db, me.pid, to.as_str(), v, device).await? else {
            return Ok(());
        };
        let mut km = [0u8; 32];
        perch_codec::ids::fill(&mut km).map_err(|e| HostError::Internal(e.to_string()))?;
        let e = s.encrypt(&me.identity, &km);
        store::save_session(db, me.pid, to.as_str(), device, &s).await?;
        let mut iv = [0u8; 12];
        perch_codec::ids::fill(&mut iv).map_err(|e| HostError::Internal(e.to_string()))?;
        let enc = wire::Encrypted {
            version: v,
            sid: me.device,
            keys: vec![wire::Key {
                jid: Some(to.to_string()),
                rid: device,
                kex: e.key_exchange,
                data: e.bytes,
            }],
            iv: if v == Version::V03 {
                iv.to_vec()
            } else {
                Vec::new()
            },
            payload: None,
        };
        let mut m = Message::new_with_type(MessageType::Chat, Some(Jid::from(to.clone())));
        m.id = Some(Id(perch_codec::ids::random_hex(12)));
        m.payloads.push(enc.element());
        m.payloads.push(wire::store_hint());
        tracing::debug!(%profile, %to, device, "answering a key exchange with an empty message");
        self.host.send(profile, m.into()).await
    }
}

/// The plaintext of the payload with the key material `km`.
pub fn open_payload(enc: &wire::Encrypted, km: &[u8], sender: &BareJid) -> Decrypted {
    let Some(p) = &enc.payload else {
        return Decrypted::Empty;
    };
    match enc.version {
        Version::V03 => match payload::decrypt_v03(km, &enc.iv, p) {
            Ok(text) => match String::from_utf8(text) {
                Ok(t) => Decrypted::Content {
                    body: Some(t),
                    elements: Vec::new(),
                },
                Err(_) => Decrypted::Failed("the text is not UTF-8".into()),
            },
            Err(e) => Decrypted::Failed(reason(&e)),
        },
        Version::V2 => {
            let env = match payload::decrypt_v2(km, p) {
                Ok(env) => env,
                Err(e) => return Decrypted::Failed(reason(&e)),
            };
            match wire::read_envelope(&env) {
                Ok(e)
                    if e.from
                        .as_deref()
                        .is_some_and(|f| f.split('/').next() != Some(sender.as_str())) =>
                {
                    Decrypted::Failed("the envelope names another sender".into())
                }
                Ok(e) if e.body.is_none() && e.elements.is_empty() => Decrypted::Empty,
                Ok(e) => Decrypted::Content {
                    body: e.body,
                    elements: e.elements,
                },
                Err(why) => Decrypted::Failed(why),
            }
        }
    }
}
