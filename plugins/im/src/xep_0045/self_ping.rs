//! XEP-0410: MUC Self-Ping. Are we still in the rooms we think we are in?
//!
//! Why: a room can lose us without a word to us: a room service restarted, a
//! server-to-server link cut while our own stream stayed up. We would go on
//! showing the room as joined, and miss everything said in it. So a room that has
//! been silent for a while (`self_ping_s` of `[plugins.options."XEP-0045"]`, 600 s
//! by default, 0: never) gets a ping to our own occupant JID; the room answers it
//! when we are in (forwarding it to us, or answering for us), and refuses it when we
//! are not; then we join again.
//!
//! The room's answer, as XEP-0410 §3.2 reads it: a result, `service-unavailable` or
//! `feature-not-implemented` (our client got it and does not answer pings) and
//! `item-not-found` (our nick is changing) mean joined; `remote-server-not-found`,
//! `remote-server-timeout` and a timeout tell nothing; any other error (Prosody
//! says `not-acceptable`) means we are out.

use std::sync::Arc;
use std::time::Duration;

use perch_plugin_api::HostError;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use tokio::time::Instant;

use super::{Muc, lock};

pub const NS_PING: &str = "urn:xmpp:ping";
/// Silence after which a room is pinged, by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

/// What the room's answer to our self-ping says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Joined,
    Out,
    Unknown,
}

/// XEP-0410 §3.2.
pub fn verdict(answer: &Result<Option<Element>, HostError>) -> Verdict {
    match answer {
        Ok(_) => Verdict::Joined,
        Err(HostError::Stanza(e)) => match e.condition.as_str() {
            "service-unavailable" | "feature-not-implemented" | "item-not-found" => Verdict::Joined,
            "remote-server-not-found" | "remote-server-timeout" => Verdict::Unknown,
            _ => Verdict::Out,
        },
        Err(_) => Verdict::Unknown,
    }
}

/// The silence after which a room is pinged; `None`: never.
pub(super) fn interval(options: &serde_json::Value) -> Option<Duration> {
    match options
        .get("self_ping_s")
        .and_then(serde_json::Value::as_f64)
    {
        None => Some(DEFAULT_INTERVAL),
        Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
        Some(_) => None,
    }
}

/// Whether the profile is in a room, or joining one.
fn in_a_room(rooms: &super::Rooms, profile: &str) -> bool {
    rooms
        .get(profile)
        .is_some_and(|rs| rs.values().any(|r| r.joined || r.waiter.is_some()))
}

/// Starts the profile's pinger if it is in a room and has none running: called
/// after each room presence. Why not one per session from its start: a profile in no
/// room (most of a service's thousand) would keep an idle task and a timer for
/// nothing (`doc/performance.rst`, "Many profiles").
pub(super) fn ensure(m: &Arc<Muc>, profile: &str) {
    // Under the rooms lock: a pinger that found nothing to do has forgotten itself
    // under it too, so it is either still running or seen gone here.
    let rooms = lock(&m.rooms);
    if !in_a_room(&rooms, profile) {
        return;
    }
    if let Some(every) = interval(&m.host.options()) {
        m.pingers
            .start_unless_running(profile, run(m.clone(), profile.to_owned(), every));
    }
}

/// Pings each joined room silent for `every`; rejoins the rooms we are out of. Runs
/// while the profile is in a room; stopped with the session.
pub(super) async fn run(m: Arc<Muc>, profile: String, every: Duration) {
    let mut tick = tokio::time::interval(every / 2);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        {
            let rooms = lock(&m.rooms);
            if !in_a_room(&rooms, &profile) {
                m.pingers.finished(&profile);
                return;
            }
        }
        for (room, nick, password) in silent_rooms(&m, &profile, every) {
            let Ok(me) = Jid::new(&format!("{room}/{nick}")) else {
                continue;
            };
            let ping = Element::builder("ping", NS_PING).build();
            let answer = m.host.iq(&profile, Some(me), false, ping).await;
            let v = verdict(&answer);
            tracing::debug!(%profile, %room, ?v, "self-ping answered");
            match v {
                Verdict::Joined => heard(&m, &profile, &room),
                Verdict::Unknown => {}
                Verdict::Out => rejoin(&m, &profile, &room, &nick, password).await,
            }
        }
    }
}

/// The joined rooms not heard from for `every`: (room, our nick, password).
fn silent_rooms(m: &Muc, profile: &str, every: Duration) -> Vec<(String, String, Option<String>)> {
    let now = Instant::now();
    lock(&m.rooms)
        .get(profile)
        .map(|rooms| {
            rooms
                .iter()
                .filter(|(_, r)| r.joined && r.waiter.is_none())
                .filter(|(_, r)| now.duration_since(r.heard) >= every)
                .map(|(room, r)| (room.clone(), r.nick.clone(), r.password.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The room spoke to us (or answered our ping): not silent.
pub(super) fn heard(m: &Muc, profile: &str, room: &str) {
    m.with_room(profile, room, |r| r.heard = Instant::now());
}

async fn rejoin(m: &Muc, profile: &str, room: &str, nick: &str, password: Option<String>) {
    tracing::info!(%profile, %room, "the room no longer has us (self-ping); joining again");
    m.with_room(profile, room, |r| {
        r.joined = false;
        r.occupants.clear();
    });
    let Ok(jid) = Jid::new(room) else {
        return;
    };
    if let Err(e) = m.join_patiently(profile, &jid, nick, password, false).await {
        tracing::warn!(%profile, %room, error = %e, "joining the room again after a self-ping failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::StanzaError;
    use serde_json::json;

    fn error(condition: &str) -> Result<Option<Element>, HostError> {
        Err(HostError::Stanza(StanzaError::new(condition, None)))
    }

    #[test]
    fn what_the_answers_mean() {
        assert_eq!(verdict(&Ok(None)), Verdict::Joined);
        for joined in [
            "service-unavailable",
            "feature-not-implemented",
            "item-not-found",
        ] {
            assert_eq!(verdict(&error(joined)), Verdict::Joined, "{joined}");
        }
        for unknown in ["remote-server-not-found", "remote-server-timeout"] {
            assert_eq!(verdict(&error(unknown)), Verdict::Unknown, "{unknown}");
        }
        assert_eq!(verdict(&error("not-acceptable")), Verdict::Out);
        assert_eq!(verdict(&error("not-allowed")), Verdict::Out);
        assert_eq!(
            verdict(&Err(HostError::Timeout("no answer".into()))),
            Verdict::Unknown
        );
    }

    #[test]
    fn the_interval_option() {
        assert_eq!(interval(&json!({})), Some(DEFAULT_INTERVAL));
        assert_eq!(
            interval(&json!({"self_ping_s": 1.5})),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(interval(&json!({"self_ping_s": 0})), None);
    }
}
