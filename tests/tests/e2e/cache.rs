//! The pubsub cache end to end: whole nodes cached on both servers, reads served from
//! the cache, coherence with a second profile's changes, restart mid-sync, refused
//! subscriptions, search, purge and reset.

use super::pubsub::{ids, ps, publish, publish_many};
use super::*;

pub(super) const SERVICE: &str = "pubsub.localhost";

/// A config analyser: nodes named `perch-cache…` are synced, their items parsed.
pub(super) const ANALYSER: &str = r#"
[[plugins.options.PUBSUB_CACHE.analysers]]
name = "test-entries"
type = "entry"
subtype = "test"
node_prefix = "perch-cache"
to_sync = true
[plugins.options.PUBSUB_CACHE.analysers.fields]
title = "title"
n = "n|number"
published = "published"
tags = "tag[]"
"#;

/// An item with a number, a date and tags, for searches.
pub(super) fn rich(i: usize) -> String {
    let tag = if i % 100 == 7 { "rare" } else { "common" };
    format!(
        "<entry xmlns='urn:perch:test'><title>item {i} {word}</title><n>{i}</n>\
         <published>2026-01-01T00:00:{s:02}Z</published><tag>{tag}</tag><tag>t{m}</tag></entry>",
        word = if i % 100 == 7 { "zanzibar" } else { "ordinary" },
        s = i % 60,
        m = i % 3,
    )
}

