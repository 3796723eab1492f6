//! Everyday IM figures (`perch-bench --everyday`): files and history with message
//! actions, measured the way a user meets them.
//!
//! - **Upload** (XEP-0363): `perch file send` of an N MiB file (100 by default) to
//!   the harness Prosody's `http_file_share` over HTTPS on loopback, timed from the
//!   command's start to its end (slot, PUT, the link's message), while perchd's RSS is
//!   sampled every 20 ms: the file is streamed from disk, so the RSS must stay flat.
//! - **Download**: `perch file get` of the same link, timed and sampled likewise.
//! - **History with actions**: alice sends M messages to bob and M to carol; bob
//!   reacts to four in five of alice's and alice corrects one in two of them. Then
//!   `HistoryGet` of the newest 50 (the page a frontend opens), from this process over
//!   D-Bus, p50/p95 over 200 reads, beside the same read of the plain conversation.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use perch_client::actions::messages::{
    MessageCorrect, MessageCorrectArgs, MessageReact, MessageReactArgs,
};
use perch_tests::{ALICE_PW, BOB_PW, Ejabberd, Perchd, Prosody, wait_until};

use crate::drill::{action, rss_kib};
use crate::{ms, percentiles};

const CAROL_PW: &str = "carol-secret";

/// The XMPP server of the run: the harness Prosody (`http_file_share`) or ejabberd
/// (`mod_http_upload`, with `--server ejabberd`).
enum Server {
    Prosody(Prosody),
    Ejabberd(Ejabberd),
}

impl Server {
    fn start(ejabberd: bool, users: &[(&str, &str)], limit: u64) -> Result<Self> {
        Ok(if ejabberd {
            Self::Ejabberd(Ejabberd::start_with_upload_limit(users, limit)?)
        } else {
            Self::Prosody(Prosody::start_with_upload_limit(users, limit)?)
        })
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Prosody(_) => "Prosody http_file_share",
            Self::Ejabberd(_) => "ejabberd mod_http_upload",
        }
    }

    fn add_profile(&self, perchd: &Perchd, name: &str, pw: &str) -> Result<()> {
        match self {
            Self::Prosody(p) => perchd.create_profile(p, name, name, pw, &[])?,
            Self::Ejabberd(e) => {
                let jid = format!("{name}@localhost");
                let ca = e.ca_file().display().to_string();
                let server = e.server_arg();
                perchd.cli_ok(&[
                    "profile",
                    "create",
                    name,
                    "--jid",
                    &jid,
                    "--xmpp-password",
                    pw,
                    "--server",
                    &server,
                    "--ca-file",
                    &ca,
                ])?;
            }
        }
        perchd.cli_ok(&["connect", "-p", name])?;
        Ok(())
    }
}

/// `--everyday [--server ejabberd]`: upload and download of `mib` MiB, then history
/// reads over `m` messages per conversation.
pub async fn run(mib: u64, m: usize, ejabberd: bool) -> Result<()> {
    let bytes = mib * 1024 * 1024;
    let users = [("alice", ALICE_PW), ("bob", BOB_PW), ("carol", CAROL_PW)];
    let server = Server::start(ejabberd, &users, bytes + 1024 * 1024)?;
    let perchd = Perchd::start()?;
    for (name, pw) in users {
        server.add_profile(&perchd, name, pw)?;
    }
    let pid = perchd.pid().context("perchd's pid")?;
    println!(
        "\n## files: {mib} MiB over XEP-0363 on loopback (HTTPS, {})",
        server.name()
    );
    let url = transfers(&perchd, pid, bytes)?;
    println!("   link: {url}");
    history(&perchd, m).await
}

