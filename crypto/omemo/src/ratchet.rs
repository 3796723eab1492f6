//! The Double Ratchet, as the reference (`doubleratchet`) runs it.
//!
//! Why these choices: the responder starts its ratchet from the first message's
//! header (its signed prekey is the first ratchet key), so both sides have a sending
//! chain from the start; a message's key is only consumed once its MAC checked, so a
//! forged message can't move the ratchet; skipped-message keys are bounded twice, as
//! in the reference: at most [`MAX_SKIP_PER_MESSAGE`] derived for one message (a
//! larger gap in the *previous* chain is not derived, a larger gap in the current one
//! refuses the message) and at most [`MAX_SKIPPED_KEYS`] kept, the oldest dropped.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use crate::hexser;
use crate::kdf::{chain_step, root_step};
use crate::version::{MAX_SKIP_PER_MESSAGE, MAX_SKIPPED_KEYS, Version};
use crate::xeddsa::{self, Priv};
use crate::{Error, Result};

/// The header a message carries to keep both ratchets in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The sender's current ratchet public key.
    pub ratchet_pub: [u8; 32],
    /// The length of the sender's previous sending chain.
    pub pn: u32,
    /// The message's number in the current sending chain.
    pub n: u32,
}

/// A KDF chain: its key and how many steps it took.
#[derive(Clone, Serialize, Deserialize)]
struct Chain {
    #[serde(with = "hexser::arr")]
    key: [u8; 32],
    length: u32,
}

impl Chain {
    fn new(key: [u8; 32]) -> Self {
        Chain { key, length: 0 }
    }

    fn step(&mut self) -> [u8; 32] {
        let (next, message_key) = chain_step(&self.key);
        self.key = next;
        self.length += 1;
        message_key
    }
}

/// A message key kept for a message that has not arrived yet.
#[derive(Clone, Serialize, Deserialize)]
struct Skipped {
    #[serde(with = "hexser::arr")]
    ratchet_pub: [u8; 32],
    n: u32,
    #[serde(with = "hexser::arr")]
    key: [u8; 32],
}

impl Drop for Chain {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl Drop for Skipped {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// The Diffie-Hellman part: small, copied for each decryption attempt.
#[derive(Clone, Serialize, Deserialize)]
struct DhState {
    #[serde(with = "hexser::arr")]
    own_priv: [u8; 32],
    #[serde(with = "hexser::arr")]
    other_pub: [u8; 32],
    #[serde(with = "hexser::arr")]
    root_key: [u8; 32],
    sending: Chain,
    receiving: Option<Chain>,
    previous_sending_length: u32,
}

/// One side's Double Ratchet state, serializable for storage. Its `Debug` shows
/// chain lengths only, never a key.
#[derive(Clone, Serialize, Deserialize)]
pub struct Ratchet {
    version: Version,
    dh: DhState,
    skipped: VecDeque<Skipped>,
}

impl std::fmt::Debug for Ratchet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ratchet")
            .field("version", &self.version)
            .field("sending", &self.dh.sending.length)
            .field("receiving", &self.dh.receiving.as_ref().map(|c| c.length))
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

impl Drop for DhState {
    fn drop(&mut self) {
        self.own_priv.zeroize();
        self.root_key.zeroize();
    }
}

impl DhState {
    fn root_step(&mut self, version: Version) -> Result<[u8; 32]> {
        let dh = xeddsa::x25519(&self.own_priv, &self.other_pub)?;
        let (root, chain) = root_step(version, &self.root_key, &dh);
        self.root_key = root;
        Ok(chain)
    }

    fn new_sending_chain(&mut self, version: Version, own_priv: Priv) -> Result<()> {
        self.own_priv = own_priv;
        let chain = self.root_step(version)?;
        self.previous_sending_length = self.sending.length;
        self.sending = Chain::new(chain);
        Ok(())
    }

