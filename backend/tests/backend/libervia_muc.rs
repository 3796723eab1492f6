//! Group chats through perchd's Libervia 0.9 bridge (`doc/libervia-compat.rst`), on
//! the harness's Prosody and its MUC component: the `muc*` methods of the plugin
//! interface with their replies and errors, and the signals Libervia's frontends
//! build their room widgets from (`mucRoomPrepareJoin`, `mucRoomJoined`, room
//! messages and occupants as `messageNew`, `mucRoomNewSubject`,
//! `mucRoomUserChangedNick`, `mucRoomLeft`); and the room's text commands
//! (`/title`, `/kick`…) typed as messages.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use futures::StreamExt;
use perch_backend::libervia;
use perch_tests::{ALICE_PW, BOB_PW, MUC_DOMAIN, Perchd, Prosody, wait_until};
use zbus::Connection;
use zbus::message::Message;

use super::libervia_bridge::{call, error_of};

const CORE: &str = libervia::CORE_INTERFACE;
const PLUGIN: &str = libervia::PLUGIN_INTERFACE;

type Dict = HashMap<String, String>;
type Occupants = HashMap<String, Dict>;
type Joined = (bool, String, Occupants, String, String, Vec<String>, String);
type RoomArgs = (String, Occupants, String, String, Vec<String>);
type New = (
    String,
    f64,
    String,
    String,
    Dict,
    Dict,
    String,
    String,
    String,
);

/// The next signal `member` whose body satisfies `pred` (others are skipped).
async fn next_where<T>(
    stream: &mut zbus::MessageStream,
    member: &str,
    pred: impl Fn(&T) -> bool,
) -> Result<T>
where
    T: serde::de::DeserializeOwned + zbus::zvariant::Type,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = tokio::time::timeout_at(deadline, stream.next())
            .await
            .with_context(|| format!("no matching {member} signal"))?
            .context("stream ended")??;
        if m.header().member().is_some_and(|n| n.as_str() == member) {
            let v: T = m
                .body()
                .deserialize()
                .with_context(|| format!("{member}: {:?}", m.body().signature()))?;
            if pred(&v) {
                return Ok(v);
            }
        }
    }
}

async fn next_signal(stream: &mut zbus::MessageStream) -> Result<Message> {
    tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .context("no signal")?
        .context("stream ended")?
        .map_err(Into::into)
}

fn room() -> String {
    format!("lroom@{MUC_DOMAIN}")
}

#[test]
fn libervia_group_chat_methods_and_signals() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start().expect("starting perchd");
    let r = (|| -> Result<()> {
        perchd.create_profile(&prosody, "alice", "alice", ALICE_PW, &[])?;
        perchd.create_profile(&prosody, "bob", "bob", BOB_PW, &[])?;
        wait_until(Duration::from_secs(20), || {
            perchd.bus().name_has_owner(libervia::BUS_NAME)
        })?;
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(scenario(&perchd))
    })();
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", perchd.diagnostics()));
}

async fn scenario(perchd: &Perchd) -> Result<()> {
    let conn = perchd.bus().connection().await?;
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .path(libervia::PATH)
        .build()?;
    let mut signals = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
    let empty = Dict::new();
    for p in ["alice", "bob"] {
        call(&conn, CORE, "connect", &(p, "", &empty)).await?;
    }
    not_joined_yet(&conn).await?;
    services(&conn).await?;
    join_and_announce(&conn, &mut signals).await?;
    talk_in_the_room(&conn, &mut signals).await?;
    subject_nick_and_leave(&conn, &mut signals).await?;
    room_commands(&conn, &mut signals).await?;
    Ok(())
}

