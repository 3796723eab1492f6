//! The messaging figures (`perch-bench --messages N`): what sending costs since
//! messages go through the outbox.
//!
//! Measured the way a frontend lives it: the bench is another process on perchd's
//! bus. `MessageSend` returns once the message is stored with its stanza (the
//! outbox) — its latency is what a user waits for; the outbox task then writes it to
//! the stream and has the server confirm it. Delivery is timed from the first send
//! until the receiving profile (bob, on the same perchd, through the real Prosody)
//! has all N in its history, and until the sender's outbox is empty (every message
//! confirmed by the server).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use perch_tests::{ALICE_PW, BOB_PW, Perchd, Prosody};
use serde_json::Value;

fn count(json: &str) -> Result<usize> {
    let v: Value = serde_json::from_str(json)?;
    Ok(v.as_array().map_or(0, Vec::len))
}

pub async fn run(n: usize) -> Result<()> {
    let prosody = Prosody::start()?;
    let perchd = Perchd::start()?;
    for (name, pw) in [("alice", ALICE_PW), ("bob", BOB_PW)] {
        perchd.create_profile(&prosody, name, name, pw, &[])?;
        perchd.cli_ok(&["connect", "-p", name])?;
    }
    let client = perch_client::Client::on_bus(perchd.bus_connection().await?).await?;
    println!("\n## messaging: {n} messages alice → bob through the outbox, Prosody, bob's inbox");
    let mut latencies = Vec::with_capacity(n);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        client
            .message_send(
                "alice",
                "bob@localhost",
                &format!("bench message {i:05}"),
                "chat",
            )
            .await?;
        latencies.push(t.elapsed());
    }
    let sent = start.elapsed();
    let mut filters = std::collections::HashMap::new();
    filters.insert("with".to_owned(), "alice@localhost".to_owned());
    filters.insert("limit".to_owned(), "10000".to_owned());
    let (mut delivered, mut confirmed) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(300);
    while (delivered.is_none() || confirmed.is_none()) && Instant::now() < deadline {
        if delivered.is_none() && count(&client.history_get("bob", &filters).await?)? >= n {
            delivered = Some(start.elapsed());
        }
        if confirmed.is_none() && count(&client.message_outbox("alice").await?)? == 0 {
            confirmed = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered = delivered.context("bob never had every message")?;
    let confirmed = confirmed.context("alice's outbox never emptied")?;
    let (p50, p95) = crate::percentiles(&mut latencies);
    let max = latencies.iter().max().copied().unwrap_or_default();
    println!(
        "MessageSend from a client process: p50 {}, p95 {}, max {} ({n} calls one after the other, {:.0} calls/s)",
        crate::ms(p50),
        crate::ms(p95),
        crate::ms(max),
        n as f64 / sent.as_secs_f64()
    );
    println!(
        "all {n} in bob's history {:.2} s after the first send ({:.0} messages/s end to end); \
         alice's outbox empty (all confirmed by the server) after {:.2} s",
        delivered.as_secs_f64(),
        n as f64 / delivered.as_secs_f64(),
        confirmed.as_secs_f64()
    );
    drop(prosody);
    Ok(())
}
