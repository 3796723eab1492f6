//! Group chats (XEP-0045). `room` is always a room's bare JID (room@service).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decl::{opt, req};
use crate::{ActionInfo, NoArgs, ParamDecl, ParamType, action, info};

const ROOM: ParamDecl = req("room", ParamType::Jid, "the room's bare JID (room@service)");
const OCCUPANT: ParamDecl = req("nick", ParamType::String, "the occupant's nick");
const TEXT: ParamDecl = req("text", ParamType::String, "the message");
const REASON: ParamDecl = opt("reason", ParamType::String, "why");

/// A room only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomArgs {
    pub room: String,
}

/// A room and our nick (or an occupant's) in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomNick {
    pub room: String,
    pub nick: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinArgs {
    pub room: String,
    /// Default: the account's local part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

action!(
    /// Joins a room (creating an instant room) and bookmarks it with autojoin:
    /// `{room, nick, created, archived, subject, occupants}`.
    Join = "muc_join", JoinArgs => Value,
    "Joins a room (created as an instant room when it does not exist) and bookmarks it with autojoin",
    [
        ROOM,
        opt("nick", String, "our nick (default: the account's local part)"),
        opt("password", String, "the room's password"),
    ]
);

action!(
    /// Leaves a room; its bookmark stays, without autojoin.
    Leave = "muc_leave", RoomArgs => RoomNick,
    "Leaves a room; its bookmark stays, without autojoin",
    [ROOM]
);

action!(
    /// The rooms of the profile: `[{room, nick, joined, archived, subject, occupants}]`.
    List = "muc_list", NoArgs => Vec<Value>,
    "The rooms of the profile: {room, nick, joined, archived, subject, occupants}",
    []
);

action!(
    /// A joined room's occupants: `{room, nick, joined, subject, occupants: [{nick, jid,
    /// role, affiliation, show, status}], codes}` (`codes`: the status codes of our own
    /// presence when the room let us in: 110, 201, 170…).
    Occupants = "muc_occupants", RoomArgs => Value,
    "A joined room's occupants: {room, nick, subject, occupants: [{nick, jid, role, affiliation, show, status}], codes (the status codes of our own presence when the room let us in)}",
    [ROOM]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SayArgs {
    pub room: String,
    pub text: String,
}

action!(
    /// Sends a message to a room; answers it as stored (a history entry).
    Say = "muc_say", SayArgs => Value,
    "Sends a message to a room (through the outbox); answers it as stored",
    [ROOM, TEXT]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PmArgs {
    pub room: String,
    pub nick: String,
    pub text: String,
}

action!(
    /// Sends a private message to an occupant; answers it as stored.
    Pm = "muc_pm", PmArgs => Value,
    "Sends a private message to an occupant (filed under room/nick)",
    [ROOM, OCCUPANT, TEXT]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSubject {
    pub room: String,
    pub subject: String,
}

action!(
    /// Sets a room's subject.
    Subject = "muc_subject", RoomSubject => RoomSubject,
    "Sets a room's subject",
    [ROOM, req("subject", String, "the new subject")]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NickChanged {
    pub room: String,
    pub old: String,
    pub nick: String,
}

action!(
    /// Changes our nick in a room; waits until the room accepts it.
    Nick = "muc_nick", RoomNick => NickChanged,
    "Changes our nick in a room; waits until the room accepts it",
    [ROOM, req("nick", String, "the new nick")]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickArgs {
    pub room: String,
    pub nick: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

action!(
    /// Kicks an occupant (we must be a moderator).
    Kick = "muc_kick", KickArgs => RoomNick,
    "Kicks an occupant (we must be a moderator)",
    [ROOM, OCCUPANT, REASON]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BanArgs {
    pub room: String,
    /// The account to ban (bare JID).
    pub jid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Banned {
    pub room: String,
    pub jid: String,
}

action!(
    /// Bans an account from the room (we must be an admin or owner).
    Ban = "muc_ban", BanArgs => Banned,
    "Bans an account from the room (we must be an admin or owner)",
    [ROOM, req("jid", Jid, "the account to ban (bare JID)"), REASON]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestroyArgs {
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

action!(
    /// Destroys the room (we must be its owner).
    Destroy = "muc_destroy", DestroyArgs => RoomArgs,
    "Destroys the room (we must be its owner); its occupants are told",
    [ROOM, REASON]
);

action!(
    /// The account's bookmarked rooms (XEP-0402): `[{room, name, autojoin, nick}]`.
    Bookmarks = "muc_bookmarks", NoArgs => Vec<Value>,
    "The account's bookmarked rooms (XEP-0402): [{room, name, autojoin, nick}]",
    []
);

action!(
    /// A room's configuration (we must be its owner): the form as `{type, form_type,
    /// values: {var: value}, fields: [{var, type, label, value, options}]}`.
    Config = "muc_config", RoomArgs => Value,
    "A room's configuration (we must be its owner): {type, form_type, values: {var: value}, fields: [{var, type, label, value, options}]}",
    [ROOM]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigureArgs {
    pub room: String,
    /// The fields to change, `{var: value}` (a list for several values); the
    /// others keep the room's values.
    pub values: serde_json::Map<String, Value>,
}

action!(
    /// Changes a room's configuration (we must be its owner); answers the
    /// configuration after the change, as [`Config`] does.
    Configure = "muc_configure", ConfigureArgs => Value,
    "Changes a room's configuration (we must be its owner), e.g. {\"muc#roomconfig_roomsecret\": \"pw\", \"muc#roomconfig_passwordprotectedroom\": true}; answers the configuration after the change",
    [
        ROOM,
        req("values", Object, "the fields to change: {var: value or [values]}"),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteArgs {
    pub room: String,
    /// Who is invited (bare JID).
    pub jid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Default: the password we joined the room with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// An invitation sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invited {
    pub room: String,
    pub jid: String,
}

action!(
    /// Invites a contact to a room (XEP-0249 direct invitation, with the room's
    /// password when it has one).
    Invite = "muc_invite", InviteArgs => Invited,
    "Invites a contact to a room (XEP-0249 direct invitation, carrying the password we joined with unless one is given)",
    [
        ROOM,
        req("jid", Jid, "who is invited (bare JID)"),
        REASON,
        opt("password", String, "the room's password (default: the one we joined with)"),
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookmarkArgs {
    pub room: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<String>,
    #[serde(default)]
    pub autojoin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

action!(
    /// Adds a room to the account's bookmarks (XEP-0402), or changes its bookmark;
    /// what another client put in it stays. Nothing is joined.
    BookmarkSet = "muc_bookmark_set", BookmarkArgs => RoomArgs,
    "Adds a room to the account's bookmarks (XEP-0402) or changes its bookmark; nothing is joined",
    [
        ROOM,
        opt("name", String, "a name for the room"),
        opt("nick", String, "our nick in it"),
        opt("autojoin", Boolean, "join it at each connection").or("false"),
        opt("password", String, "the room's password"),
    ]
);

action!(
    /// Removes a room from the account's bookmarks; a room not bookmarked is no
    /// error.
    BookmarkRemove = "muc_bookmark_remove", RoomArgs => RoomArgs,
    "Removes a room from the account's bookmarks (XEP-0402); a room not bookmarked is no error",
    [ROOM]
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![
        info::<Join>(),
        info::<Leave>(),
        info::<List>(),
        info::<Occupants>(),
        info::<Say>(),
        info::<Pm>(),
        info::<Subject>(),
        info::<Nick>(),
        info::<Kick>(),
        info::<Ban>(),
        info::<Destroy>(),
        info::<Bookmarks>(),
        info::<Config>(),
        info::<Configure>(),
        info::<Invite>(),
        info::<BookmarkSet>(),
        info::<BookmarkRemove>(),
    ]
}
