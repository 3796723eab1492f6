//! End-to-end encryption (OMEMO, XEP-0384): which conversations are encrypted, the
//! devices and fingerprints of contacts, and the trust given to them.
//!
//! Why typed here: the user's contract depends on these — once a conversation is
//! encrypted, sending stays encrypted, and a message that can't be encrypted fails
//! with `NotEncrypted` instead of going in clear — so frontends must call them with
//! the same arguments and read the same answers as the plugin serves.

use serde::{Deserialize, Serialize};

use crate::signals::signal;
use crate::{ActionInfo, action, info};

/// `{to}`: a contact's bare JID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationArgs {
    pub to: String,
}

/// `{to, namespace?}`: a contact's (or a room's) bare JID, and the OMEMO version to
/// encrypt with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartArgs {
    pub to: String,
    /// `urn:xmpp:omemo:2` or `eu.siacs.conversations.axolotl`: that version only,
    /// whatever else the contact publishes; `None`: the best version the contact
    /// publishes, chosen anew at each message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Whether a conversation is encrypted, and with what.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionState {
    /// The contact's bare JID.
    pub to: String,
    /// Messages to it go encrypted (and fail rather than go in clear).
    pub encrypted: bool,
    /// The namespace messages would be encrypted with now: the best version the
    /// contact publishes (`urn:xmpp:omemo:2` over `eu.siacs.conversations.axolotl`);
    /// `None` when it publishes none we know of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `{jid?}`: whose fingerprints (none: our own device's).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
}

/// `{jid}`: an account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesArgs {
    pub jid: String,
}

/// `{jid, fingerprint}`: an identity key of an account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustArgs {
    pub jid: String,
    /// 64 hex digits, spaces allowed (as clients show it in groups).
    pub fingerprint: String,
}

/// One OMEMO device of an account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The account's bare JID.
    pub jid: String,
    pub device_id: u32,
    /// The OMEMO versions it publishes (`0.3`, `2`).
    pub versions: Vec<String>,
    /// Its identity key's fingerprint (64 lowercase hex digits), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// `own` (this device), `verified`, `blind` (trusted before any key of the
    /// account was verified), `undecided` (new after a verification: not encrypted
    /// to until trusted), `distrusted`; `None` before its key is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<String>,
    /// In the account's current device list.
    pub active: bool,
}

action!(
    /// Encrypts the conversation with `to` from now on: every message to it is
    /// encrypted, or not sent (`NotEncrypted`). Fails with `NotEncrypted` when the
    /// contact publishes no OMEMO device (of the version `namespace` asks for).
    /// Signals `encryption_started` unless the conversation was already encrypted
    /// that way.
    Start = "encryption_start", StartArgs => EncryptionState,
    "Encrypts the conversation with a contact (OMEMO) from now on: messages to it are encrypted, or not sent",
    [
        req("to", Jid, "the contact's bare JID"),
        opt("namespace", String, "the OMEMO version: urn:xmpp:omemo:2 or eu.siacs.conversations.axolotl (none: the best the contact publishes)"),
    ]
);

action!(
    /// Stops encrypting the conversation with `to`; signals `encryption_stopped`
    /// when it was encrypted.
    Stop = "encryption_stop", ConversationArgs => EncryptionState,
    "Stops encrypting the conversation with a contact: messages to it go in clear again",
    [req("to", Jid, "the contact's bare JID")]
);

action!(
    /// Whether the conversation with `to` is encrypted.
    Status = "encryption_status", ConversationArgs => EncryptionState,
    "Whether the conversation with a contact is encrypted, and with which OMEMO version",
    [req("to", Jid, "the contact's bare JID")],
    no_session
);

action!(
    /// Fingerprints: our own device's (no `jid`), or a contact's devices'.
    Fingerprint = "omemo_fingerprint", FingerprintArgs => Vec<Device>,
    "OMEMO fingerprints: our own device's, or those of a contact's devices",
    [opt("jid", Jid, "the contact (none: our own device)")]
);

action!(
    /// A contact's OMEMO devices (fetched anew), with fingerprints and trust.
    Devices = "omemo_devices", DevicesArgs => Vec<Device>,
    "A contact's OMEMO devices (fetched from its server), with their fingerprints and trust",
    [req("jid", Jid, "the contact's bare JID (ours: our other devices)")]
);

action!(
    /// Trusts a contact's identity key, as verified: from now on new keys of the
    /// contact are not trusted blindly. Answers the contact's devices.
    Trust = "omemo_trust", TrustArgs => Vec<Device>,
    "Marks a contact's OMEMO key as verified (compare the fingerprint out of band); answers its devices",
    [
        req("jid", Jid, "the contact's bare JID"),
        req("fingerprint", String, "the key's fingerprint (64 hex digits, spaces allowed)"),
    ]
);

action!(
    /// Distrusts a contact's identity key: its devices never get keys again.
    Distrust = "omemo_distrust", TrustArgs => Vec<Device>,
    "Distrusts a contact's OMEMO key: its devices never receive message keys; answers its devices",
    [
        req("jid", Jid, "the contact's bare JID"),
        req("fingerprint", String, "the key's fingerprint (64 hex digits, spaces allowed)"),
    ]
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![
        info::<Start>(),
        info::<Stop>(),
        info::<Status>(),
        info::<Fingerprint>(),
        info::<Devices>(),
        info::<Trust>(),
        info::<Distrust>(),
    ]
}

/// A key we had not seen, of a contact or of our own account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    pub jid: String,
    pub device_id: u32,
    pub fingerprint: String,
    /// `blind` (encrypted to) or `undecided` (not encrypted to until trusted).
    pub trust: String,
}

signal!(
    /// A new identity key appeared; `undecided` ones wait for the user's trust.
    NewKeySeen = "omemo_new_key", NewKey,
    "a new OMEMO key of an account: {\"jid\", \"device_id\", \"fingerprint\", \"trust\": blind|undecided (undecided: not encrypted to until trusted)}"
);

/// A message that could not be decrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undecryptable {
    /// The message's id.
    pub id: String,
    /// The sender's full JID.
    pub from: String,
    /// Why: `no session`, `not for this device`, …
    pub reason: String,
}

signal!(
    /// An encrypted message could not be decrypted; it is stored with a placeholder
    /// body and `extra.decryption_error`.
    DecryptionFailed = "omemo_decryption_failed", Undecryptable,
    "an OMEMO message could not be decrypted: {\"id\", \"from\", \"reason\"}; it is stored with extra.decryption_error"
);

signal!(
    /// A conversation is encrypted from now on (`encryption_start`, or `message send
    /// --encrypt`), or with another version than before; payload as
    /// `encryption_start` answers it.
    Started = "encryption_started", EncryptionState,
    "a conversation is encrypted from now on (or with another OMEMO version): {\"to\", \"encrypted\": true, \"namespace\"}"
);

signal!(
    /// A conversation is no longer encrypted (`encryption_stop`); `namespace`: the
    /// version it was encrypted with.
    Stopped = "encryption_stopped", EncryptionState,
    "a conversation is no longer encrypted: {\"to\", \"encrypted\": false, \"namespace\": the version it was encrypted with}"
);

/// A fingerprint in eight groups of eight hex digits, as clients display it.
pub fn group(fingerprint: &str) -> String {
    fingerprint
        .as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