fn status(perchd: &Perchd, profile: &str, service: &str, node: &str) -> Result<Value> {
    let s = ps(
        perchd,
        &["cache", "status", "-p", profile, "-s", service, "-n", node],
    )?;
    s["nodes"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .ok_or_else(|| anyhow!("no cache status for {node}: {s}"))
}

/// Waits until bob's read of the newest items (through the cache) satisfies `ok`.
pub(super) fn wait_cached(
    perchd: &Perchd,
    node: &str,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let mut last = Value::Null;
    let deadline = std::time::Instant::now() + DELIVERY;
    while std::time::Instant::now() < deadline {
        last = ps(
            perchd,
            &["get", "-p", "bob", "-s", SERVICE, "-n", node, "-M", "5"],
        )?;
        if last["source"] == "cache" && ok(&last) {
            return Ok(last);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(anyhow!("cached read never showed {what}: {last}"))
}

pub(super) fn search(perchd: &Perchd, args: &[&str]) -> Result<Vec<String>> {
    let mut all = vec!["cache", "search"];
    all.extend_from_slice(args);
    let r = ps(perchd, &all)?;
    Ok(r["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["item_id"].as_str().unwrap_or_default().to_owned())
        .collect())
}

#[test]
fn cache_on_prosody() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start_with_config(ANALYSER).expect("starting perchd");
    let bed = Bed { perchd, prosody };
    prosody_cache_body(&bed).unwrap();
}

fn prosody_cache_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    cache_body(perchd)
}

/// The whole story on one server; alice and bob connected.
fn cache_body(perchd: &Perchd) -> Result<()> {
    let s = SERVICE;
    let node = "perch-cache-big";
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
            // ejabberd does not notify deletions unless asked.
            "-f",
            "pubsub#notify_delete",
            "1",
        ],
    )?;
    publish_many(perchd, "alice", s, node, 0..2000, rich)?;

    // What the service itself answers (items were published 32 at a time: its order
    // is the order they arrived in, which the cache must reproduce).
    let service_all = ps(
        perchd,
        &["get", "-p", "bob", "-s", s, "-n", node, "--no-cache"],
    )?;
    let order = ids(&service_all);
    ensure!(order.len() == 2000, "service has {} items", order.len());
    let newest: Vec<String> = order[1995..].to_vec();

    // The first read analyses the node, syncs it whole, and is served from the cache.
    let first = wait_cached(perchd, node, "the synced node", |p| ids(p) == newest)?;
    ensure!(first["rsm"]["count"] == 2000, "count: {first}");
    let st = status(perchd, "bob", s, node)?;
    ensure!(
        st["sync_state"] == "completed"
            && st["items"] == 2000
            && st["served"] == true
            && st["type"] == "entry"
            && st["analyser"] == "test-entries",
        "status: {st}"
    );
    // The cache gives the service's semantics: ids, RSM windows, whole node, order.
    let all = ps(perchd, &["get", "-p", "bob", "-s", s, "-n", node])?;
    ensure!(
        all["source"] == "cache" && ids(&all) == order && all["complete"] == true,
        "whole node from cache differs from the service's ({} items, {})",
        ids(&all).len(),
        all["source"]
    );
    let by_id = ps(
        perchd,
        &[
            "get", "-p", "bob", "-s", s, "-n", node, "-i", "b0007", "-i", "b0003",
        ],
    )?;
    let mut got = ids(&by_id);
    got.sort();
    ensure!(
        by_id["source"] == "cache" && got == ["b0003", "b0007"],
        "by ids: {by_id}"
    );
    let page = ps(
        perchd,
        &[
            "get", "-p", "bob", "-s", s, "-n", node, "-M", "3", "--after", &order[10],
        ],
    )?;
    ensure!(
        ids(&page) == order[11..14]
            && page["rsm"]["first_index"] == 11
            && page["rsm"]["count"] == 2000,
        "after the 11th: {page}"
    );
    let before = ps(
        perchd,
        &[
            "get", "-p", "bob", "-s", s, "-n", node, "-M", "2", "--before", &order[10],
        ],
    )?;
    ensure!(ids(&before) == order[8..10], "before the 11th: {before}");
    let last = ps(
        perchd,
        &[
            "get", "-p", "bob", "-s", s, "-n", node, "-M", "2", "--before", "",
        ],
    )?;
    ensure!(ids(&last) == order[1998..], "last page: {last}");
    let at = ps(
        perchd,
        &[
            "get", "-p", "bob", "-s", s, "-n", node, "-M", "2", "--index", "100",
        ],
    )?;
    ensure!(ids(&at) == order[100..102], "index 100: {at}");
    let bypass = ps(
        perchd,
        &[
            "get",
            "-p",
            "bob",
            "-s",
            s,
            "-n",
            node,
            "-M",
            "5",
            "--no-cache",
        ],
    )?;
    ensure!(bypass["source"] == "service", "--no-cache: {bypass}");
    let cached_only = ps(
        perchd,
        &["cache", "get", "-p", "bob", "-s", s, "-n", node, "-M", "1"],
    )?;
    ensure!(
        ids(&cached_only) == order[1999..],
        "cache get: {cached_only}"
    );

    // Search: full text over text and parsed values, filters, order, limit.
    let hits = search(perchd, &["-f", "zanzibar", "-n", node, "-l", "100"])?;
    ensure!(hits.len() == 20, "fts 'zanzibar': {} hits", hits.len());
    let tagged = search(
        perchd,
        &["-F", "tags", "contains", "rare", "-n", node, "-l", "100"],
    )?;
    ensure!(tagged.len() == 20, "tags contains rare: {}", tagged.len());
    let no_tag_names = search(perchd, &["-f", "entry OR title OR published", "-n", node])?;
    ensure!(
        no_tag_names.is_empty(),
        "XML names are searchable: {no_tag_names:?}"
    );
    let top = search(perchd, &["-n", node, "-o", "path:n:desc", "-l", "3"])?;
    ensure!(
        top == ["b1999", "b1998", "b1997"],
        "order by n desc (numbers): {top:?}"
    );
    let range = search(
        perchd,
        &["-n", node, "-F", "n", "between", "[10, 12]", "-o", "path:n"],
    )?;
    ensure!(range == ["b0010", "b0011", "b0012"], "between: {range:?}");
    let lt = search(perchd, &["-n", node, "-F", "n", "lt", "2", "-o", "path:n"])?;
    ensure!(lt == ["b0000", "b0001"], "lt is strict: {lt:?}");
    let err = perchd.cli_fails_with(
        &["pubsub", "cache", "search", "-F", "n", "like", "3"],
        "BadArgument",
    )?;
    ensure!(err.contains("like"), "bad operator: {err}");

    // Every operator, on the numbers, strings, dates and tag lists of `rich`.
    let cases: &[(&[&str], &[&str])] = &[
        (&["-F", "n", "eq", "5"], &["b0005"]),
        (
            &["-F", "n", "lt", "3", "-F", "n", "ne", "1"],
            &["b0000", "b0002"],
        ),
        (&["-F", "n", "gt", "1997"], &["b1998", "b1999"]),
        (&["-F", "n", "gte", "1998"], &["b1998", "b1999"]),
        (&["-F", "n", "lte", "1"], &["b0000", "b0001"]),
        (&["-F", "n", "in", "[3, 4]"], &["b0003", "b0004"]),
        (
            &["-F", "n", "lt", "3", "-F", "n", "not_in", "[0, 1]"],
            &["b0002"],
        ),
        (
            &[
                "-F",
                "n",
                "lt",
                "20",
                "-F",
                "tags",
                "overlap",
                r#"["rare", "t9"]"#,
            ],
            &["b0007"],
        ),
        (
            &[
                "-F",
                "n",
                "lt",
                "20",
                "-F",
                "tags",
                "disjoint",
                r#"["common"]"#,
            ],
            &["b0007"],
        ),
        (&["-F", "title", "ieq", "ITEM 5 ORDINARY"], &["b0005"]),
        (
            &[
                "-F",
                "n",
                "lt",
                "2",
                "-F",
                "title",
                "ine",
                "ITEM 0 ordinary",
            ],
            &["b0001"],
        ),
        (
            &[
                "-F",
                "title",
                "iin",
                r#"["ITEM 1 ORDINARY", "item 2 Ordinary"]"#,
            ],
            &["b0001", "b0002"],
        ),
        (
            &[
                "-F",
                "n",
                "lt",
                "3",
                "-F",
                "title",
                "inot_in",
                r#"["ITEM 1 ORDINARY"]"#,
            ],
            &["b0000", "b0002"],
        ),
        (
            &[
                "-F",
                "n",
                "lt",
                "20",
                "-F",
                "title",
                "icontains",
                "ZANZIBAR",
            ],
            &["b0007"],
        ),
        (
            &[
                "-F",
                "n",
                "lt",
                "20",
                "-F",
                "tags",
                "ioverlap",
                r#"["RARE"]"#,
            ],
            &["b0007"],
        ),
        (
            &[
                "-F",
                "n",
                "lt",
                "20",
                "-F",
                "tags",
                "idisjoint",
                r#"["COMMON"]"#,
            ],
            &["b0007"],
        ),
        (
            &[
                "-F",
                "n",
                "lt",
                "200",
                "-F",
                "published",
                "gt",
                "2026-01-01T00:00:58Z",
            ],
            &["b0059", "b0119", "b0179"],
        ),
        (
            &[
                "-F",
                "n",
                "lt",
                "3",
                "-F",
                "published",
                "between",
                r#"["2026-01-01T00:00:01Z", "2026-01-01 00:00:02"]"#,
            ],
            &["b0001", "b0002"],
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["-n", node, "-o", "path:n", "-l", "1000"];
        a.extend_from_slice(args);
        let got = search(perchd, &a)?;
        ensure!(got == *want, "search {args:?}: got {got:?}, want {want:?}");
    }
    // Orders: item id, creation and modification (ties in insertion order), rank.
    ensure!(
        search(perchd, &["-n", node, "-o", "item_id", "-l", "2"])? == ["b0000", "b0001"],
        "item_id asc"
    );
    ensure!(
        search(perchd, &["-n", node, "-o", "item_id:desc", "-l", "1"])? == ["b1999"],
        "item_id desc"
    );
    // Creation and modification are the cache's own times (when an item came in,
    // when it last changed): check the order on the times returned.
    for (key, field, desc) in [
        ("creation:desc", "created", true),
        ("creation", "created", false),
        ("modification:desc", "updated", true),
        ("modification", "updated", false),
    ] {
        let r = ps(
            perchd,
            &["cache", "search", "-n", node, "-o", key, "-l", "300"],
        )?;
        let times: Vec<i64> = r["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i[field].as_i64())
            .collect();
        ensure!(times.len() == 300, "{key}: {} results", times.len());
        let sorted = times
            .windows(2)
            .all(|w| if desc { w[0] >= w[1] } else { w[0] <= w[1] });
        ensure!(sorted, "{key}: not ordered by {field}: {times:?}");
    }
    let ranked = search(
        perchd,
        &[
            "-n",
            node,
            "-f",
            "zanzibar OR 1007",
            "-o",
            "rank:desc",
            "-l",
            "1",
        ],
    )?;
    ensure!(ranked == ["b1007"], "best rank first: {ranked:?}");
    let hit = ps(
        perchd,
        &[
            "cache",
            "search",
            "-n",
            node,
            "--item-id",
            "b0007",
            "--with-xml",
        ],
    )?;
    ensure!(
        hit["items"][0]["parsed"]["tags"] == serde_json::json!(["rare", "t1"])
            && hit["items"][0]["xml"]
                .as_str()
                .is_some_and(|x| x.contains("zanzibar"))
            && hit["items"][0]["profile"] == "bob"
            && hit["items"][0]["type"] == "entry",
        "search result shape: {hit}"
    );

    // Coherence: alice's changes show in bob's cached reads.
    publish(perchd, "alice", Some(s), node, "fresh", "fresh one")?;
    wait_cached(perchd, node, "a new item", |p| {
        ids(p).last().is_some_and(|i| i == "fresh")
    })?;
    publish(perchd, "alice", Some(s), node, "b1000", "edited thousand")?;
    wait_cached(perchd, node, "an edit", |p| {
        ids(p).last().is_some_and(|i| i == "b1000")
            && p["items"][4]["payload"]
                .as_str()
                .is_some_and(|x| x.contains("edited"))
    })?;
    let st = status(perchd, "bob", s, node)?;
    ensure!(st["items"] == 2001, "edit duplicated an item: {st}");
    ps(
        perchd,
        &["retract", "-p", "alice", "-s", s, "-n", node, "-i", "fresh"],
    )?;
    wait_cached(perchd, node, "a retraction", |p| {
        !ids(p).contains(&"fresh".to_owned())
    })?;
    ps(
        perchd,
        &["node", "purge", "-p", "alice", "-s", s, "-n", node],
    )?;
    wait_cached(perchd, node, "a purge", |p| ids(p).is_empty())?;
    ps(
        perchd,
        &["node", "delete", "-p", "alice", "-s", s, "-n", node],
    )?;
    wait_until(DELIVERY, || {
        let st = ps(
            perchd,
            &["cache", "status", "-p", "bob", "-s", s, "-n", node],
        )?;
        Ok(st["nodes"].as_array().is_some_and(Vec::is_empty))
    })
    .context("deleted node still in the cache")?;
    perchd.cli_fails_with(
        &["pubsub", "get", "-p", "bob", "-s", s, "-n", node],
        "ItemNotFound",
    )?;

    // A refused subscription: the node is not served, the reason is visible.
    let closed = "perch-cache-closed";
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
            closed,
            "-f",
            "pubsub#access_model",
            "whitelist",
        ],
    )?;
    publish(perchd, "alice", Some(s), closed, "x", "secret")?;
    let _ = perchd.cli(&["pubsub", "get", "-p", "bob", "-s", s, "-n", closed])?;
    let st = status(perchd, "bob", s, closed)?;
    ensure!(
        st["served"] == false
            && st["sync_state"] == "error"
            && st["sync_error"]
                .as_str()
                .is_some_and(|e| e.contains("subscription refused")),
        "refused subscription: {st}"
    );

    // Purge by node and reset.
    let small = "perch-cache-small";
    ps(
        perchd,
        &["node", "create", "-p", "alice", "-s", s, "-n", small],
    )?;
    publish(perchd, "alice", Some(s), small, "one", "one")?;
    wait_cached(perchd, small, "the small node", |p| ids(p) == ["one"])?;
    // Filters that match nothing delete nothing.
    for filter in [
        vec!["-t", "blog"],
        vec!["-S", "other"],
        vec!["-p", "alice"],
        vec!["-s", "elsewhere.localhost"],
        vec!["-C", "2000-01-01T00:00:00Z"],
        vec!["-U", "946684800"],
    ] {
        let mut args = vec!["cache", "purge", "-n", small];
        args.extend(filter.iter().copied());
        let r = ps(perchd, &args)?;
        ensure!(r["deleted"] == 0, "purge {filter:?} deleted: {r}");
    }
    perchd.cli_fails_with(
        &["pubsub", "cache", "purge", "-C", "yesterday"],
        "BadArgument",
    )?;
    let purged = ps(
        perchd,
        &[
            "cache",
            "purge",
            "-n",
            small,
            "-t",
            "entry",
            "-S",
            "test",
            "-p",
            "bob",
            "-s",
            s,
            "-C",
            "2999-01-01T00:00:00Z",
            "-U",
            "32503680000",
        ],
    )?;
    ensure!(purged["deleted"] == 1, "purge: {purged}");
    let st = status(perchd, "bob", s, small)?;
    ensure!(
        st["served"] == false && st["items"] == 0,
        "purged node still served: {st}"
    );
    // The next read syncs it again.
    wait_cached(perchd, small, "the small node again", |p| ids(p) == ["one"])?;
    // Items published while bob was away are fetched when his session is back.
    perchd.cli_ok(&["disconnect", "-p", "bob"])?;
    publish(perchd, "alice", Some(s), small, "two", "while away")?;
    connect(perchd, "bob", BOB)?;
    wait_cached(perchd, small, "the item published while away", |p| {
        ids(p) == ["one", "two"]
    })?;
    perchd.cli_fails_with(&["pubsub", "cache", "reset"], "BadArgument")?;
    ps(perchd, &["cache", "reset", "--force"])?;
    let st = ps(perchd, &["cache", "status", "-p", "bob"])?;
    ensure!(
        st["nodes"].as_array().is_some_and(Vec::is_empty),
        "reset: {st}"
    );
    let again = ps(perchd, &["get", "-p", "bob", "-s", s, "-n", small])?;
    ensure!(ids(&again) == ["one", "two"], "read after reset: {again}");
    Ok(())
}

