//! Hostile input from the server side (issue 11, defect 2): stanzas nested 5,000 deep
//! or 20 MB large, sent by a scripted server since no real one relays them. perchd
//! must refuse them one by one — logged with the sender, an IQ request answered
//! `policy-violation` — and keep the profile connected on the same stream: no crash,
//! no reconnection (which the server would answer by sending them again).

use super::*;
use perch_tests::FakeServer;

/// A 20 MB message takes a while through TLS in a debug build.
const HOSTILE_DELIVERY: Duration = Duration::from_secs(90);

/// perchd's (VmRSS, VmHWM) in KiB, 0 when unreadable.
fn rss_kib(perchd: &Perchd) -> (u64, u64) {
    let status = perchd
        .pid()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn nested(depth: usize) -> String {
    format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth))
}

#[test]
fn deep_and_huge_stanzas_are_refused_and_the_profile_stays_connected() {
    let server = FakeServer::start("alice").expect("starting the fake XMPP server");
    let mut perchd = Perchd::start().expect("starting perchd");
    let result = hostile_body(&server, &mut perchd);
    if std::env::var_os("PERCH_E2E_SHOW_LOG").is_some() {
        eprintln!("{}", perchd.log_text().unwrap_or_default());
    }
    if result.is_err() {
        eprintln!(
            "--- fake server: error {:?}; the client sent:\n{}",
            server.error(),
            perch_tests::tail_lines(&server.received(), 40)
        );
    }
    result.unwrap();
}

fn hostile_body(server: &FakeServer, perchd: &mut Perchd) -> Result<()> {
    let ca = server.ca_file().display().to_string();
    perchd.cli_ok(&[
        "profile",
        "create",
        "alice",
        "--jid",
        ALICE,
        "--xmpp-password",
        "any",
        "--server",
        &server.server_arg(),
        "--ca-file",
        &ca,
    ])?;
    connect(perchd, "alice", ALICE)?;
    let full = server
        .bound_jid()
        .ok_or_else(|| anyhow!("connected, yet the fake server bound no session"))?;
    ensure!(server.sessions() == 1, "sessions: {}", server.sessions());
    let rss_before = rss_kib(perchd);
    let started = std::time::Instant::now();

    let eve = "eve@evil.example/x";
    server.send(format!(
        "<message from='{eve}' to='{full}' type='chat' id='deep'><body>deep</body>{}</message>",
        nested(5000)
    ))?;
    server.send(format!(
        "<message from='{eve}' to='{full}' type='chat' id='huge'><body>{}</body></message>",
        "x".repeat(20_000_000)
    ))?;
    server.send(format!(
        "<iq from='{eve}' to='{full}' type='get' id='evil-iq'><query xmlns='urn:x'>{}</query></iq>",
        nested(5000)
    ))?;
    let fine = "still here after the hostile stanzas";
    server.send(format!(
        "<message from='bob@localhost/x' to='{full}' type='chat' id='fine'><body>{fine}</body></message>"
    ))?;

    let mut last = Vec::new();
    wait_until(HOSTILE_DELIVERY, || {
        last = history(perchd, "alice", &[])?;
        Ok(last.iter().any(|m| m["body"] == fine))
    })
    .with_context(|| {
        format!(
            "the message after the hostile ones never arrived; history:\n{}",
            summarize_history(&Value::Array(last.clone()))
        )
    })?;
    // Figures for doc/reliability.rst (printed, not asserted).
    eprintln!(
        "hostile drill: delivered after {:.1} s; perchd VmRSS {} KiB before, {} KiB after; \
         VmHWM {} KiB before, {} KiB after",
        started.elapsed().as_secs_f64(),
        rss_before.0,
        rss_kib(perchd).0,
        rss_before.1,
        rss_kib(perchd).1,
    );
    // The refused IQ request was answered with an error, on the same stream.
    wait_until(DELIVERY, || {
        let sent = server.received();
        Ok(sent.contains("evil-iq") && sent.contains("policy-violation"))
    })
    .context("no policy-violation answer to the refused IQ request")?;

    ensure!(
        perchd.is_running(),
        "perchd died:\n{}",
        perchd.diagnostics()
    );
    let state = perchd.state_of("alice")?;
    ensure!(state == "connected", "alice is {state}");
    ensure!(
        server.sessions() == 1,
        "the profile reconnected ({} sessions): the stream broke",
        server.sessions()
    );
    // Nothing of the refused messages was stored.
    ensure!(
        last.iter().all(|m| m["peer"] != "eve@evil.example"),
        "a refused message was stored:\n{}",
        summarize_history(&Value::Array(last))
    );
    // perchd's log names each refusal with its sender and reason.
    let log = perchd.log_text()?;
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refused an incoming stanza"))
        .collect();
    for (id, reason) in [("deep", "depth"), ("huge", "size"), ("evil-iq", "depth")] {
        ensure!(
            refusals.iter().any(|l| l.contains(id)
                && l.contains(reason)
                && l.contains("eve@evil.example")
                && l.contains("alice")),
            "no refusal of {id} ({reason}) in perchd's log; refusals:\n{}",
            refusals.join("\n")
        );
    }
    Ok(())
}
