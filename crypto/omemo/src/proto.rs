//! The protobuf messages of both versions, encoded and read by hand.
//!
//! Why by hand: five small messages of varints and byte strings do not justify a
//! code generator and a build script. Encoding writes fields in field-number order,
//! as the reference's protobuf library does, so the bytes are the same; reading
//! follows proto2: unknown fields are skipped, the last of a repeated scalar wins,
//! and a missing required field is an error.

use crate::version::Version;
use crate::{Error, Result};

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_uint(buf: &mut Vec<u8>, field: u32, v: u32) {
    put_varint(buf, u64::from(field) << 3);
    put_varint(buf, u64::from(v));
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, v: &[u8]) {
    put_varint(buf, (u64::from(field) << 3) | 2);
    put_varint(buf, v.len() as u64);
    buf.extend_from_slice(v);
}

/// A field to write.
enum Out<'a> {
    Uint(u32, u32),
    Bytes(u32, &'a [u8]),
}

impl Out<'_> {
    fn number(&self) -> u32 {
        match self {
            Out::Uint(f, _) | Out::Bytes(f, _) => *f,
        }
    }
}

/// Write `fields` in field-number order, as protobuf libraries do.
fn write(mut fields: Vec<Out<'_>>, capacity: usize) -> Vec<u8> {
    fields.sort_by_key(Out::number);
    let mut buf = Vec::with_capacity(capacity);
    for f in fields {
        match f {
            Out::Uint(n, v) => put_uint(&mut buf, n, v),
            Out::Bytes(n, v) => put_bytes(&mut buf, n, v),
        }
    }
    buf
}

/// A field's value as read.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(Error::Protobuf("truncated varint"))?;
        *pos += 1;
        v |= u64::from(b & 0x7F) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Error::Protobuf("varint too long"))
}

fn take<'a>(bytes: &'a [u8], pos: &mut usize, len: u64) -> Result<&'a [u8]> {
    let len = usize::try_from(len).map_err(|_| Error::Protobuf("length"))?;
    let end = pos
        .checked_add(len)
        .filter(|e| *e <= bytes.len())
        .ok_or(Error::Protobuf("truncated field"))?;
    let out = &bytes[*pos..end];
    *pos = end;
    Ok(out)
}

/// Every field of a message, in order.
fn fields(bytes: &[u8]) -> Result<Vec<(u32, Value<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let key = get_varint(bytes, &mut pos)?;
        let field = u32::try_from(key >> 3).map_err(|_| Error::Protobuf("field number"))?;
        if field == 0 {
            return Err(Error::Protobuf("field number 0"));
        }
        let value = match key & 7 {
            0 => Value::Varint(get_varint(bytes, &mut pos)?),
            1 => {
                take(bytes, &mut pos, 8)?;
                Value::Fixed
            }
            2 => {
                let len = get_varint(bytes, &mut pos)?;
                Value::Bytes(take(bytes, &mut pos, len)?)
            }
            5 => {
                take(bytes, &mut pos, 4)?;
                Value::Fixed
            }
            _ => return Err(Error::Protobuf("unsupported wire type")),
        };
        out.push((field, value));
    }
    Ok(out)
}