    /// Step the receiving chain up to `until`, keeping the keys of the messages
    /// passed over.
    fn skip_to(&mut self, until: u32, out: &mut Vec<Skipped>) {
        if let Some(chain) = self.receiving.as_mut() {
            while chain.length < until {
                let n = chain.length;
                out.push(Skipped {
                    ratchet_pub: self.other_pub,
                    n,
                    key: chain.step(),
                });
            }
        }
    }
}

impl Ratchet {
    /// The initiator's ratchet: its first sending chain comes from a fresh key and
    /// the responder's signed prekey.
    pub fn active(version: Version, shared_secret: [u8; 32], their_spk: [u8; 32]) -> Result<Self> {
        Self::active_with(version, shared_secret, their_spk, xeddsa::random_32())
    }

    /// [`Ratchet::active`] with a given first ratchet key (for tests).
    pub fn active_with(
        version: Version,
        shared_secret: [u8; 32],
        their_spk: [u8; 32],
        own_priv: Priv,
    ) -> Result<Self> {
        let mut dh = DhState {
            own_priv,
            other_pub: their_spk,
            root_key: shared_secret,
            sending: Chain::new([0; 32]),
            receiving: None,
            previous_sending_length: 0,
        };
        dh.sending = Chain::new(dh.root_step(version)?);
        Ok(Ratchet {
            version,
            dh,
            skipped: VecDeque::new(),
        })
    }

    /// The responder's ratchet, from its signed prekey and the ratchet key in the
    /// initiator's first message.
    pub fn passive(
        version: Version,
        shared_secret: [u8; 32],
        own_spk: Priv,
        their_ratchet: [u8; 32],
    ) -> Result<Self> {
        Self::passive_with(
            version,
            shared_secret,
            own_spk,
            their_ratchet,
            xeddsa::random_32(),
        )
    }

    /// [`Ratchet::passive`] with a given next ratchet key (for tests).
    pub fn passive_with(
        version: Version,
        shared_secret: [u8; 32],
        own_spk: Priv,
        their_ratchet: [u8; 32],
        next_priv: Priv,
    ) -> Result<Self> {
        let mut dh = DhState {
            own_priv: own_spk,
            other_pub: their_ratchet,
            root_key: shared_secret,
            sending: Chain::new([0; 32]),
            receiving: None,
            previous_sending_length: 0,
        };
        dh.receiving = Some(Chain::new(dh.root_step(version)?));
        dh.new_sending_chain(version, next_priv)?;
        Ok(Ratchet {
            version,
            dh,
            skipped: VecDeque::new(),
        })
    }

    /// The version whose KDFs this ratchet uses.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The next message key to encrypt with, and the header to send with it.
    pub fn next_encryption_key(&mut self) -> ([u8; 32], Header) {
        let header = Header {
            ratchet_pub: xeddsa::priv_to_curve_pub(&self.dh.own_priv),
            pn: self.dh.previous_sending_length,
            n: self.dh.sending.length,
        };
        (self.dh.sending.step(), header)
    }

    /// The number of skipped-message keys kept.
    pub fn skipped_len(&self) -> usize {
        self.skipped.len()
    }

    /// Decrypt with the key `header` asks for: `open` gets the message key and
    /// returns the plaintext or an error; the state changes only if it succeeds.
    pub fn decrypt<T>(
        &mut self,
        header: &Header,
        open: impl FnOnce(&[u8; 32]) -> Result<T>,
    ) -> Result<T> {
        if let Some(i) = self
            .skipped
            .iter()
            .position(|s| s.ratchet_pub == header.ratchet_pub && s.n == header.n)
        {
            let out = open(&self.skipped[i].key)?;
            self.skipped.remove(i);
            return Ok(out);
        }
        let mut dh = self.dh.clone();
        let mut new_skipped = Vec::new();
        let key = self.derive(&mut dh, header, &mut new_skipped)?;
        let out = open(&key)?;
        self.dh = dh;
        self.skipped.extend(new_skipped);
        while self.skipped.len() > MAX_SKIPPED_KEYS {
            self.skipped.pop_front();
        }
        Ok(out)
    }