/// Before any join: no room, and the room methods say so with Libervia's errors.
async fn not_joined_yet(conn: &Connection) -> Result<()> {
    let m = call(conn, PLUGIN, "mucGetRoomsJoined", &("alice",)).await?;
    ensure!(m.body().deserialize::<Vec<RoomArgs>>()?.is_empty());
    for (method, body) in [
        (
            "mucLeave",
            call(conn, PLUGIN, "mucLeave", &(room(), "alice")).await,
        ),
        (
            "mucNickGet",
            call(conn, PLUGIN, "mucNickGet", &(room(), "alice")).await,
        ),
        (
            "mucOccupantsGet",
            call(conn, PLUGIN, "mucOccupantsGet", &(room(), "alice")).await,
        ),
        (
            "mucSubject",
            call(conn, PLUGIN, "mucSubject", &(room(), "x", "alice")).await,
        ),
        (
            "mucNick",
            call(conn, PLUGIN, "mucNick", &(room(), "x", "alice")).await,
        ),
    ] {
        let (name, text) = error_of(body)?;
        ensure!(
            name == "org.libervia.Libervia.error.sat.core.exceptions.NotFound",
            "{method}: {name}"
        );
        ensure!(
            text == r#"("This room has not been joined", "")"#,
            "{method}: {text}"
        );
    }
    let (name, text) = error_of(
        call(
            conn,
            PLUGIN,
            "mucJoin",
            &("bad room@@x", "", &Dict::new(), "alice"),
        )
        .await,
    )?;
    ensure!(
        name == "org.libervia.Libervia.error.twisted.words.protocols.jabber.jid.InvalidFormat",
        "{name}"
    );
    ensure!(text.contains("Invalid room identifier"), "{text}");
    Ok(())
}

/// The MUC service is found by disco; the default room is 0.9's.
async fn services(conn: &Connection) -> Result<()> {
    let m = call(conn, PLUGIN, "mucGetService", &("", "alice")).await?;
    ensure!(m.body().deserialize::<String>()? == MUC_DOMAIN);
    let m = call(conn, PLUGIN, "mucGetService", &("localhost", "alice")).await?;
    ensure!(m.body().deserialize::<String>()? == MUC_DOMAIN);
    let m = call(conn, PLUGIN, "mucGetDefaultService", &()).await?;
    ensure!(m.body().deserialize::<String>()? == "sat@chat.jabberfr.org");
    let m = call(conn, PLUGIN, "mucGetUniqueRoomName", &("", "alice")).await?;
    let unique = m.body().deserialize::<String>()?;
    ensure!(
        unique.len() == 36 + 1 + MUC_DOMAIN.len() && unique.ends_with(&format!("@{MUC_DOMAIN}")),
        "{unique}"
    );
    Ok(())
}

