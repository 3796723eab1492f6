//! The peer-to-peer socket against a second local user, and against many clients
//! (issue 11, defects 4 and 7; the drills of `doc/reliability.rst`, "Local socket").
//!
//! The tests run as root, so "another user" is made here: directories and sockets are
//! chowned to `nobody` (uid 65534) and a client is run with that uid. Every owner check
//! is "same uid as me", so it holds for root too.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use perch_tests::{Perchd, find_program, run_with_timeout, wait_until, workspace_bin};

const NOBODY: u32 = 65534;
const WAIT: Duration = Duration::from_secs(30);
const SOCKET_ONLY: &str = "[bridge]\nbus = \"none\"\n";

fn private_dir(path: &Path) -> Result<()> {
    fs::create_dir_all(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// A temporary root for one test, private to root.
fn scratch() -> Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("perch-socket-").tempdir()?;
    private_dir(dir.path())?;
    Ok(dir)
}

/// The environment of a perchd or CLI with no `XDG_RUNTIME_DIR`: the socket falls back
/// to `$TMPDIR/perch-$UID`, here under `root`.
fn no_runtime_dir_env(root: &Path) -> Vec<(String, String)> {
    let mut env = vec![
        ("HOME", root.join("home")),
        ("XDG_CONFIG_HOME", root.join("config")),
        ("XDG_DATA_HOME", root.join("data")),
        ("XDG_STATE_HOME", root.join("state")),
        ("TMPDIR", root.join("tmp")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.display().to_string()))
    .collect::<Vec<_>>();
    env.push(("NO_COLOR".into(), "1".into()));
    if let Ok(path) = std::env::var("PATH") {
        env.push(("PATH".into(), path));
    }
    env
}

/// Runs `perchd --allow-root --bus none` with `env`, expecting it to stop by itself.
fn run_perchd(env: &[(String, String)]) -> Result<Output> {
    let mut cmd = Command::new(workspace_bin("perchd")?);
    cmd.args(["--allow-root", "--bus", "none", "--log-level", "info"])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    run_with_timeout(cmd, WAIT)
}

/// Runs `perch ARGS` with `env`.
fn run_perch(env: &[(String, String)], args: &[&str]) -> Result<Output> {
    let mut cmd = Command::new(workspace_bin("perch")?);
    cmd.args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    run_with_timeout(cmd, WAIT)
}

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout:\n{}--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// With no `XDG_RUNTIME_DIR`, a socket directory someone else made first (or a loose
/// or linked one) stops perchd at start, with a message naming the directory and why.
#[test]
fn perchd_refuses_a_socket_dir_it_does_not_own() {
    body_perchd_refuses().unwrap();
}

fn body_perchd_refuses() -> Result<()> {
    let root = scratch()?;
    let env = no_runtime_dir_env(root.path());
    fs::create_dir_all(root.path().join("tmp"))?;
    let me = perch_client::socket::effective_uid();
    let dir = root.path().join(format!("tmp/perch-{me}"));

    // Another user's directory: refused, and nothing is created in it.
    fs::create_dir(&dir)?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777))?;
    chown(&dir, Some(NOBODY), Some(NOBODY))?;
    let out = run_perchd(&env)?;
    let all = text(&out);
    ensure!(
        !out.status.success(),
        "perchd started in another user's dir:\n{all}"
    );
    ensure!(
        all.contains(&dir.display().to_string())
            && all.contains(&format!("owned by uid {NOBODY}"))
            && all.contains("refusing to serve there"),
        "perchd's refusal does not say which dir and why:\n{all}"
    );
    ensure!(
        fs::read_dir(&dir)?.next().is_none(),
        "perchd put something in another user's directory"
    );

    // Our own, but open to others: refused too.
    chown(&dir, Some(me), Some(me))?;
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    let out = run_perchd(&env)?;
    let all = text(&out);
    ensure!(
        !out.status.success() && all.contains("open to other users (mode 0755"),
        "perchd accepted a socket dir open to others:\n{all}"
    );

    // A symbolic link to a private directory: refused.
    fs::remove_dir(&dir)?;
    private_dir(&root.path().join("elsewhere"))?;
    std::os::unix::fs::symlink(root.path().join("elsewhere"), &dir)?;
    let out = run_perchd(&env)?;
    let all = text(&out);
    ensure!(
        !out.status.success() && all.contains("is a symbolic link"),
        "perchd accepted a linked socket dir:\n{all}"
    );
    Ok(())
}