#[test]
fn cache_on_ejabberd_and_restart_mid_sync() {
    let ejabberd = perch_tests::Ejabberd::start().expect("starting ejabberd");
    let mut perchd = Perchd::start_with_config(ANALYSER).expect("starting perchd");
    ejabberd_cache_body(&mut perchd, &ejabberd).unwrap_or_else(|e| {
        panic!("{e:?}\n{}", ejabberd.diagnostics());
    });
}

fn ejabberd_cache_body(perchd: &mut Perchd, server: &perch_tests::Ejabberd) -> Result<()> {
    pubsub::alice_and_bob_on_ejabberd(perchd, server, &["--autoconnect"])?;
    cache_body(perchd)?;

    // Killed mid-sync, restarted: the node ends complete and consistent. The sync
    // runs at tens of thousands of items a second, so "kill while it runs" is made
    // certain: once a page is stored, ejabberd is frozen (the sync can go no further
    // than what is in flight), the state read, perchd killed, ejabberd thawed. Should
    // the sync have finished between the read and the freeze, another node is tried.
    let s = SERVICE;
    let mut attempt = 0;
    let (node, before) = loop {
        attempt += 1;
        let node = format!("perch-cache-restart-{attempt}");
        let node = node.as_str();
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
            ],
        )?;
        publish_many(perchd, "alice", s, node, 0..3000, rich)?;
        let job = ps(
            perchd,
            &[
                "cache",
                "sync",
                "-p",
                "bob",
                "-s",
                s,
                "-n",
                node,
                "--no-follow",
            ],
        )?;
        ensure!(job["job"].is_string(), "sync job: {job}");
        wait_until(DELIVERY, || {
            let st = status(perchd, "bob", s, node)?;
            Ok(st["items"].as_u64().is_some_and(|n| n > 0) || st["sync_state"] == "completed")
        })?;
        server.freeze()?;
        let before = status(perchd, "bob", s, node);
        match before {
            Ok(st) if st["sync_state"] == "in_progress" => {
                perchd.kill()?;
                server.thaw()?;
                break (node.to_owned(), st);
            }
            Ok(st) if attempt < 5 => {
                server.thaw()?;
                eprintln!("the sync ended before the freeze ({st}); another node");
            }
            other => {
                server.thaw()?;
                anyhow::bail!("the sync of 3000 items could not be caught running: {other:?}");
            }
        }
    };
    let node = node.as_str();
    perchd.start_again()?;
    wait_until(DELIVERY, || {
        Ok(perchd.status_of("bob")?["state"] == "connected")
    })?;
    wait_until(Duration::from_secs(30), || {
        let st = status(perchd, "bob", s, node)?;
        Ok(st["sync_state"] == "completed" && st["served"] == true)
    })
    .with_context(|| {
        format!("sync never completed after the restart (before the kill: {before})")
    })?;
    let st = status(perchd, "bob", s, node)?;
    ensure!(st["items"] == 3000, "after restart: {st}");
    let all = ps(perchd, &["get", "-p", "bob", "-s", s, "-n", node])?;
    let got = ids(&all);
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    ensure!(
        all["source"] == "cache" && got.len() == 3000 && unique.len() == 3000,
        "after restart: {} items, {} distinct, from {}",
        got.len(),
        unique.len(),
        all["source"]
    );
    // Synced again, followed live (`perch pubsub cache sync` waits on the job): the
    // running job's progress records, then its end, then the summary.
    let out = perchd.cli_ok(&[
        "--json", "pubsub", "cache", "sync", "-p", "bob", "-s", s, "-n", node,
    ])?;
    let signals: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["signal"].is_string())
        .collect();
    let progress: Vec<&Value> = signals
        .iter()
        .filter(|l| l["signal"] == "Progress")
        .collect();
    ensure!(
        !progress.is_empty()
            && progress
                .iter()
                .all(|p| p["data"]["data"]["items"].as_u64().is_some())
            && signals
                .last()
                .is_some_and(|l| l["signal"] == "ProgressFinished"),
        "followed sync printed: {out}"
    );
    let st = status(perchd, "bob", s, node)?;
    ensure!(
        st["sync_state"] == "completed" && st["items"] == 3000,
        "after the followed sync: {st}"
    );
    Ok(())
}

