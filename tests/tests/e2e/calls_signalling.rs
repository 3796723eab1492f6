//! Jingle call signalling end to end (issue 14, backend half): two profiles of one
//! perchd call each other through the harness Prosody, driven only through the
//! bridge (`call_*` actions, `xep_0167` plugin signals) with real SDP captures. No
//! media flows: what is checked is what perchd signals and answers.

use std::sync::mpsc;

use perch_tests::RawClient;

use super::*;

fn fixture(name: &str) -> String {
    let fixtures = format!(
        "{}/../plugins/codec/tests/fixtures/jingle",
        perch_tests::manifest_dir()
    );
    std::fs::read_to_string(format!("{fixtures}/{name}"))
        .unwrap_or_else(|e| panic!("reading SDP fixture {name}: {e}"))
}

/// (profile, signal name, data) of every `xep_0167` signal, collected over D-Bus.
struct CallSignals {
    rx: mpsc::Receiver<(String, String, Value)>,
    seen: Vec<(String, String, Value)>,
    _runtime: tokio::runtime::Runtime,
}

impl CallSignals {
    fn start(perchd: &Perchd) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::channel();
        runtime.block_on(async {
            let client = perch_client::Client::on_bus(perchd.bus_connection().await?).await?;
            let mut stream = client.signals().await?;
            tokio::spawn(async move {
                let _client = client;
                while let Some(signal) = stream.next().await {
                    if let Ok(perch_client::Signal::PluginSignal {
                        plugin,
                        name,
                        profile,
                        data,
                    }) = signal
                        && plugin == "xep_0167"
                    {
                        let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                        if tx.send((profile, name, data)).is_err() {
                            break;
                        }
                    }
                }
            });
            anyhow::Ok(())
        })?;
        Ok(Self {
            rx,
            seen: Vec::new(),
            _runtime: runtime,
        })
    }

    /// Waits for signal `name` to `profile` whose data satisfies `pred` (signals seen
    /// before are searched first).
    fn wait(&mut self, profile: &str, name: &str, pred: impl Fn(&Value) -> bool) -> Result<Value> {
        let hit = |(p, n, d): &(String, String, Value)| p == profile && n == name && pred(d);
        if let Some(i) = self.seen.iter().position(hit) {
            return Ok(self.seen.remove(i).2);
        }
        let deadline = std::time::Instant::now() + DELIVERY;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(s) if hit(&s) => return Ok(s.2),
                Ok(s) => self.seen.push(s),
                Err(_) => {
                    return Err(anyhow!(
                        "no {name} signal to {profile} within {DELIVERY:?}; xep_0167 signals seen:\n{}",
                        self.seen
                            .iter()
                            .map(|(p, n, d)| format!("  {p} {n} {d}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    ));
                }
            }
        }
    }
}

impl CallSignals {
    /// Whether no signal `name` to `profile` matching `pred` came so far (what has
    /// arrived is drained first, not waited for).
    fn drained_none(&mut self, profile: &str, name: &str, pred: impl Fn(&Value) -> bool) -> bool {
        while let Ok(s) = self.rx.try_recv() {
            self.seen.push(s);
        }
        !self
            .seen
            .iter()
            .any(|(p, n, d)| p == profile && n == name && pred(d))
    }
}

/// `perch action run -p PROFILE NAME KEY=VALUE…`, its JSON result.
fn run(perchd: &Perchd, profile: &str, name: &str, args: &[(&str, String)]) -> Result<Value> {
    let words: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut all = vec!["action", "run", "-p", profile, name];
    all.extend(words.iter().map(String::as_str));
    perchd.cli_json(&all)
}

fn run_fails(
    perchd: &Perchd,
    profile: &str,
    name: &str,
    args: &[(&str, String)],
    error: &str,
) -> Result<String> {
    let words: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut all = vec!["action", "run", "-p", profile, name];
    all.extend(words.iter().map(String::as_str));
    perchd.cli_fails_with(&all, error)
}

fn sid_of(v: &Value) -> Result<String> {
    v["sid"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no sid in {v}"))
}

fn mids(sdp: &str) -> Vec<&str> {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
        .collect()
}

fn listed(perchd: &Perchd, profile: &str, sid: &str) -> Result<Value> {
    let list = perchd.cli_json(&["call", "list", "-p", profile])?;
    list.as_array()
        .and_then(|a| a.iter().find(|c| c["sid"] == sid).cloned())
        .ok_or_else(|| anyhow!("call {sid} not in `call list -p {profile}`: {list}"))
}

/// Waits until `profile`'s call `sid` is listed ended with `reason`.
fn wait_listed_ended(perchd: &Perchd, profile: &str, sid: &str, reason: &str) -> Result<Value> {
    let mut last = Value::Null;
    wait_until(DELIVERY, || {
        last = listed(perchd, profile, sid)?;
        Ok(last["state"] == "ended" && last["end_reason"] == reason)
    })
    .with_context(|| format!("{profile}'s call {sid} never listed ended ({reason}): {last}"))?;
    Ok(last)
}

fn candidates(list: &[(u64, &str, &str)]) -> String {
    Value::Array(
        list.iter()
            .map(|(i, mid, c)| serde_json::json!({"mline_index": i, "mid": mid, "candidate": c}))
            .collect(),
    )
    .to_string()
}

#[test]
fn call_signalling_between_two_profiles() {
    let bed = Bed::start();
    signalling_body(&bed).unwrap();
}

fn signalling_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    let mut signals = CallSignals::start(perchd)?;
    let bob_full = bound_jid(perchd, "bob")?;
    let alice_full = bound_jid(perchd, "alice")?;

    // Disco: bob's perchd announces what a Jingle RTP endpoint does.
    let disco = perchd.cli_json(&["info", "disco", "-p", "alice", &bob_full])?;
    let features = disco["info"]["features"].to_string();
    for f in [
        "urn:xmpp:jingle:1",
        "urn:xmpp:jingle:apps:rtp:1",
        "urn:xmpp:jingle:apps:rtp:audio",
        "urn:xmpp:jingle:apps:rtp:video",
        "urn:xmpp:jingle:transports:ice-udp:1",
        "urn:xmpp:jingle:apps:dtls:0",
        "urn:xmpp:jingle-message:0",
    ] {
        ensure!(features.contains(f), "{f} not announced: {features}");
    }

    // XEP-0215: the harness Prosody announces STUN and TURN (mod_turn_external).
    let services = run(perchd, "alice", "external_services", &[])?;
    let list = services
        .as_array()
        .context("external_services is an array")?;
    let turn = list
        .iter()
        .find(|s| s["type"] == "turn")
        .ok_or_else(|| anyhow!("no TURN service: {services}"))?;
    ensure!(
        turn["host"] == "127.0.0.1"
            && turn["port"] == 3478
            && turn["username"].is_string()
            && turn["password"].is_string(),
        "TURN service: {turn}"
    );
    ensure!(
        list.iter()
            .any(|s| s["type"] == "stun" && s["host"] == "127.0.0.1"),
        "no STUN service: {services}"
    );

    // 1. alice calls bob's full JID: a direct session-initiate.
    let offer = fixture("webrtcbin-1.22-offer.sdp");
    let started = run(
        perchd,
        "alice",
        "call_start",
        &[("peer", bob_full.clone()), ("sdp", offer)],
    )?;
    let sid = sid_of(&started)?;
    let incoming = signals.wait("bob", "call_incoming", |d| d["sid"] == sid.as_str())?;
    ensure!(
        incoming["peer"] == alice_full.as_str()
            && incoming["media"] == serde_json::json!(["audio", "video"])
            && incoming["jmi"] == false,
        "call_incoming: {incoming}"
    );
    let remote_offer = incoming["sdp"].as_str().context("call_incoming sdp")?;
    ensure!(
        mids(remote_offer) == ["audio0", "video1"]
            && remote_offer.contains("a=group:BUNDLE audio0 video1"),
        "the offer bob got keeps mids and BUNDLE:\n{remote_offer}"
    );
    ensure!(
        remote_offer.contains("a=setup:actpass"),
        "offer setup:\n{remote_offer}"
    );
    ensure!(
        listed(perchd, "bob", &sid)?["state"] == "pending",
        "bob's call before answering"
    );

    // bob's candidate before his answer is queued; alice's go out at once (one TCP
    // candidate is dropped, the empty one is end-of-candidates).
    run(
        perchd,
        "bob",
        "call_candidates",
        &[
            ("sid", sid.clone()),
            (
                "candidates",
                candidates(&[(
                    0,
                    "audio0",
                    "candidate:1 1 UDP 2015363327 10.77.0.2 40000 typ host",
                )]),
            ),
        ],
    )?;
    let sent = run(
        perchd,
        "alice",
        "call_candidates",
        &[
            ("sid", sid.clone()),
            (
                "candidates",
                candidates(&[
                    (
                        1,
                        "video1",
                        "candidate:2 1 UDP 2015363327 10.77.0.1 41000 typ host",
                    ),
                    (
                        1,
                        "video1",
                        "candidate:3 1 TCP 1015021823 10.77.0.1 9 typ host tcptype active",
                    ),
                    (1, "video1", ""),
                ]),
            ),
        ],
    )?;
    ensure!(
        sent["dropped"].as_array().is_some_and(|d| d.len() == 1),
        "the TCP candidate is reported dropped: {sent}"
    );
    let to_bob = signals.wait("bob", "call_candidates", |d| d["sid"] == sid.as_str())?;
    let c = &to_bob["candidates"];
    ensure!(
        c.as_array().is_some_and(|a| a.len() == 1)
            && c[0]["mline_index"] == 1
            && c[0]["mid"] == "video1"
            && c[0]["candidate"].as_str().is_some_and(
                |s| s.starts_with("candidate:2 1 UDP 2015363327 10.77.0.1 41000 typ host")
            ),
        "alice's candidate as bob got it: {to_bob}"
    );

    // bob answers; alice gets the answer with the same mids, then bob's queued
    // candidate.
    let answer = fixture("webrtcbin-1.22-answer.sdp");
    run(
        perchd,
        "bob",
        "call_answer",
        &[("sid", sid.clone()), ("sdp", answer)],
    )?;
    let setup = signals.wait("alice", "call_setup", |d| d["sid"] == sid.as_str())?;
    let remote_answer = setup["sdp"].as_str().context("call_setup sdp")?;
    ensure!(setup["role"] == "initiator", "call_setup: {setup}");
    ensure!(
        mids(remote_answer) == ["audio0", "video1"] && remote_answer.contains("a=setup:active"),
        "the answer alice got:\n{remote_answer}"
    );
    let to_alice = signals.wait("alice", "call_candidates", |d| d["sid"] == sid.as_str())?;
    ensure!(
        to_alice["candidates"][0]["mid"] == "audio0"
            && to_alice["candidates"][0]["mline_index"] == 0
            && to_alice["candidates"][0]["candidate"]
                .as_str()
                .is_some_and(|s| s.contains("10.77.0.2 40000")),
        "bob's queued candidate as alice got it: {to_alice}"
    );
    signals.wait("alice", "call_state", |d| {
        d["sid"] == sid.as_str() && d["state"] == "active"
    })?;
    ensure!(
        listed(perchd, "bob", &sid)?["state"] == "active",
        "bob's call after answering"
    );

    // session-info: bob mutes his audio.
    run(
        perchd,
        "bob",
        "call_info",
        &[
            ("sid", sid.clone()),
            ("info", "mute".into()),
            ("media", "audio".into()),
        ],
    )?;
    let info = signals.wait("alice", "call_info", |d| d["sid"] == sid.as_str())?;
    ensure!(
        info["info"] == "mute" && info["media"] == "audio",
        "call_info: {info}"
    );

    // alice hangs up: both sides end, both lists say so.
    run(perchd, "alice", "call_end", &[("sid", sid.clone())])?;
    let ended = signals.wait("bob", "call_ended", |d| d["sid"] == sid.as_str())?;
    ensure!(ended["reason"] == "success", "call_ended: {ended}");
    signals.wait("alice", "call_ended", |d| d["sid"] == sid.as_str())?;
    for (profile, direction) in [("alice", "outgoing"), ("bob", "incoming")] {
        let c = wait_listed_ended(perchd, profile, &sid, "success")?;
        ensure!(
            c["direction"] == direction
                && c["duration_s"].as_f64().is_some_and(|d| d >= 0.0)
                && c["connected"].is_string()
                && c["ended"].is_string(),
            "{profile}'s ended call: {c}"
        );
    }
    // Ended is ended: a second hang-up is refused, typed.
    run_fails(
        perchd,
        "alice",
        "call_end",
        &[("sid", sid.clone())],
        "BadArgument",
    )?;
    run_fails(
        perchd,
        "alice",
        "call_end",
        &[("sid", "nosuchcall".into())],
        "ItemNotFound",
    )?;

    // The table of the CLI.
    let table = perchd.cli_ok(&["call", "list", "-p", "alice"])?;
    ensure!(
        table.contains(&sid) && table.contains("success") && table.contains("ended"),
        "call list table:\n{table}"
    );

    // 2. bob declines: alice sees the reason.
    let started = run(
        perchd,
        "alice",
        "call_start",
        &[
            ("peer", bob_full.clone()),
            ("sdp", fixture("webrtcbin-1.22-offer.sdp")),
        ],
    )?;
    let sid2 = sid_of(&started)?;
    signals.wait("bob", "call_incoming", |d| d["sid"] == sid2.as_str())?;
    run(perchd, "bob", "call_decline", &[("sid", sid2.clone())])?;
    let ended = signals.wait("alice", "call_ended", |d| d["sid"] == sid2.as_str())?;
    ensure!(
        ended["reason"] == "decline",
        "alice's call_ended after bob declined: {ended}"
    );
    wait_listed_ended(perchd, "alice", &sid2, "decline")?;
    wait_listed_ended(perchd, "bob", &sid2, "decline")?;

    // 3. Calls that cannot be placed: typed errors, nothing left behind.
    let offer = fixture("webrtcbin-1.22-offer.sdp");
    let err = run_fails(
        perchd,
        "alice",
        "call_start",
        &[("peer", "carol@localhost".into()), ("sdp", offer.clone())],
        "RecipientUnavailable",
    )?;
    ensure!(
        err.contains("carol@localhost"),
        "offline contact error names it: {err}"
    );
    run_fails(
        perchd,
        "alice",
        "call_start",
        &[("peer", "bob@localhost/elsewhere".into()), ("sdp", offer)],
        "RecipientUnavailable",
    )?;
    let err = run_fails(
        perchd,
        "alice",
        "call_start",
        &[("peer", bob_full), ("sdp", "v=0\r\nnonsense".into())],
        "BadArgument",
    )?;
    ensure!(err.contains("line 2"), "a bad SDP names its line: {err}");
    let list = perchd.cli_json(&["call", "list", "-p", "alice"])?;
    ensure!(
        list.as_array().is_some_and(|a| a.len() == 2),
        "failed starts left calls behind: {list}"
    );
    Ok(())
}

/// XEP-0353: alice rings bob's bare JID; bob's perchd rings, bob accepts (proceed),
/// alice's perchd sends session-initiate to the device that proceeded.
#[test]
fn call_by_jingle_message_initiation() {
    let bed = Bed::start();
    jmi_body(&bed).unwrap();
}

fn jmi_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    let mut signals = CallSignals::start(perchd)?;
    let bob_full = bound_jid(perchd, "bob")?;
    let alice_full = bound_jid(perchd, "alice")?;
    // The Chromium offer: mids 0 and 1.
    let offer = fixture("chromium-156-offer.sdp");
    let started = run(
        perchd,
        "alice",
        "call_start",
        &[("peer", BOB.into()), ("sdp", offer), ("jmi", "true".into())],
    )?;
    let sid = sid_of(&started)?;
    let proposed = signals.wait("bob", "call_proposed", |d| d["sid"] == sid.as_str())?;
    ensure!(
        proposed["peer"] == alice_full.as_str()
            && proposed["media"] == serde_json::json!(["audio", "video"]),
        "call_proposed: {proposed}"
    );
    // bob's perchd rang: alice's call is ringing.
    signals.wait("alice", "call_state", |d| {
        d["sid"] == sid.as_str() && d["state"] == "ringing"
    })?;
    ensure!(
        listed(perchd, "alice", &sid)?["state"] == "ringing",
        "alice's call while ringing"
    );
    // An SDP answer before the offer came is refused; accepting is call_answer {sid}.
    run(perchd, "bob", "call_answer", &[("sid", sid.clone())])?;
    let incoming = signals.wait("bob", "call_incoming", |d| d["sid"] == sid.as_str())?;
    ensure!(
        incoming["jmi"] == true && incoming["peer"] == alice_full.as_str(),
        "call_incoming after proceed: {incoming}"
    );
    let remote_offer = incoming["sdp"].as_str().context("sdp")?;
    ensure!(
        mids(remote_offer) == ["0", "1"],
        "offer after JMI:\n{remote_offer}"
    );
    let answer = fixture("webrtcbin-1.22-answer.sdp")
        .replace("audio0 video1", "0 1")
        .replace("a=mid:audio0", "a=mid:0")
        .replace("a=mid:video1", "a=mid:1");
    run(
        perchd,
        "bob",
        "call_answer",
        &[("sid", sid.clone()), ("sdp", answer)],
    )?;
    let setup = signals.wait("alice", "call_setup", |d| d["sid"] == sid.as_str())?;
    ensure!(
        mids(setup["sdp"].as_str().unwrap_or_default()) == ["0", "1"],
        "call_setup: {setup}"
    );
    let alice_view = listed(perchd, "alice", &sid)?;
    ensure!(
        alice_view["peer"] == bob_full.as_str()
            && alice_view["jmi"] == true
            && alice_view["state"] == "active",
        "alice's call went to the device that proceeded: {alice_view}"
    );
    // bob hangs up this time.
    run(perchd, "bob", "call_end", &[("sid", sid.clone())])?;
    wait_listed_ended(perchd, "alice", &sid, "success")?;

    // A proposal retracted before it is answered ends on both sides with "cancel".
    let started = run(
        perchd,
        "alice",
        "call_start",
        &[
            ("peer", BOB.into()),
            ("sdp", fixture("webrtcbin-1.22-offer.sdp")),
            ("jmi", "true".into()),
        ],
    )?;
    let sid2 = sid_of(&started)?;
    signals.wait("bob", "call_proposed", |d| d["sid"] == sid2.as_str())?;
    run(
        perchd,
        "alice",
        "call_end",
        &[("sid", sid2.clone()), ("reason", "cancel".into())],
    )?;
    let ended = signals.wait("bob", "call_ended", |d| d["sid"] == sid2.as_str())?;
    ensure!(
        ended["reason"] == "cancel",
        "bob's call_ended after a retract: {ended}"
    );
    Ok(())
}

