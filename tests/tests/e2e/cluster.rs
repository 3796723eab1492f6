//! Several daemons on one database (issue 22, part 3), two perchd processes on one
//! SQLite data directory, each on its own bus: a live node name is refused; the
//! autoconnect profiles are spread over both; each daemon's status names every
//! profile's owner; a call for a profile the other owns is a typed error naming it;
//! a daemon killed with SIGKILL has its profiles taken over by the other within 15 s,
//! and they send and receive from there.

use std::collections::BTreeMap;

use super::*;

const NODE_A: &str = "[cluster]\nnode = \"a\"\n";
const NODE_B: &str = "[cluster]\nnode = \"b\"\n";
const USERS: [(&str, &str); 4] = [
    ("alice", ALICE_PW),
    ("bob", BOB_PW),
    ("carol", "carol-secret"),
    ("dave", "dave-secret"),
];

/// Profile → (owner, state) as `perchd`'s `status` shows them.
fn owners(perchd: &Perchd) -> Result<BTreeMap<String, (String, String)>> {
    let v = perchd.cli_json(&["status"])?;
    Ok(v.as_array()
        .context("status is a list")?
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_owned();
            (s("profile"), (s("owner"), s("state")))
        })
        .collect())
}

/// Waits until `check` holds of both daemons' views, returning how long it took.
fn wait_owners(
    daemons: &[&Perchd],
    timeout: Duration,
    what: &str,
    check: impl Fn(&BTreeMap<String, (String, String)>, &Perchd) -> bool,
) -> Result<Duration> {
    let start = std::time::Instant::now();
    let mut last = BTreeMap::new();
    wait_until(timeout, || {
        for d in daemons {
            last = owners(d)?;
            if !check(&last, d) {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .with_context(|| format!("{what}; last status: {last:?}"))?;
    Ok(start.elapsed())
}

/// The profiles `owner` owns, connected on it (as seen from `perchd`).
fn owned_by<'a>(view: &'a BTreeMap<String, (String, String)>, owner: &str) -> Vec<&'a str> {
    view.iter()
        .filter(|(_, (o, _))| o == owner)
        .map(|(p, _)| p.as_str())
        .collect()
}

/// How a test starts another daemon on the database of the first (the node's
/// configuration given).
type Another<'a> = &'a dyn Fn(&str) -> Result<Perchd>;

#[test]
fn two_daemons_share_the_profiles_and_take_over_a_killed_one() {
    let prosody = Prosody::start_with_users(&USERS).expect("starting Prosody");
    let mut a = Perchd::start_with_config(NODE_A).expect("starting daemon a");
    let data_dir = a.data_dir().to_owned();
    let another = |node: &str| Perchd::start_with_data_dir(node, Some(&data_dir));
    let mut b = None;
    if let Err(e) = cluster_body(&prosody, &mut a, &mut b, &another) {
        panic!(
            "{e:?}\n--- a ---\n{}\n--- prosody ---\n{}",
            a.diagnostics(),
            prosody.diagnostics()
        );
    }
}

/// The same on a PostgreSQL database, as daemons on two machines run: each its own
/// data directory, holding a copy of the sealing key.
#[test]
fn two_daemons_on_postgresql() {
    let prosody = Prosody::start_with_users(&USERS).expect("starting Prosody");
    let server = perch_tests::Postgres::start().expect("starting PostgreSQL");
    let url = server.url();
    let mut a = Perchd::start_on_database(NODE_A, &url).expect("starting daemon a");
    let key = a.data_dir().join("secret.key");
    let machines = tempfile::tempdir().expect("a temp dir");
    let another = |node: &str| {
        let dir = tempfile::tempdir_in(machines.path())?.keep();
        std::fs::copy(&key, dir.join("secret.key"))?;
        let config = format!("{node}[database]\nurl = \"{url}\"\n");
        Perchd::start_with_data_dir(&config, Some(&dir))
    };
    let mut b = None;
    if let Err(e) = cluster_body(&prosody, &mut a, &mut b, &another) {
        panic!(
            "{e:?}\n--- a ---\n{}\n--- prosody ---\n{}",
            a.diagnostics(),
            prosody.diagnostics()
        );
    }
}

fn cluster_body(
    prosody: &Prosody,
    a: &mut Perchd,
    b: &mut Option<Perchd>,
    another: Another<'_>,
) -> Result<()> {
    for (name, pw) in USERS {
        a.create_profile(prosody, name, name, pw, &["--autoconnect"])?;
        a.cli_ok(&["connect", "-p", name])?;
    }
    wait_owners(&[a], DELIVERY, "a owns all four", |v, _| {
        owned_by(v, "a").len() == 4 && v.values().all(|(_, s)| s == "connected")
    })?;

    // The same node name, while a runs: refused, naming it.
    let err = match another(NODE_A) {
        Ok(_) => return Err(anyhow!("a second daemon named \"a\" started")),
        Err(e) => format!("{e:#}"),
    };
    ensure!(
        err.contains("node name \"a\" is held"),
        "the refusal: {err}"
    );

    // b joins: two each, and both daemons show the same owners.
    let bd = b.insert(another(NODE_B)?);
    wait_owners(
        &[a, bd],
        Duration::from_secs(30),
        "two profiles each",
        |v, d| {
            let (on_a, on_b) = (owned_by(v, "a"), owned_by(v, "b"));
            let here = if std::ptr::eq(d, &*a) { &on_a } else { &on_b };
            on_a.len() == 2 && on_b.len() == 2 && here.iter().all(|p| v[*p].1 == "connected")
        },
    )?;
    let view = owners(a)?;
    let theirs = owned_by(&view, "b")[0].to_owned();
    let err = a.cli_fails_with(
        &["message", "send", "-p", &theirs, ALICE, "hi"],
        "OwnedElsewhere",
    )?;
    ensure!(err.contains("\"b\""), "the error names the owner: {err}");
    a.cli_fails_with(&["connect", "-p", &theirs], "OwnedElsewhere")?;

    // b is killed: a has all four again within 15 s.
    b.as_mut().map(Perchd::kill).transpose()?;
    let took = wait_owners(
        &[a],
        Duration::from_secs(30),
        "a takes b's profiles over",
        |v, _| owned_by(v, "a").len() == 4 && v.values().all(|(_, s)| s == "connected"),
    )?;
    ensure!(took < Duration::from_secs(15), "the takeover took {took:?}");
    let (peer, _) = USERS
        .iter()
        .find(|(n, _)| *n != theirs)
        .context("another profile")?;
    send(
        a,
        &theirs,
        &format!("{peer}@localhost"),
        "after the takeover",
    )?;
    wait_until(DELIVERY, || {
        let got = history(a, peer, &[&format!("{theirs}@localhost")])?;
        Ok(got
            .iter()
            .filter(|m| m["body"] == "after the takeover")
            .count()
            == 1)
    })
    .context("the message sent after the takeover never arrived once")
}

/// The drill across a takeover: alice sends 1,000 messages to bob one after
/// the other through daemon a; at the 500th a is killed with SIGKILL, b takes alice
/// over, and the rest go through b. Bob (on a perchd of his own) has each exactly
/// once, in order; alice's outbox ends empty and her history holds each once, acked.
#[test]
fn outbox_drill_across_a_takeover() {
    let prosody = Prosody::start().expect("starting Prosody");
    let receiver = Perchd::start().expect("starting bob's perchd");
    let mut a = Perchd::start_with_config(NODE_A).expect("starting daemon a");
    let mut b = Perchd::start_with_data_dir(NODE_B, Some(a.data_dir())).expect("starting b");
    if let Err(e) = drill_body(&prosody, &mut a, &b, &receiver) {
        panic!(
            "{e:?}\n--- b ---\n{}\n--- bob's ---\n{}",
            b.diagnostics(),
            receiver.diagnostics()
        );
    }
    let _ = b.stop();
}

fn drill_body(prosody: &Prosody, a: &mut Perchd, b: &Perchd, receiver: &Perchd) -> Result<()> {
    const N: usize = 1000;
    a.create_profile(prosody, "alice", "alice", ALICE_PW, &["--autoconnect"])?;
    receiver.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(a, "alice", ALICE)?;
    connect(receiver, "bob", BOB)?;
    let body = |i: usize| format!("drill {i:04}");
    for i in 0..N {
        if i == N / 2 {
            a.kill()?;
            wait_owners(
                &[b],
                Duration::from_secs(30),
                "b takes alice over",
                |v, _| {
                    v.get("alice")
                        .is_some_and(|(o, s)| o == "b" && s == "connected")
                },
            )?;
        }
        let via = if i < N / 2 { &*a } else { b };
        let out = via.cli_ok(&["message", "send", "-p", "alice", BOB, &body(i)])?;
        ensure!(
            out.starts_with("sent ") || out.starts_with("queued "),
            "message send printed {out:?}"
        );
    }
    let mut left = Vec::new();
    wait_until(Duration::from_secs(120), || {
        left = messaging::outbox(b, "alice")?;
        Ok(left.is_empty())
    })
    .with_context(|| format!("the outbox never emptied; {} left", left.len()))?;
    let expected: Vec<String> = (0..N).map(body).collect();
    let mut got = Vec::new();
    wait_until(Duration::from_secs(120), || {
        got = messaging::bodies(receiver, "bob", "in", ALICE)?;
        Ok(got.len() >= N)
    })
    .with_context(|| format!("bob has {} of {N}", got.len()))?;
    ensure!(
        got == expected,
        "bob's history is not every message once in order ({} messages)",
        got.len()
    );
    let sent = history(b, "alice", &["--limit", "10000"])?;
    let acked = sent.iter().filter(|m| m["state"] == "acked").count();
    ensure!(
        sent.len() == N && acked == N,
        "alice's history: {} messages, {acked} acked",
        sent.len()
    );
    Ok(())
}
