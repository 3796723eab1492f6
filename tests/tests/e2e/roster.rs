//! The stored roster and roster versioning (RFC 6121 §2.6) end to end, on the
//! harness Prosody (whose `mod_roster` versions rosters): the roster answers while
//! the profile is offline, over the CLI and Libervia's `getContacts`, survives a
//! restart, and a reconnect asks only for what changed.

use std::future::Future;

use perch_tests::RawClient;
use perch_tests::bed::{roster, wait_for_roster};
use perch_tests::libervia::{LIBERVIA_BUS_NAME, PERCHD_LIBERVIA_CONFIG};

use super::*;

const CAROL: &str = "carol@localhost";

fn items(perchd: &Perchd, profile: &str) -> Result<Vec<(String, String)>> {
    Ok(roster(perchd, profile)?
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
            (s("jid"), s("subscription"))
        })
        .collect())
}

/// Libervia's `getContacts` for a profile: the JIDs.
async fn libervia_contacts(perchd: &Perchd, profile: &str) -> Result<Vec<String>> {
    type Contact = (
        String,
        std::collections::HashMap<String, String>,
        Vec<String>,
    );
    let conn = perchd.bus_connection().await?;
    let reply = conn
        .call_method(
            Some(LIBERVIA_BUS_NAME),
            "/org/libervia/Libervia/bridge",
            Some("org.libervia.Libervia.core"),
            "getContacts",
            &(profile,),
        )
        .await
        .context("getContacts")?;
    let contacts: Vec<Contact> = reply.body().deserialize()?;
    Ok(contacts.into_iter().map(|(jid, _, _)| jid).collect())
}

/// Runs a future to its end on a runtime of its own (the tests are synchronous).
fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// How often `line` shows in perchd's log text since its latest start (its log file
/// and its stderr: a line may show twice).
fn logged(perchd: &Perchd, line: &str) -> Result<usize> {
    Ok(perchd.log_text()?.matches(line).count())
}

/// alice's roster is stored: after a disconnect and a restart of perchd it answers
/// offline (CLI and Libervia), then the reconnect's roster get carries the stored
/// version and Prosody answers that it is current; a contact added by another of
/// alice's clients while perchd was offline arrives on the next reconnect.
#[test]
fn stored_roster_and_roster_versioning() {
    let prosody = Prosody::start().expect("starting Prosody");
    let mut perchd = Perchd::start_with_config(PERCHD_LIBERVIA_CONFIG).expect("starting perchd");
    roster_body(&prosody, &mut perchd).unwrap();
}

