//! The one error type: every failure says which check refused the input, so that the
//! plugin can tell the user *why* a message could not be read ("no session", "bad
//! MAC") without ever carrying key material in the message.

/// What went wrong, without any secret in it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A key of the wrong length or encoding (the 0.3 `0x05` prefix missing, say).
    #[error("malformed key: {0}")]
    BadKey(&'static str),
    /// A public key that is not a usable point (small order, not on the curve).
    #[error("rejected public key: {0}")]
    RejectedKey(&'static str),
    /// The signature on a signed prekey does not verify with the identity key.
    #[error("the signed prekey's signature does not verify")]
    BadSignature,
    /// A protobuf message that can't be read.
    #[error("malformed protobuf: {0}")]
    Protobuf(&'static str),
    /// A 0.3 message without its `0x33` version byte.
    #[error("unknown message version byte {0:#04x}")]
    BadVersion(u8),
    /// The bundle has no one-time prekey to use.
    #[error("the bundle has no prekey")]
    NoPreKey,
    /// A key exchange names a signed prekey or prekey we no longer have.
    #[error("the key exchange uses an unknown {0}")]
    UnknownPreKey(&'static str),
    /// The MAC of a message (or payload) does not match.
    #[error("authentication failed")]
    BadMac,
    /// Symmetric decryption failed (bad padding, bad tag).
    #[error("decryption failed")]
    Decrypt,
    /// A message asks for more skipped message keys than we are willing to derive.
    #[error("too many skipped messages ({0})")]
    TooManySkipped(u32),
    /// A message whose key was used already (or dropped).
    #[error("message already decrypted or its key was dropped")]
    Duplicate,
    /// A key exchange that does not belong to this session.
    #[error("the key exchange does not belong to this session")]
    ForeignKeyExchange,
    /// A stored state that can't be read back.
    #[error("stored state: {0}")]
    State(String),
}
