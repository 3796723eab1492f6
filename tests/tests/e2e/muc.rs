//! Group chats (XEP-0045) and bookmarks (XEP-0402) end to end: three profiles in a
//! room on the harness Prosody's MUC service, driven through `perch muc`.

use super::*;
use perch_tests::MUC_DOMAIN;

/// `perch --json muc ARGS…`
fn muc(perchd: &Perchd, args: &[&str]) -> Result<Value> {
    let mut all = vec!["muc"];
    all.extend_from_slice(args);
    perchd.cli_json(&all)
}

/// The profile's entry for `room` in `muc list`, if any.
fn listed(perchd: &Perchd, profile: &str, room: &str) -> Result<Option<Value>> {
    let list = muc(perchd, &["list", "-p", profile])?;
    Ok(list
        .as_array()
        .and_then(|a| a.iter().find(|r| r["room"] == room).cloned()))
}

/// Waits until `profile` is (back) in `room`.
fn wait_joined(perchd: &Perchd, profile: &str, room: &str, timeout: Duration) -> Result<()> {
    let mut last = None;
    wait_until(timeout, || {
        last = listed(perchd, profile, room)?;
        Ok(last.as_ref().is_some_and(|r| r["joined"] == true))
    })
    .with_context(|| format!("{profile} never (re)joined {room}; last entry: {last:?}"))
}

/// Nick → occupant, as `profile` sees the room.
fn occupants(perchd: &Perchd, profile: &str, room: &str) -> Result<Vec<Value>> {
    let r = muc(perchd, &["occupants", "-p", profile, room])?;
    Ok(r["occupants"].as_array().cloned().unwrap_or_default())
}

fn nicks(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|o| o["nick"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn wait_nicks(perchd: &Perchd, profile: &str, room: &str, expected: &[&str]) -> Result<Vec<Value>> {
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = occupants(perchd, profile, room)?;
        Ok(nicks(&last) == expected)
    })
    .with_context(|| format!("{profile}'s occupants of {room}: {last:?}, expected {expected:?}"))?;
    Ok(last)
}

/// Waits until `profile`'s history with `with` has `n` messages, then checks them.
fn wait_history(
    perchd: &Perchd,
    profile: &str,
    with: &str,
    expected: &[(String, String, String)],
) -> Result<()> {
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = history(perchd, profile, &[with])?;
        Ok(last.len() >= expected.len())
    })
    .with_context(|| {
        format!(
            "{profile}'s history with {with}:\n{}",
            summarize_history(&Value::Array(last.clone()))
        )
    })?;
    assert_history(perchd, profile, &[with], expected)?;
    Ok(())
}

fn plugin_signal<'a>(
    name: &'a str,
    profile: &'a str,
    more: impl Fn(&Value) -> bool + 'a,
) -> impl Fn(&Value) -> bool + 'a {
    move |v| {
        v["signal"] == "PluginSignal"
            && v["plugin"] == "XEP-0045"
            && v["name"] == name
            && v["profile"] == profile
            && more(&v["data"])
    }
}

#[test]
fn group_chat_with_three_profiles() {
    let bed = Bed::start();
    three_profiles_body(&bed).unwrap();
}

