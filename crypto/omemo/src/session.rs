//! The API the XMPP plugin uses: an identity, a device's prekeys per version, and a
//! session per peer device.
//!
//! Why this shape: the plugin moves byte strings between stanzas and its store, and
//! should not need to know X3DH or the ratchet. So a [`Session`] is opened from a
//! peer's [`Bundle`] ([`Session::initiate`]) or from a key exchange it received
//! ([`Session::respond`]), then encrypts and decrypts key material; everything is
//! serializable (serde JSON) to be kept in SQLite. Until the peer has answered, the
//! initiator wraps every message in the key exchange (the peer may have missed the
//! first), as the reference does; the first message decrypted from the peer stops
//! that.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::hexser;
use crate::message;
use crate::proto::KeyExchange;
use crate::ratchet::Ratchet;
use crate::version::{V03_MESSAGE_VERSION, Version};
use crate::x3dh::{self, Bundle, decode_public, encode_public};
use crate::xeddsa::{self, Priv, priv_to_curve_pub, random_32};
use crate::{Error, Result};

/// A device's identity key, kept as the Ed25519 seed it derives from (the
/// reference's form too). Its `Debug` never shows the seed; dropping it wipes it
/// (as the ratchet's and prekeys' secrets are wiped).
#[derive(Clone, Serialize, Deserialize)]
pub struct Identity {
    #[serde(with = "hexser::arr")]
    seed: [u8; 32],
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", fingerprint(&self.curve_public()))
    }
}

impl Identity {
    /// A new random identity.
    pub fn generate() -> Self {
        Identity { seed: random_32() }
    }

    /// The identity of a stored seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Identity { seed }
    }

    /// The seed, for sealed storage.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The Curve25519/Ed25519 private key.
    pub fn private_key(&self) -> Priv {
        xeddsa::seed_to_priv(&self.seed)
    }

    /// The identity key in the form `version` publishes (0.3: Curve25519, 2:
    /// Ed25519).
    pub fn public_key(&self, version: Version) -> [u8; 32] {
        x3dh::own_identity(version, &self.private_key())
    }

    /// The Curve25519 public key, whose hex is the fingerprint.
    pub fn curve_public(&self) -> [u8; 32] {
        priv_to_curve_pub(&self.private_key())
    }

    /// The fingerprint, as [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.curve_public())
    }
}

/// The fingerprint of an identity key in its Curve25519 form: 64 lowercase hex
/// digits, what Conversations, Dino, Gajim and python-omemo show (in both versions).
pub fn fingerprint(curve: &[u8; 32]) -> String {
    hexser::encode(curve)
}

/// The fingerprint in eight groups of eight hex digits, separated by spaces, as
/// clients display it.
pub fn fingerprint_groups(curve: &[u8; 32]) -> String {
    let hex = fingerprint(curve);
    hex.as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Clone, Serialize, Deserialize)]
struct SignedPreKey {
    id: u32,
    #[serde(with = "hexser::arr")]
    private: [u8; 32],
    #[serde(with = "hexser::arr")]
    signature: [u8; 64],
    created: u64,
}

impl Drop for SignedPreKey {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

impl SignedPreKey {
    fn generate(version: Version, identity: &Identity, id: u32) -> Self {
        let private = random_32();
        let created = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        SignedPreKey {
            id,
            private,
            signature: x3dh::sign_prekey(
                version,
                &identity.private_key(),
                &priv_to_curve_pub(&private),
            ),
            created,
        }
    }
}

/// One version's prekeys of our device: the signed prekey (and the previous one,
/// kept one rotation longer for key exchanges in flight) and the one-time prekeys.
/// Its `Debug` shows ids only.
#[derive(Clone, Serialize, Deserialize)]
pub struct DeviceKeys {
    version: Version,
    signed_prekey: SignedPreKey,
    old_signed_prekey: Option<SignedPreKey>,
    #[serde(with = "prekey_map")]
    prekeys: BTreeMap<u32, [u8; 32]>,
    next_prekey_id: u32,
}

impl Drop for DeviceKeys {
    fn drop(&mut self) {
        self.prekeys.values_mut().for_each(Zeroize::zeroize);
    }
}

impl std::fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("version", &self.version)
            .field("signed_prekey_id", &self.signed_prekey.id)
            .field("prekeys", &self.prekeys.len())
            .finish()
    }
}

mod prekey_map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeMap};

    pub(super) fn serialize<S: Serializer>(
        m: &BTreeMap<u32, [u8; 32]>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(m.len()))?;
        for (id, k) in m {
            map.serialize_entry(&id.to_string(), &crate::hexser::encode(k))?;
        }
        map.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u32, [u8; 32]>, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        raw.into_iter()
            .map(|(id, k)| {
                let id = id.parse().map_err(serde::de::Error::custom)?;
                let k = crate::hexser::decode(&k)
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .ok_or_else(|| serde::de::Error::custom("prekey not 32 bytes of hex"))?;
                Ok((id, k))
            })
            .collect()
    }
}