/// With no `XDG_RUNTIME_DIR` and no directory yet, perchd makes `$TMPDIR/perch-$UID`
/// itself, mode 0700, and the CLI finds it there.
#[test]
fn perchd_makes_its_socket_dir_private() {
    let probe = scratch().unwrap();
    let tmp = probe.path().join("tmp");
    private_dir(&tmp).unwrap();
    let tmp_text = tmp.display().to_string();
    let perchd = Perchd::start_with_env(
        SOCKET_ONLY,
        &[("XDG_RUNTIME_DIR", None), ("TMPDIR", Some(&tmp_text))],
    )
    .expect("starting perchd with no XDG_RUNTIME_DIR");
    let me = perch_client::socket::effective_uid();
    let dir = tmp.join(format!("perch-{me}"));
    let meta = fs::symlink_metadata(&dir).expect("perchd's socket dir");
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700, "mode of {dir:?}");
    assert!(dir.join("perchd.sock").exists());
    perchd
        .cli_ok(&["status"])
        .expect("perch status over the socket");
}

/// A fake perchd: a listener that records every byte any client sends it.
struct Recorder {
    path: PathBuf,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Recorder {
    fn start(path: &Path) -> Result<Self> {
        let listener = UnixListener::bind(path)?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                let stop = got == b"STOP";
                let _ = tx.send(got);
                if stop {
                    break;
                }
            }
        });
        Ok(Self {
            path: path.to_owned(),
            rx,
        })
    }

    /// Every connection's bytes until now (the recorder stops).
    fn finish(self) -> Result<Vec<Vec<u8>>> {
        let mut s = UnixStream::connect(&self.path)?;
        s.write_all(b"STOP")?;
        drop(s);
        let mut all = Vec::new();
        loop {
            let got = self
                .rx
                .recv_timeout(WAIT)
                .map_err(|_| anyhow!("the recorder did not stop"))?;
            if got == b"STOP" {
                return Ok(all);
            }
            all.push(got);
        }
    }
}

/// `perch` must fail with one line `perch: UnsafeSocket: …` that names `path` and
/// `owner`, and must not have connected.
fn refused_before_sending(out: &Output, path: &Path, owner: u32, recorder: Recorder) -> Result<()> {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let calls = recorder.finish()?;
    ensure!(
        calls.is_empty(),
        "the CLI sent {} connection(s) to a socket it should refuse, bytes: {:?}",
        calls.len(),
        calls
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
    );
    ensure!(
        out.status.code() == Some(1)
            && stderr.trim_end().lines().count() == 1
            && stderr.starts_with("perch: UnsafeSocket: ")
            && stderr.contains(&path.display().to_string())
            && stderr.contains(&format!("owned by uid {owner}")),
        "expected one line `perch: UnsafeSocket: {} is owned by uid {owner} …`, got:\n{}",
        path.display(),
        text(out)
    );
    Ok(())
}

/// A socket, or a socket directory, of another user: the CLI refuses before it sends a
/// byte (the listener records nothing), with the path and its owner.
#[test]
fn cli_refuses_a_socket_of_another_user() {
    body_cli_refuses().unwrap();
}

fn body_cli_refuses() -> Result<()> {
    let root = scratch()?;
    let env = no_runtime_dir_env(root.path());

    // The attack of issue 11: no XDG_RUNTIME_DIR, and another user made
    // $TMPDIR/perch-$UID first, with her socket in it.
    private_dir(&root.path().join("tmp"))?;
    let me = perch_client::socket::effective_uid();
    let dir = root.path().join(format!("tmp/perch-{me}"));
    private_dir(&dir)?;
    let sock = dir.join("perchd.sock");
    let recorder = Recorder::start(&sock)?;
    chown(&sock, Some(NOBODY), Some(NOBODY))?;
    chown(&dir, Some(NOBODY), Some(NOBODY))?;
    let out = run_perch(
        &env,
        &[
            "profile",
            "create",
            "victim",
            "--jid",
            "victim@localhost",
            "--xmpp-password",
            "do-not-leak",
        ],
    )?;
    refused_before_sending(&out, &dir, NOBODY, recorder)
        .context("default socket in another user's directory")?;

    // An explicit --socket owned by another user, in a directory of ours.
    fs::remove_file(&sock)?;
    chown(&dir, Some(me), Some(me))?;
    let recorder = Recorder::start(&sock)?;
    chown(&sock, Some(NOBODY), Some(NOBODY))?;
    let sock_arg = sock.display().to_string();
    let out = run_perch(&env, &["--socket", &sock_arg, "status"])?;
    refused_before_sending(&out, &sock, NOBODY, recorder)
        .context("--socket owned by another user")?;

    // Control: the same listener owned by us gets the CLI's bytes.
    fs::remove_file(&sock)?;
    let recorder = Recorder::start(&sock)?;
    let out = run_perch(&env, &["--socket", &sock_arg, "status"])?;
    let calls = recorder.finish()?;
    ensure!(
        !out.status.success() && calls.iter().any(|c| !c.is_empty()),
        "the control listener (ours) should have been talked to: {calls:?}\n{}",
        text(&out)
    );
    Ok(())
}

