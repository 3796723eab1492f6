//! The symmetric encryption of what a message protects; its key (with the
//! authentication tag) is what the ratchet carries to each device.
//!
//! - 0.3 encrypts the `<body>` text with AES-128-GCM under a random 16-byte key and a
//!   12-byte IV; the key element carries `key || tag` (32 bytes). Older clients
//!   sent a 16-byte key with the tag at the end of the payload, and 16-byte IVs:
//!   both are read.
//! - 2 encrypts the SCE envelope (XEP-0420) under keys derived with HKDF ("OMEMO
//!   Payload") from a random 32-byte key: AES-256-CBC, and HMAC-SHA-256 truncated to
//!   16 bytes; the key element carries `key || mac` (48 bytes).

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, AesGcm};
use subtle::ConstantTimeEq;

use crate::kdf::{hmac, payload_keys_v2};
use crate::message::{cbc_decrypt, cbc_encrypt};
use crate::xeddsa::random_32;
use crate::{Error, Result};

/// A payload encrypted for 0.3 (its `Debug` leaves the key material out).
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadV03 {
    /// The AES-GCM ciphertext, without the tag.
    pub ciphertext: Vec<u8>,
    /// The 12-byte IV (the `<iv>` element).
    pub iv: Vec<u8>,
    /// `key || tag`, 32 bytes, for the ratchet.
    pub key_material: Vec<u8>,
}

impl std::fmt::Debug for PayloadV03 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadV03")
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PayloadV2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadV2")
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Encrypt a 0.3 body.
pub fn encrypt_v03(plaintext: &[u8]) -> PayloadV03 {
    let key = random_32();
    let iv = random_32();
    encrypt_v03_with(
        &key[..16].try_into().expect("16"),
        &iv[..12].try_into().expect("12"),
        plaintext,
    )
}

/// [`encrypt_v03`] with a given key and IV (for tests).
pub fn encrypt_v03_with(key: &[u8; 16], iv: &[u8; 12], plaintext: &[u8]) -> PayloadV03 {
    let mut sealed = Aes128Gcm::new(key.into())
        .encrypt(iv.into(), plaintext)
        .expect("AES-GCM encrypts any length we send");
    let tag = sealed.split_off(sealed.len() - 16);
    let mut key_material = key.to_vec();
    key_material.extend_from_slice(&tag);
    PayloadV03 {
        ciphertext: sealed,
        iv: iv.to_vec(),
        key_material,
    }
}

/// Decrypt a 0.3 body from its key material (16 or 32 bytes), IV (12 or 16) and
/// ciphertext.
pub fn decrypt_v03(key_material: &[u8], iv: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    if key_material.len() < 16 {
        return Err(Error::BadKey("0.3 key material shorter than 16 bytes"));
    }
    let (key, tag) = key_material.split_at(16);
    let mut sealed = ciphertext.to_vec();
    sealed.extend_from_slice(tag);
    let msg = Payload {
        msg: &sealed,
        aad: &[],
    };
    let key: &[u8; 16] = key.try_into().expect("16");
    match iv.len() {
        12 => Aes128Gcm::new(key.into()).decrypt(iv.into(), msg),
        16 => AesGcm::<aes::Aes128, U16>::new(key.into()).decrypt(iv.into(), msg),
        _ => return Err(Error::BadKey("0.3 IV neither 12 nor 16 bytes")),
    }
    .map_err(|_| Error::Decrypt)
}

/// A payload encrypted for 2 (its `Debug` leaves the key material out).
#[derive(Clone, PartialEq, Eq)]
pub struct PayloadV2 {
    /// The `<payload>` bytes.
    pub ciphertext: Vec<u8>,
    /// `key || mac`, 48 bytes, for the ratchet.
    pub key_material: Vec<u8>,
}

/// Encrypt an OMEMO 2 SCE envelope.
pub fn encrypt_v2(plaintext: &[u8]) -> PayloadV2 {
    encrypt_v2_with(&random_32(), plaintext)
}

/// [`encrypt_v2`] with a given key (for tests).
pub fn encrypt_v2_with(key: &[u8; 32], plaintext: &[u8]) -> PayloadV2 {
    let (enc, auth, iv) = payload_keys_v2(key);
    let ciphertext = cbc_encrypt(&enc, &iv, plaintext);
    let mac = hmac(&auth, &[&ciphertext]);
    let mut key_material = key.to_vec();
    key_material.extend_from_slice(&mac[..16]);
    PayloadV2 {
        ciphertext,
        key_material,
    }
}

/// Decrypt an OMEMO 2 payload with its 48-byte key material.
pub fn decrypt_v2(key_material: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>> {
    if key_material.len() != 48 {
        return Err(Error::BadKey("OMEMO 2 key material is not 48 bytes"));
    }
    let key: &[u8; 32] = key_material[..32].try_into().expect("32");
    let (enc, auth, iv) = payload_keys_v2(key);
    let mac = hmac(&auth, &[ciphertext]);
    if !bool::from(mac[..16].ct_eq(&key_material[32..])) {
        return Err(Error::BadMac);
    }
    cbc_decrypt(&enc, &iv, ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v03_round_trip_and_legacy_forms() {
        let p = encrypt_v03(b"hello");
        assert_eq!(p.key_material.len(), 32);
        assert_eq!(p.iv.len(), 12);
        assert_eq!(
            decrypt_v03(&p.key_material, &p.iv, &p.ciphertext).unwrap(),
            b"hello"
        );
        // 16-byte key, tag after the ciphertext
        let mut legacy = p.ciphertext.clone();
        legacy.extend_from_slice(&p.key_material[16..]);
        assert_eq!(
            decrypt_v03(&p.key_material[..16], &p.iv, &legacy).unwrap(),
            b"hello"
        );
        let mut bad = p.key_material.clone();
        bad[20] ^= 1;
        assert_eq!(decrypt_v03(&bad, &p.iv, &p.ciphertext), Err(Error::Decrypt));
    }

    #[test]
    fn v2_round_trip_and_mac() {
        let p = encrypt_v2(b"<envelope/>");
        assert_eq!(p.key_material.len(), 48);
        assert_eq!(
            decrypt_v2(&p.key_material, &p.ciphertext).unwrap(),
            b"<envelope/>"
        );
        let mut bad = p.ciphertext.clone();
        bad[0] ^= 1;
        assert_eq!(decrypt_v2(&p.key_material, &bad), Err(Error::BadMac));
    }
}
