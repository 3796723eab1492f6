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

use std::collections::HashMap;

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

// ---------------------------------------------------------------------------------------
// the encryption methods and their signals on perchd's Libervia bridge
// ---------------------------------------------------------------------------------------

/// A `messageEncryptionStarted` / `messageEncryptionStopped` signal as a frontend gets
/// it: member, interface, body signature, JID, data (as JSON: 0.9 sends the started
/// one's as a JSON string, the stopped one's as an `a{ss}`) and profile.
#[derive(Debug, Clone, PartialEq)]
struct EncSignal {
    member: String,
    interface: String,
    signature: String,
    to: String,
    data: Value,
    profile: String,
}

impl EncSignal {
    fn decode(m: &zbus::message::Message) -> Result<Option<Self>> {
        let h = m.header();
        let member = h.member().map(|n| n.to_string()).unwrap_or_default();
        if !member.starts_with("messageEncryption") {
            return Ok(None);
        }
        let signature = m.body().signature().to_string_no_parens();
        let (to, data, profile) = if member == "messageEncryptionStarted" {
            let (to, data, profile): (String, String, String) = m.body().deserialize()?;
            let data = serde_json::from_str(&data)
                .with_context(|| format!("{member}'s data is not JSON: {data:?}"))?;
            (to, data, profile)
        } else {
            let (to, data, profile): (String, HashMap<String, String>, String) =
                m.body().deserialize()?;
            (to, serde_json::to_value(data)?, profile)
        };
        Ok(Some(Self {
            member,
            interface: h.interface().map(|i| i.to_string()).unwrap_or_default(),
            signature,
            to,
            data,
            profile,
        }))
    }
}

/// The encryption signals sent on a backend's bus, recorded from the moment
/// [`LibSignals::start`] returns (the match rule is in place then).
struct LibSignals {
    rx: mpsc::Receiver<Result<EncSignal>>,
}

impl LibSignals {
    fn start(bus_address: &str) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let address = bus_address.to_owned();
        std::thread::spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.into()));
                    return;
                }
            };
            rt.block_on(async move {
                let subscribed = async {
                    let conn = zbus::connection::Builder::address(address.as_str())
                        .build()
                        .await?;
                    let rule = zbus::MatchRule::builder()
                        .msg_type(zbus::message::Type::Signal)
                        .build()?;
                    let stream = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
                    anyhow::Ok((conn, stream))
                };
                let (_conn, mut stream) = match subscribed.await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Some(m) = stream.next().await {
                    let decoded = match m {
                        Ok(m) => EncSignal::decode(&m).transpose(),
                        Err(e) => Some(Err(e.into())),
                    };
                    if let Some(d) = decoded
                        && tx.send(d).is_err()
                    {
                        return;
                    }
                }
            });
        });
        ready_rx
            .recv_timeout(Duration::from_secs(20))
            .context("the signal subscription never started")??;
        Ok(Self { rx })
    }

    /// The signals received: waits for `count` of them (up to [`DELIVERY`]), then
    /// a little longer for any that should not come.
    fn take(&self, count: usize) -> Result<Vec<EncSignal>> {
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + DELIVERY;
        while got.len() < count {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(s) => got.push(s?),
                Err(_) => anyhow::bail!("{} of {count} encryption signals: {got:#?}", got.len()),
            }
        }
        while let Ok(s) = self.rx.recv_timeout(Duration::from_secs(2)) {
            got.push(s?);
        }
        Ok(got)
    }
}

/// `{name, namespace}` as 0.9 sends it.
fn session(name: &str, ns: &str) -> Value {
    serde_json::json!({"name": name, "namespace": ns})
}

/// Perch's error bodies are (message, condition): the CLI prints the bare message
/// where 0.9's one-item body shows as a tuple (as in `libervia.rs`), its quotes
/// escaped as Python's `repr` escapes them.
fn untupled(text: &str) -> String {
    let tuple = regex::Regex::new(r#": \((['"])(.*)['"],\)\n"#).expect("a valid regex");
    tuple
        .replace_all(text, |c: &regex::Captures<'_>| {
            format!(": {}\n", c[2].replace(&format!("\\{}", &c[1]), &c[1]))
        })
        .into_owned()
}

