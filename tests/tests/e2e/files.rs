//! Files end to end, on the harness Prosody's `http_file_share` (HTTPS with the
//! harness CA): alice uploads a file to bob through `perch file send` (XEP-0363,
//! the link with XEP-0066), both histories list it in `extra.attachments`, and bob
//! downloads it with `perch file get` to the same bytes and checksum. Bad input: a
//! file over the service's limit is refused naming the limit and nothing is sent; a
//! URL to a closed port, an HTTP 500 and a download over its cap are typed errors,
//! and perchd stays up. The same upload and download work on ejabberd's
//! mod_http_upload. libervia-cli's `file upload` works on perchd's Libervia
//! bridge (`fileUpload`, then `progressFinished` with the URL), and so does its
//! `message send -a` (`messageSend`'s `extra.attachments`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

use super::*;
use perch_tests::libervia::{perch_frontend, perchd_with_libervia};
use perch_tests::{RefusedPort, UPLOAD_LIMIT};

/// A file of `len` bytes that do not repeat in any short period.
fn write_file(dir: &std::path::Path, name: &str, len: usize) -> Result<std::path::PathBuf> {
    let mut x: u32 = 0x1234_5678;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, data)?;
    Ok(path)
}

/// `sha256sum`'s digest of a file: a check independent of perchd's.
fn sha256sum(path: &std::path::Path) -> Result<String> {
    let out = Command::new("sha256sum").arg(path).output()?;
    ensure!(out.status.success(), "sha256sum {path:?} failed");
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// The attachments of `profile`'s message with this body and direction, once set.
fn wait_attachments(perchd: &Perchd, profile: &str, direction: &str, body: &str) -> Result<Value> {
    let mut last = Vec::new();
    let mut found = Value::Null;
    wait_until(DELIVERY, || {
        last = history(perchd, profile, &[])?;
        found = last
            .iter()
            .find(|m| m["direction"] == direction && m["body"] == body)
            .map(|m| m["extra"]["attachments"].clone())
            .unwrap_or(Value::Null);
        Ok(found.is_array())
    })
    .with_context(|| {
        format!(
            "{profile} has no {direction} message {body:?} with attachments:\n{}",
            summarize_history(&Value::Array(last.clone()))
        )
    })?;
    Ok(found)
}

#[test]
fn a_file_goes_up_and_comes_down_with_the_same_checksum() {
    let bed = Bed::start();
    upload_body(&bed).unwrap();
}

fn upload_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let prefix = format!("https://localhost:{}/", bed.prosody.https_port());
    // A space in the name: sent percent-encoded, read back decoded.
    up_and_down(&bed.perchd, &prefix, "report 1.bin")?;

    // jabber:x:oob is announced.
    let perchd = &bed.perchd;
    let alice_full = bound_jid(perchd, "alice")?;
    let disco = perchd.cli_json(&["info", "disco", "-p", "bob", &alice_full])?;
    ensure!(
        disco["info"]["features"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "jabber:x:oob")),
        "jabber:x:oob not announced: {disco}"
    );
    Ok(())
}

/// alice sends bob file `name`, whose URL starts with `prefix`; bob downloads it.
fn up_and_down(perchd: &Perchd, prefix: &str, name: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = write_file(dir.path(), name, 300_000)?;
    let path_s = path.display().to_string();
    let sent = perchd.cli_json(&["file", "send", "-p", "alice", BOB, &path_s])?;
    let url = sent["url"].as_str().unwrap_or_default().to_owned();
    ensure!(
        url.starts_with(prefix)
            && sent["size"] == 300_000
            && sent["name"] == name
            && sent["sha256"] == sha256sum(&path)?
            && sent["message"].is_string(),
        "`file send` answered {sent}"
    );

    // Alice's sent message is the link, with the file listed; bob's too.
    let ours = wait_attachments(perchd, "alice", "out", &url)?;
    ensure!(
        ours == serde_json::json!([{"url": url, "name": name, "size": 300_000,
                                    "media_type": "application/octet-stream"}]),
        "alice's attachments: {ours}"
    );
    let theirs = wait_attachments(perchd, "bob", "in", &url)?;
    ensure!(
        theirs[0]["url"] == url.as_str() && theirs[0]["name"] == name,
        "bob's attachments: {theirs}"
    );

    // Bob downloads it: the same bytes, the same checksum.
    let dest = dir.path().join("got.bin");
    let got = perchd.cli_json(&[
        "file",
        "get",
        "-p",
        "bob",
        &url,
        "-o",
        &dest.display().to_string(),
    ])?;
    ensure!(
        got["sha256"] == sent["sha256"] && got["size"] == 300_000,
        "`file get` answered {got}"
    );
    ensure!(
        std::fs::read(&dest)? == std::fs::read(&path)?,
        "the downloaded file differs from the uploaded one"
    );

    // Without -o it goes under perchd's data dir; the job is listed as finished.
    let again = perchd.cli_json(&["file", "get", "-p", "bob", &url])?;
    let stored = again["path"].as_str().unwrap_or_default();
    ensure!(
        stored.contains("XEP-0066") && sha256sum(std::path::Path::new(stored))? == got["sha256"],
        "`file get` without -o answered {again}"
    );
    Ok(())
}

