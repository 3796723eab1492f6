//! The CLI on its own, without a daemon: argument checking, the error line format,
//! and what happens when perchd cannot be found. Everything that needs perchd is in
//! the end-to-end tests (tests/).

// A test reads as one scenario, start to end: the one-screen rule is for the code
// under test (`[workspace.lints]`).
#![allow(clippy::too_many_lines)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn perch(args: &[&str], stdin: Option<&str>) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_perch"))
        .args(args)
        .env_clear()
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("HOME", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running perch");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("writing stdin");
        }
    }
    child.wait_with_output().expect("perch output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 1 and exactly one line `perch: NAME: …` naming `needle`.
fn fails_with(o: &Output, name: &str, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {err}");
    assert!(
        err.starts_with(&format!("perch: {name}: ")),
        "expected `perch: {name}: …`, got {err:?}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
}

#[test]
fn no_daemon_is_a_clear_error_naming_where_it_looked() {
    let o = perch(&["status"], None);
    fails_with(&o, "NoDaemon", "perchd.sock");
    assert!(
        stderr(&o).contains("start it with `perchd`"),
        "{}",
        stderr(&o)
    );

    let o = perch(&["--socket", "/nonexistent/perch.sock", "version"], None);
    fails_with(&o, "NoDaemon", "/nonexistent/perch.sock");

    let o = perch(
        &["--address", "unix:path=/nonexistent/bus", "version"],
        None,
    );
    fails_with(&o, "NoDaemon", "/nonexistent/bus");
}

#[test]
fn a_missing_or_empty_password_is_refused_before_any_call() {
    // No daemon runs: these must fail on the arguments, not on the connection.
    let o = perch(
        &["profile", "create", "alice", "--jid", "alice@example.org"],
        None,
    );
    fails_with(&o, "BadArgument", "--password-stdin");

    let o = perch(
        &[
            "profile",
            "create",
            "alice",
            "--jid",
            "alice@example.org",
            "--password-stdin",
        ],
        Some("\n"),
    );
    fails_with(&o, "BadArgument", "empty");

    let o = perch(&["message", "send", "bob@example.org"], Some(""));
    fails_with(&o, "BadArgument", "empty");
}

#[test]
fn bad_command_lines_are_usage_errors() {
    // Exclusive flags, unknown values and unknown commands: clap's exit code 2.
    for args in [
        &[
            "profile",
            "create",
            "a",
            "--jid",
            "a@b",
            "--xmpp-password",
            "x",
            "--ca-file",
            "ca.pem",
            "--insecure",
        ][..],
        &[
            "profile",
            "create",
            "a",
            "--jid",
            "a@b",
            "--xmpp-password",
            "x",
            "--password-stdin",
        ][..],
        &["presence", "set", "--show", "sleepy"][..],
        &["profile", "autoconnect", "a", "maybe"][..],
        &["message", "history", "--limit", "-3"][..],
        &["frobnicate"][..],
        &["--timeout", "soon", "status"][..],
    ] {
        let o = perch(args, None);
        assert_eq!(o.status.code(), Some(2), "perch {args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("error:"),
            "perch {args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn help_lists_the_commands() {
    let o = perch(&["--help"], None);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    for cmd in [
        "profile",
        "connect",
        "disconnect",
        "status",
        "message",
        "roster",
        "presence",
        "monitor",
    ] {
        assert!(text.contains(cmd), "`{cmd}` missing from --help:\n{text}");
    }
}

#[test]
fn block_command_lines_are_checked_before_any_call() {
    // `block add` needs a JID and knows only two reasons; clap refuses the rest.
    for args in [
        &["block", "add", "-p", "a"][..],
        &["block", "add", "-p", "a", "b@x", "--report", "ham"][..],
        &["block", "frobnicate"][..],
    ] {
        let o = perch(args, None);
        assert_eq!(o.status.code(), Some(2), "perch {args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("error:"),
            "perch {args:?}: {}",
            stderr(&o)
        );
    }
}
