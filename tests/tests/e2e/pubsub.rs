//! Pubsub (XEP-0060) end to end: every `perch pubsub` command against a real
//! service, notifications seen by a second profile, paging, and errors by name.

use super::*;

const SERVICE: &str = "pubsub.localhost";

/// `perch --json pubsub ARGS…`
pub(super) fn ps(perchd: &Perchd, args: &[&str]) -> Result<Value> {
    let mut all = vec!["pubsub"];
    all.extend_from_slice(args);
    perchd.cli_json(&all)
}

/// A payload file for `perch pubsub set --file`.
pub(super) fn payload(perchd: &Perchd, name: &str, xml: &str) -> Result<String> {
    let path = perchd.dir().join(format!("{name}.xml"));
    std::fs::write(&path, xml)?;
    Ok(path.display().to_string())
}

pub(super) fn entry(text: &str) -> String {
    format!("<entry xmlns='urn:perch:test'><title>{text}</title></entry>")
}

pub(super) fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(super) fn publish(
    perchd: &Perchd,
    profile: &str,
    service: Option<&str>,
    node: &str,
    id: &str,
    text: &str,
) -> Result<Value> {
    let file = payload(perchd, &format!("{node}-{id}"), &entry(text))?;
    let mut args = vec!["set", "-p", profile, "-n", node, "-i", id, "--file", &file];
    if let Some(s) = service {
        args.extend(["-s", s]);
    }
    ps(perchd, &args)
}

/// Waits for a `ps_event` of `kind` on `node` for `profile`.
pub(super) fn wait_event(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    profile: &str,
    node: &str,
    kind: &str,
    more: impl Fn(&Value) -> bool,
) -> Result<()> {
    wait_line(rx, seen, |v| {
        v["signal"] == "PluginSignal"
            && v["name"] == "ps_event"
            && v["profile"] == profile
            && v["data"]["node"] == node
            && v["data"]["kind"] == kind
            && more(&v["data"])
    })
    .with_context(|| format!("waiting for a {kind} event on {node} for {profile}"))
}

#[test]
fn pubsub_on_prosody() {
    let bed = Bed::start();
    prosody_body(&bed).unwrap();
}

fn prosody_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    every_method(&bed.perchd, true)
}