    fn derive(
        &self,
        dh: &mut DhState,
        header: &Header,
        skipped: &mut Vec<Skipped>,
    ) -> Result<[u8; 32]> {
        if header.ratchet_pub != dh.other_pub {
            if let Some(len) = dh.receiving.as_ref().map(|c| c.length) {
                // The reference derives none of them when there are too many,
                // and goes on with the message.
                if header.pn.saturating_sub(len) <= MAX_SKIP_PER_MESSAGE {
                    dh.skip_to(header.pn, skipped);
                }
            }
            dh.other_pub = header.ratchet_pub;
            dh.receiving = Some(Chain::new(dh.root_step(self.version)?));
            dh.new_sending_chain(self.version, xeddsa::random_32())?;
        }
        let len = dh.receiving.as_ref().map_or(0, |c| c.length);
        let gap = header.n.saturating_sub(len);
        if gap > MAX_SKIP_PER_MESSAGE {
            return Err(Error::TooManySkipped(gap));
        }
        dh.skip_to(header.n, skipped);
        let chain = dh.receiving.as_mut().ok_or(Error::Duplicate)?;
        if header.n < chain.length {
            return Err(Error::Duplicate);
        }
        Ok(chain.step())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xeddsa::{priv_to_curve_pub, random_32};

    fn pair() -> (Ratchet, Ratchet, Vec<([u8; 32], Header)>) {
        let ss = random_32();
        let spk = random_32();
        let mut alice = Ratchet::active(Version::V2, ss, priv_to_curve_pub(&spk)).unwrap();
        let (k, h) = alice.next_encryption_key();
        let mut bob = Ratchet::passive(Version::V2, ss, spk, h.ratchet_pub).unwrap();
        assert_eq!(bob.decrypt(&h, |key| Ok(*key)).unwrap(), k);
        (alice, bob, Vec::new())
    }

    #[test]
    fn out_of_order_and_replies() {
        let (mut alice, mut bob, _) = pair();
        let sent: Vec<_> = (0..5).map(|_| alice.next_encryption_key()).collect();
        for i in [3usize, 0, 4, 1, 2] {
            let (k, h) = sent[i];
            assert_eq!(bob.decrypt(&h, |key| Ok(*key)).unwrap(), k);
        }
        assert_eq!(bob.skipped_len(), 0);
        let (k, h) = bob.next_encryption_key();
        assert_eq!(alice.decrypt(&h, |key| Ok(*key)).unwrap(), k);
        let (k, h) = sent[4];
        let _ = k;
        assert_eq!(bob.decrypt(&h, |key| Ok(*key)), Err(Error::Duplicate));
    }

    #[test]
    fn a_failed_open_changes_nothing() {
        let (mut alice, mut bob, _) = pair();
        let (_, h1) = alice.next_encryption_key();
        let (k2, h2) = alice.next_encryption_key();
        assert!(bob.decrypt(&h2, |_| Err::<(), _>(Error::BadMac)).is_err());
        assert_eq!(bob.skipped_len(), 0);
        assert_eq!(bob.decrypt(&h2, |key| Ok(*key)).unwrap(), k2);
        assert_eq!(bob.skipped_len(), 1);
        let _ = h1;
    }

    #[test]
    fn skipping_is_bounded() {
        let (mut alice, mut bob, _) = pair();
        for _ in 0..=MAX_SKIP_PER_MESSAGE {
            alice.next_encryption_key();
        }
        let (_, h) = alice.next_encryption_key();
        assert_eq!(
            bob.decrypt(&h, |key| Ok(*key)),
            Err(Error::TooManySkipped(MAX_SKIP_PER_MESSAGE + 1))
        );
    }

    #[test]
    fn debug_shows_no_key() {
        let (alice, _, _) = pair();
        let dbg = format!("{alice:?}");
        assert!(!dbg.contains('['), "{dbg}");
        assert!(!dbg.contains(&hexser::encode(&alice.dh.root_key)));
    }

    #[test]
    fn state_round_trips_through_json() {
        let (mut alice, bob, _) = pair();
        let json = serde_json::to_string(&bob).unwrap();
        let mut bob: Ratchet = serde_json::from_str(&json).unwrap();
        let (k, h) = alice.next_encryption_key();
        assert_eq!(bob.decrypt(&h, |key| Ok(*key)).unwrap(), k);
    }
}