/// The last value of `field`, which must be a uint32 varint.
fn uint(fields: &[(u32, Value<'_>)], field: u32) -> Result<Option<u32>> {
    let mut found = None;
    for (_, v) in fields.iter().filter(|(f, _)| *f == field) {
        match v {
            Value::Varint(n) => {
                // uint32 on the wire may be sent as a wider varint; proto truncates.
                found = Some(*n as u32);
            }
            _ => return Err(Error::Protobuf("wrong wire type for an integer")),
        }
    }
    Ok(found)
}

/// The last value of `field`, which must be length-delimited.
fn bytes_field(fields: &[(u32, Value<'_>)], field: u32) -> Result<Option<Vec<u8>>> {
    let mut found = None;
    for (_, v) in fields.iter().filter(|(f, _)| *f == field) {
        match v {
            Value::Bytes(b) => found = Some(b.to_vec()),
            _ => return Err(Error::Protobuf("wrong wire type for bytes")),
        }
    }
    Ok(found)
}

fn required<T>(v: Option<T>, what: &'static str) -> Result<T> {
    v.ok_or(Error::Protobuf(what))
}

/// A Double Ratchet message: 0.3's `SignalMessage` (`WhisperMessage`) without its
/// version byte and MAC, or OMEMO 2's `OMEMOMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatchetMessage {
    /// The sender's ratchet public key (0.3: with the `0x05` type byte).
    pub dh_pub: Vec<u8>,
    /// The message's number in its sending chain.
    pub n: u32,
    /// The length of the sender's previous sending chain.
    pub pn: u32,
    /// The encrypted key material; absent in the header form used for the MAC.
    pub ciphertext: Option<Vec<u8>>,
}

impl RatchetMessage {
    /// Field numbers (dh_pub, n, pn, ciphertext) of each version.
    fn numbers(version: Version) -> [u32; 4] {
        match version {
            Version::V03 => [1, 2, 3, 4],
            Version::V2 => [3, 1, 2, 4],
        }
    }

    /// The protobuf bytes.
    pub fn encode(&self, version: Version) -> Vec<u8> {
        let [dh, n, pn, ct] = Self::numbers(version);
        let mut fields = vec![
            Out::Bytes(dh, &self.dh_pub),
            Out::Uint(n, self.n),
            Out::Uint(pn, self.pn),
        ];
        if let Some(c) = &self.ciphertext {
            fields.push(Out::Bytes(ct, c));
        }
        write(fields, 48 + self.ciphertext.as_ref().map_or(0, Vec::len))
    }

    /// Read the protobuf bytes.
    pub fn decode(version: Version, bytes: &[u8]) -> Result<Self> {
        let [dh, n, pn, ct] = Self::numbers(version);
        let f = fields(bytes)?;
        Ok(RatchetMessage {
            dh_pub: required(bytes_field(&f, dh)?, "dh_pub missing")?,
            n: required(uint(&f, n)?, "n missing")?,
            pn: required(uint(&f, pn)?, "pn missing")?,
            ciphertext: bytes_field(&f, ct)?,
        })
    }
}

/// OMEMO 2's `OMEMOAuthenticatedMessage`: a truncated MAC and the message it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The first 16 bytes of the HMAC.
    pub mac: Vec<u8>,
    /// The encoded [`RatchetMessage`].
    pub message: Vec<u8>,
}

impl Authenticated {
    /// The protobuf bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(self.mac.len() + self.message.len() + 6);
        put_bytes(&mut buf, 1, &self.mac);
        put_bytes(&mut buf, 2, &self.message);
        buf
    }

    /// Read the protobuf bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let f = fields(bytes)?;
        Ok(Authenticated {
            mac: required(bytes_field(&f, 1)?, "mac missing")?,
            message: required(bytes_field(&f, 2)?, "message missing")?,
        })
    }
}

/// A key exchange: 0.3's `PreKeySignalMessage` (without its version byte) or OMEMO
/// 2's `OMEMOKeyExchange`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyExchange {
    /// The id of the one-time prekey used.
    pub pk_id: u32,
    /// The id of the signed prekey used.
    pub spk_id: u32,
    /// The initiator's identity key (0.3: `0x05` + Curve25519; 2: Ed25519).
    pub ik: Vec<u8>,
    /// The initiator's ephemeral (base) key (0.3: with the `0x05` type byte).
    pub ek: Vec<u8>,
    /// The first message: 0.3's version byte, SignalMessage and MAC; 2's
    /// `OMEMOAuthenticatedMessage`.
    pub message: Vec<u8>,
    /// 0.3's registration id (field 5), which OMEMO does not use.
    pub registration_id: Option<u32>,
}

impl KeyExchange {
    /// Field numbers (pk_id, spk_id, ik, ek, message) of each version.
    fn numbers(version: Version) -> [u32; 5] {
        match version {
            Version::V03 => [1, 6, 3, 2, 4],
            Version::V2 => [1, 2, 3, 4, 5],
        }
    }

    /// The protobuf bytes.
    pub fn encode(&self, version: Version) -> Vec<u8> {
        let [pk, spk, ik, ek, msg] = Self::numbers(version);
        let mut fields = vec![
            Out::Uint(pk, self.pk_id),
            Out::Uint(spk, self.spk_id),
            Out::Bytes(ik, &self.ik),
            Out::Bytes(ek, &self.ek),
            Out::Bytes(msg, &self.message),
        ];
        if let (Version::V03, Some(r)) = (version, self.registration_id) {
            fields.push(Out::Uint(5, r));
        }
        write(fields, 90 + self.message.len())
    }

