//! The XMPP Compliance Suites' items that are about the connection rather than a
//! feature: Direct TLS (XEP-0368), Client State Indication (XEP-0352).

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

/// With `[xmpp] csi = true`, alice's session tells Prosody (`csi_simple`) it is
/// inactive once no frontend is listening: Prosody holds bob's presence change back.
/// A frontend coming (`perch monitor`) makes them active: the held presence arrives.
/// When it leaves, they are inactive again.
#[test]
fn client_state_indication_follows_the_frontends() {
    csi_body().unwrap();
}

/// Lines of Prosody's log where a client sent this CSI nonza.
fn csi_nonzas(prosody: &Prosody, nonza: &str) -> Result<usize> {
    let log = std::fs::read_to_string(prosody.log_path())?;
    let start = format!("Received[c2s]: <{nonza}");
    Ok(log
        .lines()
        .filter(|l| l.contains(&start) && l.contains("urn:xmpp:csi:0"))
        .count())
}

fn csi_body() -> Result<()> {
    let prosody = Prosody::start()?;
    // Subscribed to each other, so bob's presence goes to alice.
    perch_tests::libervia::seed_roster(&prosody, "alice", &[(BOB, "Bob", "Friends")])?;
    perch_tests::libervia::seed_roster(&prosody, "bob", &[(ALICE, "Alice", "Friends")])?;
    // alice on a perchd with CSI; bob on another, so that his calls are not frontends
    // of alice's daemon.
    let perchd = Perchd::start_with_config("[xmpp]\ncsi = true\n")?;
    let other = Perchd::start()?;
    for (daemon, name, pw, jid) in [
        (&perchd, "alice", ALICE_PW, ALICE),
        (&other, "bob", BOB_PW, BOB),
    ] {
        daemon.cli_ok(&[
            "profile",
            "create",
            name,
            "--jid",
            &format!("{name}@localhost"),
            "--xmpp-password",
            pw,
            "--server",
            &prosody.server_arg(),
            "--ca-file",
            &prosody.ca_file().display().to_string(),
        ])?;
        connect(daemon, name, jid)?;
    }
    // The CLI's calls are over: alice's session goes inactive after the grace.
    wait_until(Duration::from_secs(20), || {
        Ok(csi_nonzas(&prosody, "inactive")? >= 1)
    })
    .context("alice's session never told Prosody it was inactive")?;
    ensure!(
        csi_nonzas(&prosody, "active")? == 0,
        "active before any frontend came"
    );

    // bob's presence to alice is held by the server while alice is inactive.
    other.cli_ok(&[
        "presence", "set", "-p", "bob", "--show", "away", "--status", "csi",
    ])?;
    let log_has = |what: &str| -> Result<bool> {
        Ok(std::fs::read_to_string(prosody.log_path())?.contains(what))
    };
    wait_until(Duration::from_secs(20), || log_has("Holding buffer")).with_context(|| {
        let log = std::fs::read_to_string(prosody.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("csi") || l.contains("presence") || l.contains("buffer"))
            .collect();
        format!(
            "Prosody never held a presence for an inactive session; its log:\n{}",
            lines[lines.len().saturating_sub(40)..].join("\n")
        )
    })?;

    // A frontend comes: active again, and the held presence is delivered.
    let mut monitor = perchd.cli_spawn(&["--json", "monitor"])?;
    let seen = wait_until(Duration::from_secs(20), || {
        Ok(csi_nonzas(&prosody, "active")? >= 1)
    })
    .context("alice's session never told Prosody it was active again");
    let away = seen.and_then(|()| {
        wait_until(Duration::from_secs(20), || {
            let list = perchd.cli_json(&["presence", "list", "-p", "alice"])?;
            Ok(list.to_string().contains("\"away\""))
        })
        .context("bob's away presence never reached alice once she was active")
    });
    let _ = monitor.kill();
    let _ = monitor.wait();
    away?;

    // It left: inactive again after the grace.
    wait_until(Duration::from_secs(20), || {
        Ok(csi_nonzas(&prosody, "inactive")? >= 2)
    })
    .context("alice's session did not go inactive again once the frontend left")?;
    Ok(())
}