/// Every pubsub command on `pubsub.localhost` and on alice's PEP, alice and bob
/// connected; `prosody` marks what Prosody 0.12 does not implement.
fn every_method(perchd: &Perchd, prosody: bool) -> Result<()> {
    let node = "perch-test";
    let s = SERVICE;

    // Nodes: create configured, info, config get/set, default, list.
    let created = ps(
        perchd,
        &[
            "node",
            "create",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            node,
            "-f",
            "pubsub#max_items",
            "1000",
            "-f",
            "pubsub#notify_config",
            "1",
            "-f",
            "pubsub#notify_delete",
            "1",
            "-f",
            "pubsub#notify_retract",
            "1",
        ],
    )?;
    ensure!(
        created["node"] == node && created["service"] == s,
        "create: {created}"
    );
    let info = ps(
        perchd,
        &["node", "info", "-p", "alice", "-s", s, "-n", node],
    )?;
    ensure!(
        info["identities"].to_string().contains("\"leaf\""),
        "node info: {info}"
    );
    let config = ps(
        perchd,
        &["node", "config", "-p", "alice", "-s", s, "-n", node],
    )?;
    ensure!(
        config["config"]["values"]["pubsub#max_items"] == "1000",
        "config: {config}"
    );
    let default = ps(perchd, &["node", "default", "-p", "alice", "-s", s])?;
    ensure!(
        default["config"]["values"]
            .get("pubsub#max_items")
            .is_some(),
        "default config: {default}"
    );
    let nodes = ps(perchd, &["node", "list", "-p", "alice", "-s", s])?;
    ensure!(
        nodes["nodes"].to_string().contains(node),
        "node list: {nodes}"
    );

    // Subscriptions and affiliations.
    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    let sub = ps(perchd, &["subscribe", "-p", "bob", "-s", s, "-n", node])?;
    ensure!(
        sub["subscription"]["subscription"] == "subscribed",
        "subscribe: {sub}"
    );
    let mine = ps(perchd, &["subscriptions", "-p", "bob", "-s", s])?;
    ensure!(
        mine["subscriptions"].to_string().contains(node),
        "bob's subscriptions: {mine}"
    );
    let subs = ps(
        perchd,
        &["node", "subscriptions", "-p", "alice", "-s", s, "-n", node],
    )?;
    ensure!(
        subs["subscriptions"].to_string().contains(BOB),
        "node subscriptions: {subs}"
    );
    let affs = ps(
        perchd,
        &["node", "affiliations", "-p", "alice", "-s", s, "-n", node],
    )?;
    ensure!(
        affs["affiliations"].to_string().contains("owner"),
        "node affiliations: {affs}"
    );
    ps(
        perchd,
        &[
            "node",
            "affiliations",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            node,
            "--set",
            &format!("{BOB}=publisher"),
        ],
    )?;
    let affs = ps(
        perchd,
        &["node", "affiliations", "-p", "alice", "-s", s, "-n", node],
    )?;
    ensure!(
        affs["affiliations"].as_array().is_some_and(|a| a
            .iter()
            .any(|x| x["jid"] == BOB && x["affiliation"] == "publisher")),
        "bob is not publisher: {affs}"
    );
    if prosody {
        // Prosody 0.12 does not implement a user's own affiliations: the refusal
        // arrives typed.
        perchd.cli_fails_with(
            &["pubsub", "affiliations", "-p", "bob", "-s", s],
            "ServiceUnavailable",
        )?;
    } else {
        let affs = ps(perchd, &["affiliations", "-p", "bob", "-s", s])?;
        ensure!(
            affs["affiliations"].to_string().contains("publisher"),
            "bob's own affiliations: {affs}"
        );
    }

    // Events for each kind, seen by bob.
    let first = publish(perchd, "alice", Some(s), node, "first", "one")?;
    ensure!(first["item_id"] == "first", "publish: {first}");
    wait_event(&rx, &mut seen, "bob", node, "items", |d| {
        d["items"][0]["id"] == "first"
            && d["items"][0]["payload"]
                .as_str()
                .is_some_and(|p| p.contains("one"))
            && d["service"] == s
    })?;
    publish(perchd, "alice", Some(s), node, "first", "one, edited")?;
    wait_event(&rx, &mut seen, "bob", node, "items", |d| {
        d["items"][0]["payload"]
            .as_str()
            .is_some_and(|p| p.contains("edited"))
    })?;
    // bob publishes too (publisher affiliation); the service tells who.
    publish(perchd, "bob", Some(s), node, "by-bob", "from bob")?;
    let got = ps(
        perchd,
        &["get", "-p", "alice", "-s", s, "-n", node, "-i", "by-bob"],
    )?;
    // Prosody tells the publisher (expose_publisher); ejabberd does not.
    ensure!(
        ids(&got) == ["by-bob"]
            && (!prosody
                || got["items"][0]["publisher"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(BOB))),
        "get by id with publisher: {got}"
    );
    ps(
        perchd,
        &[
            "retract", "-p", "alice", "-s", s, "-n", node, "-i", "by-bob",
        ],
    )?;
    wait_event(&rx, &mut seen, "bob", node, "retract", |d| {
        d["retracted"][0] == "by-bob"
    })?;
    ps(
        perchd,
        &[
            "node",
            "config",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            node,
            "-f",
            "pubsub#title",
            "Perch test",
        ],
    )?;
    if !prosody {
        // (Prosody 0.12 sends no configuration notifications.)
        wait_event(&rx, &mut seen, "bob", node, "configuration", |_| true)?;
    }
    let config = ps(
        perchd,
        &["node", "config", "-p", "alice", "-s", s, "-n", node],
    )?;
    ensure!(
        config["config"]["values"]["pubsub#title"] == "Perch test",
        "config set: {config}"
    );
    ps(
        perchd,
        &["node", "purge", "-p", "alice", "-s", s, "-n", node],
    )?;
    wait_event(&rx, &mut seen, "bob", node, "purge", |_| true)?;
    let empty = ps(perchd, &["get", "-p", "alice", "-s", s, "-n", node])?;
    ensure!(
        ids(&empty).is_empty(),
        "purged node still has items: {empty}"
    );

    // Items: newest N, by ids, the whole node, RSM pages emulated (Prosody ignores RSM).
    for i in 0..30 {
        publish(
            perchd,
            "alice",
            Some(s),
            node,
            &format!("i{i:02}"),
            &format!("item {i}"),
        )?;
    }
    let newest = ps(
        perchd,
        &["get", "-p", "alice", "-s", s, "-n", node, "-M", "5"],
    )?;
    let mut got = ids(&newest);
    got.sort();
    ensure!(
        got == ["i25", "i26", "i27", "i28", "i29"],
        "newest 5: {newest}"
    );
    let all = ps(
        perchd,
        &["get", "-p", "alice", "-s", s, "-n", node, "--all"],
    )?;
    ensure!(
        ids(&all).len() == 30 && all["complete"] == true,
        "whole node: {all}"
    );
    // RSM cursors are the service's (ejabberd: timestamps; Prosody, paged by perchd:
    // item ids): take one from a page, as a frontend would.
    let at10 = ps(
        perchd,
        &[
            "get", "-p", "alice", "-s", s, "-n", node, "-M", "1", "--index", "10",
        ],
    )?;
    ensure!(ids(&at10) == ["i10"], "index 10: {at10}");
    let cursor = at10["rsm"]["last"]
        .as_str()
        .with_context(|| format!("no RSM last: {at10}"))?
        .to_owned();
    let page = ps(
        perchd,
        &[
            "get", "-p", "alice", "-s", s, "-n", node, "-M", "3", "--after", &cursor,
        ],
    )?;
    ensure!(ids(&page) == ["i11", "i12", "i13"], "after i10: {page}");
    ensure!(page["rsm"]["count"] == 30, "rsm: {page}");
    let last = ps(
        perchd,
        &[
            "get", "-p", "alice", "-s", s, "-n", node, "-M", "2", "--before", "",
        ],
    )?;
    ensure!(ids(&last) == ["i28", "i29"], "last page: {last}");
    let at = ps(
        perchd,
        &[
            "get", "-p", "alice", "-s", s, "-n", node, "-M", "2", "--index", "5",
        ],
    )?;
    ensure!(ids(&at) == ["i05", "i06"], "index 5: {at}");
    let text = perchd.cli_ok(&[
        "pubsub", "get", "-p", "alice", "-s", s, "-n", node, "-i", "i07",
    ])?;
    ensure!(
        text.contains("<title>item 7</title>"),
        "plain get prints the payload: {text}"
    );

    // Errors, typed by condition.
    perchd.cli_fails_with(
        &[
            "pubsub",
            "get",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            "no-such-node",
        ],
        "ItemNotFound",
    )?;
    if prosody {
        // An unknown cursor, in perchd's own paging, is what a service would say.
        perchd.cli_fails_with(
            &[
                "pubsub", "get", "-p", "alice", "-s", s, "-n", node, "-M", "2", "--after", "nope",
            ],
            "ItemNotFound",
        )?;
    }
    if prosody {
        // Prosody lets only admins create nodes; ejabberd lets every local user.
        perchd.cli_fails_with(
            &[
                "pubsub", "node", "create", "-p", "bob", "-s", s, "-n", "bobs",
            ],
            "Forbidden",
        )?;
    }
    perchd.cli_fails_with(
        &["pubsub", "node", "delete", "-p", "bob", "-s", s, "-n", node],
        "Forbidden",
    )?;
    perchd.cli_fails_with(
        &[
            "pubsub", "node", "create", "-p", "alice", "-s", s, "-n", node,
        ],
        "Conflict",
    )?;
    let file = payload(perchd, "bad", "<not-closed")?;
    perchd.cli_fails_with(
        &[
            "pubsub", "set", "-p", "alice", "-s", s, "-n", node, "--file", &file,
        ],
        "BadArgument",
    )?;

    // Subscription change and node deletion, as events.
    ps(
        perchd,
        &[
            "node",
            "subscriptions",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            node,
            "--set",
            &format!("{BOB}=none"),
        ],
    )?;
    let subs = ps(
        perchd,
        &["node", "subscriptions", "-p", "alice", "-s", s, "-n", node],
    )?;
    ensure!(
        !subs["subscriptions"].to_string().contains(BOB),
        "bob still subscribed: {subs}"
    );
    ps(perchd, &["subscribe", "-p", "bob", "-s", s, "-n", node])?;
    ps(perchd, &["unsubscribe", "-p", "bob", "-s", s, "-n", node])?;
    let sub = ps(
        perchd,
        &[
            "subscribe",
            "-p",
            "bob",
            "-s",
            s,
            "-n",
            node,
            "-o",
            "pubsub#deliver",
            "true",
        ],
    )?;
    ensure!(
        sub["subscription"]["subscription"] == "subscribed",
        "subscribe with options: {sub}"
    );
    // An item id chosen by the service.
    let file = payload(perchd, "noid", &entry("no id"))?;
    let given = ps(
        perchd,
        &["set", "-p", "alice", "-s", s, "-n", node, "--file", &file],
    )?;
    let given_id = given["item_id"].as_str().unwrap_or_default().to_owned();
    ensure!(!given_id.is_empty(), "no item id assigned: {given}");
    let got = ps(
        perchd,
        &["get", "-p", "alice", "-s", s, "-n", node, "-i", &given_id],
    )?;
    ensure!(ids(&got) == [given_id.clone()], "item {given_id}: {got}");
    ps(
        perchd,
        &[
            "node",
            "delete",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            node,
            "--redirect",
            "xmpp:pubsub.localhost?;node=elsewhere",
        ],
    )?;
    wait_event(&rx, &mut seen, "bob", node, "delete", |_| true)?;
    perchd.cli_fails_with(
        &["pubsub", "node", "info", "-p", "alice", "-s", s, "-n", node],
        "ItemNotFound",
    )?;

    // PEP: the service defaults to the profile's own account.
    let pep = "urn:perch:test:pep";
    let file = payload(perchd, "pep", &entry("on my PEP"))?;
    ps(
        perchd,
        &[
            "set",
            "-p",
            "alice",
            "-n",
            pep,
            "-i",
            "p1",
            "--file",
            &file,
            "-o",
            "pubsub#access_model",
            "open",
        ],
    )?;
    let mine = ps(perchd, &["get", "-p", "alice", "-n", pep])?;
    ensure!(
        ids(&mine) == ["p1"] && mine["service"] == ALICE,
        "own PEP: {mine}"
    );
    let theirs = ps(perchd, &["get", "-p", "bob", "-s", ALICE, "-n", pep])?;
    ensure!(ids(&theirs) == ["p1"], "alice's PEP read by bob: {theirs}");
    // A precondition that does not match is a Conflict naming precondition-not-met.
    let err = perchd.cli_fails_with(
        &[
            "pubsub",
            "set",
            "-p",
            "alice",
            "-n",
            pep,
            "-i",
            "p2",
            "--file",
            &file,
            "-o",
            "pubsub#access_model",
            "whitelist",
        ],
        "Conflict",
    )?;
    ensure!(
        err.contains("precondition-not-met"),
        "precondition error: {err}"
    );
    // bob subscribes explicitly to alice's PEP node and is notified.
    ps(perchd, &["subscribe", "-p", "bob", "-s", ALICE, "-n", pep])?;
    publish(perchd, "alice", None, pep, "p3", "pep news")?;
    wait_event(&rx, &mut seen, "bob", pep, "items", |d| {
        d["service"] == ALICE && d["items"][0]["id"] == "p3"
    })?;
    // Notifications never land in the message history.
    let hist = history(perchd, "bob", &[])?;
    ensure!(
        hist.is_empty(),
        "pubsub events stored as messages: {hist:?}"
    );
    let _ = monitor.kill();
    let _ = monitor.wait();
    Ok(())
}