fn three_profiles_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.prosody.register("carol", CAROL_PW)?;
    bed.alice_and_bob_connected(&[])?;
    perchd.create_profile(&bed.prosody, "carol", "carol", CAROL_PW, &[])?;
    connect(perchd, "carol", "carol@localhost")?;
    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    let room = format!("team@{MUC_DOMAIN}");
    let room = room.as_str();

    // A room that does not exist: created, unlocked as an instant room.
    let joined = muc(perchd, &["join", "-p", "alice", room])?;
    ensure!(
        joined["created"] == true && joined["nick"] == "alice" && joined["archived"] == true,
        "alice's join: {joined}"
    );
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("room_joined", "alice", |d| d["room"] == room),
    )?;
    let joined = muc(perchd, &["join", "-p", "bob", room, "--nick", "bob"])?;
    ensure!(joined["created"] == false, "bob's join: {joined}");
    // A nick in use: the room's error, by name.
    perchd.cli_fails_with(
        &["muc", "join", "-p", "carol", room, "--nick", "alice"],
        "Conflict",
    )?;
    ensure!(
        listed(perchd, "carol", room)?.is_none(),
        "a refused join left the room listed"
    );

    // Occupants with role and affiliation.
    let occ = wait_nicks(perchd, "alice", room, &["alice", "bob"])?;
    ensure!(
        occ[0]["role"] == "moderator" && occ[0]["affiliation"] == "owner",
        "the creator: {}",
        occ[0]
    );
    ensure!(
        occ[1]["role"] == "participant" && occ[1]["affiliation"] == "none",
        "bob: {}",
        occ[1]
    );

    // Messages both ways, each stored once, ours out.
    muc(perchd, &["say", "-p", "alice", room, "hello room"])?;
    wait_for_incoming(perchd, "bob", "hello room")?;
    muc(perchd, &["say", "-p", "bob", room, "hi alice"])?;
    wait_for_incoming(perchd, "alice", "hi alice")?;
    let alice_expected = [t("out", "hello room", room), t("in", "hi alice", room)];
    wait_history(perchd, "alice", room, &alice_expected)?;
    wait_history(
        perchd,
        "bob",
        room,
        &[t("in", "hello room", room), t("out", "hi alice", room)],
    )?;

    // Carol joins late: the room's history comes with the join, stored once.
    muc(perchd, &["join", "-p", "carol", room, "--nick", "carol"])?;
    wait_history(
        perchd,
        "carol",
        room,
        &[t("in", "hello room", room), t("in", "hi alice", room)],
    )?;
    wait_nicks(perchd, "alice", room, &["alice", "bob", "carol"])?;
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("occupant", "alice", |d| {
            d["event"] == "joined" && d["occupant"]["nick"] == "carol"
        }),
    )?;

    // Subject: remembered and signalled, not a message.
    muc(perchd, &["subject", "-p", "alice", room, "Weekly sync"])?;
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("subject", "bob", |d| {
            d["room"] == room && d["subject"] == "Weekly sync"
        }),
    )?;
    let entry = listed(perchd, "bob", room)?.context("bob's room")?;
    ensure!(entry["subject"] == "Weekly sync", "bob's room: {entry}");

    // Nick change, seen by the others.
    let changed = muc(perchd, &["nick", "-p", "bob", room, "robert"])?;
    ensure!(changed["nick"] == "robert", "nick change: {changed}");
    wait_nicks(perchd, "alice", room, &["alice", "carol", "robert"])?;
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("nick_changed", "alice", |d| {
            d["old"] == "bob" && d["new"] == "robert" && d["own"] == false
        }),
    )?;
    let entry = listed(perchd, "bob", room)?.context("bob's room")?;
    ensure!(
        entry["nick"] == "robert",
        "bob's room after the change: {entry}"
    );

    // A private message, filed under the other occupant on each side.
    muc(perchd, &["pm", "-p", "carol", room, "robert", "psst"])?;
    let (robert, carol) = (format!("{room}/robert"), format!("{room}/carol"));
    wait_history(perchd, "bob", &carol, &[t("in", "psst", &carol)])?;
    assert_history(perchd, "carol", &[&robert], &[t("out", "psst", &robert)])?;
    // The reply through `message send` to the occupant's JID, filed the same way.
    send(perchd, "bob", &carol, "what?")?;
    wait_history(
        perchd,
        "carol",
        &robert,
        &[t("out", "psst", &robert), t("in", "what?", &robert)],
    )?;

    // Our availability reaches the rooms we are in.
    perchd.cli_ok(&[
        "presence", "set", "-p", "bob", "--show", "away", "--status", "lunch",
    ])?;
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = occupants(perchd, "alice", room)?;
        Ok(last
            .iter()
            .any(|o| o["nick"] == "robert" && o["show"] == "away" && o["status"] == "lunch"))
    })
    .with_context(|| format!("robert's away presence never reached alice: {last:?}"))?;

    // The owner kicks carol: carol is out, told why.
    muc(
        perchd,
        &["kick", "-p", "alice", room, "carol", "--reason", "spam"],
    )?;
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("room_left", "carol", |d| {
            d["room"] == room && d["reason"] == "kicked" && d["text"] == "spam"
        }),
    )?;
    ensure!(
        listed(perchd, "carol", room)?.is_none(),
        "carol is still listed in the room after the kick"
    );
    wait_nicks(perchd, "alice", room, &["alice", "robert"])?;
    // Not rejoined behind the moderator's back: the bookmark lost autojoin.
    let mut last = Value::Null;
    wait_until(DELIVERY, || {
        last = muc(perchd, &["bookmarks", "-p", "carol"])?;
        Ok(last.as_array().is_some_and(|a| {
            a.iter()
                .any(|b| b["room"] == room && b["autojoin"] == false)
        }))
    })
    .with_context(|| format!("carol's bookmarks after the kick: {last}"))?;
    perchd.cli_fails_with(
        &["muc", "say", "-p", "carol", room, "still here?"],
        "BadArgument",
    )?;

    // Leaving.
    muc(perchd, &["leave", "-p", "bob", room])?;
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("room_left", "bob", |d| d["reason"] == "left"),
    )?;
    ensure!(
        listed(perchd, "bob", room)?.is_none(),
        "bob left but the room is listed"
    );
    wait_nicks(perchd, "alice", room, &["alice"])?;
    let _ = monitor.kill();
    let _ = monitor.wait();
    Ok(())
}

