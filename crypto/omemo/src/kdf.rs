//! The key derivations of X3DH and the Double Ratchet, all on SHA-256.
//!
//! Why in one place: the two versions differ only in their HKDF info strings, and
//! the differential tests compare exactly these functions with the reference's.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::version::{MESSAGE_CHAIN_CONSTANT, V2_PAYLOAD_INFO, Version};

type HmacSha256 = Hmac<Sha256>;

/// HKDF-SHA-256 of `ikm` into `N` bytes (`salt` empty means 32 zero bytes).
pub fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let zero = [0u8; 32];
    let salt = if salt.is_empty() { &zero[..] } else { salt };
    let mut out = [0u8; N];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut out)
        .expect("HKDF output within 255 hash lengths");
    out
}

/// HMAC-SHA-256 of the concatenation of `parts`.
pub fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// X3DH's shared secret: HKDF with a zero salt over `0xFF * 32 || DH1 || DH2 ||
/// DH3 [|| DH4]`.
pub fn x3dh_secret(version: Version, dhs: &[[u8; 32]]) -> [u8; 32] {
    let mut ikm = Vec::with_capacity(32 * (dhs.len() + 1));
    ikm.extend_from_slice(&[0xFF; 32]);
    for dh in dhs {
        ikm.extend_from_slice(dh);
    }
    hkdf(&[], &ikm, version.x3dh_info())
}

/// One step of the root chain: HKDF salted with the root key over the DH output,
/// 64 bytes split into the next root key and a new chain key.
pub fn root_step(version: Version, root_key: &[u8; 32], dh: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    let out: [u8; 64] = hkdf(root_key, dh, version.root_info());
    split(&out)
}

/// One step of a message chain: `HMAC(ck, 0x02)` is the next chain key,
/// `HMAC(ck, 0x01)` the message key.
pub fn chain_step(chain_key: &[u8; 32]) -> ([u8; 32], [u8; 32]) {
    (
        hmac(chain_key, &[&MESSAGE_CHAIN_CONSTANT[..1]]),
        hmac(chain_key, &[&MESSAGE_CHAIN_CONSTANT[1..]]),
    )
}

/// The AES key, HMAC key and IV of a message key (80 bytes of HKDF, zero salt).
pub fn message_keys(info: &[u8], message_key: &[u8]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    let out: [u8; 80] = hkdf(&[], message_key, info);
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&out[64..]);
    let (enc, auth) = split(&out[..64]);
    (enc, auth, iv)
}

/// The keys of an OMEMO 2 payload from its 32-byte key.
pub fn payload_keys_v2(key: &[u8; 32]) -> ([u8; 32], [u8; 32], [u8; 16]) {
    message_keys(V2_PAYLOAD_INFO, key)
}

fn split(out: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&out[..32]);
    b.copy_from_slice(&out[32..64]);
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869, test case 1.
    #[test]
    fn hkdf_matches_rfc_5869() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=12).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let okm: [u8; 42] = hkdf(&salt, &ikm, &info);
        assert_eq!(
            crate::hexser::encode(&okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }

    #[test]
    fn chain_step_uses_two_hmacs() {
        let ck = [7u8; 32];
        let (next, mk) = chain_step(&ck);
        assert_eq!(next, hmac(&ck, &[&[2]]));
        assert_eq!(mk, hmac(&ck, &[&[1]]));
        assert_ne!(next, mk);
    }
}