/// XEP-0163: with `+notify` in our capabilities, a contact's PEP items arrive without
/// any subscription (Prosody relies on caps for this: without XEP-0115 loaded, this
/// test fails).
#[test]
fn pep_notifications_through_caps() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start_with_config(
        "[plugins.options.\"XEP-0060\"]\nnotify = [\"urn:perch:test:notify\"]\n",
    )
    .expect("starting perchd");
    let bed = Bed { perchd, prosody };
    caps_body(&bed).unwrap();
}

fn caps_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    mutual_subscription(perchd)?;
    // Our caps hash is answered on node#ver with the +notify feature.
    let bob_full = bound_jid(perchd, "bob")?;
    let disco = perchd.cli_json(&["info", "disco", "-p", "alice", &bob_full, "--no-cache"])?;
    ensure!(
        disco["info"]["features"]
            .to_string()
            .contains("urn:perch:test:notify+notify"),
        "+notify not announced: {disco}"
    );
    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    let node = "urn:perch:test:notify";
    // The server learns bob's interest from his presence asynchronously: publish
    // until a notification arrives (each attempt is a new item).
    let mut got = Err(anyhow!("never tried"));
    for attempt in 0..5 {
        let id = format!("n{attempt}");
        publish(perchd, "alice", None, node, &id, "notify me")?;
        got = wait_event(&rx, &mut seen, "bob", node, "items", |d| {
            d["service"] == ALICE && d["items"][0]["id"] == id.as_str()
        });
        if got.is_ok() {
            break;
        }
    }
    got?;
    let subs = ps(perchd, &["subscriptions", "-p", "bob", "-s", ALICE])?;
    ensure!(
        !subs["subscriptions"].to_string().contains(node),
        "bob was subscribed explicitly: {subs}"
    );
    let _ = monitor.kill();
    let _ = monitor.wait();
    Ok(())
}