/// XEP-0353 0.8 tie-breaking: alice's JMI proposal to carol (a raw client) and
/// carol's own proposal to alice cross. The lower id wins (byte order): carol's
/// "-tie-low" beats alice's hex id, so alice retracts hers with `<tie-break/>`
/// and rings for carol's; carol's "zz-tie-high" loses, so alice rejects it with
/// `<tie-break/>` and her call goes on; with equal ids alice's lower bare JID
/// wins. A reject or retract with `<tie-break/>` ends the call with reason
/// "tie-break".
#[test]
fn crossing_jmi_proposals_are_tie_broken() {
    let bed = Bed::start();
    tie_break_body(&bed).unwrap();
}

fn tie_break_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    bed.prosody.register("carol", CAROL_PW)?;
    let mut carol = RawClient::connect(
        bed.prosody.port(),
        &bed.prosody.ca_file(),
        "carol",
        CAROL_PW,
    )?;
    // Available, so alice's proposal to carol's bare JID reaches this client.
    carol.send("<presence/>")?;
    // The server answers in order: once this ping is answered, carol is available.
    carol.send("<iq type='get' id='tie-ping' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")?;
    carol.read_until("tie-ping", DELIVERY)?;
    let mut signals = CallSignals::start(perchd)?;
    let alice_full = bound_jid(perchd, "alice")?;
    let propose = |id: &str| {
        format!(
            "<message to='{alice_full}' type='chat' id='m-{id}'>\
             <propose xmlns='urn:xmpp:jingle-message:0' id='{id}'>\
             <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose></message>"
        )
    };
    let tie_break = |kind: &str, id: &str| {
        format!(
            "<message to='{alice_full}' type='chat' id='t-{id}'>\
             <{kind} xmlns='urn:xmpp:jingle-message:0' id='{id}'>\
             <reason xmlns='urn:xmpp:jingle:1'><expired/><text>Tie-Break</text></reason>\
             <tie-break/></{kind}></message>"
        )
    };
    let start = || -> Result<String> {
        let started = run(
            perchd,
            "alice",
            "call_start",
            &[
                ("peer", "carol@localhost".into()),
                ("sdp", fixture("webrtcbin-1.22-offer.sdp")),
                ("jmi", "true".into()),
            ],
        )?;
        sid_of(&started)
    };

    // 1. carol's id is lower: alice's proposal is retracted, carol's rings.
    let sid = start()?;
    ensure!(
        "-tie-low" < sid.as_str(),
        "alice's id {sid} sorts after -tie-low"
    );
    let got = carol.read_until("</propose>", DELIVERY)?;
    ensure!(
        got.contains(sid.as_str()),
        "carol got alice's propose: {got}"
    );
    carol.send(&propose("-tie-low"))?;
    let got = carol.read_until("</retract>", DELIVERY)?;
    let retract = &got[got.rfind("<retract").unwrap_or(0)..];
    ensure!(
        retract.contains(sid.as_str())
            && retract.contains("<tie-break")
            && retract.contains("<expired")
            && retract.contains("Tie-Break"),
        "alice's tie-break retract: {retract}"
    );
    let ended = signals.wait("alice", "call_ended", |d| d["sid"] == sid.as_str())?;
    ensure!(
        ended["reason"] == "tie-break",
        "alice's call_ended: {ended}"
    );
    let proposed = signals.wait("alice", "call_proposed", |d| d["sid"] == "-tie-low")?;
    ensure!(
        proposed["peer"] == carol.jid.as_str(),
        "carol's call rings at alice: {proposed}"
    );
    wait_listed_ended(perchd, "alice", &sid, "tie-break")?;
    let theirs = listed(perchd, "alice", "-tie-low")?;
    ensure!(
        theirs["direction"] == "incoming"
            && (theirs["state"] == "proposed" || theirs["state"] == "ringing"),
        "carol's call in alice's list: {theirs}"
    );
    // A retract carrying <tie-break/> ends it with "tie-break", not "cancel".
    carol.send(&tie_break("retract", "-tie-low"))?;
    wait_listed_ended(perchd, "alice", "-tie-low", "tie-break")?;
    let ended = signals.wait("alice", "call_ended", |d| d["sid"] == "-tie-low")?;
    ensure!(
        ended["reason"] == "tie-break",
        "-tie-low call_ended: {ended}"
    );

    // 2. carol's id is higher: alice rejects it, does not ring, her call goes on.
    let sid = start()?;
    let got = carol.read_until("</propose>", DELIVERY)?;
    ensure!(
        got.contains(sid.as_str()),
        "carol got alice's propose: {got}"
    );
    carol.send(&propose("zz-tie-high"))?;
    let got = carol.read_until("</reject>", DELIVERY)?;
    let reject = &got[got.rfind("<reject").unwrap_or(0)..];
    ensure!(
        reject.contains("zz-tie-high")
            && reject.contains("<tie-break")
            && reject.contains("<expired")
            && reject.contains("Tie-Break"),
        "alice's tie-break reject: {reject}"
    );
    let list = perchd.cli_json(&["call", "list", "-p", "alice"])?;
    ensure!(
        !list.to_string().contains("zz-tie-high"),
        "the losing proposal is not a call: {list}"
    );
    ensure!(
        signals.drained_none("alice", "call_proposed", |d| d["sid"] == "zz-tie-high"),
        "alice rang for the losing proposal"
    );
    ensure!(
        listed(perchd, "alice", &sid)?["state"] == "proposed",
        "alice's call goes on"
    );
    // carol's side rejects alice's with <tie-break/>: "tie-break", not "busy".
    carol.send(&tie_break("reject", &sid))?;
    let ended = signals.wait("alice", "call_ended", |d| d["sid"] == sid.as_str())?;
    ensure!(
        ended["reason"] == "tie-break",
        "alice's call_ended: {ended}"
    );
    wait_listed_ended(perchd, "alice", &sid, "tie-break")?;

    // 3. Equal ids: the lower bare JID wins, alice@localhost before carol@localhost.
    let sid = start()?;
    let got = carol.read_until("</propose>", DELIVERY)?;
    ensure!(
        got.contains(sid.as_str()),
        "carol got alice's propose: {got}"
    );
    carol.send(&propose(&sid))?;
    let got = carol.read_until("</reject>", DELIVERY)?;
    let reject = &got[got.rfind("<reject").unwrap_or(0)..];
    ensure!(
        reject.contains(sid.as_str()) && reject.contains("<tie-break"),
        "alice's tie-break reject for the same id: {reject}"
    );
    let ours = listed(perchd, "alice", &sid)?;
    ensure!(
        ours["direction"] == "outgoing" && ours["state"] == "proposed",
        "alice's call goes on: {ours}"
    );
    run(perchd, "alice", "call_end", &[("sid", sid)])?;
    carol.close()?;
    Ok(())
}

