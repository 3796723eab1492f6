//! Self-tests of the e2e harness: they need Prosody, openssl and dbus-daemon, not perchd.

use std::net::{Ipv4Addr, TcpStream};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use perch_tests::{
    DbusDaemon, Prosody, find_program, merge_toml, probe_stream_features, run_with_timeout,
    wait_until,
};

fn refused(port: u16) -> bool {
    TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    )
    .is_err()
}

/// A full StartTLS handshake with `openssl s_client`, verifying the chain against the
/// harness CA and the host name `localhost`.
fn starttls_verifies(prosody: &Prosody) -> Result<String> {
    let openssl = find_program("openssl", "openssl", "openssl")?;
    let mut cmd = Command::new(openssl);
    cmd.args([
        "s_client",
        "-starttls",
        "xmpp",
        "-xmpphost",
        "localhost",
        "-connect",
    ])
    .arg(prosody.server_arg())
    .arg("-CAfile")
    .arg(prosody.ca_file())
    .args([
        "-verify_hostname",
        "localhost",
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

    let handshake = starttls_verifies(&prosody).expect("TLS handshake with the harness CA");
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
    starttls_verifies(&prosody).expect("TLS after restart");
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