impl DeviceKeys {
    /// A signed prekey (id 1) and `prekeys` one-time prekeys (ids from 1).
    pub fn generate(version: Version, identity: &Identity, prekeys: u32) -> Self {
        let mut keys = DeviceKeys {
            version,
            signed_prekey: SignedPreKey::generate(version, identity, 1),
            old_signed_prekey: None,
            prekeys: BTreeMap::new(),
            next_prekey_id: 1,
        };
        keys.refill_prekeys(prekeys as usize);
        keys
    }

    /// The version these keys are for.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The bundle to publish.
    pub fn bundle(&self, identity: &Identity) -> Bundle {
        Bundle {
            version: self.version,
            identity_key: identity.public_key(self.version),
            signed_prekey_id: self.signed_prekey.id,
            signed_prekey: priv_to_curve_pub(&self.signed_prekey.private),
            signature: self.signed_prekey.signature,
            prekeys: self
                .prekeys
                .iter()
                .map(|(id, k)| (*id, priv_to_curve_pub(k)))
                .collect(),
        }
    }

    /// A new signed prekey; the current one is kept as the old one.
    pub fn rotate_signed_prekey(&mut self, identity: &Identity) {
        let id = self.signed_prekey.id.wrapping_add(1).max(1);
        let new = SignedPreKey::generate(self.version, identity, id);
        self.old_signed_prekey = Some(std::mem::replace(&mut self.signed_prekey, new));
    }

    /// When the signed prekey was made (seconds since the Unix epoch).
    pub fn signed_prekey_created(&self) -> u64 {
        self.signed_prekey.created
    }

    /// Forget a one-time prekey (once a peer used it); true if it was there.
    pub fn remove_prekey(&mut self, id: u32) -> bool {
        self.prekeys.remove(&id).is_some()
    }

    /// The number of one-time prekeys left.
    pub fn prekey_count(&self) -> usize {
        self.prekeys.len()
    }

    /// Make new one-time prekeys until there are `target`.
    pub fn refill_prekeys(&mut self, target: usize) {
        while self.prekeys.len() < target {
            let id = self.next_prekey_id;
            self.next_prekey_id = id.wrapping_add(1).max(1);
            self.prekeys.insert(id, random_32());
        }
    }

    fn signed_prekey(&self, id: u32) -> Option<&SignedPreKey> {
        std::iter::once(&self.signed_prekey)
            .chain(self.old_signed_prekey.as_ref())
            .find(|k| k.id == id)
    }
}

/// What identifies a key exchange: the same one received twice builds the same
/// session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct KexId {
    pk_id: u32,
    spk_id: u32,
    #[serde(with = "hexser::arr")]
    ephemeral: [u8; 32],
}

/// An encrypted key element's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    /// The bytes of the `<key>` element.
    pub bytes: Vec<u8>,
    /// Whether they are a key exchange (`prekey="true"` in 0.3, `kex="true"` in 2).
    pub key_exchange: bool,
}

/// A session opened from a key exchange (its `Debug` leaves the key material out).
pub struct Responded {
    /// The new session.
    pub session: Session,
    /// The key material of the first message.
    pub key_material: Vec<u8>,
    /// The one-time prekey the peer used: replace it.
    pub prekey_id: u32,
}

impl std::fmt::Debug for Responded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responded")
            .field("session", &self.session)
            .field("prekey_id", &self.prekey_id)
            .finish_non_exhaustive()
    }
}

/// A session with one device of a peer.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    version: Version,
    #[serde(with = "hexser::arr")]
    peer_identity: [u8; 32],
    #[serde(with = "hexser::vec")]
    associated_data: Vec<u8>,
    initiator: bool,
    kex: KexId,
    /// Until the peer answers, the initiator repeats the key exchange.
    confirmed: bool,
    ratchet: Ratchet,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("version", &self.version)
            .field("peer", &fingerprint(&self.peer_curve()))
            .field("initiator", &self.initiator)
            .field("confirmed", &self.confirmed)
            .finish()
    }
}

fn parse_kex(version: Version, bytes: &[u8]) -> Result<KeyExchange> {
    match version {
        Version::V03 => match bytes.split_first() {
            Some((&V03_MESSAGE_VERSION, rest)) => KeyExchange::decode(version, rest),
            Some((&other, _)) => Err(Error::BadVersion(other)),
            None => Err(Error::Protobuf("empty key exchange")),
        },
        Version::V2 => KeyExchange::decode(version, bytes),
    }
}