/// A stranger's malformed Jingle, a Jingle for no session, a session-initiate
/// without RTP: each gets the XEP's error, and perchd goes on calling.
#[test]
fn malformed_jingle_gets_errors_and_calls_go_on() {
    let bed = Bed::start();
    malformed_body(&bed).unwrap();
}

fn malformed_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    bed.prosody.register("carol", CAROL_PW)?;
    let alice_full = bound_jid(perchd, "alice")?;
    let mut carol = RawClient::connect(
        bed.prosody.port(),
        &bed.prosody.ca_file(),
        "carol",
        CAROL_PW,
    )?;
    let cases = [
        (
            "m1",
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-dance' sid='s1'/>",
            &["bad-request"][..],
        ),
        (
            "m2",
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s2'><content name='x'/></jingle>",
            &["bad-request"][..],
        ),
        (
            "m3",
            "<jingle xmlns='urn:xmpp:jingle:1' action='transport-info' sid='nosuch'/>",
            &["item-not-found", "unknown-session"][..],
        ),
        (
            "m4",
            "<jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='s4'>\
             <content creator='initiator' name='x'><transport xmlns='urn:xmpp:jingle:transports:ice-udp:1'/></content></jingle>",
            &["bad-request"][..],
        ),
    ];
    for (id, jingle, conditions) in cases {
        carol.send(&format!(
            "<iq type='set' id='{id}' to='{alice_full}'>{jingle}</iq>"
        ))?;
        let got = carol.read_until("</iq>", DELIVERY)?;
        for c in conditions {
            ensure!(
                got.contains(id)
                    && (got.contains("type='error'") || got.contains("type=\"error\"")),
                "{id}: not an error: {got}"
            );
            ensure!(got.contains(c), "{id}: no {c} in {got}");
        }
    }
    // A well-formed session-initiate from carol is acked, and a session-accept for
    // it from carol (she is the initiator) is out of order.
    carol.send(&format!(
        "<iq type='set' id='ok1' to='{alice_full}'><jingle xmlns='urn:xmpp:jingle:1' action='session-initiate' sid='c1'>\
         <content creator='initiator' name='0'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
         <payload-type id='0' name='PCMU' clockrate='8000'/></description>\
         <transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag='u' pwd='p'/></content></jingle></iq>"
    ))?;
    let mut got = carol.read_until("ok1", DELIVERY)?;
    got.push_str(&carol.read_until(">", DELIVERY)?);
    ensure!(
        got.contains("ok1") && got.contains("result"),
        "session-initiate not acked: {got}"
    );
    carol.send(&format!(
        "<iq type='set' id='ooo' to='{alice_full}'><jingle xmlns='urn:xmpp:jingle:1' action='session-accept' sid='c1'/></iq>"
    ))?;
    let got = carol.read_until("</iq>", DELIVERY)?;
    ensure!(
        got.contains("unexpected-request") && got.contains("out-of-order"),
        "out of order: {got}"
    );
    // content-add is acked, then refused with content-reject (no renegotiation yet).
    carol.send(&format!(
        "<iq type='set' id='add1' to='{alice_full}'><jingle xmlns='urn:xmpp:jingle:1' action='content-add' sid='c1'>\
         <content creator='initiator' name='v'><description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
         <payload-type id='96' name='VP8' clockrate='90000'/></description></content></jingle></iq>"
    ))?;
    let got = carol.read_until("content-reject", DELIVERY)?;
    ensure!(got.contains("add1"), "content-add not acked: {got}");
    let id = last_iq_id(&got).ok_or_else(|| anyhow!("no id on the content-reject: {got}"))?;
    carol.send(&format!("<iq type='result' id='{id}' to='{alice_full}'/>"))?;
    // Removing the only content ends the session.
    carol.send(&format!(
        "<iq type='set' id='rm1' to='{alice_full}'><jingle xmlns='urn:xmpp:jingle:1' action='content-remove' sid='c1'>\
         <content creator='initiator' name='0'/></jingle></iq>"
    ))?;
    carol.read_until("rm1", DELIVERY)?;
    let got = carol.read_until("session-terminate", DELIVERY)?;
    let id = last_iq_id(&got).ok_or_else(|| anyhow!("no id on the session-terminate: {got}"))?;
    carol.send(&format!("<iq type='result' id='{id}' to='{alice_full}'/>"))?;
    wait_listed_ended(perchd, "alice", "c1", "success")?;
    carol.close()?;

    // perchd still works: alice's call list shows carol's call, and alice can call bob.
    let list = perchd.cli_json(&["call", "list", "-p", "alice"])?;
    ensure!(
        list.as_array()
            .is_some_and(|a| a.iter().any(|c| c["sid"] == "c1"
                && c["direction"] == "incoming"
                && c["end_text"] == "every content was removed")),
        "carol's call: {list}"
    );
    let bob_full = bound_jid(perchd, "bob")?;
    let mut signals = CallSignals::start(perchd)?;
    let started = run(
        perchd,
        "alice",
        "call_start",
        &[
            ("peer", bob_full),
            ("sdp", fixture("webrtcbin-1.22-offer.sdp")),
        ],
    )?;
    let sid = sid_of(&started)?;
    signals.wait("bob", "call_incoming", |d| d["sid"] == sid.as_str())?;
    Ok(())
}