#[test]
fn rooms_come_back_after_restart_reconnection_and_from_bookmarks() {
    let mut bed = Bed::start();
    come_back_body(&mut bed).unwrap();
}

fn come_back_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&["--autoconnect"])?;
    let room = format!("back@{MUC_DOMAIN}");
    let room = room.as_str();
    muc(&bed.perchd, &["join", "-p", "alice", room])?;
    muc(&bed.perchd, &["join", "-p", "bob", room])?;
    muc(&bed.perchd, &["say", "-p", "bob", room, "one"])?;
    wait_for_incoming(&bed.perchd, "alice", "one")?;
    let bookmarks = muc(&bed.perchd, &["bookmarks", "-p", "alice"])?;
    ensure!(
        bookmarks.as_array().is_some_and(|a| a
            .iter()
            .any(|b| b["room"] == room && b["autojoin"] == true && b["nick"] == "alice")),
        "alice's bookmarks after the join: {bookmarks}"
    );

    // perchd restarts: alice (autoconnect) is back in the room by herself; the
    // room's join history does not store "one" twice.
    bed.perchd.stop()?;
    bed.perchd.start_again()?;
    let perchd = &bed.perchd;
    perchd.wait_for_state("alice", "connected", Duration::from_secs(15))?;
    wait_joined(perchd, "alice", room, DELIVERY)?;
    connect(perchd, "bob", BOB)?;
    wait_joined(perchd, "bob", room, DELIVERY)?;
    muc(perchd, &["say", "-p", "bob", room, "two"])?;
    wait_for_incoming(perchd, "alice", "two")?;
    wait_history(
        perchd,
        "alice",
        room,
        &[t("in", "one", room), t("in", "two", room)],
    )?;

    // The server restarts: both reconnect and rejoin.
    bed.prosody.kill()?;
    wait_until(Duration::from_secs(20), || {
        Ok(bed.perchd.state_of("alice")? != "connected")
    })
    .context("alice still connected after the server was killed")?;
    bed.prosody.start_again()?;
    let perchd = &bed.perchd;
    for profile in ["alice", "bob"] {
        perchd.wait_for_state(profile, "connected", Duration::from_secs(40))?;
        wait_joined(perchd, profile, room, DELIVERY)?;
    }
    muc(perchd, &["say", "-p", "alice", room, "three"])?;
    wait_for_incoming(perchd, "bob", "three")?;
    wait_history(
        perchd,
        "alice",
        room,
        &[
            t("in", "one", room),
            t("in", "two", room),
            t("out", "three", room),
        ],
    )?;

    // A fresh data directory for the same account: the bookmark brings the room.
    let fresh = Perchd::start()?;
    fresh.create_profile(&bed.prosody, "alice", "alice", ALICE_PW, &[])?;
    connect(&fresh, "alice", ALICE)?;
    wait_joined(&fresh, "alice", room, DELIVERY)?;
    let entry = listed(&fresh, "alice", room)?.context("the fresh perchd's room")?;
    ensure!(entry["nick"] == "alice", "nick from the bookmark: {entry}");

    // Leaving clears autojoin; the bookmark stays.
    muc(perchd, &["leave", "-p", "alice", room])?;
    let bookmarks = muc(perchd, &["bookmarks", "-p", "alice"])?;
    ensure!(
        bookmarks.as_array().is_some_and(|a| a
            .iter()
            .any(|b| b["room"] == room && b["autojoin"] == false)),
        "alice's bookmarks after leaving: {bookmarks}"
    );
    Ok(())
}