/// The same on ejabberd's mod_http_upload (no Authorization header: its URLs carry
/// their secret), the second server.
#[test]
fn a_file_goes_up_and_down_on_ejabberd() {
    let ejabberd = perch_tests::Ejabberd::start().expect("starting ejabberd");
    let perchd = Perchd::start().expect("starting perchd");
    let prefix = format!("https://localhost:{}/upload/", ejabberd.https_port());
    pubsub::alice_and_bob_on_ejabberd(&perchd, &ejabberd, &[])
        // ejabberd turns spaces in names into `_`: a name without one.
        .and_then(|()| up_and_down(&perchd, &prefix, "report-1.bin"))
        .map_err(|e| {
            anyhow!(
                "{e:#}\n{}\n{}",
                perchd.diagnostics(),
                ejabberd.diagnostics()
            )
        })
        .unwrap();
}

/// A one-request-at-a-time HTTP server on loopback: `/500` answers 500, anything
/// else 200 with a 100-byte body. Stops after `n` requests.
fn tiny_http(n: usize) -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let answer = if head.starts_with("GET /500 ") {
                "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{}",
                    "x".repeat(100)
                )
            };
            let _ = s.write_all(answer.as_bytes());
        }
    });
    Ok(port)
}

#[test]
fn bad_files_and_bad_links_are_typed_errors() {
    let bed = Bed::start();
    bad_input_body(&bed).unwrap();
}

fn bad_input_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let dir = tempfile::tempdir()?;

    // Over the service's limit: refused naming it, nothing uploaded or sent.
    let limit = usize::try_from(UPLOAD_LIMIT)?;
    let big = write_file(dir.path(), "big.bin", limit + 1)?;
    let err = perchd.cli_fails_with(
        &[
            "file",
            "send",
            "-p",
            "alice",
            BOB,
            &big.display().to_string(),
        ],
        "NotAcceptable",
    )?;
    ensure!(
        err.contains(&format!("limit of {UPLOAD_LIMIT} bytes")),
        "the refusal does not name the limit: {err}"
    );
    send(perchd, "alice", BOB, "after the refusal")?;
    wait_for_incoming(perchd, "bob", "after the refusal")?;
    let bobs = history(perchd, "bob", &[])?;
    ensure!(
        bobs.iter().filter(|m| m["direction"] == "in").count() == 1,
        "the refused file sent something:\n{}",
        summarize_history(&Value::Array(bobs))
    );

    // A closed port, an HTTP 500, a body over the cap: typed errors.
    let closed = RefusedPort::new()?;
    let url = format!("https://localhost:{}/x.bin", closed.port);
    perchd.cli_fails_with(&["file", "get", "-p", "bob", &url], "ServerUnreachable")?;
    let port = tiny_http(2)?;
    let url = format!("http://127.0.0.1:{port}/500");
    let err = perchd.cli_fails_with(&["file", "get", "-p", "bob", &url], "InternalServerError")?;
    ensure!(err.contains("HTTP 500"), "{err}");
    let url = format!("http://127.0.0.1:{port}/f.bin");
    let dest = dir.path().join("f.bin").display().to_string();
    let err = perchd.cli_fails_with(
        &[
            "file",
            "get",
            "-p",
            "bob",
            &url,
            "-o",
            &dest,
            "--max-size",
            "10",
        ],
        "NotAcceptable",
    )?;
    ensure!(err.contains("limit of 10 bytes"), "{err}");
    ensure!(
        !dir.path().join("f.bin").exists(),
        "a refused download left a file"
    );

    // perchd is up and still serves.
    ensure!(perchd.status_of("bob")?["state"] == "connected");
    send(perchd, "bob", ALICE, "still here")?;
    wait_for_incoming(perchd, "alice", "still here")
}

#[test]
fn libervia_cli_uploads_through_perchd() {
    let prosody = Prosody::start().unwrap();
    let perchd = perchd_with_libervia().unwrap();
    libervia_body(&prosody, &perchd).unwrap();
}

