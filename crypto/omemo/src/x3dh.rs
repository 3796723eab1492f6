//! X3DH key agreement and prekey bundles.
//!
//! Why both versions share this code: they differ only in the HKDF info, in how a
//! public key is encoded (0.3 puts libsignal's `0x05` type byte in front of every
//! Curve25519 key, in the signed data and the associated data too) and in the form of
//! the identity key (0.3: Curve25519, verified with XEdDSA; 2: Ed25519). The
//! shared secret is HKDF over `0xFF * 32 || DH1 || DH2 || DH3 || DH4`, and the
//! associated data is the initiator's encoded identity key followed by the
//! responder's.

use crate::kdf::x3dh_secret;
use crate::version::{KEY_TYPE_DJB, Version};
use crate::xeddsa::{self, Priv};
use crate::{Error, Result};

/// A public key as it travels in `version` (0.3: `0x05` + Curve25519).
pub fn encode_public(version: Version, key: &[u8; 32]) -> Vec<u8> {
    match version {
        Version::V03 => {
            let mut v = Vec::with_capacity(33);
            v.push(KEY_TYPE_DJB);
            v.extend_from_slice(key);
            v
        }
        Version::V2 => key.to_vec(),
    }
}

/// A public key read from the wire of `version`.
pub fn decode_public(version: Version, bytes: &[u8]) -> Result<[u8; 32]> {
    let raw = match version {
        Version::V03 => match bytes.split_first() {
            Some((&KEY_TYPE_DJB, rest)) => rest,
            _ => return Err(Error::BadKey("0.3 public key without its 0x05 type byte")),
        },
        Version::V2 => bytes,
    };
    raw.try_into()
        .map_err(|_| Error::BadKey("public key of the wrong length"))
}

/// A device's published keys, as read from (or written to) its PEP bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The version the bundle was published for.
    pub version: Version,
    /// The identity key: Curve25519 for 0.3, Ed25519 for 2.
    pub identity_key: [u8; 32],
    /// The signed prekey's id.
    pub signed_prekey_id: u32,
    /// The signed prekey (Curve25519).
    pub signed_prekey: [u8; 32],
    /// The identity key's signature of the encoded signed prekey.
    pub signature: [u8; 64],
    /// The one-time prekeys (Curve25519) with their ids.
    pub prekeys: Vec<(u32, [u8; 32])>,
}

impl Bundle {
    /// A bundle from the byte strings of its XML form (after base64), checking
    /// lengths and, for 0.3, the type bytes. The signature is not checked here:
    /// [`Bundle::verify`] does.
    pub fn from_wire(
        version: Version,
        identity_key: &[u8],
        signed_prekey_id: u32,
        signed_prekey: &[u8],
        signature: &[u8],
        prekeys: &[(u32, Vec<u8>)],
    ) -> Result<Self> {
        Ok(Bundle {
            version,
            identity_key: decode_public(version, identity_key)?,
            signed_prekey_id,
            signed_prekey: decode_public(version, signed_prekey)?,
            signature: signature
                .try_into()
                .map_err(|_| Error::BadKey("signature of the wrong length"))?,
            prekeys: prekeys
                .iter()
                .map(|(id, k)| Ok((*id, decode_public(version, k)?)))
                .collect::<Result<_>>()?,
        })
    }

    /// The identity key as it goes in the bundle's XML.
    pub fn wire_identity_key(&self) -> Vec<u8> {
        encode_public(self.version, &self.identity_key)
    }

    /// The signed prekey as it goes in the bundle's XML.
    pub fn wire_signed_prekey(&self) -> Vec<u8> {
        encode_public(self.version, &self.signed_prekey)
    }

    /// The prekeys as they go in the bundle's XML.
    pub fn wire_prekeys(&self) -> Vec<(u32, Vec<u8>)> {
        self.prekeys
            .iter()
            .map(|(id, k)| (*id, encode_public(self.version, k)))
            .collect()
    }

    /// Check the signed prekey's signature.
    pub fn verify(&self) -> Result<()> {
        let signed = encode_public(self.version, &self.signed_prekey);
        let ok = match self.version {
            Version::V03 => xeddsa::verify_curve(&self.identity_key, &signed, &self.signature),
            Version::V2 => xeddsa::verify_ed(&self.identity_key, &signed, &self.signature),
        };
        if ok { Ok(()) } else { Err(Error::BadSignature) }
    }

    /// The identity key in its Curve25519 form (for DH and fingerprints).
    pub fn identity_curve(&self) -> Result<[u8; 32]> {
        identity_to_curve(self.version, &self.identity_key)
    }
}

/// An identity key of `version`'s form in its Curve25519 form.
pub fn identity_to_curve(version: Version, key: &[u8; 32]) -> Result<[u8; 32]> {
    match version {
        Version::V03 => Ok(*key),
        Version::V2 => xeddsa::ed_to_curve(key),
    }
}

/// The form of our identity key that `version` publishes.
pub fn own_identity(version: Version, priv_key: &Priv) -> [u8; 32] {
    match version {
        Version::V03 => xeddsa::priv_to_curve_pub(priv_key),
        Version::V2 => xeddsa::priv_to_ed_pub(priv_key),
    }
}

