//! 0.9's text commands of a room: a `groupchat` message whose text starts with one
//! of `/nick`, `/join`, `/leave`, `/part`, `/title`, `/topic`, `/kick`, `/ban` is
//! that command, run instead of sent, as libervia-tui users type them in a room.
//!
//! Why in the bridge: 0.9's frontends have no other way to kick or ban (these are
//! not methods of its bridge), and a command sent as text would reach every
//! occupant. Only these room commands are read; any other text, `/me` included, goes
//! out as it is, and `//` at the start is a `/` (0.9's escape).

use perch_actions::muc;
use serde_json::json;

use super::actions;
use super::context::{CORE_INTERFACE, Lib, PLUGIN_INTERFACE};
use super::errors::LibError;
use super::reply::Map;

/// What to do with a room message's text.
#[derive(Debug, PartialEq, Eq)]
pub enum Text<'a> {
    /// Send this text.
    Send(&'a str),
    /// Run this command with these arguments (the rest of the line, trimmed).
    Command(&'a str, &'a str),
}

const COMMANDS: &[&str] = &[
    "nick", "join", "leave", "part", "title", "topic", "kick", "ban",
];

/// Reads a room message's text.
pub fn read(text: &str) -> Text<'_> {
    if text.starts_with("//") {
        return Text::Send(&text[1..]);
    }
    let Some(line) = text.strip_prefix('/') else {
        return Text::Send(text);
    };
    let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    if COMMANDS.contains(&name) {
        Text::Command(name, rest.trim())
    } else {
        Text::Send(text)
    }
}

/// Runs a room command typed in `room`.
pub async fn run(
    lib: &Lib,
    profile: &str,
    room: &str,
    name: &str,
    args: &str,
) -> Result<(), LibError> {
    let room_args = |r: &str| muc::RoomArgs { room: r.to_owned() };
    match name {
        "nick" if !args.is_empty() => {
            let a = muc::RoomNick {
                room: room.to_owned(),
                nick: args.to_owned(),
            };
            lib.daemon.action::<muc::Nick>(profile, &a).await?;
        }
        "join" if !args.is_empty() => join(lib, profile, room, args).await?,
        "leave" | "part" => {
            let target = if args.is_empty() {
                room.to_owned()
            } else {
                room_jid(args, service_of(room))
            };
            lib.daemon
                .action::<muc::Leave>(profile, &room_args(&target))
                .await?;
        }
        "title" | "topic" if !args.is_empty() => {
            let a = muc::RoomSubject {
                room: room.to_owned(),
                subject: args.to_owned(),
            };
            lib.daemon.action::<muc::Subject>(profile, &a).await?;
        }
        "kick" => kick(lib, profile, room, args).await?,
        "ban" => ban(lib, profile, room, args).await?,
        _ => {}
    }
    Ok(())
}

/// `/join ROOM`: `name`, `name@` and `name@service` (on this room's service unless
/// given), with our nick in this room.
async fn join(lib: &Lib, profile: &str, room: &str, arg: &str) -> Result<(), LibError> {
    let target = room_jid(arg, service_of(room));
    let occupants = lib
        .daemon
        .action::<muc::Occupants>(
            profile,
            &muc::RoomArgs {
                room: room.to_owned(),
            },
        )
        .await?;
    let nick = occupants["nick"].as_str().map(str::to_owned);
    lib.emit(
        PLUGIN_INTERFACE,
        "mucRoomPrepareJoin",
        &(target.clone(), profile.to_owned()),
    )
    .await;
    let a = muc::JoinArgs {
        room: target,
        nick,
        password: None,
    };
    lib.daemon.action::<muc::Join>(profile, &a).await?;
    Ok(())
}

/// `/kick NICK [REASON]`, told back as 0.9 tells it.
async fn kick(lib: &Lib, profile: &str, room: &str, args: &str) -> Result<(), LibError> {
    let (nick, reason) = split_reason(args);
    let occupants = lib
        .daemon
        .action::<muc::Occupants>(
            profile,
            &muc::RoomArgs {
                room: room.to_owned(),
            },
        )
        .await?;
    let present = occupants["occupants"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["nick"] == nick);
    if nick.is_empty() || !present {
        feedback(
            lib,
            profile,
            room,
            "You must provide a member's nick to kick.",
        )
        .await;
        return Ok(());
    }
    let a = muc::KickArgs {
        room: room.to_owned(),
        nick: nick.to_owned(),
        reason: reason.map(str::to_owned),
    };
    lib.daemon.action::<muc::Kick>(profile, &a).await?;
    feedback(
        lib,
        profile,
        room,
        &with_reason(format!("You have kicked {nick}"), reason),
    )
    .await;
    Ok(())
}