/// The `encryption` commands of one side, in order; the outputs normalised. The
/// first `start` is retried until bob's keys are seen.
fn encryption_run(f: &Frontend) -> Result<Vec<(String, String)>> {
    let cmd = |args: &[&str]| -> Result<(String, String)> {
        let mut full = vec!["encryption"];
        full.extend_from_slice(args);
        let out = f.cli(&full)?.normalised();
        Ok((full.join(" "), untupled(&out.describe())))
    };
    let mut outs = vec![
        cmd(&["get", "-p", "test", BOB])?,
        // No session to stop (NotFound).
        cmd(&["stop", "-p", "test", BOB])?,
        // Unknown name (encryptionNamespaceGet) and namespace (messageEncryptionStart).
        cmd(&["start", "-p", "test", "-n", "NOSUCH", BOB])?,
        cmd(&["start", "-p", "test", "-N", "urn:example:nosuch", BOB])?,
    ];
    let mut last = String::new();
    wait_until(LIBERVIA_READY, || {
        let out = f.cli(&["encryption", "start", "-p", "test", "-n", "TWOMEMO", BOB])?;
        last = out.describe();
        Ok(out.success())
    })
    .with_context(|| format!("[{}] encryption start -n TWOMEMO: {last}", f.name))?;
    for args in [
        &["get", "-p", "test", BOB][..],
        // The same namespace again: nothing to do, no signal.
        &["start", "-p", "test", "-N", V2.1, BOB],
        // Another one without replacing: ConflictError.
        &[
            "start",
            "-p",
            "test",
            "--encrypt-noreplace",
            "-n",
            "OLDMEMO",
            BOB,
        ],
        &["get", "-p", "test", BOB],
        // Replacing (the CLI's default): OLDMEMO from now on.
        &["start", "-p", "test", "-N", V03.1, BOB],
        &["get", "-p", "test", BOB],
        &["stop", "-p", "test", BOB],
        &["get", "-p", "test", BOB],
        &["stop", "-p", "test", BOB],
    ] {
        outs.push(cmd(args)?);
    }
    Ok(outs)
}

/// `encryptionPluginsGet` as `encryption algorithms -O json` lists it, OMEMO's
/// versions only: Debian's backend has more (OTR, OpenPGP for XMPP), perchd only
/// OMEMO.
fn omemo_algorithms(f: &Frontend) -> Result<Vec<Value>> {
    let out = f.cli_ok(&["encryption", "algorithms", "-O", "json"])?;
    let all: Vec<Value> = serde_json::from_str(&out).with_context(|| out.clone())?;
    Ok(all
        .into_iter()
        .filter(|p| p["name"] == V2.0 || p["name"] == V03.0)
        .collect())
}

/// What one side gave: its OMEMO algorithms, each command's output, its signals.
type SideRun = (Vec<Value>, Vec<(String, String)>, Vec<EncSignal>);

/// libervia-cli's `encryption` commands (`encryptionPluginsGet`,
/// `encryptionNamespaceGet`, `messageEncryptionGet`/`Start`/`Stop`, their error
/// paths) give the same output on both backends, and the same
/// `messageEncryptionStarted`/`Stopped` signals go out, with 0.9's signatures.
#[test]
fn libervia_cli_encryption_differential() {
    let (lib, perch) = perch_tests::libervia::sides();
    let mut steps = libervia::profile_setup();
    steps.extend(libervia::connected(&["test", "bob"]));
    perch_tests::libervia::differential(&lib.frontend, &perch.frontend, &steps).unwrap();
    let run = |f: &Frontend| -> Result<SideRun> {
        let signals = LibSignals::start(f.bus_address())?;
        let algorithms = omemo_algorithms(f)?;
        let outs = encryption_run(f)?;
        Ok((algorithms, outs, signals.take(3)?))
    };
    let (l, p) = std::thread::scope(|s| {
        let l = s.spawn(|| run(&lib.frontend));
        let p = s.spawn(|| run(&perch.frontend));
        (
            l.join().expect("libervia thread"),
            p.join().expect("perchd thread"),
        )
    });
    let (l, p) = (l.unwrap(), p.unwrap());
    assert_eq!(l.0, p.0, "encryptionPluginsGet differs");
    assert_eq!(l.0.len(), 2, "{:?}", l.0);
    let differ: Vec<String> =
        l.1.iter()
            .zip(&p.1)
            .filter(|((_, lo), (_, po))| lo != po)
            .map(|((cmd, lo), (_, po))| {
                format!("`libervia-cli {cmd}` differs\n=== libervia: {lo}\n=== perchd: {po}")
            })
            .collect();
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
    let want = |member: &str, name: &str, ns: &str| EncSignal {
        member: member.to_owned(),
        interface: "org.libervia.Libervia.core".to_owned(),
        signature: if member == "messageEncryptionStarted" {
            "sss".to_owned()
        } else {
            "sa{ss}s".to_owned()
        },
        to: BOB.to_owned(),
        data: session(name, ns),
        profile: "test".to_owned(),
    };
    let expected = vec![
        want("messageEncryptionStarted", V2.0, V2.1),
        want("messageEncryptionStarted", V03.0, V03.1),
        want("messageEncryptionStopped", V03.0, V03.1),
    ];
    assert_eq!(l.2, expected, "Libervia's signals (the reference)");
    assert_eq!(p.2, expected, "perchd's signals");
}

