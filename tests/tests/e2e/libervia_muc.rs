//! Group chats with Libervia's own frontends (issue 21), compared with Debian's
//! Libervia backend on the harness's Prosody and its MUC component.
//!
//! libervia-cli 0.9 has no `muc` command: its frontends reach the group chat methods
//! through the bridge (the TUI's "Join room", its room widgets), which
//! `libervia-cli debug bridge method` calls the same way, with Python literals as
//! arguments and the reply printed as dbus-python shows it. Messages to a room go
//! through `message send` (type `auto`, which picks `groupchat` for a joined room).
//! The TUI test opens a room in libervia-tui and talks in it.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use perch_tests::libervia::{
    CliOut, Frontend, Step, Tui, differential, perch_frontend, perchd_with_libervia, seed_roster,
    sides,
};
use perch_tests::{ALICE_PW, BOB_PW, MUC_DOMAIN, Perchd, Prosody, wait_until};

use super::libervia::{connected, profile_setup};

/// `libervia-cli debug bridge method METHOD ARGS…` (each argument a Python literal).
fn bridge_args<'a>(method: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["debug", "bridge", "method", method];
    v.extend_from_slice(args);
    v
}

/// [`bridge_args`], owned.
fn bridge(method: &str, args: &[&str]) -> Vec<String> {
    let mut v = vec!["debug", "bridge", "method", method]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    v.extend(args.iter().map(|a| (*a).to_owned()));
    v
}

fn same(method: &str, args: &[&str]) -> Step {
    let v = bridge(method, args);
    let refs: Vec<&str> = v.iter().map(String::as_str).collect();
    Step::same(&refs)
}

fn room() -> String {
    format!("lroom@{MUC_DOMAIN}")
}

fn lit(s: &str) -> String {
    format!("{s:?}")
}

/// A successful call whose printed reply holds each of `parts`.
fn printed(out: &CliOut, parts: &[&str]) -> Result<()> {
    ensure!(out.success(), "expected exit 0");
    for p in parts {
        ensure!(out.stdout.contains(p), "expected {p:?} in the reply");
    }
    Ok(())
}

#[test]
fn libervia_cli_group_chat() {
    let (lib, perch) = sides();
    let room = room();
    let room_l = lit(&room);
    let mut steps = profile_setup();
    steps.extend(connected(&["test", "bob"]));
    steps.extend([
        same("mucGetService", &["\"\"", "\"test\""]),
        same("mucGetDefaultService", &[]),
        same("mucGetRoomsJoined", &["\"test\""]),
        // Error paths before joining: NotFound, and a room that is not a JID.
        same("mucLeave", &[&room_l, "\"test\""]).perch_differs(
            "same class (NotFound) and message; Perch's error body is (message, \
             condition), printed bare where 0.9's one-item tuple prints as a repr",
            |out| {
                ensure!(out.code == Some(1), "expected exit 1");
                ensure!(
                    out.stderr.contains("This room has not been joined"),
                    "expected NotFound's message"
                );
                Ok(())
            },
        ),
        same("mucNickGet", &[&room_l, "\"test\""]).perch_differs("as mucLeave", |out| {
            ensure!(out.code == Some(1), "expected exit 1");
            ensure!(
                out.stderr.contains("This room has not been joined"),
                "NotFound"
            );
            Ok(())
        }),
    ]);
    steps.extend(join_steps(&room));
    steps.extend(talk_steps(&room));
    differential(&lib.frontend, &perch.frontend, &steps).unwrap();
}