/// A profile away from a room finds everything said meanwhile: more than the 20
/// messages the room replays on join, so the rest comes from the room's archive
/// (XEP-0313, on `room.joined`); each stored once, in order.
#[test]
fn a_profile_away_from_a_room_catches_up_from_its_archive() {
    let bed = Bed::start();
    room_catch_up_body(&bed).unwrap();
}

fn room_catch_up_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let room = format!("away@{MUC_DOMAIN}");
    let room = room.as_str();
    muc(perchd, &["join", "-p", "alice", room])?;
    muc(perchd, &["join", "-p", "bob", room])?;
    muc(perchd, &["say", "-p", "bob", room, "before"])?;
    wait_for_incoming(perchd, "alice", "before")?;
    perchd.cli_ok(&["disconnect", "-p", "alice"])?;
    let said: Vec<String> = (1..=25).map(|i| format!("away {i:02}")).collect();
    for s in &said {
        muc(perchd, &["say", "-p", "bob", room, s])?;
    }
    // Bob's own copies are back from the room: all of it is in the archive.
    let mut bob_has = 0;
    wait_until(DELIVERY, || {
        bob_has = history(perchd, "bob", &[room])?
            .iter()
            .filter(|m| {
                m["body"].as_str().is_some_and(|b| b.starts_with("away")) && m["state"] == "acked"
            })
            .count();
        Ok(bob_has == said.len())
    })
    .with_context(|| format!("bob's messages confirmed: {bob_has}"))?;
    // Started while alice is away: her catch-ups of the room before it are over.
    let mut monitor = Monitor::start(perchd)?;
    connect(perchd, "alice", ALICE)?;
    wait_joined(perchd, "alice", room, DELIVERY)?;
    let mut expected = vec![t("in", "before", room)];
    expected.extend(said.iter().map(|s| t("in", s, room)));
    wait_history(perchd, "alice", room, &expected)?;
    // Join history and archive both brought the last 20: still once each, once the
    // catch-up of the room's archive is done (the join history comes before it).
    monitor.wait(catch_up_done("alice", room))?;
    assert_history(perchd, "alice", &[room], &expected)?;
    Ok(())
}

/// Banned and destroyed: the profile thrown out hears why, is out of the room, and
/// is not joined again behind the owner's back; a banned account's join is refused.
#[test]
fn banned_and_destroyed() {
    let bed = Bed::start();
    banned_body(&bed).unwrap();
}

fn banned_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.prosody.register("carol", CAROL_PW)?;
    bed.alice_and_bob_connected(&[])?;
    perchd.create_profile(&bed.prosody, "carol", "carol", CAROL_PW, &[])?;
    connect(perchd, "carol", "carol@localhost")?;
    let room = format!("strict@{MUC_DOMAIN}");
    let room = room.as_str();
    muc(perchd, &["join", "-p", "alice", room])?;
    muc(perchd, &["join", "-p", "bob", room])?;
    muc(perchd, &["join", "-p", "carol", room])?;
    wait_nicks(perchd, "alice", room, &["alice", "bob", "carol"])?;
    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();

    // The owner bans carol's account.
    muc(
        perchd,
        &[
            "ban",
            "-p",
            "alice",
            room,
            "carol@localhost",
            "--reason",
            "trolling",
        ],
    )?;
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("room_left", "carol", |d| {
            d["room"] == room && d["reason"] == "banned"
        }),
    )?;
    ensure!(
        listed(perchd, "carol", room)?.is_none(),
        "carol is still listed in the room after the ban"
    );
    perchd.cli_fails_with(&["muc", "join", "-p", "carol", room], "Forbidden")?;

    // The owner destroys the room: bob is told, and out.
    muc(
        perchd,
        &["destroy", "-p", "alice", room, "--reason", "done"],
    )?;
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("room_left", "bob", |d| {
            d["room"] == room && d["reason"] == "destroyed"
        }),
    )?;
    let _ = monitor.kill();
    let _ = monitor.wait();
    ensure!(
        listed(perchd, "bob", room)?.is_none(),
        "bob is still listed in a destroyed room"
    );
    // Not re-created by bob's next connection: his bookmark lost autojoin.
    let bookmarks = muc(perchd, &["bookmarks", "-p", "bob"])?;
    ensure!(
        !bookmarks
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["room"] == room && b["autojoin"] == true)),
        "bob's bookmark of a destroyed room still autojoins: {bookmarks}"
    );
    Ok(())
}

