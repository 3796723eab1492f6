//! Avatars (XEP-0084, XEP-0153), vCards (XEP-0054) and nicknames (XEP-0172) end to
//! end, on the harness Prosody (`pep`, `vcard_legacy`, which also shows a PEP avatar
//! as the vCard's photo, XEP-0398), through `perch avatar`, `perch vcard` and
//! `perch nick`.

use super::*;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn avatar_changed<'a>(profile: &'a str, jid: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| {
        v["signal"] == "PluginSignal"
            && v["plugin"] == "XEP-0084"
            && v["name"] == "avatar_changed"
            && v["profile"] == profile
            && v["data"]["jid"] == jid
            && v["data"]["avatar"]["hash"].is_string()
    }
}

/// alice publishes an avatar: bob hears of it (PEP notification), gets the very
/// bytes, and finds it again after a restart; what is not an image is refused by
/// name; a contact without an avatar has none; the vCard changes and reads back on
/// the other side, with the avatar as its photo.
#[test]
fn avatars_and_vcards_between_two_profiles() {
    let mut bed = Bed::start();
    identity_body(&mut bed).unwrap();
}

fn identity_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&["--autoconnect"])?;
    mutual_subscription(&bed.perchd)?;
    let perchd = &bed.perchd;
    let dir = tempfile::tempdir()?;
    let image = dir.path().join("me.png");
    std::fs::write(&image, PNG)?;
    let image = image.display().to_string();

    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    let set = perchd.cli_json(&["avatar", "set", "-p", "alice", &image])?;
    let hash = set["hash"].as_str().unwrap_or_default().to_owned();
    ensure!(
        hash.len() == 40 && set["media_type"] == "image/png" && set["bytes"] == PNG.len(),
        "avatar set: {set}"
    );
    wait_line(&rx, &mut seen, avatar_changed("bob", ALICE))?;
    let _ = monitor.kill();
    let _ = monitor.wait();
    let copy = dir.path().join("alice.png");
    let got = perchd.cli_json(&[
        "avatar",
        "get",
        "-p",
        "bob",
        ALICE,
        "-o",
        &copy.display().to_string(),
    ])?;
    ensure!(
        got["hash"] == hash.as_str(),
        "bob's copy of alice's avatar: {got}"
    );
    ensure!(
        std::fs::read(&copy)? == PNG,
        "the image bob got is not alice's"
    );

    // Bad input, by name; nothing published.
    let text = dir.path().join("not-an-image.png");
    std::fs::write(&text, "hello")?;
    let err = perchd.cli_fails_with(
        &["avatar", "set", "-p", "alice", &text.display().to_string()],
        "BadArgument",
    )?;
    ensure!(err.contains("not a PNG"), "refusing a text file: {err}");
    let none = perchd.cli_json(&["avatar", "get", "-p", "alice", BOB])?;
    ensure!(none.is_null(), "bob has no avatar, yet: {none}");

    // The vCard, and the avatar as its photo (the server's XEP-0398).
    perchd.cli_ok(&[
        "vcard",
        "set",
        "-p",
        "alice",
        "FN=Alice Liddell",
        "URL=https://example.org",
    ])?;
    let card = perchd.cli_json(&["vcard", "get", "-p", "bob", ALICE])?;
    ensure!(
        card["FN"] == "Alice Liddell" && card["URL"] == "https://example.org",
        "alice's vCard as bob reads it: {card}"
    );
    ensure!(
        card["PHOTO"]["hash"] == hash.as_str(),
        "alice's vCard photo: {card}"
    );
    perchd.cli_fails_with(&["vcard", "set", "-p", "alice", "PHOTO=x"], "BadArgument")?;

    bed.perchd.stop()?;
    bed.perchd.start_again()?;
    let perchd = &bed.perchd;
    perchd.wait_for_state("alice", "connected", Duration::from_secs(15))?;
    connect(perchd, "bob", BOB)?;
    let kept = perchd.cli_json(&["avatar", "get", "-p", "bob", ALICE])?;
    ensure!(kept["hash"] == hash.as_str(), "after a restart: {kept}");
    Ok(())
}

/// libervia-cli's `avatar` (0.9's identity plugin): none yet, set, got by a contact
/// and by the account itself, compared with Debian's Libervia backend. The paths
/// differ (each backend's own cache) and 0.9 re-encodes the image: Perch's answer
/// is checked to be its kept copy, named by its SHA-1.
#[test]
fn libervia_cli_avatars() {
    use perch_tests::libervia::{Step, differential, sides};
    let (lib, perch) = sides();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("alice.png");
    std::fs::write(&image, PNG).unwrap();
    let image = image.display().to_string();
    let kept = |out: &perch_tests::libervia::CliOut| -> Result<()> {
        ensure!(out.success(), "expected exit 0");
        let path = out.stdout.trim();
        let name = path.rsplit('/').next().unwrap_or_default();
        ensure!(
            name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()),
            "expected perchd's copy, named by its SHA-1: {path}"
        );
        ensure!(
            std::fs::read(path)? == PNG,
            "the kept copy is not the image"
        );
        Ok(())
    };
    let mut steps = libervia::profile_setup();
    steps.extend(libervia::connected(&["test", "bob"]));
    steps.extend([
        Step::same(&["avatar", "get", "-p", "bob", ALICE]),
        Step::same(&["avatar", "set", "-p", "test", &image]),
        Step::same(&["avatar", "get", "-p", "bob", ALICE])
            .perch_differs("each backend's cache path; 0.9 re-encodes the image", kept),
        Step::same(&["avatar", "get", "-p", "test"])
            .perch_differs("as above, for the account's own avatar", kept),
    ]);
    differential(&lib.frontend, &perch.frontend, &steps).unwrap();
}