/// alice creates the room; bob joins with her nick and gets `alice_`. (A short room
/// name, `lroom`, does not work with 0.9: it joins, but its later calls do not find
/// the room; the backend tests cover Perch's handling of it.)
fn join_steps(room: &str) -> Vec<Step> {
    let room_l = lit(room);
    let joined_alice = format!("dbus.String('{room}')");
    vec![
        same("mucJoin", &[&room_l, "\"\"", "{}", "\"test\""]).perch_differs(
            "0.9 lists the statuses of its own presence from a Python set, in no fixed \
             order; Perch lists them by code",
            move |out| {
                printed(
                    out,
                    &[
                        "dbus.Boolean(False)",
                        &joined_alice,
                        "dbus.String('nick'): dbus.String('alice')",
                        "dbus.String('role'): dbus.String('moderator')",
                        "dbus.String('affiliation'): dbus.String('owner')",
                        "dbus.String('SELF_PRESENCE')",
                        "dbus.String('ROOM_CREATED')",
                        "dbus.String('test')",
                    ],
                )
            },
        ),
        same("mucJoin", &[&room_l, "\"alice\"", "{}", "\"bob\""]).perch_differs(
            "as above (statuses' order)",
            |out| {
                printed(
                    out,
                    &[
                        "dbus.Boolean(False)",
                        "dbus.String('alice_')",
                        "dbus.String('role'): dbus.String('participant')",
                        "dbus.String('bob')",
                    ],
                )
            },
        ),
        same("mucNickGet", &[&room_l, "\"bob\""]),
        same("mucOccupantsGet", &[&room_l, "\"bob\""]),
        same("mucOccupantsGet", &[&room_l, "\"test\""]),
        same("mucGetRoomsJoined", &["\"test\""]).perch_differs(
            "statuses' order, as mucJoin",
            |out| {
                printed(
                    out,
                    &[
                        "dbus.String('lroom@conference.localhost')",
                        "dbus.String('alice_')",
                        "dbus.String('SELF_PRESENCE')",
                    ],
                )
            },
        ),
        // The rooms of the service, as the CLI lists them.
        Step::same(&["info", "disco", "-p", "test", "-t", "items", MUC_DOMAIN]),
    ]
}

/// A message to the room, the subject, a nick change, leaving, being kicked.
fn talk_steps(room: &str) -> Vec<Step> {
    let room_l = lit(room);
    vec![
        Step::same(&["message", "send", "-p", "test", room]).stdin("hello room\n"),
        Step::same(&["message", "send", "-p", "bob", room, "-t", "groupchat"])
            .stdin("hello alice\n"),
        same("mucSubject", &[&room_l, "\"Plans\"", "\"test\""]),
        same("mucNick", &[&room_l, "\"bobby\"", "\"bob\""]),
        same("mucNickGet", &[&room_l, "\"bob\""]),
        same("mucLeave", &[&room_l, "\"bob\""]),
        same("mucGetRoomsJoined", &["\"bob\""]),
        // bob comes back; alice kicks him with the TUI's text command.
        same("mucJoin", &[&room_l, "\"bob\"", "{}", "\"bob\""])
            .perch_differs("statuses' order, as alice's join", |out| {
                printed(out, &["dbus.Boolean(False)", "dbus.String('bob')"])
            }),
        Step::same(&["message", "send", "-p", "test", room]).stdin("/kick bob spam\n"),
        same("mucGetRoomsJoined", &["\"bob\""]).perch_differs(
            "0.9 keeps a room it was kicked from among the joined ones (without us among \
             its occupants); Perch lists the rooms we are in",
            |out| {
                ensure!(out.success(), "expected exit 0");
                ensure!(
                    out.stdout == "dbus.Array([], signature=dbus.Signature('(sa{sa{ss}}ssas)'))\n",
                    "expected no room"
                );
                Ok(())
            },
        ),
        same("mucLeave", &[&room_l, "\"bob\""]).perch_differs("as before joining", |out| {
            ensure!(out.code == Some(1), "expected exit 1");
            ensure!(
                out.stderr.contains("This room has not been joined"),
                "NotFound"
            );
            Ok(())
        }),
    ]
}

/// How long the TUI may take to show what a signal or a key did.
const TUI_WAIT: Duration = Duration::from_secs(40);

/// How long a key that does something visible may take to show it.
const TUI_SETTLE: Duration = Duration::from_secs(2);