/// Publishes items `b{i:04}` for `i` in `range` straight over D-Bus, 32 calls in
/// flight (the CLI would spend most of the time starting processes).
pub(super) fn publish_many(
    perchd: &Perchd,
    profile: &str,
    service: &str,
    node: &str,
    range: std::ops::Range<usize>,
    payload: impl Fn(usize) -> String,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = perch_client::Client::on_bus(perchd.bus_connection().await?).await?;
        let calls = range.map(|i| {
            let client = client.clone();
            let args = perch_client::actions::pubsub::PublishArgs {
                service: Some(service.to_owned()),
                node: node.to_owned(),
                item_id: Some(format!("b{i:04}")),
                payload: payload(i),
                options: None,
            };
            async move {
                client
                    .action::<perch_client::actions::pubsub::Publish>(profile, &args)
                    .await
                    .with_context(|| format!("publishing b{i:04}"))
            }
        });
        let results: Vec<_> = futures::stream::iter(calls)
            .buffer_unordered(32)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok::<_, anyhow::Error>(())
    })
}

/// Profiles alice and bob on `server` (ejabberd), both connected.
pub(super) fn alice_and_bob_on_ejabberd(
    perchd: &Perchd,
    server: &perch_tests::Ejabberd,
    extra: &[&str],
) -> Result<()> {
    let (addr, ca) = (server.server_arg(), server.ca_file().display().to_string());
    for (name, pw) in [("alice", ALICE_PW), ("bob", BOB_PW)] {
        let jid = format!("{name}@localhost");
        let mut args = vec![
            "profile",
            "create",
            name,
            "--jid",
            &jid,
            "--xmpp-password",
            pw,
            "--server",
            &addr,
            "--ca-file",
            &ca,
        ];
        args.extend_from_slice(extra);
        perchd.cli_ok(&args)?;
        connect(perchd, name, &jid)?;
    }
    Ok(())
}

