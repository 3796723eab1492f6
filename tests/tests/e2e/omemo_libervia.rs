//! OMEMO between Perch and Libervia 0.9's own OMEMO (issue 20): alice on Debian's
//! `libervia-backend` (its `plugin_xep_0384`, built on Syndace's reference libraries),
//! bob on perchd, both on the harness Prosody. Messages go both ways, the session is
//! opened once from each side, with each version: OMEMO 2 (Libervia's `TWOMEMO`) and
//! 0.3 (Libervia's `OLDMEMO`), perchd speaking that version only (the plugin's
//! `versions` option). Only one: Libervia 0.9 (python-omemo 1.0) loses a version of a
//! new device whose two device lists it handles at once, which a device publishing
//! both does when it first appears (`doc/omemo.rst`, "Interop with Libervia 0.9");
//! Perch speaking both versions with Libervia is covered by the trust form's test.
//!
//! Libervia is driven with `libervia-cli` (`message send -e NAME`, which starts its
//! encryption session with that plugin's namespace first); its history is read with
//! `debug bridge method historyGet`. Its default trust policy (BTBV, parameter
//! `Security/omemo_policy`) trusts perchd's new device blindly, as perchd trusts
//! Libervia's: no trust step is needed for the first messages.

use perch_tests::libervia::{Frontend, LiberviaBackend, seed_roster};

use super::*;

const V2: (&str, &str) = ("TWOMEMO", "urn:xmpp:omemo:2");
const V03: (&str, &str) = ("OLDMEMO", "eu.siacs.conversations.axolotl");

/// A contact with no encrypted conversation.
const CAROL: &str = "carol@localhost";

/// The Libervia profile (alice's account).
const LIB_PROFILE: &str = "test";

/// How long Libervia may take before it can encrypt to a new device: it makes its
/// own keys (in Python) when its profile connects, and fetches the peer's.
const LIBERVIA_READY: Duration = Duration::from_secs(45);

/// Debian's backend (alice) and perchd (bob) on one Prosody.
struct Pair {
    // Kept alive for the test's duration; dropped backend first.
    libervia: LiberviaBackend,
    lib: Frontend,
    perchd: Perchd,
    _prosody: Prosody,
}

impl Pair {
    /// Both sides connected; perchd speaks only `versions` (TOML list items).
    fn start(versions: &str) -> Result<Self> {
        let prosody = Prosody::start()?;
        seed_roster(&prosody, "alice", &[(BOB, "Bob", "Friends")])?;
        seed_roster(&prosody, "bob", &[(ALICE, "Alice", "Friends")])?;
        let perchd = Perchd::start_with_config(&format!(
            "[log]\nlevel = \"debug\"\n[plugins.options.\"XEP-0384\"]\nversions = [{versions}]\n"
        ))?;
        let libervia = LiberviaBackend::start()?;
        let lib = libervia.frontend()?;
        lib.create_profile(&prosody, LIB_PROFILE, "alice", ALICE_PW)?;
        lib.cli_ok(&["profile", "connect", "-p", LIB_PROFILE, "-c"])?;
        perchd.create_profile(&prosody, "bob", "bob", BOB_PW, &[])?;
        connect(&perchd, "bob", BOB)?;
        Ok(Self {
            libervia,
            lib,
            perchd,
            _prosody: prosody,
        })
    }

    /// alice (Libervia) sends `text` to bob encrypted with plugin `name`; retried
    /// while Libervia cannot encrypt yet (perchd's keys are published shortly after
    /// its connection).
    fn lib_sends(&self, name: &str, text: &str) -> Result<()> {
        let mut last = String::new();
        wait_until(LIBERVIA_READY, || {
            let out = self.lib.cli_input(
                &["message", "send", "-p", LIB_PROFILE, "-e", name, BOB],
                text,
            )?;
            last = out.describe();
            Ok(out.success())
        })
        .with_context(|| format!("libervia-cli could not send {text:?}: {last}"))
    }

    /// bob (perchd) sends `text` to alice, encrypted.
    fn perch_sends(&self, text: &str) -> Result<()> {
        self.perchd
            .cli_ok(&["message", "send", "-p", "bob", ALICE, "--encrypt", text])?;
        Ok(())
    }

    /// Libervia's stored conversation of alice with bob, as `historyGet` prints it
    /// (a Python list of tuples).
    fn lib_history(&self) -> Result<String> {
        self.lib.cli_ok(&[
            "debug",
            "bridge",
            "method",
            "-p",
            LIB_PROFILE,
            "historyGet",
            "'alice@localhost'",
            "'bob@localhost'",
            "100",
            "True",
            "{}",
        ])
    }