/// A password-protected room, set up by its owner with `muc config`; a join without
/// the password is refused by name; a direct invitation (XEP-0249) carries the
/// password, is kept in the invitee's history and signalled; both come back into
/// the room after a restart, the password taken from their bookmarks.
#[test]
fn password_rooms_and_invitations() {
    let mut bed = Bed::start();
    password_body(&mut bed).unwrap();
}

fn password_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&["--autoconnect"])?;
    let perchd = &bed.perchd;
    let room = format!("secret@{MUC_DOMAIN}");
    let room = room.as_str();
    muc(perchd, &["join", "-p", "alice", room])?;
    let form = muc(perchd, &["config", "-p", "alice", room])?;
    ensure!(
        form["form_type"] == "http://jabber.org/protocol/muc#roomconfig"
            && form["values"]
                .as_object()
                .is_some_and(|v| v.contains_key("muc#roomconfig_roomsecret")),
        "the room's configuration form: {form}"
    );
    let after = muc(
        perchd,
        &[
            "config",
            "-p",
            "alice",
            room,
            "-f",
            "muc#roomconfig_roomsecret",
            "s3cret",
        ],
    )?;
    ensure!(
        after["values"]["muc#roomconfig_roomsecret"] == "s3cret",
        "the configuration after setting a password: {after}"
    );
    // The owner's bad field is the room's error, by name.
    perchd.cli_fails_with(
        &[
            "muc",
            "config",
            "-p",
            "bob",
            room,
            "-f",
            "muc#roomconfig_roomname",
            "x",
        ],
        "Forbidden",
    )?;
    perchd.cli_fails_with(&["muc", "join", "-p", "bob", room], "NotAuthorized")?;

    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    muc(
        perchd,
        &["invite", "-p", "alice", room, BOB, "--reason", "our plans"],
    )?;
    wait_line(
        &rx,
        &mut seen,
        plugin_signal("invitation", "bob", |d| {
            d["room"] == room
                && d["password"] == "s3cret"
                && d["from"] == ALICE
                && d["reason"] == "our plans"
        }),
    )?;
    let _ = monitor.kill();
    let _ = monitor.wait();
    let kept = history(perchd, "bob", &[ALICE])?;
    ensure!(
        kept.iter()
            .any(|m| m["extra"]["invitation"]["room"] == room),
        "bob's history with alice has no invitation: {kept:?}"
    );
    muc(perchd, &["join", "-p", "bob", room, "--password", "s3cret"])?;
    wait_nicks(perchd, "alice", room, &["alice", "bob"])?;

    // A bookmark of a room not joined, then removed; nothing is joined.
    let later = format!("later@{MUC_DOMAIN}");
    muc(
        perchd,
        &["bookmark", "-p", "bob", &later, "--name", "Later"],
    )?;
    let marks = muc(perchd, &["bookmarks", "-p", "bob"])?;
    ensure!(
        marks
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["room"] == later.as_str()
                && b["name"] == "Later"
                && b["autojoin"] == false)),
        "bob's bookmarks: {marks}"
    );
    ensure!(
        listed(perchd, "bob", &later)?.is_none(),
        "a bookmark joined the room"
    );
    muc(perchd, &["unbookmark", "-p", "bob", &later])?;
    let marks = muc(perchd, &["bookmarks", "-p", "bob"])?;
    ensure!(
        !marks
            .as_array()
            .is_some_and(|a| a.iter().any(|b| b["room"] == later.as_str())),
        "bob's bookmarks after removing one: {marks}"
    );

    bed.perchd.stop()?;
    bed.perchd.start_again()?;
    let perchd = &bed.perchd;
    perchd.wait_for_state("alice", "connected", Duration::from_secs(15))?;
    connect(perchd, "bob", BOB)?;
    wait_joined(perchd, "alice", room, DELIVERY)?;
    wait_joined(perchd, "bob", room, DELIVERY)?;
    Ok(())
}

