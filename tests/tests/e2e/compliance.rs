//! The XMPP Compliance Suites' items that are about the connection rather than a
//! feature: Direct TLS (XEP-0368).

use super::*;
use perch_tests::free_port;

/// A profile whose server override is `tls://HOST:PORT` speaks TLS from its first
/// byte: it connects to Prosody's Direct TLS port (which speaks nothing else) and
/// talks; `tls://` to the STARTTLS port fails fast with a named TLS error, and
/// perchd stays up.
#[test]
fn direct_tls_when_asked() {
    direct_tls_body().unwrap();
}

fn direct_tls_body() -> Result<()> {
    let direct = free_port()?;
    let prosody = Prosody::start_with_config(&format!("c2s_direct_tls_ports = {{ {direct} }}"))?;
    let perchd = Perchd::start()?;
    let ca = prosody.ca_file().display().to_string();
    let create = |name: &str, user: &str, pw: &str, server: &str| {
        perchd.cli_ok(&[
            "profile",
            "create",
            name,
            "--jid",
            &format!("{user}@localhost"),
            "--xmpp-password",
            pw,
            "--server",
            server,
            "--ca-file",
            &ca,
        ])
    };
    create(
        "alice",
        "alice",
        ALICE_PW,
        &format!("tls://127.0.0.1:{direct}"),
    )?;
    let shown = perchd.cli_json(&["profile", "show", "alice"])?;
    ensure!(
        shown["server"] == format!("tls://127.0.0.1:{direct}"),
        "the profile's server: {shown}"
    );
    connect(&perchd, "alice", ALICE)?;
    create("bob", "bob", BOB_PW, &prosody.server_arg())?;
    connect(&perchd, "bob", BOB)?;
    perchd.cli_ok(&["message", "send", "-p", "alice", BOB, "over direct TLS"])?;
    wait_for_incoming(&perchd, "bob", "over direct TLS")?;

    create(
        "wrong",
        "alice",
        ALICE_PW,
        &format!("tls://127.0.0.1:{}", prosody.port()),
    )?;
    let out = perchd.cli(&["connect", "-p", "wrong"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && err.contains("TLS"),
        "Direct TLS to a STARTTLS port: exit {:?}, stderr {err}",
        out.status.code()
    );
    ensure!(
        perchd.state_of("alice")? == "connected",
        "alice's session after another profile's failed connection"
    );
    Ok(())
}
