//! Self-tests of the e2e harness: they need Prosody, ejabberd, openssl and dbus-daemon,
//! not perchd.

// A test reads as one scenario, start to end: the one-screen rule is for the code
// under test (`[workspace.lints]`).
#![allow(clippy::too_many_lines)]

use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use perch_tests::ejabberd::node_processes;
use perch_tests::{
    DbusDaemon, Ejabberd, Prosody, find_program, merge_toml, probe_stream_features,
    run_with_timeout, wait_until,
};

fn refused(port: u16) -> bool {
    TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    )
    .is_err()
}

/// A full StartTLS handshake with `openssl s_client` to `server_arg` (stream to
/// `localhost`), verifying the chain against `ca_file` and the host name `verify_host`.
fn starttls_verifies(server_arg: &str, ca_file: &Path, verify_host: &str) -> Result<String> {
    let openssl = find_program("openssl", "openssl", "openssl")?;
    let mut cmd = Command::new(openssl);
    cmd.args([
        "s_client",
        "-starttls",
        "xmpp",
        "-xmpphost",
        "localhost",
        "-connect",
        server_arg,
    ])
    .arg("-CAfile")
    .arg(ca_file)
    .args([
        "-verify_hostname",
        verify_host,
        "-verify_return_error",
        "-brief",
    ]);
    let out = run_with_timeout(cmd, Duration::from_secs(20))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        out.status.success(),
        "openssl s_client failed ({}):\n{text}",
        out.status
    );
    Ok(text)
}

#[test]
fn prosody_starts_offers_starttls_and_restarts() {
    let mut prosody = Prosody::start().expect("Prosody::start");
    let port = prosody.port();
    assert!(prosody.is_running());

    let features = probe_stream_features(port).expect("stream features");
    assert!(
        features.contains("<starttls") && features.contains("urn:ietf:params:xml:ns:xmpp-tls"),
        "no STARTTLS offered: {features}"
    );
    assert!(
        features.contains("<required"),
        "STARTTLS should be required (c2s_require_encryption): {features}"
    );
    assert!(
        !features.contains("<mechanisms"),
        "SASL must not be offered before TLS: {features}"
    );

    let handshake = starttls_verifies(&prosody.server_arg(), &prosody.ca_file(), "localhost")
        .expect("TLS handshake with the harness CA");
    assert!(handshake.contains("Verification: OK"), "{handshake}");

    // Accounts are stored in files.
    let accounts = prosody.dir().join("data/localhost/accounts");
    assert!(
        accounts.join("alice.dat").is_file(),
        "alice not registered in {accounts:?}"
    );
    assert!(
        accounts.join("bob.dat").is_file(),
        "bob not registered in {accounts:?}"
    );

    prosody.kill().expect("kill");
    assert!(!prosody.is_running());
    assert!(refused(port), "port {port} still accepts after kill()");

    prosody
        .register("carol", "carol-secret")
        .expect("register while down");

    prosody.start_again().expect("start_again");
    assert_eq!(prosody.port(), port, "start_again must reuse the port");
    let features = probe_stream_features(port).expect("stream features after restart");
    assert!(
        features.contains("<starttls"),
        "no STARTTLS after restart: {features}"
    );
    starttls_verifies(&prosody.server_arg(), &prosody.ca_file(), "localhost")
        .expect("TLS after restart");
    assert!(
        accounts.join("alice.dat").is_file(),
        "data lost across restart"
    );
    assert!(accounts.join("carol.dat").is_file());

    // A second kill/start cycle works as well, and Drop cleans up a running server.
    prosody.kill().expect("second kill");
    prosody.start_again().expect("second start_again");
    probe_stream_features(port).expect("stream features after second restart");
    let dir = prosody.dir().to_owned();
    drop(prosody);
    assert!(refused(port), "port {port} still accepts after drop");
    assert!(
        !dir.exists() || std::env::var_os("PERCH_E2E_KEEP").is_some(),
        "temporary directory left behind"
    );
}

#[test]
fn two_prosodies_run_side_by_side() {
    let a = Prosody::start().expect("first");
    let b = Prosody::start().expect("second");
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    probe_stream_features(a.port()).expect("first answers");
    probe_stream_features(b.port()).expect("second answers");
}