/// libervia-tui on profile `test` (alice): a room alice joins (through the bridge, as
/// the TUI's own "Join room" does) opens as the TUI's room widget with bob among its
/// occupants; bob's message to the room shows there, and alice's answer typed in the
/// TUI reaches the room (bob's history has it, from `room/alice`).
#[test]
fn libervia_tui_group_chat_on_perchd() {
    let prosody = Prosody::start().unwrap();
    seed_roster(&prosody, "alice", &[("bob@localhost", "Bobby", "Friends")]).unwrap();
    seed_roster(&prosody, "bob", &[("alice@localhost", "Alice", "Friends")]).unwrap();
    let perchd = perchd_with_libervia().unwrap();
    let cli = perch_frontend(&perchd).unwrap();
    tui_room(&prosody, &perchd, &cli).unwrap();
}

fn tui_room(prosody: &Prosody, perchd: &Perchd, cli: &Frontend) -> Result<()> {
    let room = room();
    let room_l = lit(&room);
    cli.create_profile(prosody, "test", "alice", ALICE_PW)?;
    cli.create_profile(prosody, "bob", "bob", BOB_PW)?;
    cli.cli_ok(&["profile", "connect", "-p", "bob", "-c"])?;
    // (`-p`: the CLI wants the profile it runs as connected.)
    cli.cli_ok(&bridge_args(
        "mucJoin",
        &[&room_l, "\"bob\"", "{}", "\"bob\"", "-p", "bob"],
    ))?;

    let tui = Tui::start(cli, "test")?;
    tui.wait_for("bob listed, no dialog", TUI_WAIT, |screen| {
        if screen.contains("< Ok >") {
            let _ = tui.keys(&["Enter"]);
            return false;
        }
        screen.contains("Bobby")
    })?;
    cli.cli_ok(&bridge_args(
        "mucJoin",
        &[&room_l, "\"\"", "{}", "\"test\""],
    ))?;
    // No chat was open: the room's widget is shown, bob among its occupants.
    tui.wait_for("the room's widget with bob", TUI_WAIT, |screen| {
        screen.contains("lroom") && screen.lines().any(|l| l.contains("bob"))
    })?;
    let sent = cli.cli_input(&["message", "send", "-p", "bob", &room], "hi room\n")?;
    ensure!(sent.success(), "message send failed: {}", sent.describe());
    tui.wait_for("bob's message in the room", TUI_WAIT, |screen| {
        screen
            .lines()
            .any(|l| l.contains("] hi room") && l.contains("[bob]"))
    })?;
    focus_edit_bar(&tui)?;
    // The room's widget came without a user action: the edit bar is in normal mode
    // ("i" enters insertion, prompt "> ", where Enter sends).
    tui.keys(&["i"])?;
    tui.wait_for("the insertion prompt", TUI_WAIT, |screen| {
        screen.lines().last().is_some_and(|l| l.starts_with('>'))
    })?;
    tui.type_text("hello from the tui")?;
    tui.keys(&["Enter"])?;
    tui.wait_for("alice's message in the room", TUI_WAIT, |screen| {
        screen
            .lines()
            .any(|l| l.contains("] hello from the tui") && l.contains("[alice]"))
    })?;
    let mut last = serde_json::Value::Null;
    wait_until(TUI_WAIT, || {
        last = perchd.cli_json(&["message", "history", "-p", "bob", &room])?;
        Ok(last.as_array().is_some_and(|a| {
            a.iter()
                .any(|m| m["body"] == "hello from the tui" && m["from"] == format!("{room}/alice"))
        }))
    })
    .with_context(|| format!("bob's history of the room never had alice's message: {last}"))?;
    Ok(())
}

/// Gives the edit bar the focus: Tab until a typed marker shows up there.
fn focus_edit_bar(tui: &Tui) -> Result<()> {
    for _ in 0..4 {
        let before = tui.edit_bar()?;
        tui.keys_and_redraw(&["Tab"], TUI_SETTLE)?;
        tui.type_text("x")?;
        let mut bar = before.clone();
        if wait_until(TUI_SETTLE, || {
            bar = tui.edit_bar()?;
            Ok(bar != before)
        })
        .is_ok()
        {
            tui.keys(&["BSpace"])?;
            return Ok(());
        }
    }
    anyhow::bail!("Tab never gave the edit bar the focus:\n{}", tui.screen()?)
}