/// XEP-0277 round trip: a post published as JSON, read back as JSON through the cache
/// by a contact, stored as Atom; edited and deleted.
#[test]
fn microblog_round_trip() {
    let bed = Bed::start();
    blog_body(&bed).unwrap();
}

fn blog_body(bed: &Bed) -> Result<()> {
    let perchd = &bed.perchd;
    bed.alice_and_bob_connected(&[])?;
    mutual_subscription(perchd)?;
    let comments = "xmpp:pubsub.localhost?;node=urn:xmpp:microblog:0:comments/first";
    let first = perchd
        .cli_ok(&[
            "blog",
            "set",
            "-p",
            "alice",
            "-t",
            "Hello",
            "--tag",
            "perch",
            "--tag",
            "xmpp",
            "--lang",
            "en",
            "--xhtml",
            "<p>Hello <b>world</b></p>",
            "--comments",
            comments,
            "Hello world",
        ])?
        .trim()
        .to_owned();
    ensure!(!first.is_empty(), "no item id printed");
    perchd.cli_ok(&["blog", "set", "-p", "alice", "-t", "Second", "second post"])?;

    let read = |what: &str, ok: &dyn Fn(&Value) -> bool| -> Result<Value> {
        let mut last = Value::Null;
        let deadline = std::time::Instant::now() + DELIVERY;
        while std::time::Instant::now() < deadline {
            last = perchd.cli_json(&["blog", "get", "-p", "bob", "-s", ALICE])?;
            if last["source"] == "cache" && ok(&last) {
                return Ok(last);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(anyhow!(
            "bob's cached blog read never showed {what}: {last}"
        ))
    };
    let got = read("two posts", &|v| {
        v["posts"].as_array().is_some_and(|p| p.len() == 2)
    })?;
    let post = got["posts"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["item_id"] == first.as_str()))
        .cloned()
        .with_context(|| format!("post {first} missing: {got}"))?;
    ensure!(got["posts"][0]["title"] == "Second", "newest first: {got}");
    ensure!(
        post["title"] == "Hello"
            && post["content"] == "Hello world"
            && post["content_xhtml"]
                .as_str()
                .is_some_and(|x| x.contains("<b>world</b>"))
            && post["tags"] == serde_json::json!(["perch", "xmpp"])
            && post["language"] == "en"
            && post["author"]["jid"] == ALICE
            && post["published"].is_string()
            && post["updated"].is_string()
            && post["comments"][0]["node"] == "urn:xmpp:microblog:0:comments/first"
            && post["comments"][0]["service"] == "pubsub.localhost",
        "post as JSON: {post}"
    );
    // On the wire and in the cache: an Atom entry.
    let raw = ps(
        perchd,
        &[
            "get",
            "-p",
            "bob",
            "-s",
            ALICE,
            "-n",
            "urn:xmpp:microblog:0",
            "-i",
            &first,
            "--no-cache",
        ],
    )?;
    let xml = raw["items"][0]["payload"].as_str().unwrap_or_default();
    ensure!(
        xml.starts_with("<entry xmlns='http://www.w3.org/2005/Atom'")
            && xml.contains("<category term='perch'/>")
            && xml.contains("<uri>xmpp:alice@localhost</uri>"),
        "Atom entry: {xml}"
    );
    let st = status(perchd, "bob", ALICE, "urn:xmpp:microblog:0")?;
    ensure!(
        st["type"] == "blog" && st["served"] == true,
        "blog node status: {st}"
    );
    // Searchable by parsed fields.
    let hits = search(perchd, &["-t", "blog", "-F", "tags", "contains", "perch"])?;
    ensure!(hits == [first.clone()], "search by tag: {hits:?}");

    // Edit: same id, new content, publication date kept.
    perchd.cli_ok(&[
        "blog",
        "set",
        "-p",
        "alice",
        "-i",
        &first,
        "-t",
        "Hello again",
        "edited",
    ])?;
    let got = read("the edit", &|v| {
        v["posts"].as_array().is_some_and(|p| {
            p.len() == 2
                && p.iter()
                    .any(|x| x["item_id"] == first.as_str() && x["content"] == "edited")
        })
    })?;
    let edited = got["posts"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["item_id"] == first.as_str()))
        .cloned()
        .unwrap_or_default();
    ensure!(
        edited["published"] == post["published"],
        "edit changed the publication date: {edited} vs {post}"
    );
    // Delete.
    perchd.cli_ok(&["blog", "delete", "-p", "alice", "-i", &first])?;
    read("the deletion", &|v| {
        v["posts"]
            .as_array()
            .is_some_and(|p| p.len() == 1 && p[0]["title"] == "Second")
    })?;
    Ok(())
}