/// `libervia-cli message send -e NAME` on perchd between two of its profiles: the
/// message goes encrypted in the version asked for (`omemo`: the best, OMEMO 2;
/// `OLDMEMO`: 0.3, though bob publishes 2 as well) and bob's history holds the
/// plaintext with `extra.encryption` set. Then encryption stopped and started
/// natively (`perch encryption stop|start`, `perch message send --encrypt`): perchd
/// signals `encryption_stopped`/`encryption_started`, and its Libervia bridge sends
/// them on as `messageEncryptionStopped`/`Started`; after the stop, messages go in
/// clear.
#[test]
fn libervia_cli_encrypted_send_and_native_signals_on_perchd() {
    let prosody = Prosody::start().unwrap();
    seed_roster(&prosody, "alice", &[(BOB, "Bob", "Friends")]).unwrap();
    seed_roster(&prosody, "bob", &[(ALICE, "Alice", "Friends")]).unwrap();
    let perchd = perch_tests::libervia::perchd_with_libervia().unwrap();
    encrypted_send_body(&prosody, &perchd)
        .unwrap_or_else(|e| panic!("{e:#}\n{}", perchd.diagnostics()));
}

/// bob's stored `text`, once it arrived.
fn bobs(perchd: &Perchd, text: &str) -> Result<Value> {
    wait_for_incoming(perchd, "bob", text)?;
    history(perchd, "bob", &[])?
        .into_iter()
        .find(|m| m["body"] == text)
        .ok_or_else(|| anyhow!("bob has no {text:?}"))
}

fn encrypted_send_body(prosody: &Prosody, perchd: &Perchd) -> Result<()> {
    let f = perch_tests::libervia::perch_frontend(perchd)?;
    f.create_profile(prosody, "test", "alice", ALICE_PW)?;
    f.create_profile(prosody, "bob", "bob", BOB_PW)?;
    for p in ["test", "bob"] {
        f.cli_ok(&["profile", "connect", "-p", p, "-c"])?;
    }
    let lib_signals = LibSignals::start(f.bus_address())?;
    let mut last = String::new();
    wait_until(LIBERVIA_READY, || {
        let out = f.cli_input(
            &["message", "send", "-p", "test", "-e", "omemo", BOB],
            "sent with -e omemo",
        )?;
        last = out.describe();
        Ok(out.success())
    })
    .with_context(|| format!("message send -e omemo: {last}"))?;
    let m = bobs(perchd, "sent with -e omemo")?;
    ensure!(m["extra"]["encryption"] == V2.1, "{m}");
    let out = f.cli_input(
        &["message", "send", "-p", "test", "-e", "OLDMEMO", BOB],
        "sent with -e OLDMEMO",
    )?;
    ensure!(out.success(), "{}", out.describe());
    let m = bobs(perchd, "sent with -e OLDMEMO")?;
    ensure!(m["extra"]["encryption"] == V03.1, "{m}");
    let st = perchd.cli_json(&["encryption", "status", "-p", "test", BOB])?;
    ensure!(st["encrypted"] == true && st["namespace"] == V03.1, "{st}");
    let alice_side = history(perchd, "test", &[])?;
    ensure!(
        alice_side
            .iter()
            .any(|m| m["body"] == "sent with -e OLDMEMO" && m["extra"]["encryption"] == V03.1),
        "alice's own copy: {alice_side:?}"
    );
    native_stop_and_start(perchd, &f, &lib_signals)
}