/// The `id` of the last `<iq …>` opening tag in `text`.
fn last_iq_id(text: &str) -> Option<String> {
    let start = text.rfind("<iq ")?;
    let tag = &text[start..];
    let tag = &tag[..tag.find('>')?];
    let i = tag.find(" id=")? + 4;
    let quote = tag[i..].chars().next()?;
    let rest = &tag[i + 1..];
    Some(rest[..rest.find(quote)?].to_owned())
}

/// Two devices of bob ring for one JMI proposal; bob answers on one, the other
/// stops with "answered-elsewhere". A contact whose client does not do Jingle RTP is
/// a typed error, and a call ends when the peer's device goes offline.
#[test]
fn answered_elsewhere_no_jingle_and_peer_gone() {
    let bed = Bed::start();
    elsewhere_body(&bed).unwrap();
}

fn elsewhere_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    // Presence shared, so alice sees bob's device leave.
    mutual_subscription(perchd)?;
    perchd.create_profile(&bed.prosody, "bob2", "bob", BOB_PW, &[])?;
    connect(perchd, "bob2", BOB)?;
    let mut signals = CallSignals::start(perchd)?;
    let started = run(
        perchd,
        "alice",
        "call_start",
        &[
            ("peer", BOB.into()),
            ("sdp", fixture("webrtcbin-1.22-offer.sdp")),
            ("jmi", "true".into()),
        ],
    )?;
    let sid = sid_of(&started)?;
    signals.wait("bob", "call_proposed", |d| d["sid"] == sid.as_str())?;
    signals.wait("bob2", "call_proposed", |d| d["sid"] == sid.as_str())?;
    run(perchd, "bob", "call_answer", &[("sid", sid.clone())])?;
    let ended = signals.wait("bob2", "call_ended", |d| d["sid"] == sid.as_str())?;
    ensure!(
        ended["reason"] == "answered-elsewhere",
        "bob2's call: {ended}"
    );
    signals.wait("bob", "call_incoming", |d| d["sid"] == sid.as_str())?;
    ensure!(
        listed(perchd, "bob", &sid)?["state"] == "pending",
        "bob's call after proceed"
    );

    // bob's device goes offline mid-call: alice's call ends with "gone".
    perchd.cli_ok(&["disconnect", "-p", "bob"])?;
    let ended = signals.wait("alice", "call_ended", |d| d["sid"] == sid.as_str())?;
    ensure!(
        ended["reason"] == "gone",
        "alice's call when bob left: {ended}"
    );
    let ended = signals.wait("bob", "call_ended", |d| d["sid"] == sid.as_str())?;
    ensure!(
        ended["reason"] == "connectivity-error",
        "bob's own call when he left: {ended}"
    );

    // carol's client answers disco#info without Jingle RTP.
    bed.prosody.register("carol", CAROL_PW)?;
    let mut carol = RawClient::connect(
        bed.prosody.port(),
        &bed.prosody.ca_file(),
        "carol",
        CAROL_PW,
    )?;
    let carol_full = carol.jid.clone();
    let alice_full = bound_jid(perchd, "alice")?;
    let offer = fixture("webrtcbin-1.22-offer.sdp");
    std::thread::scope(|scope| -> Result<()> {
        let call = scope.spawn(|| {
            run_fails(
                perchd,
                "alice",
                "call_start",
                &[("peer", carol_full.clone()), ("sdp", offer.clone())],
                "FeatureNotImplemented",
            )
        });
        let got = carol.read_until("http://jabber.org/protocol/disco#info", DELIVERY)?;
        let id = last_iq_id(&got).ok_or_else(|| anyhow!("no iq id in {got}"))?;
        carol.send(&format!(
            "<iq type='result' id='{id}' to='{alice_full}'><query xmlns='http://jabber.org/protocol/disco#info'>\
             <feature var='urn:xmpp:ping'/></query></iq>"
        ))?;
        let err = call
            .join()
            .map_err(|_| anyhow!("the call_start thread panicked"))??;
        ensure!(
            err.contains("Jingle RTP"),
            "no-Jingle error says why: {err}"
        );
        Ok(())
    })?;
    carol.close()?;
    Ok(())
}