/// The sockets of process `pid`: `(protocol, local address, port, tcp state)`, read
/// from `/proc/<pid>/fd` and `/proc/net/{tcp,tcp6,udp,udp6}` (state `0A` = LISTEN).
fn sockets_of(pid: u32) -> Vec<(&'static str, String, u16, String)> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| {
                let target = std::fs::read_link(e.ok()?.path()).ok()?;
                let target = target.to_str()?;
                Some(
                    target
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .to_owned(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    for proto in ["tcp", "tcp6", "udp", "udp6"] {
        let table = std::fs::read_to_string(format!("/proc/net/{proto}")).unwrap_or_default();
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || !inodes.iter().any(|i| i == f[9]) {
                continue;
            }
            let (addr, port) = f[1].split_once(':').expect("address:port");
            let port = u16::from_str_radix(port, 16).expect("hex port");
            let addr = if addr.len() == 8 {
                let n = u32::from_str_radix(addr, 16).expect("hex address");
                Ipv4Addr::from(n.swap_bytes()).to_string()
            } else {
                addr.to_owned()
            };
            found.push((proto, addr, port, f[3].to_owned()));
        }
    }
    found
}

#[test]
fn ejabberd_starts_offers_starttls_with_trusted_cert() {
    // Two instances at once: unique node names, no shared epmd, own directories.
    let timed = |users: &'static [(&'static str, &'static str)]| {
        move || {
            let t0 = Instant::now();
            let server = if users.is_empty() {
                Ejabberd::start()
            } else {
                Ejabberd::start_with_users(users)
            };
            (server, t0.elapsed())
        }
    };
    let ((a, a_time), (b, b_time)) = std::thread::scope(|s| {
        let a = s.spawn(timed(&[]));
        let b = s.spawn(timed(&[("carol", "carol-secret")]));
        (a.join().expect("thread"), b.join().expect("thread"))
    });
    let mut ejabberd = a.expect("Ejabberd::start");
    let other = b.expect("Ejabberd::start_with_users");
    eprintln!("two ejabberds started side by side in {a_time:?} and {b_time:?}");
    let port = ejabberd.port();
    let node = ejabberd.node().to_owned();
    assert!(ejabberd.is_running());
    assert_ne!(port, other.port());
    assert_ne!(node, other.node());
    assert_ne!(ejabberd.dir(), other.dir());

    let features = probe_stream_features(port).expect("stream features");
    assert!(
        features.contains("<starttls") && features.contains("urn:ietf:params:xml:ns:xmpp-tls"),
        "no STARTTLS offered: {features}"
    );
    assert!(
        features.contains("<required"),
        "STARTTLS should be required: {features}"
    );
    assert!(
        !features.contains("<mechanisms"),
        "SASL must not be offered before TLS: {features}"
    );
    for host in ["localhost", "pubsub.localhost"] {
        let handshake = starttls_verifies(&ejabberd.server_arg(), &ejabberd.ca_file(), host)
            .unwrap_or_else(|e| panic!("TLS handshake verifying {host}: {e:#}"));
        assert!(handshake.contains("Verification: OK"), "{handshake}");
    }

    let users = ejabberd
        .ctl(&["registered_users", "localhost"])
        .expect("registered_users");
    assert_eq!(
        users.lines().collect::<Vec<_>>(),
        ["alice", "bob"],
        "{users}"
    );
    let users = other
        .ctl(&["registered_users", "localhost"])
        .expect("registered_users of the second");
    assert_eq!(users.lines().collect::<Vec<_>>(), ["carol"], "{users}");

    // Nothing but loopback: the c2s port, the HTTPS upload port (XEP-0363) and the
    // Erlang distribution port, no UDP, no v6.
    let beam = ejabberd.beam_pid().expect("beam.smp pid");
    let sockets = sockets_of(beam);
    let listeners: Vec<_> = sockets
        .iter()
        .filter(|(proto, _, _, state)| proto.starts_with("tcp") && state == "0A")
        .collect();
    assert!(
        listeners
            .iter()
            .any(|(_, addr, p, _)| addr == "127.0.0.1" && *p == port),
        "c2s port {port} not listening on 127.0.0.1: {sockets:?}"
    );
    assert!(
        listeners
            .iter()
            .any(|(_, addr, p, _)| addr == "127.0.0.1" && *p == ejabberd.https_port()),
        "upload port {} not listening on 127.0.0.1: {sockets:?}",
        ejabberd.https_port()
    );
    assert_eq!(
        listeners.len(),
        3,
        "expected c2s + HTTPS upload + distribution: {sockets:?}"
    );
    for (proto, addr, p, _) in &sockets {
        assert!(
            *proto == "tcp" && addr == "127.0.0.1",
            "socket {proto} {addr}:{p} is not on 127.0.0.1: {sockets:?}"
        );
    }

    let other_node = other.node().to_owned();
    let other_port = other.port();
    assert!(!node_processes(&other_node).is_empty());
    drop(other);
    assert!(
        node_processes(&other_node).is_empty(),
        "second instance left processes"
    );
    assert!(
        refused(other_port),
        "port {other_port} still accepts after drop"
    );
    // The first one is unaffected.
    probe_stream_features(port).expect("first still answers after the second is gone");

    // A graceful stop keeps even the latest writes.
    ejabberd.register("dave", "dave-secret").expect("register");
    let t0 = Instant::now();
    ejabberd.stop().expect("stop");
    eprintln!("ejabberd stopped in {:?}", t0.elapsed());
    assert!(!ejabberd.is_running());
    assert!(
        node_processes(&node).is_empty(),
        "processes left after stop()"
    );
    assert!(refused(port), "port {port} still accepts after stop()");
    let t0 = Instant::now();
    ejabberd.start_again().expect("start_again after stop");
    eprintln!("ejabberd started again in {:?}", t0.elapsed());
    assert_eq!(ejabberd.port(), port, "start_again must reuse the port");
    starttls_verifies(&ejabberd.server_arg(), &ejabberd.ca_file(), "localhost")
        .expect("TLS after restart");
    let all = ["alice", "bob", "dave"];
    let users = ejabberd
        .ctl(&["registered_users", "localhost"])
        .expect("registered_users after stop and restart");
    assert_eq!(users.lines().collect::<Vec<_>>(), all, "{users}");

    // A crash (SIGKILL): data flushed before it survives.
    let t0 = Instant::now();
    ejabberd.kill().expect("kill");
    eprintln!("ejabberd killed in {:?}", t0.elapsed());
    assert!(!ejabberd.is_running());
    assert!(
        node_processes(&node).is_empty(),
        "processes left after kill()"
    );
    assert!(refused(port), "port {port} still accepts after kill()");
    ejabberd.start_again().expect("start_again after kill");
    probe_stream_features(port).expect("stream features after kill and restart");
    let users = ejabberd
        .ctl(&["registered_users", "localhost"])
        .expect("registered_users after kill and restart");
    assert_eq!(users.lines().collect::<Vec<_>>(), all, "{users}");

    let beam = ejabberd.beam_pid().expect("beam.smp pid after restart");
    let dir = ejabberd.dir().to_owned();
    let t0 = Instant::now();
    drop(ejabberd);
    eprintln!("ejabberd dropped in {:?}", t0.elapsed());
    assert!(
        node_processes(&node).is_empty(),
        "processes of {node} left after drop"
    );
    let beam_alive = std::fs::read_to_string(format!("/proc/{beam}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    });
    assert!(!beam_alive, "beam.smp {beam} still running after drop");
    assert!(refused(port), "port {port} still accepts after drop");
    assert!(
        !dir.exists() || std::env::var_os("PERCH_E2E_KEEP").is_some(),
        "temporary directory left behind"
    );
}

#[tokio::test]
async fn dbus_daemon_private_bus() {
    let bus = DbusDaemon::start().expect("DbusDaemon::start");
    assert!(bus.address().starts_with("unix:path="), "{}", bus.address());
    let conn = bus.connection().await.expect("connect");
    assert!(conn.unique_name().is_some());
    let dbus = zbus::fdo::DBusProxy::new(&conn).await.expect("proxy");
    let names = dbus.list_names().await.expect("ListNames");
    assert!(
        names.iter().any(|n| n.as_str() == "org.freedesktop.DBus"),
        "{names:?}"
    );
    let socket = bus.dir().join("bus");
    assert!(socket.exists());
    drop(conn);
    drop(bus);
    assert!(!socket.exists(), "bus socket left behind");
}

#[test]
fn wait_until_polls_and_times_out() {
    let mut n = 0;
    wait_until(Duration::from_secs(5), || {
        n += 1;
        Ok(n == 3)
    })
    .expect("becomes true");
    assert_eq!(n, 3);

    let mut polls = 0;
    let err = wait_until(Duration::from_millis(300), || {
        polls += 1;
        Ok(false)
    })
    .unwrap_err();
    assert!(err.to_string().contains("still false"), "{err}");
    assert!(polls >= 2, "gave up after {polls} poll(s)");

    let err = wait_until(Duration::from_secs(5), || anyhow::bail!("boom")).unwrap_err();
    assert_eq!(err.to_string(), "boom");
}

#[test]
fn merge_toml_overrides_key_by_key() {
    let merged = merge_toml(
        "[xmpp]\nconnect_attempts = 2\nconnect_timeout = 10\n",
        "[xmpp]\nconnect_timeout = 3\n[log]\nfile = \"none\"\n",
    )
    .expect("merge");
    let table: toml::Table = merged.parse().expect("valid TOML");
    assert_eq!(table["xmpp"]["connect_attempts"].as_integer(), Some(2));
    assert_eq!(table["xmpp"]["connect_timeout"].as_integer(), Some(3));
    assert_eq!(table["log"]["file"].as_str(), Some("none"));
}