fn roster_body(prosody: &Prosody, perchd: &mut Perchd) -> Result<()> {
    perchd.create_profile(prosody, "alice", "alice", ALICE_PW, &[])?;
    perchd.create_profile(prosody, "bob", "bob", BOB_PW, &[])?;
    connect(perchd, "alice", ALICE)?;
    connect(perchd, "bob", BOB)?;
    ensure!(
        logged(perchd, "roster get versioning=true ver=\"\" profile=alice")? > 0
            && logged(perchd, "roster get versioning=true ver=\"\" profile=bob")? > 0,
        "the first roster gets carry an empty version (nothing stored yet)\n{}",
        perchd.log_text()?
    );
    mutual_subscription(perchd)?;
    let before = items(perchd, "alice")?;
    ensure!(
        before == [(BOB.to_owned(), "both".to_owned())],
        "alice's roster: {before:?}"
    );

    // Offline, then after a restart: the stored roster.
    perchd.cli_ok(&["disconnect", "-p", "alice"])?;
    ensure!(items(perchd, "alice")? == before, "offline roster");
    perchd.stop()?;
    perchd.start_again()?;
    ensure!(
        items(perchd, "alice")? == before,
        "roster after a restart, offline"
    );
    wait_until(Duration::from_secs(20), || {
        perchd.bus().name_has_owner(LIBERVIA_BUS_NAME)
    })
    .context("the Libervia bridge never came back")?;
    let contacts = block_on(libervia_contacts(perchd, "alice"))?;
    ensure!(contacts == [BOB], "getContacts offline: {contacts:?}");

    // Reconnect: the stored version is current; the roster is intact.
    connect(perchd, "alice", ALICE)?;
    // (perchd's stderr may still hold the first run's lines: some get carried a
    // version.)
    ensure!(
        logged(perchd, "roster get versioning=true ver=\"")?
            > logged(perchd, "roster get versioning=true ver=\"\"")?,
        "the roster get after the restart carries the stored version\n{}",
        perchd.log_text()?
    );
    wait_until(DELIVERY, || {
        Ok(logged(perchd, "the stored roster is current (roster versioning)")? > 0)
    })
    .with_context(|| {
        format!(
            "Prosody did not answer empty\n{}",
            perchd.log_text().unwrap_or_default()
        )
    })?;
    ensure!(
        items(perchd, "alice")? == before,
        "roster after reconnecting"
    );

    // Another client of alice's adds carol while perchd is offline.
    perchd.cli_ok(&["disconnect", "-p", "alice"])?;
    let mut other = RawClient::connect(prosody.port(), &prosody.ca_file(), "alice", ALICE_PW)?;
    other.send(&format!(
        "<iq type='set' id='add-carol'><query xmlns='jabber:iq:roster'>\
         <item jid='{CAROL}' name='Carol'/></query></iq>"
    ))?;
    other.read_until("add-carol", Duration::from_secs(10))?;
    other.close()?;
    connect(perchd, "alice", ALICE)?;
    wait_for_roster(perchd, "alice", CAROL, "present", |_| true)?;
    ensure!(
        items(perchd, "alice")?
            == [
                (BOB.to_owned(), "both".to_owned()),
                (CAROL.to_owned(), "none".to_owned())
            ],
        "alice's roster with carol"
    );
    // And that, too, is stored.
    perchd.cli_ok(&["disconnect", "-p", "alice"])?;
    perchd.stop()?;
    perchd.start_again()?;
    let after = items(perchd, "alice")?;
    ensure!(
        after.iter().any(|(j, _)| j == CAROL),
        "carol stored: {after:?}"
    );
    Ok(())
}

/// ejabberd as the harness runs it (`mod_roster` without `versioning`) does not
/// offer roster versioning: every reconnect fetches the whole roster, and the
/// roster is stored and answers offline all the same.
#[test]
fn stored_roster_without_versioning_on_ejabberd() {
    let ejabberd = perch_tests::Ejabberd::start().expect("starting ejabberd");
    let perchd = Perchd::start().expect("starting perchd");
    ejabberd_body(&perchd, &ejabberd)
        .map_err(|e| {
            anyhow!(
                "{e:#}\n{}\n{}",
                perchd.diagnostics(),
                ejabberd.diagnostics()
            )
        })
        .unwrap();
}

fn ejabberd_body(perchd: &Perchd, ejabberd: &perch_tests::Ejabberd) -> Result<()> {
    pubsub::alice_and_bob_on_ejabberd(perchd, ejabberd, &[])?;
    ensure!(
        logged(perchd, "roster get versioning=false profile=alice")? > 0
            && logged(perchd, "roster get versioning=false profile=bob")? > 0
            && logged(perchd, "roster get versioning=true")? == 0,
        "ejabberd offers no roster versioning here\n{}",
        perchd.log_text()?
    );
    perchd.cli_ok(&["roster", "add", "-p", "alice", BOB, "--name", "Bob"])?;
    wait_for_roster(perchd, "alice", BOB, "ask=true", |i| i["ask"] == true)?;
    perchd.cli_ok(&["disconnect", "-p", "alice"])?;
    let offline = roster(perchd, "alice")?;
    ensure!(
        offline.len() == 1 && offline[0]["jid"] == BOB && offline[0]["name"] == "Bob",
        "alice's roster offline: {offline:?}"
    );
    let before = logged(perchd, "roster get versioning=false profile=alice")?;
    connect(perchd, "alice", ALICE)?;
    ensure!(
        logged(perchd, "roster get versioning=false profile=alice")? > before,
        "the reconnect fetched the whole roster"
    );
    wait_for_roster(perchd, "alice", BOB, "kept", |i| i["name"] == "Bob")?;
    Ok(())
}
