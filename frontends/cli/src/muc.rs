//! `perch muc …`: group chats (XEP-0045), each command one `ActionRun("muc_…")`.
//!
//! A room's messages are in the history under the room's JID: `perch message
//! history -p NAME ROOM` reads them.

use clap::Subcommand;
use serde_json::{Value, json};

use crate::ProfileArg;
use crate::client::{CliError, Client};
use crate::output;

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
}

fn clean(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub async fn run(cmd: &MucCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let call = |profile: &ProfileArg, action: &'static str, args: Value| {
        let profile = profile.profile.clone();
        async move {
            crate::client::json(
                client
                    .action_run(&profile, action, &clean(args).to_string())
                    .await?,
            )
        }
    };
    let r = match cmd {
        MucCommand::Join {
            profile,
            room,
            nick,
            password,
        } => {
            let r = call(
                profile,
                "muc_join",
                json!({"room": room, "nick": nick, "password": password}),
            )
            .await?;
            if !json_out {
                let created = if r["created"] == true {
                    " (created)"
                } else {
                    ""
                };
                println!("joined {} as {}{created}", s(&r["room"]), s(&r["nick"]));
            }
            r
        }
        MucCommand::Leave { profile, room } => {
            call(profile, "muc_leave", json!({"room": room})).await?
        }
        MucCommand::List(profile) => {
            let r = call(profile, "muc_list", json!({})).await?;
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
            r
        }
        MucCommand::Occupants { profile, room } => {
            let r = call(profile, "muc_occupants", json!({"room": room})).await?;
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
            r
        }
        MucCommand::Say {
            profile,
            room,
            text,
        } => call(profile, "muc_say", json!({"room": room, "text": text})).await?,
        MucCommand::Subject {
            profile,
            room,
            value,
        } => {
            call(
                profile,
                "muc_subject",
                json!({"room": room, "subject": value}),
            )
            .await?
        }
        MucCommand::Nick {
            profile,
            room,
            value,
        } => call(profile, "muc_nick", json!({"room": room, "nick": value})).await?,
        MucCommand::Pm {
            profile,
            room,
            nick,
            text,
        } => {
            call(
                profile,
                "muc_pm",
                json!({"room": room, "nick": nick, "text": text}),
            )
            .await?
        }
        MucCommand::Kick {
            profile,
            room,
            nick,
            reason,
        } => {
            call(
                profile,
                "muc_kick",
                json!({"room": room, "nick": nick, "reason": reason}),
            )
            .await?
        }
        MucCommand::Ban {
            profile,
            room,
            jid,
            reason,
        } => {
            call(
                profile,
                "muc_ban",
                json!({"room": room, "jid": jid, "reason": reason}),
            )
            .await?
        }
        MucCommand::Destroy {
            profile,
            room,
            reason,
        } => {
            call(
                profile,
                "muc_destroy",
                json!({"room": room, "reason": reason}),
            )
            .await?
        }
        MucCommand::Bookmarks(profile) => {
            let r = call(profile, "muc_bookmarks", json!({})).await?;
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
            r
        }
    };
    if json_out {
        output::json(&r);
    }
    Ok(())
}