/// `perch encryption stop|start` and `message send --encrypt`, with their native
/// and Libervia signals.
fn native_stop_and_start(perchd: &Perchd, f: &Frontend, lib_signals: &LibSignals) -> Result<()> {
    // Started by `-e omemo`, replaced by `-e OLDMEMO`.
    let via_lib = lib_signals.take(2)?;
    ensure!(
        via_lib.iter().map(|s| &s.data).collect::<Vec<_>>()
            == [&session(V2.0, V2.1), &session(V03.0, V03.1)],
        "{via_lib:#?}"
    );
    let mut monitor = Monitor::start(perchd)?;
    let native = |profile: &'static str, name: &'static str, ns: &'static str| {
        move |v: &Value| {
            v["signal"] == "PluginSignal"
                && v["plugin"] == "XEP-0384"
                && v["name"] == name
                && v["profile"] == profile
                && v["data"]["namespace"] == ns
                && v["data"]["encrypted"] == (name == "encryption_started")
        }
    };
    let st = perchd.cli_json(&["encryption", "stop", "-p", "test", BOB])?;
    ensure!(st["encrypted"] == false, "{st}");
    monitor.wait(native("test", "encryption_stopped", V03.1))?;
    let st = perchd.cli_json(&["encryption", "status", "-p", "test", BOB])?;
    ensure!(st["encrypted"] == false, "{st}");
    let out = f.cli(&["encryption", "get", "-p", "test", BOB])?;
    ensure!(out.code == Some(16), "{}", out.describe());
    // Stopped: in clear again.
    perchd.cli_ok(&["message", "send", "-p", "test", BOB, "in clear again"])?;
    let m = bobs(perchd, "in clear again")?;
    ensure!(m["extra"].get("encryption").is_none(), "{m}");
    // Stopping what is not encrypted: no signal.
    perchd.cli_ok(&["encryption", "stop", "-p", "test", BOB])?;
    perchd.cli_ok(&["encryption", "start", "-p", "test", BOB])?;
    monitor.wait(native("test", "encryption_started", V2.1))?;
    perchd.cli_ok(&[
        "message",
        "send",
        "-p",
        "bob",
        ALICE,
        "--encrypt",
        "bob encrypts",
    ])?;
    monitor.wait(native("bob", "encryption_started", V2.1))?;
    let got = lib_signals.take(3)?;
    let want = [
        ("messageEncryptionStopped", "sa{ss}s", BOB, V03, "test"),
        ("messageEncryptionStarted", "sss", BOB, V2, "test"),
        ("messageEncryptionStarted", "sss", ALICE, V2, "bob"),
    ];
    let got_short: Vec<_> = got
        .iter()
        .map(|s| {
            (
                s.member.as_str(),
                s.signature.as_str(),
                s.to.as_str(),
                s.data.clone(),
                s.profile.as_str(),
            )
        })
        .collect();
    let want: Vec<_> = want
        .iter()
        .map(|(m, sig, to, (name, ns), p)| (*m, *sig, *to, session(name, ns), *p))
        .collect();
    ensure!(got_short == want, "Libervia signals: {got:#?}");
    Ok(())
}

/// The Libervia bridge's object and core interface.
const LIB_PATH: &str = "/org/libervia/Libervia/bridge";
const LIB_CORE: &str = "org.libervia.Libervia.core";

/// Calls a core method of the Libervia bridge on `conn`; its reply.
async fn lib_call<B>(
    conn: &zbus::Connection,
    method: &str,
    body: &B,
) -> Result<zbus::message::Message>
where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
{
    let m = conn
        .call_method(
            Some(perch_tests::libervia::LIBERVIA_BUS_NAME),
            LIB_PATH,
            Some(LIB_CORE),
            method,
            body,
        )
        .await
        .with_context(|| method.to_owned())?;
    Ok(m)
}

