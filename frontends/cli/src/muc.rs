//! `perch muc …`: group chats (XEP-0045), each command one typed `muc_…` action
//! (`perch_actions::muc`).
//!
//! A room's messages are in the history under the room's JID: `perch message
//! history -p NAME ROOM` reads them.

use clap::Subcommand;
use perch_client::Action;
use perch_client::actions::{NoArgs, messages, muc};
use serde_json::Value;

use crate::ProfileArg;
use crate::client::{CliError, Client};
use crate::output;
use crate::pubsub::{Fields, form_lines};

#[derive(Debug, Subcommand)]
pub enum MucCommand {
    /// Join a room (created when it does not exist) and bookmark it with autojoin.
    Join {
        #[command(flatten)]
        profile: ProfileArg,
        /// The room's JID (room@service).
        room: String,
        /// Our nick (default: the account's local part).
        #[arg(long)]
        nick: Option<String>,
        /// The room's password.
        #[arg(long)]
        password: Option<String>,
    },
    /// Leave a room (its bookmark stays, without autojoin).
    Leave {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
    },
    /// The profile's rooms.
    List(ProfileArg),
    /// A room's occupants with their role and affiliation.
    Occupants {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
    },
    /// Send a message to a room.
    Say {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        text: String,
    },
    /// Set a room's subject.
    Subject {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        value: String,
    },
    /// Change our nick in a room.
    Nick {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        value: String,
    },
    /// Send a private message to an occupant.
    Pm {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        nick: String,
        text: String,
    },
    /// Kick an occupant (as a moderator).
    Kick {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        nick: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Retract an occupant's message for everyone (XEP-0425, as a moderator).
    Moderate {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        /// The message's id (`perch message history --json`; the room's stanza-id).
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Ban an account from the room (as an admin or owner).
    Ban {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        jid: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Destroy the room (as its owner).
    Destroy {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// The account's bookmarked rooms (XEP-0402).
    Bookmarks(ProfileArg),
    /// Show a room's configuration, or change fields of it (as its owner):
    /// -f muc#roomconfig_roomsecret PW -f muc#roomconfig_passwordprotectedroom 1
    Config {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Invite a contact to a room we are in (XEP-0249; the room's password goes
    /// with it).
    Invite {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        jid: String,
        #[arg(long)]
        reason: Option<String>,
        /// The room's password (default: the one we joined with).
        #[arg(long)]
        password: Option<String>,
    },
    /// Bookmark a room (XEP-0402), or change its bookmark; nothing is joined.
    Bookmark {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        nick: Option<String>,
        /// Join it at each connection.
        #[arg(long)]
        autojoin: bool,
        #[arg(long)]
        password: Option<String>,
    },
    /// Remove a room's bookmark.
    Unbookmark {
        #[command(flatten)]
        profile: ProfileArg,
        room: String,
    },
}

/// Runs action `A`; its result as JSON, to print.
async fn call<A: Action>(
    client: &Client,
    profile: &ProfileArg,
    args: A::Args,
) -> Result<Value, CliError> {
    let out = client.action::<A>(&profile.profile, &args).await?;
    Ok(serde_json::to_value(&out).unwrap_or(Value::Null))
}

fn room(room: &str) -> muc::RoomArgs {
    muc::RoomArgs {
        room: room.to_owned(),
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub async fn run(cmd: &MucCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let r = match cmd {
        MucCommand::Join {
            profile,
            room,
            nick,
            password,
        } => {
            let args = muc::JoinArgs {
                room: room.clone(),
                nick: nick.clone(),
                password: password.clone(),
            };
            join(client, profile, args, json_out).await?
        }
        MucCommand::Leave { profile, room } => {
            call::<muc::Leave>(client, profile, self::room(room)).await?
        }
        MucCommand::List(profile) => list(client, profile, json_out).await?,
        MucCommand::Occupants { profile, room } => {
            occupants(client, profile, room, json_out).await?
        }
        MucCommand::Say { .. }
        | MucCommand::Subject { .. }
        | MucCommand::Nick { .. }
        | MucCommand::Pm { .. } => speak(client, cmd).await?,
        MucCommand::Kick {
            profile,
            room,
            nick,
            reason,
        } => kick(client, profile, room, nick, reason.as_deref()).await?,
        MucCommand::Ban {
            profile,
            room,
            jid,
            reason,
        } => ban(client, profile, room, jid, reason.as_deref()).await?,
        MucCommand::Moderate {
            profile,
            room,
            id,
            reason,
        } => moderate(client, profile, room, id, reason.as_deref()).await?,
        MucCommand::Destroy {
            profile,
            room,
            reason,
        } => destroy(client, profile, room, reason.as_deref()).await?,
        MucCommand::Bookmarks(profile) => bookmarks(client, profile, json_out).await?,
        MucCommand::Config {
            profile,
            room,
            fields,
        } => config(client, profile, room, fields, json_out).await?,
        MucCommand::Invite { .. } | MucCommand::Bookmark { .. } | MucCommand::Unbookmark { .. } => {
            invite_or_bookmark(client, cmd).await?
        }
    };
    if json_out {
        output::json(&r);
    }
    Ok(())
}

/// The commands that send a room some text: a message, a subject, a nick.
async fn speak(client: &Client, cmd: &MucCommand) -> Result<Value, CliError> {
    match cmd {
        MucCommand::Say {
            profile,
            room,
            text,
        } => {
            let args = muc::SayArgs {
                room: room.clone(),
                text: text.clone(),
            };
            call::<muc::Say>(client, profile, args).await
        }
        MucCommand::Subject {
            profile,
            room,
            value,
        } => {
            let args = muc::RoomSubject {
                room: room.clone(),
                subject: value.clone(),
            };
            call::<muc::Subject>(client, profile, args).await
        }
        MucCommand::Nick {
            profile,
            room,
            value,
        } => {
            let args = muc::RoomNick {
                room: room.clone(),
                nick: value.clone(),
            };
            call::<muc::Nick>(client, profile, args).await
        }
        MucCommand::Pm {
            profile,
            room,
            nick,
            text,
        } => {
            let args = muc::PmArgs {
                room: room.clone(),
                nick: nick.clone(),
                text: text.clone(),
            };
            call::<muc::Pm>(client, profile, args).await
        }
        _ => Ok(Value::Null),
    }
}

async fn join(
    client: &Client,
    profile: &ProfileArg,
    args: muc::JoinArgs,
    json_out: bool,
) -> Result<Value, CliError> {
    let r = call::<muc::Join>(client, profile, args).await?;
    if !json_out {
        let created = if r["created"] == true {
            " (created)"
        } else {
            ""
        };
        println!("joined {} as {}{created}", s(&r["room"]), s(&r["nick"]));
    }
    Ok(r)
}

async fn list(client: &Client, profile: &ProfileArg, json_out: bool) -> Result<Value, CliError> {
    let r = call::<muc::List>(client, profile, NoArgs {}).await?;
    if !json_out {
        for room in r.as_array().into_iter().flatten() {
            let state = if room["joined"] == true {
                "joined"
            } else {
                "joining"
            };
            println!(
                "{}\t{}\t{state}\t{} occupants\t{}",
                s(&room["room"]),
                s(&room["nick"]),
                room["occupants"],
                s(&room["subject"])
            );
        }
    }
    Ok(r)
}

async fn occupants(
    client: &Client,
    profile: &ProfileArg,
    room: &str,
    json_out: bool,
) -> Result<Value, CliError> {
    let r = call::<muc::Occupants>(client, profile, self::room(room)).await?;
    if !json_out {
        for o in r["occupants"].as_array().into_iter().flatten() {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                s(&o["nick"]),
                s(&o["role"]),
                s(&o["affiliation"]),
                s(&o["show"]),
                s(&o["jid"])
            );
        }
    }
    Ok(r)
}

async fn config(
    client: &Client,
    profile: &ProfileArg,
    room: &str,
    fields: &Fields,
    json_out: bool,
) -> Result<Value, CliError> {
    let r = match fields.to_object() {
        None => call::<muc::Config>(client, profile, self::room(room)).await?,
        Some(values) => {
            let args = muc::ConfigureArgs {
                room: room.to_owned(),
                values,
            };
            call::<muc::Configure>(client, profile, args).await?
        }
    };
    if !json_out {
        println!("{}", form_lines(&r));
    }
    Ok(r)
}

/// Invitations and bookmarks: what tells others or our other clients of a room.
async fn invite_or_bookmark(client: &Client, cmd: &MucCommand) -> Result<Value, CliError> {
    match cmd {
        MucCommand::Invite {
            profile,
            room,
            jid,
            reason,
            password,
        } => {
            let args = muc::InviteArgs {
                room: room.clone(),
                jid: jid.clone(),
                reason: reason.clone(),
                password: password.clone(),
            };
            call::<muc::Invite>(client, profile, args).await
        }
        MucCommand::Bookmark {
            profile,
            room,
            name,
            nick,
            autojoin,
            password,
        } => {
            let args = muc::BookmarkArgs {
                room: room.clone(),
                name: name.clone(),
                nick: nick.clone(),
                autojoin: *autojoin,
                password: password.clone(),
            };
            call::<muc::BookmarkSet>(client, profile, args).await
        }
        MucCommand::Unbookmark { profile, room } => {
            call::<muc::BookmarkRemove>(client, profile, self::room(room)).await
        }
        _ => Ok(Value::Null),
    }
}

async fn kick(
    client: &Client,
    profile: &ProfileArg,
    room: &str,
    nick: &str,
    reason: Option<&str>,
) -> Result<Value, CliError> {
    let args = muc::KickArgs {
        room: room.to_owned(),
        nick: nick.to_owned(),
        reason: reason.map(str::to_owned),
    };
    call::<muc::Kick>(client, profile, args).await
}

async fn moderate(
    client: &Client,
    profile: &ProfileArg,
    room: &str,
    id: &str,
    reason: Option<&str>,
) -> Result<Value, CliError> {
    let args = messages::MucModerateArgs {
        room: room.to_owned(),
        id: id.to_owned(),
        reason: reason.map(str::to_owned),
    };
    call::<messages::MucModerate>(client, profile, args).await
}

async fn ban(
    client: &Client,
    profile: &ProfileArg,
    room: &str,
    jid: &str,
    reason: Option<&str>,
) -> Result<Value, CliError> {
    let args = muc::BanArgs {
        room: room.to_owned(),
        jid: jid.to_owned(),
        reason: reason.map(str::to_owned),
    };
    call::<muc::Ban>(client, profile, args).await
}

async fn destroy(
    client: &Client,
    profile: &ProfileArg,
    room: &str,
    reason: Option<&str>,
) -> Result<Value, CliError> {
    let args = muc::DestroyArgs {
        room: room.to_owned(),
        reason: reason.map(str::to_owned),
    };
    call::<muc::Destroy>(client, profile, args).await
}

async fn bookmarks(
    client: &Client,
    profile: &ProfileArg,
    json_out: bool,
) -> Result<Value, CliError> {
    let r = call::<muc::Bookmarks>(client, profile, NoArgs {}).await?;
    if !json_out {
        for b in r.as_array().into_iter().flatten() {
            let auto = if b["autojoin"] == true {
                "autojoin"
            } else {
                ""
            };
            println!("{}\t{}\t{auto}", s(&b["room"]), s(&b["nick"]));
        }
    }
    Ok(r)
}