/// libervia-cli's `bookmarks` (0.9's XEP-0048 plugin) and `inviteMUC`: a bookmark
/// added, listed by location, removed; an invitation sent. 0.9 writes private XML
/// storage and perchd XEP-0402 items; the server shows both as one list, so the
/// listings match.
#[test]
fn libervia_cli_bookmarks_and_invitations() {
    let (lib, perch) = sides();
    let room = format!("books@{MUC_DOMAIN}");
    let room_l = lit(&room);
    let mut steps = profile_setup();
    steps.extend(connected(&["test", "bob"]));
    steps.extend([
        Step::same(&["bookmarks", "list", "-p", "test"]),
        Step::same(&[
            "bookmarks",
            "add",
            "-p",
            "test",
            &room,
            "-n",
            "Plans",
            "-N",
            "ali",
            "-a",
        ]),
        Step::same(&["bookmarks", "list", "-p", "test"]),
        // (`-l private` alone: 0.9's CLI itself fails, reading every location.)
        same("bookmarksList", &["\"muc\"", "\"local\"", "\"test\""]),
        Step::same(&["bookmarks", "list", "-p", "test", "-t", "url"]),
        Step::same(&["bookmarks", "remove", "-p", "test", &room, "-f"]),
        Step::same(&["bookmarks", "list", "-p", "test"]),
        same(
            "inviteMUC",
            &[
                "\"bob@localhost\"",
                &room_l,
                "{'reason': 'come'}",
                "\"test\"",
            ],
        ),
    ]);
    differential(&lib.frontend, &perch.frontend, &steps).unwrap();
}

/// `mucConfigureRoom` on perchd: the room's configuration form as XMLUI, its fields
/// as labelled widgets; submitted through `launchAction`, the new title is the
/// room's. A room we are not in is refused as 0.9 refuses it.
#[test]
fn libervia_room_configuration_on_perchd() {
    let prosody = Prosody::start().unwrap();
    let perchd = perchd_with_libervia().unwrap();
    let cli = perch_frontend(&perchd).unwrap();
    room_config_body(&prosody, &perchd, &cli).unwrap();
}

fn room_config_body(prosody: &Prosody, perchd: &Perchd, cli: &Frontend) -> Result<()> {
    let room = format!("confroom@{MUC_DOMAIN}");
    let room_l = lit(&room);
    cli.create_profile(prosody, "test", "alice", ALICE_PW)?;
    cli.cli_ok(&["profile", "connect", "-p", "test", "-c"])?;
    let out = cli.cli(&bridge_args("mucConfigureRoom", &[&room_l, "\"test\""]))?;
    ensure!(
        !out.success() && out.describe().contains("This room has not been joined"),
        "a room not joined: {}",
        out.describe()
    );
    cli.cli_ok(&bridge_args(
        "mucJoin",
        &[&room_l, "\"\"", "{}", "\"test\""],
    ))?;
    let out = cli.cli(&bridge_args("mucConfigureRoom", &[&room_l, "\"test\""]))?;
    printed(&out, &["sat_xmlui", "muc#roomconfig_roomname", "bool"])
        .with_context(|| out.describe())?;
    // (printed as Python writes the string: its quotes may come escaped)
    let id: String = out
        .stdout
        .split("submit=")
        .nth(1)
        .context("the form's submit id")?
        .trim_start_matches(['\\', '"'])
        .chars()
        .take_while(|c| *c != '"' && *c != '\\')
        .collect();
    let data = r#"{"SAT_FORM_muc#roomconfig_roomname": "Plans"}"#;
    let sent = cli.cli(&bridge_args(
        "launchAction",
        &[&lit(&id), data, "-p", "test"],
    ))?;
    ensure!(sent.success(), "launchAction: {}", sent.describe());
    let config = perchd.cli_json(&["muc", "config", "-p", "test", &room])?;
    ensure!(
        config["values"]["muc#roomconfig_roomname"] == "Plans",
        "the room's title after the form: {config}"
    );
    Ok(())
}