    /// Read the protobuf bytes (OMEMO 2: the embedded message must parse too).
    pub fn decode(version: Version, bytes: &[u8]) -> Result<Self> {
        let [pk, spk, ik, ek, msg] = Self::numbers(version);
        let f = fields(bytes)?;
        let message = required(bytes_field(&f, msg)?, "message missing")?;
        if version == Version::V2 {
            Authenticated::decode(&message)?;
        }
        Ok(KeyExchange {
            pk_id: required(uint(&f, pk)?, "pk_id missing")?,
            spk_id: required(uint(&f, spk)?, "spk_id missing")?,
            ik: required(bytes_field(&f, ik)?, "ik missing")?,
            ek: required(bytes_field(&f, ek)?, "ek missing")?,
            message,
            registration_id: match version {
                Version::V03 => uint(&f, 5)?,
                Version::V2 => None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_bytes_of_a_v03_message() {
        let m = RatchetMessage {
            dh_pub: vec![5, 0xAA],
            n: 1,
            pn: 300,
            ciphertext: Some(vec![0xCC]),
        };
        let bytes = [
            0x0A, 2, 5, 0xAA, // dh_pub
            0x10, 1, // n
            0x18, 0xAC, 0x02, // pn = 300
            0x22, 1, 0xCC, // ciphertext
        ];
        assert_eq!(m.encode(Version::V03), bytes);
        assert_eq!(RatchetMessage::decode(Version::V03, &bytes).unwrap(), m);
    }

    #[test]
    fn literal_bytes_of_a_v2_message_and_key_exchange() {
        let m = RatchetMessage {
            dh_pub: vec![0xAA],
            n: 0,
            pn: 2,
            ciphertext: None,
        };
        let bytes = [0x08, 0, 0x10, 2, 0x1A, 1, 0xAA];
        assert_eq!(m.encode(Version::V2), bytes);
        assert_eq!(RatchetMessage::decode(Version::V2, &bytes).unwrap(), m);

        let auth = Authenticated {
            mac: vec![1],
            message: vec![2, 3],
        };
        let auth_bytes = [0x0A, 1, 1, 0x12, 2, 2, 3];
        assert_eq!(auth.encode(), auth_bytes);
        let kex = KeyExchange {
            pk_id: 7,
            spk_id: 1,
            ik: vec![0x11],
            ek: vec![0x22],
            message: auth_bytes.to_vec(),
            registration_id: None,
        };
        let mut kex_bytes = vec![0x08, 7, 0x10, 1, 0x1A, 1, 0x11, 0x22, 1, 0x22, 0x2A, 7];
        kex_bytes.extend_from_slice(&auth_bytes);
        assert_eq!(kex.encode(Version::V2), kex_bytes);
        assert_eq!(KeyExchange::decode(Version::V2, &kex_bytes).unwrap(), kex);
    }

    #[test]
    fn v03_key_exchange_with_registration_id_in_field_order() {
        let kex = KeyExchange {
            pk_id: 1,
            spk_id: 2,
            ik: vec![0x33],
            ek: vec![0x44],
            message: vec![0x55],
            registration_id: Some(9),
        };
        let bytes = [
            0x08, 1, 0x12, 1, 0x44, 0x1A, 1, 0x33, 0x22, 1, 0x55, 0x28, 9, 0x30, 2,
        ];
        assert_eq!(kex.encode(Version::V03), bytes);
        assert_eq!(KeyExchange::decode(Version::V03, &bytes).unwrap(), kex);
    }

    #[test]
    fn unknown_fields_are_skipped_and_missing_required_ones_refused() {
        // field 9 fixed32, field 10 fixed64, then a complete v2 message
        let mut bytes = vec![0x4D, 1, 2, 3, 4, 0x51, 0, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&[0x08, 0, 0x10, 2, 0x1A, 1, 0xAA]);
        assert!(RatchetMessage::decode(Version::V2, &bytes).is_ok());
        assert_eq!(
            RatchetMessage::decode(Version::V2, &[0x08, 0, 0x10, 2]),
            Err(Error::Protobuf("dh_pub missing"))
        );
        assert!(RatchetMessage::decode(Version::V2, &[0x1A, 5, 0]).is_err());
    }
}