/// A third-party client (slixmpp, `tests/scripts/avatar.py`) and perchd read each
/// other's XEP-0084 avatars: perchd fetches slixmpp's on demand, slixmpp fetches the
/// one alice set, both byte for byte.
#[test]
fn avatars_with_a_third_party_client() {
    let bed = Bed::start();
    avatar_third_party_body(&bed).unwrap();
}

fn avatar_third_party_body(bed: &Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let dir = tempfile::tempdir()?;
    let image = dir.path().join("me.png");
    std::fs::write(&image, PNG)?;
    let set = perchd.cli_json(&["avatar", "set", "-p", "alice", &image.display().to_string()])?;
    let ours = set["hash"].as_str().unwrap_or_default().to_owned();
    let mut slix = message_actions::Slixmpp::start(bed, "avatar.py", &[])?;
    let outcome = (|| -> Result<()> {
        let published = slix.line()?;
        let theirs = published
            .strip_prefix("published ")
            .with_context(|| format!("slixmpp said {published:?}"))?
            .to_owned();
        let copy = dir.path().join("carol.png");
        let got = perchd.cli_json(&[
            "avatar",
            "get",
            "-p",
            "alice",
            "carol@localhost",
            "-o",
            &copy.display().to_string(),
        ])?;
        ensure!(
            got["hash"] == theirs.as_str(),
            "alice's copy of slixmpp's avatar: {got}"
        );
        let bytes = std::fs::read(&copy)?;
        ensure!(
            bytes.starts_with(b"\x89PNG"),
            "not the PNG slixmpp published"
        );
        slix.expect(&format!("got avatar {ours}"))
    })();
    slix.finish(outcome)
}

fn nick_changed<'a>(profile: &'a str, jid: &'a str, nick: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |v| {
        v["signal"] == "PluginSignal"
            && v["plugin"] == "XEP-0172"
            && v["name"] == "nick_changed"
            && v["profile"] == profile
            && v["data"]["jid"] == jid
            && v["data"]["nick"] == nick
    }
}

/// XEP-0172 between two profiles: alice's nickname reaches bob with her
/// subscription request (before any PEP is shared), then as a PEP notification
/// when she changes it; bob keeps it across a restart, offline; bad input is a
/// typed error.
#[test]
fn nicknames_between_two_profiles() {
    let mut bed = Bed::start();
    nicknames_body(&mut bed).unwrap();
}

fn nicknames_body(bed: &mut Bed) -> Result<()> {
    bed.alice_and_bob_connected(&[])?;
    let perchd = &bed.perchd;
    let set = perchd.cli_json(&["nick", "set", "-p", "alice", "Alice L"])?;
    ensure!(
        set["jid"] == ALICE && set["nick"] == "Alice L",
        "nick set: {set}"
    );
    let own = perchd.cli_json(&["nick", "get", "-p", "alice"])?;
    ensure!(own["nick"] == "Alice L", "alice's own nickname: {own}");

    // With her subscription request: bob is not subscribed to her PEP yet.
    let (mut monitor, rx) = start_monitor(perchd)?;
    let mut seen = Vec::new();
    perchd.cli_ok(&["roster", "add", "-p", "alice", BOB])?;
    wait_line(&rx, &mut seen, nick_changed("bob", ALICE, "Alice L"))?;
    let got = perchd.cli_json(&["nick", "get", "-p", "bob", ALICE])?;
    ensure!(got["nick"] == "Alice L", "bob's copy: {got}");

    // Over PEP once subscribed (bob's caps carry +notify).
    perchd.cli_ok(&["roster", "approve", "-p", "bob", ALICE])?;
    perchd.cli_ok(&["roster", "add", "-p", "bob", ALICE])?;
    perchd.cli_ok(&["roster", "approve", "-p", "alice", BOB])?;
    perch_tests::bed::wait_for_roster(perchd, "bob", ALICE, "both", |i| {
        i["subscription"] == "both"
    })?;
    perchd.cli_json(&["nick", "set", "-p", "alice", "Alice Liddell"])?;
    wait_line(&rx, &mut seen, nick_changed("bob", ALICE, "Alice Liddell"))?;
    let _ = monitor.kill();
    let _ = monitor.wait();
    // bob has none: known as none, not an error.
    let none = perchd.cli_json(&["nick", "get", "-p", "alice", BOB])?;
    ensure!(none["nick"].is_null(), "bob has no nickname: {none}");

    // Bad input, by name.
    let long = "x".repeat(300);
    let err = perchd.cli_fails_with(&["nick", "set", "-p", "alice", &long], "BadArgument")?;
    ensure!(
        err.contains("longer than"),
        "refusing a long nickname: {err}"
    );

    // Kept across a restart, and answered offline.
    bed.perchd.stop()?;
    bed.perchd.start_again()?;
    let perchd = &bed.perchd;
    let kept = perchd.cli_json(&["nick", "get", "-p", "bob", ALICE])?;
    ensure!(kept["nick"] == "Alice Liddell", "after a restart: {kept}");
    Ok(())
}