/// A room message sent while we are not in the room comes back `not-acceptable`: it
/// is marked failed, held, and goes again once we are back in the room (the case of
/// an outbox flushed before the rooms are joined again after a reconnection).
#[test]
fn a_room_message_refused_before_the_join_goes_again_after_it() {
    let bed = Bed::start();
    held_body(&bed).unwrap();
}

fn held_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let room = format!("held@{MUC_DOMAIN}");
    let room = room.as_str();
    muc(perchd, &["join", "-p", "alice", room])?;
    muc(perchd, &["join", "-p", "bob", room])?;
    muc(perchd, &["leave", "-p", "alice", room])?;
    let sent = perchd.cli_json(&[
        "message",
        "send",
        "-p",
        "alice",
        "--type",
        "groupchat",
        room,
        "while away",
    ])?;
    let id = sent["id"]
        .as_str()
        .context("send --json gives the id")?
        .to_owned();
    let find = |want: &dyn Fn(&Value) -> bool| -> Result<Value> {
        let mut m = Value::Null;
        wait_until(DELIVERY, || {
            m = history(perchd, "alice", &[room])?
                .into_iter()
                .find(|m| m["id"] == id.as_str())
                .unwrap_or(Value::Null);
            Ok(want(&m))
        })
        .with_context(|| format!("alice's message to the room: {m}"))?;
        Ok(m)
    };
    let m = find(&|m| m["state"] == "failed")?;
    ensure!(
        m["extra"]["error"]["condition"] == "not-acceptable"
            && m["extra"]["resend_on_join"] == true,
        "refused for not being in the room, and held: {m}"
    );
    muc(perchd, &["join", "-p", "alice", room])?;
    wait_for_incoming(perchd, "bob", "while away")?;
    let m = find(&|m| m["state"] == "acked")?;
    ensure!(
        m["extra"].get("error").is_none() && m["extra"].get("resend_on_join").is_none(),
        "sent again, its error gone: {m}"
    );
    Ok(())
}

/// Direct invitations (XEP-0249) each way with a third-party client (slixmpp,
/// `tests/scripts/invite.py`, as carol): alice invites carol, who joins; carol
/// invites alice to bob's room, and alice, told by the `invitation` signal, joins.
#[test]
fn invitations_with_a_third_party_client() {
    let bed = Bed::start();
    invitations_third_party_body(&bed).unwrap();
}

fn invitations_third_party_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let ours = format!("ours@{MUC_DOMAIN}");
    let bobs = format!("bobs@{MUC_DOMAIN}");
    muc(perchd, &["join", "-p", "alice", &ours])?;
    muc(perchd, &["join", "-p", "bob", &bobs])?;
    let mut slix = message_actions::Slixmpp::start(bed, "invite.py", &[&bobs])?;
    let outcome = (|| -> Result<()> {
        slix.expect("ready")?;
        let (mut monitor, rx) = start_monitor(perchd)?;
        let mut seen = Vec::new();
        muc(
            perchd,
            &[
                "invite",
                "-p",
                "alice",
                &ours,
                "carol@localhost",
                "--reason",
                "our plans",
            ],
        )?;
        slix.expect(&format!("invited {ours} our plans"))?;
        slix.expect(&format!("joined {ours}"))?;
        wait_nicks(perchd, "alice", &ours, &["alice", "carol"])?;
        slix.expect("invited peer")?;
        let from_carol = |d: &Value| {
            d["room"] == bobs.as_str()
                && d["from"]
                    .as_str()
                    .is_some_and(|f| f.starts_with("carol@localhost"))
                && d["reason"] == "come too"
        };
        let signalled = wait_line(
            &rx,
            &mut seen,
            plugin_signal("invitation", "alice", from_carol),
        );
        let _ = monitor.kill();
        let _ = monitor.wait();
        signalled?;
        muc(perchd, &["join", "-p", "alice", &bobs])?;
        wait_nicks(perchd, "bob", &bobs, &["alice", "bob"])?;
        slix.say("")
    })();
    slix.finish(outcome)
}
