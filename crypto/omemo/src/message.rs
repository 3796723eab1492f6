//! A ratchet message key turned into the bytes of an encrypted key element, and
//! back.
//!
//! Why here and not in the ratchet: the MAC covers the encoded header, so the AEAD
//! depends on each version's wire format. Both versions derive AES-256-CBC key,
//! HMAC-SHA-256 key and IV from the message key with HKDF (their own info string),
//! encrypt with PKCS#7 padding, and MAC `associated data || encoded message`,
//! truncated:
//! - 0.3: `0x33 || SignalMessage || MAC[..8]`, the associated data being the
//!   sender's then the receiver's `0x05`-prefixed identity keys;
//! - 2: `OMEMOAuthenticatedMessage { mac: MAC[..16], message: OMEMOMessage }`, the
//!   associated data being the initiator's then the responder's Ed25519 keys.

use aes::Aes256;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use subtle::ConstantTimeEq;

use crate::kdf::{hmac, message_keys};
use crate::proto::{Authenticated, RatchetMessage};
use crate::ratchet::Header;
use crate::version::{V03_MESSAGE_VERSION, Version};
use crate::x3dh::{decode_public, encode_public};
use crate::{Error, Result};

/// AES-256-CBC with PKCS#7 padding.
pub(crate) fn cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], plaintext: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<Aes256>::new(key.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// AES-256-CBC with PKCS#7 padding, decrypting.
pub(crate) fn cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], ciphertext: &[u8]) -> Result<Vec<u8>> {
    cbc::Decryptor::<Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .map_err(|_| Error::Decrypt)
}

fn to_proto(version: Version, header: &Header, ciphertext: Option<Vec<u8>>) -> RatchetMessage {
    RatchetMessage {
        dh_pub: encode_public(version, &header.ratchet_pub),
        n: header.n,
        pn: header.pn,
        ciphertext,
    }
}

/// Encrypt `plaintext` (the key material) with a message key.
pub fn seal(
    version: Version,
    message_key: &[u8; 32],
    associated_data: &[u8],
    header: &Header,
    plaintext: &[u8],
) -> Vec<u8> {
    let (enc, auth, iv) = message_keys(version.message_key_info(), message_key);
    let body = to_proto(version, header, Some(cbc_encrypt(&enc, &iv, plaintext))).encode(version);
    match version {
        Version::V03 => {
            let mut out = Vec::with_capacity(body.len() + 9);
            out.push(V03_MESSAGE_VERSION);
            out.extend_from_slice(&body);
            let mac = hmac(&auth, &[associated_data, &out]);
            out.extend_from_slice(&mac[..version.mac_len()]);
            out
        }
        Version::V2 => {
            let mac = hmac(&auth, &[associated_data, &body]);
            Authenticated {
                mac: mac[..version.mac_len()].to_vec(),
                message: body,
            }
            .encode()
        }
    }
}

/// The parts of an encrypted message: what the MAC covers, the MAC, the message.
struct Parts {
    covered: Vec<u8>,
    mac: Vec<u8>,
    message: RatchetMessage,
}

fn split(version: Version, bytes: &[u8]) -> Result<Parts> {
    match version {
        Version::V03 => {
            let mac_len = version.mac_len();
            if bytes.len() < 1 + mac_len {
                return Err(Error::Protobuf("message too short"));
            }
            let (covered, mac) = bytes.split_at(bytes.len() - mac_len);
            if covered[0] != V03_MESSAGE_VERSION {
                return Err(Error::BadVersion(covered[0]));
            }
            Ok(Parts {
                message: RatchetMessage::decode(version, &covered[1..])?,
                covered: covered.to_vec(),
                mac: mac.to_vec(),
            })
        }
        Version::V2 => {
            let a = Authenticated::decode(bytes)?;
            Ok(Parts {
                message: RatchetMessage::decode(version, &a.message)?,
                covered: a.message,
                mac: a.mac,
            })
        }
    }
}

/// The header of an encrypted message, read before its key is known.
pub fn header(version: Version, bytes: &[u8]) -> Result<Header> {
    let m = split(version, bytes)?.message;
    Ok(Header {
        ratchet_pub: decode_public(version, &m.dh_pub)?,
        n: m.n,
        pn: m.pn,
    })
}

/// Check the MAC and decrypt with a message key.
pub fn open(
    version: Version,
    message_key: &[u8; 32],
    associated_data: &[u8],
    bytes: &[u8],
) -> Result<Vec<u8>> {
    let parts = split(version, bytes)?;
    let (enc, auth, iv) = message_keys(version.message_key_info(), message_key);
    let mac = hmac(&auth, &[associated_data, &parts.covered]);
    if parts.mac.len() != version.mac_len()
        || !bool::from(mac[..version.mac_len()].ct_eq(&parts.mac))
    {
        return Err(Error::BadMac);
    }
    let ciphertext = parts
        .message
        .ciphertext
        .ok_or(Error::Protobuf("ciphertext missing"))?;
    cbc_decrypt(&enc, &iv, &ciphertext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_in_both_versions() {
        for version in [Version::V03, Version::V2] {
            let header = Header {
                ratchet_pub: [3; 32],
                pn: 1,
                n: 2,
            };
            let ad = vec![1u8; 2 * version.identity_encoding_len()];
            let bytes = seal(version, &[7; 32], &ad, &header, b"key material");
            assert_eq!(super::header(version, &bytes).unwrap(), header);
            assert_eq!(
                open(version, &[7; 32], &ad, &bytes).unwrap(),
                b"key material"
            );
            assert_eq!(open(version, &[8; 32], &ad, &bytes), Err(Error::BadMac));
            let mut other_ad = ad.clone();
            other_ad[0] = 0;
            assert_eq!(
                open(version, &[7; 32], &other_ad, &bytes),
                Err(Error::BadMac)
            );
        }
    }
}
