//! OMEMO's cryptography, both versions, with no XMPP in it.
//!
//! Why its own crate: the encryption of a message is a pure function of keys and
//! bytes, and the plugin that speaks XMPP (`xep_0384`) should only move byte strings
//! between stanzas and this crate. No Rust crate speaks OMEMO: Signal's libsignal
//! requires post-quantum prekeys that no OMEMO client publishes, and the older
//! wrappers are C. So Perch implements the protocol pieces here, in safe Rust on the
//! RustCrypto and dalek crates, and proves them against the reference implementation
//! (python-omemo: `xeddsa`, `x3dh`, `doubleratchet`, `oldmemo`, `twomemo`) in the
//! tests.
//!
//! The layers, bottom up:
//! - [`xeddsa`]: Ed25519-compatible signatures made with Curve25519 keys, and the
//!   conversions between the two curves;
//! - [`kdf`]: the HKDF and HMAC chains of X3DH and the Double Ratchet;
//! - [`x3dh`]: the key agreement and the prekey [`Bundle`];
//! - [`ratchet`]: the Double Ratchet with bounded skipped-message keys;
//! - [`proto`]: the protobuf messages of both versions, by hand;
//! - [`message`]: a ratchet message key turned into a wire message and back;
//! - [`payload`]: the symmetric encryption of the message body (0.3) or SCE
//!   envelope (2) whose key the ratchet carries;
//! - [`session`]: the API the plugin uses ([`Identity`], [`DeviceKeys`], [`Session`]).
#![forbid(unsafe_code)]

mod error;
mod hexser;
pub mod kdf;
pub mod message;
pub mod payload;
pub mod proto;
pub mod ratchet;
pub mod session;
pub mod version;
pub mod x3dh;
pub mod xeddsa;

pub use error::Error;
pub use session::{
    DeviceKeys, Encrypted, Identity, Responded, Session, fingerprint, fingerprint_groups,
};
pub use version::Version;
pub use x3dh::Bundle;

/// The crate's results.
pub type Result<T> = std::result::Result<T, Error>;