/// `perch --json ARGS`, waited for however long it takes (the harness's CLI calls
/// stop at two minutes; a 100 MiB upload to Prosody takes longer).
fn cli_json_unbounded(perchd: &Perchd, args: &[&str]) -> Result<serde_json::Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = perchd.cli_spawn(&all)?.wait_with_output()?;
    ensure!(
        out.status.success(),
        "`perch {}` failed ({}); its stderr is in {}",
        all.join(" "),
        out.status,
        perchd.dir().join("perch.stderr").display()
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// RSS samples of `pid` (KiB) while `work` runs, and how long it took.
fn sampled<T>(pid: u32, work: impl FnOnce() -> Result<T>) -> Result<(T, Duration, u64, u64)> {
    let (before, _) = rss_kib(pid)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            if let Ok((rss, _)) = rss_kib(pid) {
                peak = peak.max(rss);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let start = Instant::now();
    let out = work();
    let took = start.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap_or(0);
    Ok((out?, took, before, peak))
}

fn report(what: &str, bytes: u64, took: Duration, before: u64, peak: u64) {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    println!(
        "   {what:<9} {mib:.0} MiB in {:.2} s = {:.1} MiB/s; perchd RSS {:.1} MiB before, \
         peak {:.1} MiB (+{:.1} MiB)",
        took.as_secs_f64(),
        mib / took.as_secs_f64(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
        peak.saturating_sub(before) as f64 / 1024.0,
    );
}

/// Upload then download; the link.
fn transfers(perchd: &Perchd, pid: u32, bytes: u64) -> Result<String> {
    let dir = tempfile::tempdir()?;
    let src = dir.path().join("big.bin");
    let mut f = std::fs::File::create(&src)?;
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    for _ in 0..bytes / chunk.len() as u64 {
        f.write_all(&chunk)?;
    }
    drop(f);
    let src_s = src.display().to_string();
    let (sent, took, before, peak) = sampled(pid, || {
        cli_json_unbounded(
            perchd,
            &["file", "send", "-p", "alice", "bob@localhost", &src_s],
        )
    })?;
    report("upload", bytes, took, before, peak);
    let url = sent["url"]
        .as_str()
        .context("file send gives the url")?
        .to_owned();
    let dest = dir.path().join("back.bin").display().to_string();
    let cap = (bytes * 2).to_string();
    let (_, took, before, peak) = sampled(pid, || {
        cli_json_unbounded(
            perchd,
            &[
                "file",
                "get",
                "-p",
                "bob",
                &url,
                "-o",
                &dest,
                "--max-size",
                &cap,
            ],
        )
    })?;
    report("download", bytes, took, before, peak);
    ensure!(
        std::fs::metadata(&dest)?.len() == bytes,
        "the downloaded file's size"
    );
    Ok(url)
}

/// The history figures.
async fn history(perchd: &Perchd, m: usize) -> Result<()> {
    println!(
        "\n## history with reactions and corrections: {m} messages per conversation, \
         the newest 50 read over D-Bus"
    );
    let conn = perchd.bus_connection().await?;
    let client = perch_client::Client::on_bus(conn.clone()).await?;
    let mut ids = Vec::with_capacity(m);
    for i in 0..m {
        ids.push(
            client
                .message_send("alice", "bob@localhost", &format!("to bob {i:05}"), "chat")
                .await?,
        );
        client
            .message_send(
                "alice",
                "carol@localhost",
                &format!("to carol {i:05}"),
                "chat",
            )
            .await?;
    }
    wait_until(Duration::from_secs(300), || {
        Ok(perchd
            .cli_json(&["message", "outbox", "-p", "alice"])?
            .as_array()
            .is_some_and(Vec::is_empty))
    })?;
    for (i, id) in ids.iter().enumerate() {
        if i % 5 != 0 {
            let args = MessageReactArgs {
                to: "alice@localhost".into(),
                id: id.clone(),
                reactions: vec!["👍".into()],
                groupchat: false,
            };
            action::<MessageReact>(&conn, "bob", &args).await?;
        }
        if i % 2 == 0 {
            let args = MessageCorrectArgs {
                to: "bob@localhost".into(),
                id: id.clone(),
                body: format!("to bob {i:05}, corrected"),
                groupchat: false,
            };
            action::<MessageCorrect>(&conn, "alice", &args).await?;
        }
    }
    wait_until(Duration::from_secs(300), || {
        Ok(perchd
            .cli_json(&["message", "outbox", "-p", "alice"])?
            .as_array()
            .is_some_and(Vec::is_empty)
            && perchd
                .cli_json(&["message", "outbox", "-p", "bob"])?
                .as_array()
                .is_some_and(Vec::is_empty))
    })?;
    for (label, with) in [
        ("plain", "carol@localhost"),
        ("with actions", "bob@localhost"),
    ] {
        let (p50, p95, size) = read_page(&client, with).await?;
        println!(
            "   {label:<13} p50 {}  p95 {}  ({size} bytes a page)",
            ms(p50),
            ms(p95)
        );
    }
    Ok(())
}

/// 200 reads of alice's newest 50 messages with `with`: p50, p95, page size.
async fn read_page(
    client: &perch_client::Client,
    with: &str,
) -> Result<(Duration, Duration, usize)> {
    let mut filters = HashMap::new();
    filters.insert("with".to_owned(), with.to_owned());
    filters.insert("limit".to_owned(), "50".to_owned());
    let mut samples = Vec::with_capacity(200);
    let mut size = 0;
    for _ in 0..200 {
        let t = Instant::now();
        size = client.history_get("alice", &filters).await?.len();
        samples.push(t.elapsed());
    }
    let (p50, p95) = percentiles(&mut samples);
    Ok((p50, p95, size))
}