fn libervia_body(prosody: &Prosody, perchd: &Perchd) -> Result<()> {
    let cli = perch_frontend(perchd)?;
    cli.create_profile(prosody, "bob", "bob", BOB_PW)?;
    cli.cli_ok(&["profile", "connect", "-p", "bob", "-c"])?;
    let dir = tempfile::tempdir()?;
    let path = write_file(dir.path(), "from-libervia.bin", 50_000)?;
    let out = cli.cli_ok(&["file", "upload", "-p", "bob", &path.display().to_string()])?;
    let prefix = format!("https://localhost:{}/", prosody.https_port());
    let url = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with(&prefix))
        .with_context(|| format!("`file upload` printed no URL: {out:?}"))?;
    // What libervia-cli uploaded downloads to the same bytes.
    let dest = dir.path().join("back.bin");
    let got = perchd.cli_json(&[
        "file",
        "get",
        "-p",
        "bob",
        url,
        "-o",
        &dest.display().to_string(),
    ])?;
    ensure!(
        got["sha256"] == sha256sum(&path)? && std::fs::read(&dest)? == std::fs::read(&path)?,
        "downloaded {got}"
    );

    // `message send -a`: uploaded, linked under the text, listed in history.
    let sent = cli.cli_input(
        &[
            "message",
            "send",
            "-p",
            "bob",
            ALICE,
            "-a",
            &path.display().to_string(),
        ],
        "here it is\n",
    )?;
    ensure!(sent.success(), "`message send -a`: {}", sent.describe());
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = history(perchd, "bob", &[])?;
        Ok(last.iter().any(|m| {
            m["direction"] == "out"
                && m["body"].as_str().is_some_and(|b| {
                    b.starts_with("here it is\n")
                        && b.lines().last().is_some_and(|l| l.starts_with(&prefix))
                })
                && m["extra"]["attachments"][0]["name"] == "from-libervia.bin"
                && m["extra"]["attachments"][0]["size"] == 50_000
        }))
    })
    .with_context(|| {
        format!(
            "no sent message with the link:\n{}",
            summarize_history(&Value::Array(last.clone()))
        )
    })
}

/// A third-party client (slixmpp, `tests/scripts/everyday.py`) and perchd exchange
/// a file link (XEP-0066), XHTML-IM and displayed markers (XEP-0333), each way: each
/// reads what the other wrote.
#[test]
fn with_a_third_party_client() {
    let bed = Bed::start();
    third_party_body(&bed).unwrap();
}

fn third_party_body(bed: &Bed) -> Result<()> {
    let link = "https://localhost:9/carol.png";
    bed.alice_and_bob_connected(&[])?;
    let mut slix = message_actions::Slixmpp::start(bed, "everyday.py", &[link])?;
    let perchd = &bed.perchd;
    let carol = "carol@localhost";
    let outcome = (|| -> Result<()> {
        slix.expect("sent")?;
        // What slixmpp sent, as perchd stored it.
        let files = wait_attachments(perchd, "alice", "in", link)?;
        ensure!(files[0]["url"] == link, "the OOB link: {files}");
        let mut rich = Value::Null;
        wait_until(DELIVERY, || {
            rich = history(perchd, "alice", &[carol])?
                .into_iter()
                .find(|m| m["body"] == "formatted hello")
                .unwrap_or(Value::Null);
            Ok(!rich.is_null())
        })
        .context("slixmpp's XHTML message never came")?;
        ensure!(
            rich["extra"]["xhtml"]
                == "<div xmlns='http://www.w3.org/1999/xhtml'><p>formatted <em>hello</em></p></div>",
            "its XHTML, filtered: {rich}"
        );
        // What perchd sends, as slixmpp reads it.
        perchd.cli_ok(&["message", "read", "-p", "alice", carol])?;
        send(perchd, "alice", carol, "please mark me")?;
        let dir = tempfile::tempdir()?;
        let path = write_file(dir.path(), "note.bin", 10_000)?;
        perchd.cli_json(&[
            "file",
            "send",
            "-p",
            "alice",
            carol,
            &path.display().to_string(),
        ])?;
        let mut said: Vec<String> = Vec::new();
        for _ in 0..4 {
            said.push(slix.line()?);
        }
        ensure!(
            said.iter().any(|l| l == "got displayed"),
            "slixmpp said {said:?}"
        );
        ensure!(
            said.iter().any(|l| l.starts_with("marked ")),
            "slixmpp said {said:?}"
        );
        ensure!(
            said.iter()
                .any(|l| l.starts_with("got oob https://localhost:")),
            "slixmpp said {said:?}"
        );
        ensure!(
            said.last().is_some_and(|l| l == "done"),
            "slixmpp said {said:?}"
        );
        // slixmpp's marker, applied to our message.
        wait_until(DELIVERY, || {
            Ok(history(perchd, "alice", &[carol])?
                .iter()
                .any(|m| m["body"] == "please mark me" && !m["extra"]["displayed"].is_null()))
        })
        .context("slixmpp's displayed marker never applied to alice's message")?;
        Ok(())
    })();
    slix.finish(outcome)
}