/// A client of another uid that reaches the socket (its directory opened up on
/// purpose) is dropped by perchd (SO_PEERCRED) with a warning naming its uid; our own
/// uid still gets answers through the same socket.
#[test]
fn perchd_drops_peers_of_another_uid() {
    let perchd = Perchd::start_with_config(SOCKET_ONLY).expect("starting perchd");
    body_drops_strangers(&perchd).unwrap();
}

fn body_drops_strangers(perchd: &Perchd) -> Result<()> {
    let dbus_send = find_program("dbus-send", "dbus-send", "dbus-bin")?;
    let sock = perchd.dir().join("run/perch/perchd.sock");
    let version = |uid: u32| -> Result<Output> {
        let mut cmd = Command::new(&dbus_send);
        cmd.arg(format!("--peer=unix:path={}", sock.display()))
            .args([
                "--print-reply",
                "--reply-timeout=10000",
                "/org/perch/Perch",
                "org.perch.Perch1.Version",
            ])
            .env_clear()
            .uid(uid)
            .gid(uid);
        run_with_timeout(cmd, WAIT)
    };
    // Let nobody reach the socket: every directory on the way, and the socket itself.
    let mut opened = Vec::new();
    for dir in [
        perchd.dir().to_owned(),
        perchd.dir().join("run"),
        perchd.dir().join("run/perch"),
    ] {
        let mode = fs::metadata(&dir)?.permissions().mode();
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o711))?;
        opened.push((dir, mode));
    }
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o666))?;

    let me = perch_client::socket::effective_uid();
    let ours = version(me)?;
    ensure!(
        ours.status.success() && String::from_utf8_lossy(&ours.stdout).contains("string"),
        "dbus-send as our own uid should get perchd's version:\n{}",
        text(&ours)
    );
    let stranger = version(NOBODY)?;
    ensure!(
        !stranger.status.success(),
        "perchd answered uid {NOBODY}:\n{}",
        text(&stranger)
    );
    let warning = "refused a peer-to-peer bridge connection from another user";
    wait_until(WAIT, || {
        let log = perchd.log_text()?;
        Ok(log
            .lines()
            .any(|l| l.contains(warning) && l.contains(&format!("uid={NOBODY}"))))
    })
    .with_context(|| format!("no {warning:?} with uid={NOBODY} in perchd's log"))?;

    for (dir, mode) in opened.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode))?;
    }
    fs::set_permissions(&sock, fs::Permissions::from_mode(0o600))?;
    perchd.cli_ok(&["status"])?;
    Ok(())
}

fn open_fds(pid: u32) -> Result<usize> {
    Ok(fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("reading /proc/{pid}/fd"))?
        .count())
}

/// 300 quiet CLI calls over the socket (no signal emitted meanwhile) leave perchd with
/// about the descriptors it had: closed connections are reaped at once.
#[test]
fn quiet_calls_do_not_keep_descriptors() {
    let perchd = Perchd::start_with_config(SOCKET_ONLY).expect("starting perchd");
    body_quiet_calls(&perchd).unwrap();
}

fn body_quiet_calls(perchd: &Perchd) -> Result<()> {
    const CALLS: usize = 300;
    const SLACK: usize = 8;
    let pid = perchd.pid().context("perchd's pid")?;
    perchd.cli_ok(&["status"])?;
    let before = open_fds(pid)?;
    for _ in 0..CALLS {
        perchd.cli_ok(&["status"])?;
    }
    let mut after = 0;
    wait_until(WAIT, || {
        after = open_fds(pid)?;
        Ok(after <= before + SLACK)
    })
    .with_context(|| {
        format!("perchd had {before} descriptors before {CALLS} calls and still {after} after")
    })?;
    eprintln!("open descriptors: {before} before {CALLS} `perch status`, {after} after");
    Ok(())
}