/// alice joins by the room's short name (so on the service found), creating it; bob
/// joins with her nick and gets `alice_`, as 0.9 retries a taken nick.
async fn join_and_announce(conn: &Connection, signals: &mut zbus::MessageStream) -> Result<()> {
    let m = call(
        conn,
        PLUGIN,
        "mucJoin",
        &("lroom", "", &Dict::new(), "alice"),
    )
    .await?;
    ensure!(m.body().signature().to_string() == "(bsa{sa{ss}}ssass)");
    let (already, r, occupants, nick, subject, statuses, p): Joined = m.body().deserialize()?;
    ensure!(!already && r == room() && nick == "alice" && subject.is_empty() && p == "alice");
    let me = &occupants["alice"];
    ensure!(
        me["nick"] == "alice" && me["role"] == "moderator" && me["affiliation"] == "owner",
        "{occupants:?}"
    );
    ensure!(
        statuses.contains(&"SELF_PRESENCE".to_owned())
            && statuses.contains(&"ROOM_CREATED".to_owned()),
        "{statuses:?}"
    );
    let (r, p): (String, String) = next_where(signals, "mucRoomPrepareJoin", |_| true).await?;
    ensure!(r == room() && p == "alice");
    let (r, occ, nick, _, st, p): (String, Occupants, String, String, Vec<String>, String) =
        next_where(signals, "mucRoomJoined", |_| true).await?;
    ensure!(r == room() && occ.contains_key("alice") && nick == "alice" && p == "alice");
    ensure!(st.contains(&"SELF_PRESENCE".to_owned()), "{st:?}");
    // Joining again: already in, same room.
    let m = call(
        conn,
        PLUGIN,
        "mucJoin",
        &(room(), "", &Dict::new(), "alice"),
    )
    .await?;
    let (already, ..): Joined = m.body().deserialize()?;
    ensure!(already);

    let m = call(
        conn,
        PLUGIN,
        "mucJoin",
        &(room(), "alice", &Dict::new(), "bob"),
    )
    .await?;
    let (already, _, occupants, nick, ..): Joined = m.body().deserialize()?;
    ensure!(!already && nick == "alice_", "{nick}");
    ensure!(occupants.len() == 2, "{occupants:?}");
    // alice is told as 0.9 tells: an info message with the occupant in `extra`.
    let n: New = next_where(signals, "messageNew", |n: &New| {
        n.6 == "info" && n.8 == "alice"
    })
    .await?;
    ensure!(
        n.2 == room() && n.4[""] == "=> alice_ has joined the room",
        "{n:?}"
    );
    let extra: serde_json::Value = serde_json::from_str(&n.7)?;
    ensure!(
        extra["info_type"] == "ROOM_USER_JOINED" && extra["user_nick"] == "alice_",
        "{extra}"
    );
    let m = call(conn, PLUGIN, "mucGetRoomsJoined", &("alice",)).await?;
    let rooms: Vec<RoomArgs> = m.body().deserialize()?;
    ensure!(rooms.len() == 1 && rooms[0].0 == room() && rooms[0].1.len() == 2);
    ensure!(rooms[0].4.contains(&"SELF_PRESENCE".to_owned()));
    let m = call(conn, PLUGIN, "mucOccupantsGet", &(room(), "bob")).await?;
    let occ: Occupants = m.body().deserialize()?;
    ensure!(occ["alice_"]["role"] == "participant", "{occ:?}");
    let m = call(conn, PLUGIN, "mucNickGet", &(room(), "bob")).await?;
    ensure!(m.body().deserialize::<String>()? == "alice_");
    Ok(())
}

/// A message to the room (`auto` → `groupchat`): both profiles get it from
/// `room/alice`, and alice's history has it so too.
async fn talk_in_the_room(conn: &Connection, signals: &mut zbus::MessageStream) -> Result<()> {
    let mut text = Dict::new();
    text.insert(String::new(), "hello room".into());
    call(
        conn,
        CORE,
        "messageSend",
        &(room(), &text, &Dict::new(), "auto", "{}", "alice"),
    )
    .await?;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let n: New = next_where(signals, "messageNew", |n: &New| n.6 == "groupchat").await?;
        ensure!(n.2 == format!("{}/alice", room()), "from {n:?}");
        ensure!(n.3.starts_with(&format!("{}@localhost/", n.8)), "to {n:?}");
        ensure!(n.4[""] == "hello room", "{n:?}");
        seen.push(n.8);
    }
    seen.sort();
    ensure!(seen == ["alice", "bob"], "{seen:?}");
    let mut filters = Dict::new();
    filters.insert("types".into(), "groupchat".into());
    type Row = (String, f64, String, String, Dict, Dict, String, String);
    let m = call(
        conn,
        CORE,
        "historyGet",
        &("alice@localhost", room(), -1i32, true, &filters, "alice"),
    )
    .await?;
    let rows: Vec<Row> = m.body().deserialize()?;
    let mine = rows
        .iter()
        .find(|r| r.4.get("").is_some_and(|b| b == "hello room"))
        .with_context(|| format!("not in the history: {rows:?}"))?;
    ensure!(mine.2 == format!("{}/alice", room()), "{mine:?}");
    Ok(())
}