    /// Waits until Libervia's history holds `text` received from bob, decrypted
    /// (marked `encrypted`).
    fn lib_receives(&self, text: &str) -> Result<()> {
        let mut last = String::new();
        wait_until(DELIVERY, || {
            last = self.lib_history()?;
            // One `dbus.Struct` a message; its extra (JSON) says it was encrypted.
            Ok(last.split("dbus.Struct((").any(|m| {
                (m.contains(&format!("dbus.String('{text}')"))
                    || m.contains(&format!("dbus.String(\"{text}\")")))
                    && m.contains("\"encrypted\": true")
            }))
        })
        .with_context(|| {
            format!("Libervia never stored {text:?} decrypted; its history: {last}")
        })?;
        Ok(())
    }

    /// Waits until perchd's history holds `text` from alice, decrypted with `ns`.
    fn perch_receives(&self, text: &str, ns: &str) -> Result<()> {
        wait_for_incoming(&self.perchd, "bob", text)?;
        let m = history(&self.perchd, "bob", &[])?
            .into_iter()
            .find(|m| m["body"] == text)
            .ok_or_else(|| anyhow!("bob has no {text:?}"))?;
        ensure!(m["extra"]["encryption"] == ns, "{m}");
        ensure!(m["extra"].get("decryption_error").is_none(), "{m}");
        Ok(())
    }

    /// perchd starts encrypting with alice (once her devices are seen); it must pick
    /// `ns`.
    fn perch_starts(&self, ns: &str) -> Result<()> {
        let mut last = String::new();
        wait_until(DELIVERY, || {
            let out = self
                .perchd
                .cli(&["--json", "encryption", "start", "-p", "bob", ALICE])?;
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            Ok(out.status.success())
        })
        .with_context(|| format!("bob could not start encrypting with alice: {last}"))?;
        let st: Value = serde_json::from_str(&last)?;
        ensure!(st["namespace"] == ns, "{st}");
        Ok(())
    }

    /// A failure report: both sides' logs.
    fn report(&self, e: anyhow::Error) -> anyhow::Error {
        let log = self.perchd.log_text().unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        // DEBUG: keep the whole logs.
        let diag = self.libervia.diagnostics();
        if let Some(dir) = diag
            .lines()
            .next()
            .and_then(|l| l.split('(').nth(1))
            .map(|d| d.trim_end_matches(')'))
        {
            let tag = std::thread::current()
                .name()
                .unwrap_or("x")
                .replace("::", "_");
            let _ = std::fs::copy(
                format!("{dir}/home/libervia-data/libervia.log"),
                format!("/tmp/omelib-{tag}-libervia.log"),
            );
            let _ = std::fs::write(format!("/tmp/omelib-{tag}-perchd.log"), &log);
        }
        anyhow!(
            "{e:#}\n--- perchd log tail:\n{}\n{}",
            tail.join("\n"),
            self.libervia.diagnostics()
        )
    }
}

/// Libervia opens the session (its key exchange reaches perchd first).
fn libervia_first(versions: &str, (name, ns): (&str, &str)) -> Result<()> {
    let pair = Pair::start(versions)?;
    let steps = || -> Result<()> {
        pair.lib_sends(name, "from libervia, first")?;
        pair.perch_receives("from libervia, first", ns)?;
        pair.perch_starts(ns)?;
        pair.perch_sends("from perch, on the session libervia opened")?;
        pair.lib_receives("from perch, on the session libervia opened")?;
        pair.lib_sends(name, "from libervia, again")?;
        pair.perch_receives("from libervia, again", ns)?;
        pair.perch_sends("from perch, again")?;
        pair.lib_receives("from perch, again")
    };
    steps().map_err(|e| pair.report(e))
}

/// perchd opens the session (its key exchange reaches Libervia first).
fn perch_first(versions: &str, (name, ns): (&str, &str)) -> Result<()> {
    let pair = Pair::start(versions)?;
    let steps = || -> Result<()> {
        pair.perch_starts(ns)?;
        pair.perch_sends("from perch, first")?;
        pair.lib_receives("from perch, first")?;
        pair.lib_sends(name, "from libervia, on the session perch opened")?;
        pair.perch_receives("from libervia, on the session perch opened", ns)?;
        pair.perch_sends("from perch, again")?;
        pair.lib_receives("from perch, again")?;
        pair.lib_sends(name, "from libervia, again")?;
        pair.perch_receives("from libervia, again", ns)
    };
    steps().map_err(|e| pair.report(e))
}

#[test]
fn omemo_2_libervia_opens_the_session() {
    libervia_first("\"2\"", V2).unwrap();
}