/// One side's run of the chat window's "Encryption" menu: its OMEMO entries (type,
/// path, translated path), then what running "TWOMEMO", its trust form and
/// "unencrypted" answered, with `encryption get` after each.
fn menu_run(f: &Frontend) -> Result<Vec<String>> {
    type Menu = (
        String,
        String,
        Vec<String>,
        Vec<String>,
        HashMap<String, String>,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let conn = rt.block_on(zbus::connection::Builder::address(f.bus_address()).build())?;
    let menus: Vec<Menu> = rt
        .block_on(lib_call(&conn, "menusGet", &("", -1i32)))?
        .body()
        .deserialize()?;
    let ours = [
        "unencrypted (plain text)",
        V2.0,
        V03.0,
        "⛨ TWOMEMO trust",
        "⛨ OLDMEMO trust",
    ];
    let entries: Vec<&Menu> = menus
        .iter()
        .filter(|m| m.2.len() == 2 && m.2[0] == "Encryption" && ours.contains(&m.2[1].as_str()))
        .collect();
    let mut out: Vec<String> = entries
        .iter()
        .map(|m| format!("{} {:?} {:?} {:?}", m.1, m.2, m.3, m.4))
        .collect();
    let id = |name: &str| -> Result<String> {
        entries
            .iter()
            .find(|m| m.2[1] == name)
            .map(|m| m.0.clone())
            .with_context(|| format!("[{}] no menu {name}: {menus:?}", f.name))
    };
    let data = HashMap::from([("jid".to_owned(), format!("{BOB}/res"))]);
    let launch = |name: &str| -> Result<std::result::Result<Vec<String>, String>> {
        let id = id(name)?;
        Ok(rt
            .block_on(lib_call(
                &conn,
                "launchAction",
                &(id.as_str(), &data, "test"),
            ))
            .and_then(|m| Ok(m.body().deserialize::<HashMap<String, String>>()?))
            .map(|a| {
                let mut keys: Vec<String> = a.into_keys().collect();
                keys.sort();
                keys
            })
            .map_err(|e| format!("{e:#}")))
    };
    let mut last = String::new();
    wait_until(LIBERVIA_READY, || {
        let r = launch(V2.0)?;
        last = format!("{r:?}");
        out.push(format!("start: {last}"));
        Ok(r.is_ok())
    })
    .with_context(|| format!("[{}] the TWOMEMO entry: {last}", f.name))?;
    // Only the final (successful) attempt is compared.
    let ok = out.pop().unwrap_or_default();
    out.retain(|l| !l.starts_with("start: "));
    out.push(ok);
    let get = || -> Result<String> {
        Ok(f.cli(&["encryption", "get", "-p", "test", BOB])?
            .normalised()
            .describe())
    };
    out.push(get()?);
    out.push(format!("trust: {:?}", launch("⛨ TWOMEMO trust")?));
    out.push(format!("plain: {:?}", launch("unencrypted (plain text)")?));
    out.push(get()?);
    Ok(out)
}

/// The chat window's "Encryption" menu that libervia-tui builds from `menusGet` and
/// runs with `launchAction(id, {jid}, profile)`: the same OMEMO entries on both
/// backends (Debian's has OTR and OpenPGP ones too), and running "TWOMEMO", its
/// trust form and "unencrypted (plain text)" answers the same.
#[test]
fn libervia_encryption_menu_differential() {
    let (lib, perch) = perch_tests::libervia::sides();
    let mut steps = libervia::profile_setup();
    steps.extend(libervia::connected(&["test", "bob"]));
    perch_tests::libervia::differential(&lib.frontend, &perch.frontend, &steps).unwrap();
    let (l, p) = std::thread::scope(|s| {
        let l = s.spawn(|| menu_run(&lib.frontend));
        let p = s.spawn(|| menu_run(&perch.frontend));
        (
            l.join().expect("libervia thread"),
            p.join().expect("perchd thread"),
        )
    });
    let (l, p) = (l.unwrap(), p.unwrap());
    assert_eq!(l, p, "the Encryption menus differ");
    assert_eq!(
        l.iter().filter(|e| e.starts_with("SINGLE")).count(),
        5,
        "{l:#?}"
    );
    assert!(l.iter().any(|e| e == "trust: Ok([\"xmlui\"])"), "{l:#?}");
}