/// The result of an X3DH agreement (no `Debug`: it is a secret).
#[derive(Clone)]
pub struct Agreement {
    /// The 32-byte shared secret (the Double Ratchet's first root key).
    pub shared_secret: [u8; 32],
    /// Initiator's encoded identity key, then the responder's.
    pub associated_data: Vec<u8>,
}

/// The initiator's side. `ephemeral` is the fresh private key whose public half
/// goes in the key exchange; `prekey` the one-time prekey chosen from the bundle.
/// The bundle's signature must have been verified.
pub fn agree_active(
    own: &Priv,
    bundle: &Bundle,
    ephemeral: &Priv,
    prekey: &[u8; 32],
) -> Result<Agreement> {
    let version = bundle.version;
    let other = bundle.identity_curve()?;
    let dhs = [
        xeddsa::x25519(own, &bundle.signed_prekey)?,
        xeddsa::x25519(ephemeral, &other)?,
        xeddsa::x25519(ephemeral, &bundle.signed_prekey)?,
        xeddsa::x25519(ephemeral, prekey)?,
    ];
    let mut associated_data = encode_public(version, &own_identity(version, own));
    associated_data.extend(encode_public(version, &bundle.identity_key));
    Ok(Agreement {
        shared_secret: x3dh_secret(version, &dhs),
        associated_data,
    })
}

/// The responder's side, from the initiator's identity key (in `version`'s form)
/// and ephemeral key, with our signed prekey and the one-time prekey named.
pub fn agree_passive(
    version: Version,
    own: &Priv,
    signed_prekey: &Priv,
    prekey: &Priv,
    other_identity: &[u8; 32],
    ephemeral: &[u8; 32],
) -> Result<Agreement> {
    let other = identity_to_curve(version, other_identity)?;
    let dhs = [
        xeddsa::x25519(signed_prekey, &other)?,
        xeddsa::x25519(own, ephemeral)?,
        xeddsa::x25519(signed_prekey, ephemeral)?,
        xeddsa::x25519(prekey, ephemeral)?,
    ];
    let mut associated_data = encode_public(version, other_identity);
    associated_data.extend(encode_public(version, &own_identity(version, own)));
    Ok(Agreement {
        shared_secret: x3dh_secret(version, &dhs),
        associated_data,
    })
}

/// Sign a signed prekey's public key with the identity key, as `version` wants it.
pub fn sign_prekey(version: Version, identity: &Priv, signed_prekey: &[u8; 32]) -> [u8; 64] {
    let msg = encode_public(version, signed_prekey);
    let nonce = xeddsa::random_nonce();
    match version {
        Version::V03 => xeddsa::xeddsa_sign(identity, &msg, &nonce),
        Version::V2 => xeddsa::sign_ed(identity, &msg, &nonce),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xeddsa::{priv_to_curve_pub, random_32, seed_to_priv};

    fn bundle(version: Version, ik: &Priv, spk: &Priv, pk: &Priv) -> Bundle {
        let spk_pub = priv_to_curve_pub(spk);
        Bundle {
            version,
            identity_key: own_identity(version, ik),
            signed_prekey_id: 1,
            signed_prekey: spk_pub,
            signature: sign_prekey(version, ik, &spk_pub),
            prekeys: vec![(5, priv_to_curve_pub(pk))],
        }
    }

    #[test]
    fn both_sides_agree_in_both_versions() {
        for version in [Version::V03, Version::V2] {
            let (a, b) = (seed_to_priv(&random_32()), seed_to_priv(&random_32()));
            let (spk, pk, ek) = (random_32(), random_32(), random_32());
            let bundle = bundle(version, &b, &spk, &pk);
            bundle.verify().unwrap();
            let active = agree_active(&a, &bundle, &ek, &bundle.prekeys[0].1).unwrap();
            let passive = agree_passive(
                version,
                &b,
                &spk,
                &pk,
                &own_identity(version, &a),
                &priv_to_curve_pub(&ek),
            )
            .unwrap();
            assert_eq!(active.shared_secret, passive.shared_secret);
            assert_eq!(active.associated_data, passive.associated_data);
            assert_eq!(
                active.associated_data.len(),
                2 * version.identity_encoding_len()
            );
        }
    }

    #[test]
    fn a_tampered_signed_prekey_is_refused() {
        for version in [Version::V03, Version::V2] {
            let mut b = bundle(version, &random_32(), &random_32(), &random_32());
            b.signed_prekey[0] ^= 1;
            assert_eq!(b.verify(), Err(Error::BadSignature));
        }
    }

    #[test]
    fn wire_keys_of_0_3_carry_the_type_byte() {
        let key = [9u8; 32];
        let wire = encode_public(Version::V03, &key);
        assert_eq!(wire[0], 5);
        assert_eq!(decode_public(Version::V03, &wire).unwrap(), key);
        assert!(decode_public(Version::V03, &key).is_err());
        assert_eq!(decode_public(Version::V2, &key).unwrap(), key);
    }
}