/// `/ban JID [REASON]`, told back as 0.9 tells it.
async fn ban(lib: &Lib, profile: &str, room: &str, args: &str) -> Result<(), LibError> {
    let (who, reason) = split_reason(args);
    let jid = crate::daemon::parse_jid(who)
        .ok()
        .filter(|j| j.node().is_some())
        .map(|j| j.to_bare().to_string());
    let Some(jid) = jid else {
        let text = "You must provide a valid JID to ban, like in '/ban contact@example.net'";
        feedback(lib, profile, room, text).await;
        return Ok(());
    };
    let a = muc::BanArgs {
        room: room.to_owned(),
        jid: jid.clone(),
        reason: reason.map(str::to_owned),
    };
    lib.daemon.action::<muc::Ban>(profile, &a).await?;
    feedback(
        lib,
        profile,
        room,
        &with_reason(format!("You have banned {jid}"), reason),
    )
    .await;
    Ok(())
}

fn split_reason(args: &str) -> (&str, Option<&str>) {
    match args.split_once(char::is_whitespace) {
        Some((first, rest)) if !rest.trim().is_empty() => (first, Some(rest.trim())),
        Some((first, _)) => (first, None),
        None => (args, None),
    }
}

fn with_reason(mut text: String, reason: Option<&str>) -> String {
    if let Some(r) = reason {
        text.push_str(" for the following reason: ");
        text.push_str(r);
    }
    text
}

fn service_of(room: &str) -> &str {
    room.rsplit('@').next().unwrap_or_default()
}

/// 0.9's room shortcuts: `name` and `name@` are on `service`.
fn room_jid(arg: &str, service: &str) -> String {
    match arg.matches('@').count() {
        1 if !arg.ends_with('@') => arg.to_owned(),
        1 => format!("{arg}{service}"),
        _ => format!("{arg}@{service}"),
    }
}

/// A command's answer to the user: an `info` `messageNew` from the room (0.9's
/// `TEXT_CMD`).
async fn feedback(lib: &Lib, profile: &str, room: &str, text: &str) {
    let mut body = Map::new();
    body.insert(String::new(), text.to_owned());
    // Integer microseconds to float seconds: exact enough for a timestamp.
    #[allow(clippy::cast_precision_loss)]
    let now = crate::time::now_micros() as f64 / 1_000_000.0;
    lib.emit(
        CORE_INTERFACE,
        "messageNew",
        &(
            actions::uuid4(),
            now,
            room.to_owned(),
            room.to_owned(),
            body,
            Map::new(),
            "info".to_owned(),
            json!({"info_type": "TEXT_CMD"}).to_string(),
            profile.to_owned(),
        ),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_commands_are_read_the_rest_is_sent() {
        assert_eq!(read("/kick bob spam"), Text::Command("kick", "bob spam"));
        assert_eq!(read("/leave"), Text::Command("leave", ""));
        assert_eq!(read("/me waves"), Text::Send("/me waves"));
        assert_eq!(
            read("//kick is a command"),
            Text::Send("/kick is a command")
        );
        assert_eq!(read("hello /kick"), Text::Send("hello /kick"));
    }

    #[test]
    fn shortcuts_and_reasons_as_0_9() {
        assert_eq!(room_jid("r", "conf.x"), "r@conf.x");
        assert_eq!(room_jid("r@", "conf.x"), "r@conf.x");
        assert_eq!(room_jid("r@other.x", "conf.x"), "r@other.x");
        assert_eq!(split_reason("bob too  loud "), ("bob", Some("too  loud")));
        assert_eq!(split_reason("bob"), ("bob", None));
        assert_eq!(
            with_reason("You have kicked bob".into(), Some("spam")),
            "You have kicked bob for the following reason: spam"
        );
    }
}