#[test]
fn omemo_2_perch_opens_the_session() {
    perch_first("\"2\"", V2).unwrap();
}

#[test]
fn omemo_0_3_libervia_opens_the_session() {
    libervia_first("\"0.3\"", V03).unwrap();
}

#[test]
fn omemo_0_3_perch_opens_the_session() {
    perch_first("\"0.3\"", V03).unwrap();
}

// ---------------------------------------------------------------------------------------
// the trust form (`encryptionTrustUIGet`) on perchd's Libervia bridge
// ---------------------------------------------------------------------------------------

/// What differs between two runs of `encryption trust ui` on two backends: the keys
/// (fingerprints, device ids) and, as 0.9 lists a device's trust levels from a Python
/// set, the order of the choices (their lines are sorted, their numbers dropped).
/// Empty lines are dropped.
fn trust_ui_normalised(text: &str) -> Result<String> {
    let ansi = regex::Regex::new(r"\x1b\[[0-9;]*m")?;
    let fp = regex::Regex::new(r"\b[0-9a-f]{8}( [0-9a-f]{8}){7}\b")?;
    let id = regex::Regex::new(r"\b[0-9]{4,10}\b")?;
    let choice = regex::Regex::new(r"^[0-9]+: ([A-Z_]+)$")?;
    let text = ansi.replace_all(text, "");
    let text = fp.replace_all(&text, "<fingerprint>");
    let text = id.replace_all(&text, "<device>");
    let mut lines: Vec<String> = text
        .lines()
        // 0.9 may lose one version of a device it learnt both versions of at once
        // (`doc/omemo.rst`, "Interop with Libervia 0.9"): its "(not available for …)"
        // notes are left out.
        .filter(|l| !l.trim().starts_with("(not available for "))
        // (and the empty lines around them)
        .filter(|l| !l.trim().is_empty())
        .map(|l| match choice.captures(l.trim()) {
            Some(c) => format!("<choice> {}", &c[1]),
            None => l.trim_end().to_owned(),
        })
        .collect();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        while i < lines.len() && lines[i].starts_with("<choice>") {
            i += 1;
        }
        lines[start..i].sort_unstable();
        i = i.max(start + 1);
    }
    Ok(lines.join("\n"))
}

/// Sends alice's (`test`) first encrypted message to bob with libervia-cli, retried
/// while bob's keys are not published yet.
fn first_encrypted(frontend: &Frontend) -> Result<()> {
    let mut last = String::new();
    wait_until(LIBERVIA_READY, || {
        let out = frontend.cli_input(
            &["message", "send", "-p", "test", "-e", "TWOMEMO", BOB],
            "a first encrypted message",
        )?;
        last = out.describe();
        Ok(out.success())
    })
    .with_context(|| format!("[{}] no encrypted message: {last}", frontend.name))
}

/// `libervia-cli encryption trust ui` gives the same form on both backends (up to the
/// keys and the order of 0.9's choices), and choosing through it works on both.
#[test]
fn libervia_cli_trust_ui_differential() {
    let (lib, perch) = perch_tests::libervia::sides();
    let mut steps = libervia::profile_setup();
    steps.extend(libervia::connected(&["test", "bob"]));
    perch_tests::libervia::differential(&lib.frontend, &perch.frontend, &steps).unwrap();
    let (l, p) = std::thread::scope(|s| {
        let l = s.spawn(|| trust_ui_run(&lib.frontend));
        let p = s.spawn(|| trust_ui_run(&perch.frontend));
        (
            l.join().expect("libervia thread"),
            p.join().expect("perchd thread"),
        )
    });
    let (mut l, p) = (l.unwrap(), p.unwrap());
    // Perch gives a new key its blind trust when it first sees it; 0.9 when it first
    // encrypts to it: before a first message, 0.9's form shows it UNDECIDED.
    l.0 =
        l.0.replace("<choice> UNDECIDED", "<choice> BLINDLY_TRUSTED");
    let mut lines: Vec<&str> = l.0.lines().collect();
    let choices: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("<choice>"))
        .collect();
    if let (Some(&a), Some(&b)) = (choices.first(), choices.last()) {
        lines[a..=b].sort_unstable();
    }
    l.0 = lines.join("\n");
    assert_eq!(l.0, p.0, "the trust forms differ");
    assert!(
        l.0.contains("OMEMO") && l.0.contains("<fingerprint>"),
        "{}",
        l.0
    );
    // Perch's error bodies are (message, condition): the CLI prints the bare message
    // where 0.9's one-item body shows as a tuple (as in `libervia.rs`).
    let tuple = regex::Regex::new(r#": \((['"])(.*)['"],\)\n"#).unwrap();
    assert_eq!(
        tuple.replace_all(&l.1, ": $2\n"),
        p.1,
        "the error paths differ"
    );
}

