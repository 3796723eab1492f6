//! Who a contact (or the account) is: avatars (XEP-0084, with XEP-0153 and vcard-temp
//! for clients that only have those), the vCard (XEP-0054) and the nickname a
//! contact chose for itself (XEP-0172).
//!
//! Avatars are files: a frontend gets a path to perchd's copy (named by the image's
//! SHA-1, as the XEPs name it), on the same machine, rather than the bytes over
//! D-Bus; `perch avatar get -o PATH` copies it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::signals::signal;
use crate::{ActionInfo, action, info};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarSetArgs {
    /// An image file on perchd's machine (PNG, JPEG, GIF or WebP).
    pub path: String,
}

/// An avatar as kept: its id (the SHA-1 of the image, hex), type and size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Avatar {
    /// The bare JID whose avatar it is.
    pub jid: String,
    /// The SHA-1 of the image, hex (the XEPs' id).
    pub hash: String,
    pub media_type: String,
    pub bytes: u64,
    /// perchd's copy of the image.
    pub path: String,
}

action!(
    /// Publishes the account's avatar (XEP-0084, open to anyone), from an image file on
    /// perchd's machine; answers it as kept.
    AvatarSet = "avatar_set", AvatarSetArgs => Avatar,
    "Publishes the account's avatar (XEP-0084) from an image file (PNG, JPEG, GIF or WebP, at most 1 MiB)",
    [req("path", String, "the image file, on perchd's machine")]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarGetArgs {
    /// A bare JID (ours for our own avatar).
    pub jid: String,
    /// Ask the network even when a copy is kept.
    #[serde(default)]
    pub refresh: bool,
}

action!(
    /// A contact's (or our) avatar: the copy kept, else fetched (XEP-0084, then
    /// vcard-temp); `null` when it has none.
    AvatarGet = "avatar_get", AvatarGetArgs => Option<Avatar>,
    "A contact's avatar: the copy kept, else fetched (XEP-0084, then vcard-temp); null when there is none",
    [
        req("jid", Jid, "whose avatar (bare JID)"),
        opt("refresh", Boolean, "ask the network even when a copy is kept").or("false"),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcardGetArgs {
    /// Whose vCard; none: the account's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
}

action!(
    /// A vCard (XEP-0054, vcard-temp) as `{FIELD: text}` (FN, NICKNAME, EMAIL, URL, DESC,
    /// BDAY, …; PHOTO as `{type, hash}`).
    VcardGet = "vcard_get", VcardGetArgs => Value,
    "A vCard (vcard-temp, XEP-0054) as {FIELD: text} (FN, NICKNAME, EMAIL, URL, DESC, BDAY…; PHOTO as {type, hash}); {} when there is none",
    [opt("jid", Jid, "whose vCard (default: the account's own)")]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcardSetArgs {
    /// The fields to set, `{FIELD: text}` ("" removes one); the others stay.
    pub fields: serde_json::Map<String, Value>,
}

action!(
    /// Changes fields of the account's vCard (the others, the photo too, stay); answers
    /// the vCard after it.
    VcardSet = "vcard_set", VcardSetArgs => Value,
    "Changes fields of the account's vCard (vcard-temp): {FIELD: text}, \"\" removes one; the others stay. Answers the vCard",
    [req("fields", Object, "{FIELD: text}, e.g. {\"FN\": \"Alice\", \"URL\": \"https://…\"}")]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NickSetArgs {
    /// The nickname to publish; "" retracts it.
    pub nick: String,
}

/// A JID's own nickname (XEP-0172), as kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nickname {
    /// The bare JID whose nickname it is.
    pub jid: String,
    /// `None`: it published none (or retracted it).
    pub nick: Option<String>,
}

action!(
    /// Publishes the account's nickname (XEP-0172, over PEP, open to anyone); it is
    /// also sent in our subscription requests. `""` retracts it.
    NickSet = "nick_set", NickSetArgs => Nickname,
    "Publishes the account's nickname (XEP-0172, PEP); \"\" retracts it. It goes with our subscription requests too",
    [req("nick", String, "the nickname (\"\": none)")]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NickGetArgs {
    /// A bare JID; none: the account's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jid: Option<String>,
    /// Ask the network even when a nickname is kept.
    #[serde(default)]
    pub refresh: bool,
}

action!(
    /// A contact's (or our) nickname as it published it (XEP-0172): the one kept
    /// (from its PEP notifications or its subscription request; offline too), else
    /// fetched.
    NickGet = "nick_get", NickGetArgs => Nickname,
    "A JID's own nickname (XEP-0172): the one kept, else fetched from its PEP node; nick is null when it has none",
    [
        opt("jid", Jid, "whose nickname (default: the account's own)"),
        opt("refresh", Boolean, "ask the network even when one is kept").or("false"),
    ],
    no_session
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![
        info::<AvatarSet>(),
        info::<AvatarGet>(),
        info::<VcardGet>(),
        info::<VcardSet>(),
        info::<NickSet>(),
        info::<NickGet>(),
    ]
}

/// A contact's avatar changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvatarChange {
    pub jid: String,
    /// `None`: the avatar was removed.
    pub avatar: Option<Avatar>,
}

signal!(
    /// A contact's (or our own, from another client) avatar changed, or was removed.
    AvatarChanged = "avatar_changed", AvatarChange,
    "an avatar changed: {\"jid\": bare JID, \"avatar\": {jid, hash, media_type, bytes, path} or null (removed)}"
);

signal!(
    /// A contact's (or our own, from another client) nickname changed (XEP-0172).
    NickChanged = "nick_changed", Nickname,
    "a nickname (XEP-0172) changed: {\"jid\": bare JID, \"nick\": the nickname or null (retracted)}"
);