/// At a low descriptor limit, with perchd's descriptors used up, waiting clients are
/// all served once descriptors free up, and the accept errors are logged once per
/// episode instead of once per failed accept.
#[test]
fn many_clients_at_a_low_descriptor_limit() {
    let perchd = Perchd::start_with_config(SOCKET_ONLY).expect("starting perchd");
    body_low_limit(&perchd).unwrap();
}

fn body_low_limit(perchd: &Perchd) -> Result<()> {
    const CLIENTS: usize = 40;
    let prlimit = find_program("prlimit", "prlimit", "util-linux")?;
    let pid = perchd.pid().context("perchd's pid")?;
    let limit = open_fds(pid)? + 16;
    let mut cmd = Command::new(prlimit);
    cmd.arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"));
    perch_tests::run_checked(cmd, WAIT)?;
    let sock = perchd.dir().join("run/perch/perchd.sock");
    let log_before = perchd.log_text()?.len();
    let accept_warnings = |log: &str| {
        log[log_before..]
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("accept"))
            .count()
    };

    // Silent clients of our uid use up the descriptors (each waits in its handshake),
    // until perchd says it cannot accept.
    let mut idle = Vec::new();
    wait_until(WAIT, || {
        for _ in 0..8 {
            idle.push(UnixStream::connect(&sock)?);
        }
        Ok(accept_warnings(&perchd.log_text()?) > 0)
    })
    .context("perchd never ran out of descriptors")?;

    // Real clients queue meanwhile; then the silent ones leave.
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(perchd.cli_spawn(&["status"])?);
    }
    drop(idle);
    for (i, mut client) in clients.into_iter().enumerate() {
        let status = wait_timeout(&mut client, WAIT)?;
        ensure!(
            status.is_some_and(|s| s.success()),
            "client {i} of {CLIENTS} failed ({status:?}); see perch.stderr"
        );
    }
    // The episode ends after a quiet spell; the next client is told about in the log.
    wait_until(WAIT, || {
        perchd.cli_ok(&["status"])?;
        Ok(perchd.log_text()?[log_before..].contains("accepting bridge connections again"))
    })
    .context("perchd never said it accepts again")?;
    let log = perchd.log_text()?;
    let warnings = accept_warnings(&log);
    ensure!(
        (1..=3).contains(&warnings),
        "expected the accept errors logged once per episode, got {warnings} warnings:\n{}",
        perch_tests::tail_lines(&log[log_before..], 20)
    );
    eprintln!(
        "{CLIENTS} clients served at a limit of {limit} descriptors; {warnings} accept warning(s)"
    );
    Ok(())
}

fn wait_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Result<Option<std::process::ExitStatus>> {
    let mut status = None;
    let _ = wait_until(timeout, || {
        status = child.try_wait()?;
        Ok(status.is_some())
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ok(status)
}

/// `perch monitor` on the bus ends with `NoDaemon` when perchd leaves the bus: it
/// follows perchd's unique name, so it neither hangs nor listens to a successor.
#[test]
fn monitor_on_the_bus_ends_when_perchd_goes() {
    let mut perchd = Perchd::start().expect("starting perchd");
    body_monitor_ends(&mut perchd).unwrap();
}

fn body_monitor_ends(perchd: &mut Perchd) -> Result<()> {
    let stderr = perchd.dir().join("perch.stderr");
    let mut monitor = perchd.cli_spawn(&["--json", "monitor"])?;
    wait_until(WAIT, || {
        Ok(fs::read_to_string(&stderr)
            .unwrap_or_default()
            .contains("listening to perchd's signals"))
    })
    .context("perch monitor never said it was listening")?;
    perchd.stop()?;
    let status = wait_timeout(&mut monitor, WAIT)?;
    let said = fs::read_to_string(&stderr)?;
    ensure!(
        status.is_some_and(|s| s.code() == Some(1)) && said.contains("perch: NoDaemon: "),
        "monitor should end with NoDaemon once perchd is gone ({status:?}):\n{said}"
    );
    Ok(())
}