/// On one side: encryption started with bob (retried until his keys are seen), the
/// form once it lists bob's device (its first choice taken: perchd lists TRUSTED
/// first, 0.9 any of its levels), then the error paths: a contact without an
/// encrypted conversation, a namespace nobody has.
fn trust_ui_run(f: &Frontend) -> Result<(String, String)> {
    let mut last = String::new();
    wait_until(LIBERVIA_READY, || {
        let out = f.cli(&["encryption", "start", "-p", "test", "-n", "TWOMEMO", BOB])?;
        last = out.describe();
        Ok(out.success())
    })
    .with_context(|| format!("[{}] encryption start: {last}", f.name))?;
    let mut ui = String::new();
    wait_until(LIBERVIA_READY, || {
        let out = f.cli_input(&["encryption", "trust", "ui", "-p", "test", BOB], "0\n")?;
        ensure!(out.success(), "[{}] {}", f.name, out.describe());
        ui = out.stdout;
        Ok(ui.contains("Fingerprint"))
    })
    .with_context(|| format!("[{}] bob's device never listed: {ui}", f.name))?;
    let none = f.cli(&["encryption", "trust", "ui", "-p", "test", CAROL])?;
    let bad = f.cli(&[
        "encryption",
        "trust",
        "ui",
        "-p",
        "test",
        "-N",
        "urn:x",
        BOB,
    ])?;
    Ok((
        trust_ui_normalised(&ui)?,
        format!("{}{}", none.describe(), bad.describe()),
    ))
}

/// Trusting and distrusting bob's key through the form changes what `perch omemo
/// devices` says.
#[test]
fn trust_ui_sets_trust_on_perchd() {
    trust_ui_body().unwrap();
}

fn trust_ui_body() -> Result<()> {
    let prosody = Prosody::start()?;
    seed_roster(&prosody, "alice", &[(BOB, "Bob", "Friends")])?;
    seed_roster(&prosody, "bob", &[(ALICE, "Alice", "Friends")])?;
    let perchd = perch_tests::libervia::perchd_with_libervia()?;
    let f = perch_tests::libervia::perch_frontend(&perchd)?;
    f.create_profile(&prosody, "test", "alice", ALICE_PW)?;
    f.create_profile(&prosody, "bob", "bob", BOB_PW)?;
    for p in ["test", "bob"] {
        f.cli_ok(&["profile", "connect", "-p", p, "-c"])?;
    }
    first_encrypted(&f)?;
    let trust = |want: &str| -> Result<()> {
        let d = perchd.cli_json(&["omemo", "devices", "-p", "test", BOB])?;
        ensure!(d.as_array().is_some_and(|a| a.len() == 1), "{d}");
        ensure!(d[0]["trust"] == want, "expected {want}: {d}");
        Ok(())
    };
    trust("blind")?;
    let bob_fp = perchd.cli_json(&["omemo", "fingerprint", "-p", "bob"])?[0]["fingerprint"]
        .as_str()
        .context("bob's fingerprint")?
        .to_owned();
    // The form shows bob's key as perchd knows it, and its current level.
    let ui = f.cli_input(&["encryption", "trust", "ui", "-p", "test", BOB], "0\n")?;
    ensure!(ui.success(), "{}", ui.describe());
    let grouped = perch_actions_group(&bob_fp);
    ensure!(
        ui.stdout.contains(&grouped),
        "{grouped} not in {}",
        ui.stdout
    );
    ensure!(ui.stdout.contains("BLINDLY_TRUSTED"), "{}", ui.stdout);
    trust("verified").with_context(|| ui.describe())?;
    // Choices: 0 TRUSTED, 1 DISTRUSTED (the current level is one of them now).
    let ui = f.cli_input(&["encryption", "trust", "ui", "-p", "test", BOB], "1\n")?;
    ensure!(ui.success(), "{}", ui.describe());
    ensure!(!ui.stdout.contains("BLINDLY_TRUSTED"), "{}", ui.stdout);
    trust("distrusted").with_context(|| ui.describe())?;
    // A distrusted key gets no message key: the encrypted conversation refuses.
    let out = f.cli_input(&["message", "send", "-p", "test", BOB], "not for bob\n")?;
    ensure!(
        !out.success(),
        "sent to a distrusted key: {}",
        out.describe()
    );
    Ok(())
}

/// A fingerprint in eight groups of eight, as the form shows it.
fn perch_actions_group(fp: &str) -> String {
    fp.as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