/// The subject, bob's new nick, bob leaving: each signalled to the profiles in the
/// room.
async fn subject_nick_and_leave(
    conn: &Connection,
    signals: &mut zbus::MessageStream,
) -> Result<()> {
    call(conn, PLUGIN, "mucSubject", &(room(), "Plans", "alice")).await?;
    let mut told = Vec::new();
    while told.len() < 2 {
        let (r, s, p): (String, String, String) =
            next_where(signals, "mucRoomNewSubject", |_| true).await?;
        ensure!(r == room() && s == "Plans");
        told.push(p);
    }
    told.sort();
    ensure!(told == ["alice", "bob"]);

    call(conn, PLUGIN, "mucNick", &(room(), "bobby", "bob")).await?;
    let (r, old, new, _): (String, String, String, String) = next_where(
        signals,
        "mucRoomUserChangedNick",
        |s: &(String, String, String, String)| s.3 == "alice",
    )
    .await?;
    ensure!(r == room() && old == "alice_" && new == "bobby");
    let m = call(conn, PLUGIN, "mucNickGet", &(room(), "bob")).await?;
    ensure!(m.body().deserialize::<String>()? == "bobby");

    call(conn, PLUGIN, "mucLeave", &(room(), "bob")).await?;
    // bob's mucRoomLeft and alice's info message, in either order.
    let (mut left, mut info) = (false, false);
    while !(left && info) {
        let m = next_signal(signals).await?;
        match m.header().member().map(|n| n.to_string()).as_deref() {
            Some("mucRoomLeft") => {
                let (r, p): (String, String) = m.body().deserialize()?;
                ensure!(r == room() && p == "bob", "{r} {p}");
                left = true;
            }
            Some("messageNew") => {
                let n: New = m.body().deserialize()?;
                if n.6 == "info" && n.8 == "alice" {
                    ensure!(n.4[""] == "<= bobby has left the room", "{n:?}");
                    info = true;
                }
            }
            _ => {}
        }
    }
    let m = call(conn, PLUGIN, "mucGetRoomsJoined", &("bob",)).await?;
    ensure!(m.body().deserialize::<Vec<RoomArgs>>()?.is_empty());
    let (name, _) = error_of(call(conn, PLUGIN, "mucLeave", &(room(), "bob")).await)?;
    ensure!(name.ends_with(".NotFound"), "{name}");
    Ok(())
}

/// alice types room commands: `/title`, `/kick` (bob is out, alice is told why),
/// a kick of nobody (told so), and `//` (a message starting with `/`).
async fn room_commands(conn: &Connection, signals: &mut zbus::MessageStream) -> Result<()> {
    call(
        conn,
        PLUGIN,
        "mucJoin",
        &(room(), "bob", &Dict::new(), "bob"),
    )
    .await?;
    let say = |text: &str| {
        let mut m = Dict::new();
        m.insert(String::new(), text.to_owned());
        m
    };
    let send = |text: &str| {
        let body = say(text);
        async move {
            call(
                conn,
                CORE,
                "messageSend",
                &(room(), &body, &Dict::new(), "groupchat", "{}", "alice"),
            )
            .await
        }
    };
    send("/title Commands").await?;
    let (r, s, _): (String, String, String) =
        next_where(signals, "mucRoomNewSubject", |_| true).await?;
    ensure!(r == room() && s == "Commands", "{s}");

    send("/kick bob too noisy").await?;
    let (mut kicked, mut told) = (false, false);
    while !(kicked && told) {
        let m = next_signal(signals).await?;
        match m.header().member().map(|n| n.to_string()).as_deref() {
            Some("mucRoomLeft") => {
                let (r, p): (String, String) = m.body().deserialize()?;
                ensure!(r == room() && p == "bob", "{r} {p}");
                kicked = true;
            }
            Some("messageNew") => {
                let n: New = m.body().deserialize()?;
                if n.6 == "info" && n.8 == "alice" && n.4[""].starts_with("You have") {
                    ensure!(
                        n.4[""] == "You have kicked bob for the following reason: too noisy",
                        "{n:?}"
                    );
                    ensure!(n.7.contains("TEXT_CMD"), "{n:?}");
                    told = true;
                }
            }
            _ => {}
        }
    }
    send("/kick nobody").await?;
    let n: New = next_where(signals, "messageNew", |n: &New| {
        n.6 == "info" && n.7.contains("TEXT_CMD")
    })
    .await?;
    ensure!(
        n.4[""] == "You must provide a member's nick to kick.",
        "{n:?}"
    );
    send("//kick is not a command here").await?;
    let n: New = next_where(signals, "messageNew", |n: &New| n.6 == "groupchat").await?;
    ensure!(n.4[""] == "/kick is not a command here", "{n:?}");
    Ok(())
}