/// With `ring_timeout_s = 1`, a call nobody answers ends with "timeout" on both
/// sides, direct or by JMI; a bad value stops the plugin from loading, said why.
#[test]
fn unanswered_calls_time_out() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start_with_config("[plugins.options.\"XEP-0167\"]\nring_timeout_s = 1\n")
        .expect("starting perchd");
    let mut bed = Bed { perchd, prosody };
    timeout_body(&mut bed).unwrap();
    let bad =
        Perchd::start_with_config("[plugins.options.\"XEP-0167\"]\nring_timeout_s = \"soon\"\n")
            .expect("starting perchd");
    bad_option_body(&bad).unwrap();
}

fn timeout_body(bed: &mut Bed) -> Result<()> {
    let perchd = &mut bed.perchd;
    perchd.create_profile(&bed.prosody, "alice", "alice", ALICE_PW, &[])?;
    perchd.create_profile(&bed.prosody, "bob", "bob", BOB_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    connect(perchd, "bob", BOB)?;
    let mut signals = CallSignals::start(perchd)?;
    let bob_full = bound_jid(perchd, "bob")?;
    let mut sids: Vec<String> = Vec::new();
    for (peer, jmi) in [(bob_full.as_str(), "false"), (BOB, "true")] {
        let started = run(
            perchd,
            "alice",
            "call_start",
            &[
                ("peer", peer.into()),
                ("sdp", fixture("webrtcbin-1.22-offer.sdp")),
                ("jmi", jmi.into()),
            ],
        )?;
        let sid = sid_of(&started)?;
        let ended = signals.wait("alice", "call_ended", |d| d["sid"] == sid.as_str())?;
        ensure!(
            ended["reason"] == "timeout",
            "alice's unanswered call ({jmi}): {ended}"
        );
        let ended = signals.wait("bob", "call_ended", |d| d["sid"] == sid.as_str())?;
        ensure!(
            ended["reason"] == "timeout",
            "bob's side of the unanswered call ({jmi}): {ended}"
        );
        sids.push(sid);
    }
    drop(signals);
    // Ended calls are stored: the list survives a restart (profiles not connected).
    for sid in &sids {
        wait_listed_ended(perchd, "alice", sid, "timeout")?;
        wait_listed_ended(perchd, "bob", sid, "timeout")?;
    }
    perchd.stop()?;
    perchd.start_again()?;
    for profile in ["alice", "bob"] {
        let list = perchd.cli_json(&["call", "list", "-p", profile])?;
        let listed: Vec<(&str, &str)> = list
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        (
                            c["sid"].as_str().unwrap_or(""),
                            c["end_reason"].as_str().unwrap_or(""),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        ensure!(
            listed == [(sids[0].as_str(), "timeout"), (sids[1].as_str(), "timeout")],
            "{profile}'s calls after a restart: {list}"
        );
    }
    Ok(())
}

fn bad_option_body(perchd: &Perchd) -> Result<()> {
    let plugins = perchd.cli_json(&["plugin", "list"])?;
    let calls = plugins
        .as_array()
        .and_then(|a| a.iter().find(|p| p["import_name"] == "XEP-0167"))
        .ok_or_else(|| anyhow!("XEP-0167 not listed: {plugins}"))?;
    ensure!(
        calls["state"] != "loaded"
            && calls["reason"]
                .as_str()
                .is_some_and(|r| r.contains("ring_timeout_s")),
        "a bad ring_timeout_s: {calls}"
    );
    Ok(())
}
