//! The two OMEMO versions and every constant that tells them apart. The values are
//! those of the reference implementation (`oldmemo`, `twomemo`); the table in
//! `doc/omemo.rst` lists them.

use serde::{Deserialize, Serialize};

/// An OMEMO version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Version {
    /// OMEMO 0.3, `eu.siacs.conversations.axolotl`: what Conversations, Dino, Gajim
    /// and Monal speak. Signal's 2016 wire format: Curve25519 identity keys with a
    /// `0x05` type byte, AES-128-GCM payloads.
    #[serde(rename = "0.3")]
    V03,
    /// OMEMO 2, `urn:xmpp:omemo:2`: Ed25519 identity keys, its own protobuf, and an
    /// AES-256-CBC + HMAC payload carrying an SCE envelope (XEP-0420).
    #[serde(rename = "2")]
    V2,
}

impl Version {
    /// The XML namespace of the version.
    pub fn namespace(self) -> &'static str {
        match self {
            Version::V03 => "eu.siacs.conversations.axolotl",
            Version::V2 => "urn:xmpp:omemo:2",
        }
    }

    /// The HKDF info of the X3DH shared secret.
    pub fn x3dh_info(self) -> &'static [u8] {
        match self {
            Version::V03 => b"WhisperText",
            Version::V2 => b"OMEMO X3DH",
        }
    }

    /// The HKDF info of the root chain.
    pub fn root_info(self) -> &'static [u8] {
        match self {
            Version::V03 => b"WhisperRatchet",
            Version::V2 => b"OMEMO Root Chain",
        }
    }

    /// The HKDF info that turns a message key into AES key, HMAC key and IV.
    pub fn message_key_info(self) -> &'static [u8] {
        match self {
            Version::V03 => b"WhisperMessageKeys",
            Version::V2 => b"OMEMO Message Key Material",
        }
    }

    /// How many bytes of the HMAC-SHA-256 a message carries.
    pub fn mac_len(self) -> usize {
        match self {
            Version::V03 => 8,
            Version::V2 => 16,
        }
    }

    /// The length of one encoded identity key in the associated data.
    pub fn identity_encoding_len(self) -> usize {
        match self {
            Version::V03 => 33,
            Version::V2 => 32,
        }
    }
}

/// 0.3's type byte in front of every Curve25519 public key on the wire
/// (`DJB_TYPE` in libsignal).
pub const KEY_TYPE_DJB: u8 = 0x05;

/// 0.3's version byte in front of SignalMessage and PreKeySignalMessage:
/// `(3 << 4) | 3`, message version 3, current version 3.
pub const V03_MESSAGE_VERSION: u8 = 0x33;

/// The constant fed to the message chain's HMACs: byte `0x02` gives the next chain
/// key, byte `0x01` the message key (both versions).
pub const MESSAGE_CHAIN_CONSTANT: [u8; 2] = [0x02, 0x01];

/// The HKDF info of OMEMO 2's payload key.
pub const V2_PAYLOAD_INFO: &[u8] = b"OMEMO Payload";

/// Skipped message keys derived for one message at most (the reference's default).
pub const MAX_SKIP_PER_MESSAGE: u32 = 1000;

/// Skipped message keys kept per session at most; the oldest go first.
pub const MAX_SKIPPED_KEYS: usize = 1000;
