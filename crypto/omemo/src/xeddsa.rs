//! XEdDSA and the conversions between Ed25519 and Curve25519 keys.
//!
//! Why: an OMEMO identity key is used both for Diffie-Hellman (X25519, on the
//! Montgomery curve) and for signing the signed prekey (Ed25519-compatible
//! signatures, on the twisted Edwards curve). OMEMO 0.3 publishes the key in its
//! Curve25519 form, so a verifier has to rebuild the Edwards key from the Montgomery
//! one, whose sign bit is lost: XEdDSA (Signal's specification) fixes the sign bit to
//! 0 by negating the private scalar when needed, and libsignal's older convention
//! carries the sign bit in the top bit of the signature's last byte; [`verify_curve`]
//! accepts both, as every 0.3 client does. OMEMO 2 publishes the Ed25519 key, so
//! [`sign_ed`] signs with the scalar as it is.
//!
//! A private key here is the 32 bytes of a Curve25519 private key (clamped when used),
//! which is also the Ed25519 secret scalar; an Ed25519 seed becomes one with
//! [`seed_to_priv`]. Nonces are random, so signatures are not deterministic.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use ed25519_dalek::Verifier;
use sha2::{Digest, Sha512};

use crate::{Error, Result};

/// A Curve25519/Ed25519 private key as 32 bytes.
pub type Priv = [u8; 32];

/// The private key of an Ed25519 seed: the first half of SHA-512(seed), clamped
/// (libsodium's `crypto_sign_ed25519_sk_to_curve25519`).
pub fn seed_to_priv(seed: &[u8; 32]) -> Priv {
    let h = Sha512::digest(seed);
    let mut lower = [0u8; 32];
    lower.copy_from_slice(&h[..32]);
    clamp_integer(lower)
}

fn scalar_of(priv_key: &Priv) -> Scalar {
    Scalar::from_bytes_mod_order(clamp_integer(*priv_key))
}

/// The Curve25519 (Montgomery u) public key of a private key.
pub fn priv_to_curve_pub(priv_key: &Priv) -> [u8; 32] {
    EdwardsPoint::mul_base(&scalar_of(priv_key))
        .to_montgomery()
        .to_bytes()
}

/// The Ed25519 public key of a private key, sign bit as it comes.
pub fn priv_to_ed_pub(priv_key: &Priv) -> [u8; 32] {
    EdwardsPoint::mul_base(&scalar_of(priv_key))
        .compress()
        .to_bytes()
}

/// The Ed25519 key of a Curve25519 key, with the given sign bit.
pub fn curve_to_ed(curve: &[u8; 32], sign_bit: bool) -> Result<[u8; 32]> {
    MontgomeryPoint(*curve)
        .to_edwards(u8::from(sign_bit))
        .map(|p| p.compress().to_bytes())
        .ok_or(Error::RejectedKey(
            "no Edwards point for this Curve25519 key",
        ))
}

/// The Curve25519 key of an Ed25519 key; refuses keys that are no point or of small
/// order (as the reference does).
pub fn ed_to_curve(ed: &[u8; 32]) -> Result<[u8; 32]> {
    let point = CompressedEdwardsY(*ed)
        .decompress()
        .ok_or(Error::RejectedKey("not an Ed25519 point"))?;
    if point.is_small_order() {
        return Err(Error::RejectedKey("Ed25519 key of small order"));
    }
    Ok(point.to_montgomery().to_bytes())
}

/// X25519, refusing an all-zero result (a small-order peer key).
pub fn x25519(priv_key: &Priv, public: &[u8; 32]) -> Result<[u8; 32]> {
    let secret = x25519_dalek::StaticSecret::from(*priv_key);
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(Error::RejectedKey("X25519 gave the all-zero secret"));
    }
    Ok(shared.to_bytes())
}

