//! The usual bed of the e2e tests and of the end-to-end benches: one Prosody, one
//! perchd, profiles `alice` and `bob` connected and, when asked, subscribed to each
//! other.
//!
//! Why in the library and not in the e2e binary: the benches of `perch-bench` (call
//! set-up, for one) start the very same bed, and a bench that sets its fixtures up
//! another way would measure another thing.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;

use crate::{ALICE_PW, BOB_PW, Perchd, Prosody, wait_until};

/// Alice's bare JID on the harness Prosody.
pub const ALICE: &str = "alice@localhost";
/// Bob's bare JID on the harness Prosody.
pub const BOB: &str = "bob@localhost";

/// How long a message (or a roster change) may take to show up on the other side.
pub const DELIVERY: Duration = Duration::from_secs(15);

/// One Prosody and one perchd. perchd is declared first so it goes first on drop.
pub struct Bed {
    pub perchd: Perchd,
    pub prosody: Prosody,
}

impl Bed {
    /// Starts both; panics when one cannot start (a test's fixtures).
    pub fn start() -> Self {
        let prosody = Prosody::start().expect("starting Prosody");
        let perchd = Perchd::start().expect("starting perchd");
        Self { perchd, prosody }
    }

    /// Profiles `alice` and `bob` (the first one created is the default), both connected.
    pub fn alice_and_bob_connected(&self, extra_alice: &[&str]) -> Result<()> {
        self.perchd
            .create_profile(&self.prosody, "alice", "alice", ALICE_PW, extra_alice)?;
        self.perchd
            .create_profile(&self.prosody, "bob", "bob", BOB_PW, &[])?;
        connect(&self.perchd, "alice", ALICE)?;
        connect(&self.perchd, "bob", BOB)?;
        Ok(())
    }

    /// A bed with alice and bob connected and subscribed to each other (so a bare JID
    /// reaches the other's resource): what a call needs.
    pub fn alice_and_bob_subscribed() -> Result<Self> {
        let bed = Self::start();
        bed.alice_and_bob_connected(&[])?;
        mutual_subscription(&bed.perchd)?;
        Ok(bed)
    }
}

/// `perch connect -p PROFILE`; when it returns the session is up (documented), so the
/// status must say "connected" with a full JID bound.
pub fn connect(perchd: &Perchd, profile: &str, jid: &str) -> Result<()> {
    perchd.cli_ok(&["connect", "-p", profile])?;
    let status = perchd.status_of(profile)?;
    ensure!(
        status["state"] == "connected",
        "`connect -p {profile}` returned but status is {status}"
    );
    let bound = status["bound_jid"].as_str().unwrap_or_default();
    ensure!(
        bound.starts_with(&format!("{jid}/")),
        "profile {profile}: bound_jid should be a full JID of {jid}: {status}"
    );
    ensure!(
        status["jid"] == jid,
        "profile {profile}: status jid: {status}"
    );
    Ok(())
}

/// `perch roster list -p PROFILE`.
pub fn roster(perchd: &Perchd, profile: &str) -> Result<Vec<Value>> {
    let value = perchd.cli_json(&["roster", "list", "-p", profile])?;
    value
        .as_array()
        .cloned()
        .ok_or_else(|| anyhow!("`roster list -p {profile}` is not a JSON array: {value}"))
}

/// Waits until `profile`'s roster item for `jid` satisfies `pred`.
pub fn wait_for_roster(
    perchd: &Perchd,
    profile: &str,
    jid: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<()> {
    let mut last = Vec::new();
    wait_until(DELIVERY, || {
        last = roster(perchd, profile)?;
        Ok(last.iter().any(|item| item["jid"] == jid && pred(item)))
    })
    .with_context(|| format!("roster of {profile}: {jid} never became {what}; roster: {last:?}"))
}

/// A subscription asked for (pending) or granted.
pub fn subscription_requested(item: &Value) -> bool {
    item["ask"] == true || item["subscription"] == "to" || item["subscription"] == "both"
}

/// Makes alice and bob mutually subscribed, through the CLI.
pub fn mutual_subscription(perchd: &Perchd) -> Result<()> {
    perchd.cli_ok(&["roster", "add", "-p", "alice", BOB])?;
    // The server has processed alice's subscribe once her roster shows it pending.
    wait_for_roster(
        perchd,
        "alice",
        BOB,
        "ask=true (subscribe sent)",
        subscription_requested,
    )?;
    perchd.cli_ok(&["roster", "approve", "-p", "bob", ALICE])?;
    perchd.cli_ok(&["roster", "add", "-p", "bob", ALICE])?;
    wait_for_roster(
        perchd,
        "bob",
        ALICE,
        "ask=true (subscribe sent)",
        subscription_requested,
    )?;
    perchd.cli_ok(&["roster", "approve", "-p", "alice", BOB])?;
    wait_for_roster(perchd, "alice", BOB, "subscription both", |i| {
        i["subscription"] == "both"
    })?;
    wait_for_roster(perchd, "bob", ALICE, "subscription both", |i| {
        i["subscription"] == "both"
    })?;
    Ok(())
}