impl Session {
    /// Open a session with the device of `bundle` (whose signature is checked), and
    /// encrypt the first key material: the returned bytes are a key exchange.
    pub fn initiate(
        identity: &Identity,
        bundle: &Bundle,
        key_material: &[u8],
    ) -> Result<(Session, Encrypted)> {
        bundle.verify()?;
        if bundle.prekeys.is_empty() {
            return Err(Error::NoPreKey);
        }
        let r = random_32();
        let pick = usize::from(u16::from_le_bytes([r[0], r[1]])) % bundle.prekeys.len();
        let (pk_id, prekey) = bundle.prekeys[pick];
        let ephemeral = random_32();
        let agreement = x3dh::agree_active(&identity.private_key(), bundle, &ephemeral, &prekey)?;
        let mut session = Session {
            version: bundle.version,
            peer_identity: bundle.identity_key,
            associated_data: agreement.associated_data,
            initiator: true,
            kex: KexId {
                pk_id,
                spk_id: bundle.signed_prekey_id,
                ephemeral: priv_to_curve_pub(&ephemeral),
            },
            confirmed: false,
            ratchet: Ratchet::active(
                bundle.version,
                agreement.shared_secret,
                bundle.signed_prekey,
            )?,
        };
        let first = session.encrypt(identity, key_material);
        Ok((session, first))
    }

    /// Open a session from a key exchange received, decrypting its key material.
    /// The prekey it used is named in the result; the caller removes it from
    /// `keys` once the session is stored.
    pub fn respond(identity: &Identity, keys: &DeviceKeys, bytes: &[u8]) -> Result<Responded> {
        let version = keys.version;
        let kex = parse_kex(version, bytes)?;
        let spk = keys
            .signed_prekey(kex.spk_id)
            .ok_or(Error::UnknownPreKey("signed prekey"))?;
        let prekey = keys
            .prekeys
            .get(&kex.pk_id)
            .ok_or(Error::UnknownPreKey("prekey"))?;
        let peer_identity = decode_public(version, &kex.ik)?;
        let ephemeral = decode_public(version, &kex.ek)?;
        let agreement = x3dh::agree_passive(
            version,
            &identity.private_key(),
            &spk.private,
            prekey,
            &peer_identity,
            &ephemeral,
        )?;
        let header = message::header(version, &kex.message)?;
        let ratchet = Ratchet::passive(
            version,
            agreement.shared_secret,
            spk.private,
            header.ratchet_pub,
        )?;
        let mut session = Session {
            version,
            peer_identity,
            associated_data: agreement.associated_data,
            initiator: false,
            kex: KexId {
                pk_id: kex.pk_id,
                spk_id: kex.spk_id,
                ephemeral,
            },
            confirmed: true,
            ratchet,
        };
        let key_material = session.decrypt_message(&kex.message)?;
        Ok(Responded {
            session,
            key_material,
            prekey_id: kex.pk_id,
        })
    }

    /// The version of the session.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The peer's identity key, in the version's form.
    pub fn peer_identity(&self) -> [u8; 32] {
        self.peer_identity
    }

    /// The peer's identity key in its Curve25519 form (0 if it can't be converted,
    /// which a session opened with it rules out).
    pub fn peer_curve(&self) -> [u8; 32] {
        x3dh::identity_to_curve(self.version, &self.peer_identity).unwrap_or([0; 32])
    }

    /// Whether we opened the session and the peer has not answered yet.
    pub fn awaiting_answer(&self) -> bool {
        !self.confirmed
    }

    /// The associated data for a message sent (`sending`) or received: 0.3 puts
    /// the sender's key first, 2 always the initiator's.
    fn associated_data(&self, sending: bool) -> Vec<u8> {
        let len = self.version.identity_encoding_len();
        let swap = self.version == Version::V03 && (sending != self.initiator);
        if swap {
            let (a, b) = self.associated_data.split_at(len);
            [b, a].concat()
        } else {
            self.associated_data.clone()
        }
    }

    /// Encrypt key material for the peer device.
    pub fn encrypt(&mut self, identity: &Identity, key_material: &[u8]) -> Encrypted {
        let (key, header) = self.ratchet.next_encryption_key();
        let sealed = message::seal(
            self.version,
            &key,
            &self.associated_data(true),
            &header,
            key_material,
        );
        if self.confirmed {
            return Encrypted {
                bytes: sealed,
                key_exchange: false,
            };
        }
        let kex = KeyExchange {
            pk_id: self.kex.pk_id,
            spk_id: self.kex.spk_id,
            ik: encode_public(self.version, &identity.public_key(self.version)),
            ek: encode_public(self.version, &self.kex.ephemeral),
            message: sealed,
            registration_id: None,
        };
        let mut bytes = Vec::new();
        if self.version == Version::V03 {
            bytes.push(V03_MESSAGE_VERSION);
        }
        bytes.extend(kex.encode(self.version));
        Encrypted {
            bytes,
            key_exchange: true,
        }
    }