#[test]
fn pubsub_on_ejabberd() {
    let ejabberd = perch_tests::Ejabberd::start().expect("starting ejabberd");
    let perchd = Perchd::start().expect("starting perchd");
    ejabberd_body(&perchd, &ejabberd).unwrap_or_else(|e| {
        panic!("{e:?}\n{}", ejabberd.diagnostics());
    });
}

fn ejabberd_body(perchd: &Perchd, server: &perch_tests::Ejabberd) -> Result<()> {
    alice_and_bob_on_ejabberd(perchd, server, &[])?;
    every_method(perchd, false)?;
    let s = SERVICE;
    let node = "perch-ej";
    ps(
        perchd,
        &[
            "node",
            "create",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            node,
            "-f",
            "pubsub#max_items",
            "10000",
            "-f",
            "pubsub#notify_config",
            "1",
            "-f",
            "pubsub#notify_delete",
            "1",
            "-f",
            "pubsub#notify_retract",
            "1",
        ],
    )?;
    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    ps(perchd, &["subscribe", "-p", "bob", "-s", s, "-n", node])?;
    let affs = ps(perchd, &["affiliations", "-p", "alice", "-s", s])?;
    ensure!(
        affs["affiliations"].as_array().is_some_and(|a| a
            .iter()
            .any(|x| x["node"] == node && x["affiliation"] == "owner")),
        "alice's own affiliations: {affs}"
    );
    publish(perchd, "alice", Some(s), node, "e1", "first")?;
    wait_event(&rx, &mut seen, "bob", node, "items", |d| {
        d["items"][0]["id"] == "e1"
    })?;
    ps(
        perchd,
        &["retract", "-p", "alice", "-s", s, "-n", node, "-i", "e1"],
    )?;
    wait_event(&rx, &mut seen, "bob", node, "retract", |d| {
        d["retracted"][0] == "e1"
    })?;
    ps(
        perchd,
        &[
            "node",
            "config",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            node,
            "-f",
            "pubsub#title",
            "EJ",
        ],
    )?;
    wait_event(&rx, &mut seen, "bob", node, "configuration", |_| true)?;
    ps(
        perchd,
        &["node", "purge", "-p", "alice", "-s", s, "-n", node],
    )?;
    wait_event(&rx, &mut seen, "bob", node, "purge", |_| true)?;

    // Paging over 1,200 items with real RSM.
    publish_many(perchd, "alice", s, node, 0..1200, |i| {
        entry(&format!("bulk {i}"))
    })?;
    let all = ps(
        perchd,
        &["get", "-p", "alice", "-s", s, "-n", node, "--all"],
    )?;
    let got = ids(&all);
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    ensure!(
        got.len() == 1200 && unique.len() == 1200 && all["complete"] == true,
        "--all gave {} items ({} distinct), complete={}, note={}",
        got.len(),
        unique.len(),
        all["complete"],
        all["note"]
    );
    let first = ps(
        perchd,
        &[
            "get", "-p", "alice", "-s", s, "-n", node, "-M", "10", "--index", "0",
        ],
    )?;
    ensure!(
        ids(&first).len() == 10 && first["rsm"]["count"] == 1200,
        "first RSM page: {first}"
    );
    let last_id = first["rsm"]["last"]
        .as_str()
        .context("no rsm last")?
        .to_owned();
    let next = ps(
        perchd,
        &[
            "get", "-p", "alice", "-s", s, "-n", node, "-M", "10", "--after", &last_id,
        ],
    )?;
    ensure!(
        ids(&next).len() == 10 && ids(&next).iter().all(|i| !ids(&first).contains(i)),
        "next page overlaps: {next}"
    );
    let newest = ps(
        perchd,
        &["get", "-p", "alice", "-s", s, "-n", node, "-M", "3"],
    )?;
    ensure!(
        ids(&newest).len() == 3,
        "newest 3 with ejabberd's <set/>: {newest}"
    );

    // Errors and the remaining events.
    perchd.cli_fails_with(
        &["pubsub", "get", "-p", "alice", "-s", s, "-n", "nope"],
        "ItemNotFound",
    )?;
    perchd.cli_fails_with(
        &["pubsub", "node", "delete", "-p", "bob", "-s", s, "-n", node],
        "Forbidden",
    )?;
    ps(
        perchd,
        &[
            "node",
            "subscriptions",
            "-p",
            "alice",
            "-s",
            s,
            "-n",
            node,
            "--set",
            &format!("{BOB}=none"),
        ],
    )?;
    wait_event(&rx, &mut seen, "bob", node, "subscription", |d| {
        d["subscription"]["subscription"] == "none"
    })?;
    ps(perchd, &["subscribe", "-p", "bob", "-s", s, "-n", node])?;
    ps(
        perchd,
        &["node", "delete", "-p", "alice", "-s", s, "-n", node],
    )?;
    wait_event(&rx, &mut seen, "bob", node, "delete", |_| true)?;
    let _ = monitor.kill();
    let _ = monitor.wait();
    Ok(())
}