/// The signature of `msg` by scalar `a` whose public point is `big_a`, with the
/// XEdDSA nonce `r = hash1(a || M || Z)`, `hash1` being SHA-512 with the prefix
/// `0xFE || 0xFF * 31`.
fn sign_with(a: &Scalar, big_a: &CompressedEdwardsY, msg: &[u8], nonce: &[u8; 64]) -> [u8; 64] {
    let mut h = Sha512::new();
    h.update([0xFE]);
    h.update([0xFF; 31]);
    h.update(a.as_bytes());
    h.update(msg);
    h.update(nonce);
    let r = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    let big_r = EdwardsPoint::mul_base(&r).compress();
    let k = Scalar::from_bytes_mod_order_wide(
        &Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(big_a.as_bytes())
            .chain_update(msg)
            .finalize()
            .into(),
    );
    let s = r + k * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

/// XEdDSA: sign with a Curve25519 private key so that the signature verifies with
/// the Ed25519 key of sign bit 0 rebuilt from the Curve25519 public key.
pub fn xeddsa_sign(priv_key: &Priv, msg: &[u8], nonce: &[u8; 64]) -> [u8; 64] {
    let mut a = scalar_of(priv_key);
    let mut big_a = EdwardsPoint::mul_base(&a).compress();
    if big_a.as_bytes()[31] & 0x80 != 0 {
        a = -a;
        big_a = EdwardsPoint::mul_base(&a).compress();
    }
    sign_with(&a, &big_a, msg, nonce)
}

/// Sign with the private key as it is: the signature verifies with
/// [`priv_to_ed_pub`] (OMEMO 2's Ed25519 identity keys).
pub fn sign_ed(priv_key: &Priv, msg: &[u8], nonce: &[u8; 64]) -> [u8; 64] {
    let a = scalar_of(priv_key);
    let big_a = EdwardsPoint::mul_base(&a).compress();
    sign_with(&a, &big_a, msg, nonce)
}

/// Verify an Ed25519 signature.
pub fn verify_ed(ed: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(ed) else {
        return false;
    };
    key.verify(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .is_ok()
}

/// Verify a signature made with a Curve25519 key: the Edwards key's sign bit is the
/// top bit of the signature's last byte (0 for XEdDSA, either for libsignal's and
/// oldmemo's signatures), which is cleared before verifying.
pub fn verify_curve(curve: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    let mut sig = *sig;
    let sign_bit = sig[63] & 0x80 != 0;
    sig[63] &= 0x7F;
    curve_to_ed(curve, sign_bit).is_ok_and(|ed| verify_ed(&ed, msg, &sig))
}

/// 64 random bytes for a signature nonce.
pub fn random_nonce() -> [u8; 64] {
    let mut n = [0u8; 64];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut n);
    n
}

/// 32 random bytes (a private key, a seed).
pub fn random_32() -> [u8; 32] {
    let mut n = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xeddsa_signatures_verify_with_the_curve_key_only() {
        for _ in 0..16 {
            let k = random_32();
            let curve = priv_to_curve_pub(&k);
            let sig = xeddsa_sign(&k, b"message", &random_nonce());
            assert_eq!(sig[63] & 0x80, 0);
            assert!(verify_curve(&curve, b"message", &sig));
            assert!(!verify_curve(&curve, b"messagf", &sig));
        }
    }

    #[test]
    fn ed_signatures_verify_with_the_ed_key_and_its_curve_form() {
        for _ in 0..16 {
            let k = seed_to_priv(&random_32());
            let ed = priv_to_ed_pub(&k);
            let sig = sign_ed(&k, b"m", &random_nonce());
            assert!(verify_ed(&ed, b"m", &sig));
            // libsignal's convention: the sign bit travels in the signature.
            let mut carried = sig;
            carried[63] |= ed[31] & 0x80;
            assert!(verify_curve(&ed_to_curve(&ed).unwrap(), b"m", &carried));
        }
    }

    #[test]
    fn conversions_agree_with_the_private_key() {
        let k = random_32();
        let ed = priv_to_ed_pub(&k);
        let curve = priv_to_curve_pub(&k);
        assert_eq!(ed_to_curve(&ed).unwrap(), curve);
        assert_eq!(curve_to_ed(&curve, ed[31] & 0x80 != 0).unwrap(), ed);
        assert_eq!(
            x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(k)).to_bytes(),
            curve
        );
    }

    #[test]
    fn small_order_keys_are_refused() {
        let identity = [1u8; 1]
            .iter()
            .chain([0u8; 31].iter())
            .copied()
            .collect::<Vec<_>>();
        let identity: [u8; 32] = identity.try_into().unwrap();
        assert!(ed_to_curve(&identity).is_err());
        assert!(x25519(&random_32(), &[0u8; 32]).is_err());
    }
}