    /// Decrypt the key material of a message from the peer device. A key exchange
    /// is accepted if it is the one this session was opened from (a repeat);
    /// another one is [`Error::ForeignKeyExchange`]: open a new session with
    /// [`Session::respond`].
    pub fn decrypt(&mut self, bytes: &[u8], key_exchange: bool) -> Result<Vec<u8>> {
        if !key_exchange {
            return self.decrypt_message(bytes);
        }
        let kex = parse_kex(self.version, bytes)?;
        let same = !self.initiator
            && kex.pk_id == self.kex.pk_id
            && kex.spk_id == self.kex.spk_id
            && decode_public(self.version, &kex.ek)? == self.kex.ephemeral
            && decode_public(self.version, &kex.ik)? == self.peer_identity;
        if !same {
            return Err(Error::ForeignKeyExchange);
        }
        self.decrypt_message(&kex.message)
    }

    fn decrypt_message(&mut self, bytes: &[u8]) -> Result<Vec<u8>> {
        let version = self.version;
        let header = message::header(version, bytes)?;
        let ad = self.associated_data(false);
        let out = self
            .ratchet
            .decrypt(&header, |key| message::open(version, key, &ad, bytes))?;
        self.confirmed = true;
        Ok(out)
    }

    /// The state as JSON, for storage.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a session serializes")
    }

    /// A session from its stored JSON.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| Error::State(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(version: Version) -> (Identity, Identity, Session, Session) {
        let (alice, bob) = (Identity::generate(), Identity::generate());
        let mut bob_keys = DeviceKeys::generate(version, &bob, 5);
        let bundle = bob_keys.bundle(&bob);
        let (a, first) = Session::initiate(&alice, &bundle, b"first key").unwrap();
        assert!(first.key_exchange);
        let r = Session::respond(&bob, &bob_keys, &first.bytes).unwrap();
        assert_eq!(r.key_material, b"first key");
        for dbg in [format!("{r:?}"), format!("{bob_keys:?}"), format!("{a:?}")] {
            assert!(!dbg.contains('[') && !dbg.contains("first key"), "{dbg}");
        }
        assert!(bob_keys.remove_prekey(r.prekey_id));
        (alice, bob, a, r.session)
    }

    #[test]
    fn a_whole_conversation_in_both_versions() {
        for version in [Version::V03, Version::V2] {
            let (alice, bob, mut a, mut b) = open(version);
            let again = a.encrypt(&alice, b"second");
            assert!(again.key_exchange, "repeated until the peer answers");
            assert_eq!(b.decrypt(&again.bytes, true).unwrap(), b"second");
            let reply = b.encrypt(&bob, b"reply");
            assert!(!reply.key_exchange);
            assert_eq!(a.decrypt(&reply.bytes, false).unwrap(), b"reply");
            let third = a.encrypt(&alice, b"third");
            assert!(!third.key_exchange);
            let mut a2 = Session::from_json(&a.to_json()).unwrap();
            let mut b2 = Session::from_json(&b.to_json()).unwrap();
            assert_eq!(b2.decrypt(&third.bytes, false).unwrap(), b"third");
            let m = a2.encrypt(&alice, b"x");
            assert_eq!(b2.decrypt(&m.bytes, false).unwrap(), b"x");
            assert_eq!(b.peer_curve(), alice.curve_public());
            assert_eq!(a.peer_curve(), bob.curve_public());
        }
    }

    #[test]
    fn fingerprints_are_grouped_hex_of_the_curve_key() {
        let id = Identity::generate();
        let g = fingerprint_groups(&id.curve_public());
        assert_eq!(g.len(), 64 + 7);
        assert_eq!(g.replace(' ', ""), id.fingerprint());
        assert!(!format!("{id:?}").contains(&hexser::encode(id.seed())));
    }

    #[test]
    fn device_keys_round_trip_and_rotate() {
        let id = Identity::generate();
        let mut keys = DeviceKeys::generate(Version::V2, &id, 3);
        let json = serde_json::to_string(&keys).unwrap();
        let back: DeviceKeys = serde_json::from_str(&json).unwrap();
        assert_eq!(back.bundle(&id), keys.bundle(&id));
        keys.rotate_signed_prekey(&id);
        keys.bundle(&id).verify().unwrap();
        assert_eq!(keys.bundle(&id).signed_prekey_id, 2);
        assert!(keys.signed_prekey(1).is_some());
    }
}
