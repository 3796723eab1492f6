//! Perch's records in Libervia's shapes, shared by the signals and the call handlers:
//! a roster item as `newContact`/`getContacts` give it, a stored message as
//! `messageNew`/`historyGet` give it, a presence's show and statuses.
//!
//! Why one module: a signal and the reply of a call about the same thing must agree,
//! and neither needs the daemon to build them.

use perch_plugin_api::{HistoryMessage, Show};

use super::reply::Map;

/// A roster item: (jid, {to, from, ask, name?}, groups).
pub type Contact = (String, Map, Vec<String>);

/// One `historyGet` row, also the shape of `messageNew` minus the profile:
/// (uid, timestamp, from, to, {lang: text}, {lang: subject}, type, extra JSON).
pub type HistoryRow = (String, f64, String, String, Map, Map, String, String);

/// Libervia's `show`: `""` when available.
pub fn show(s: Show) -> &'static str {
    match s {
        Show::Available => "",
        other => other.as_str(),
    }
}

/// Presence statuses by language; `default` when none is given.
pub fn statuses(status: Option<&str>) -> Map {
    let mut m = Map::new();
    if let Some(s) = status.filter(|s| !s.is_empty()) {
        m.insert("default".into(), s.to_owned());
    }
    m
}

pub fn history_row(m: &HistoryMessage) -> HistoryRow {
    let micros = crate::time::parse(&m.timestamp).unwrap_or_default();
    // Integer microseconds to float seconds: exact enough for a timestamp.
    #[allow(clippy::cast_precision_loss)]
    let ts = micros as f64 / 1_000_000.0;
    let mut body = Map::new();
    body.insert(String::new(), m.body.clone());
    let mut extra = serde_json::Map::new();
    extra.insert("message_id".into(), m.id.clone().into());
    if let Some(o) = &m.origin_id {
        extra.insert("origin_id".into(), o.clone().into());
    }
    if let Some(s) = &m.stanza_id {
        extra.insert("stanza_id".into(), s.clone().into());
    }
    extra.insert("state".into(), m.state.as_str().into());
    (
        m.id.clone(),
        ts,
        m.from.clone(),
        m.to.clone(),
        body,
        Map::new(),
        m.kind.clone(),
        serde_json::Value::Object(extra).to_string(),
    )
}

/// The bare part of a JID (`a@b/r` → `a@b`).
pub fn bare(jid: &str) -> String {
    jid.split('/').next().unwrap_or_default().to_owned()
}

/// A roster item as `getContacts` gives it: (jid, {to, from, ask, name?}, groups).
pub fn contact(i: &perch_plugin_api::RosterItem) -> Contact {
    let b = |v: bool| if v { "True" } else { "False" }.to_owned();
    let sub = i.subscription.as_str();
    let mut attrs = Map::new();
    attrs.insert("to".into(), b(matches!(sub, "to" | "both")));
    attrs.insert("from".into(), b(matches!(sub, "from" | "both")));
    attrs.insert("ask".into(), b(i.ask));
    if let Some(n) = &i.name {
        attrs.insert("name".into(), n.clone());
    }
    (i.jid.clone(), attrs, i.groups.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_items_carry_libervia_attributes() {
        let item = perch_plugin_api::RosterItem {
            jid: "bob@example.org".into(),
            name: Some("Bob".into()),
            subscription: "to".into(),
            ask: false,
            groups: vec!["Friends".into()],
        };
        let (jid, attrs, groups) = contact(&item);
        assert_eq!(jid, "bob@example.org");
        assert_eq!(attrs["to"], "True");
        assert_eq!(attrs["from"], "False");
        assert_eq!(attrs["ask"], "False");
        assert_eq!(attrs["name"], "Bob");
        assert_eq!(groups, ["Friends"]);
    }

    #[test]
    fn history_rows_have_libervia_shape() {
        let m = HistoryMessage {
            id: "m1".into(),
            timestamp: "2026-01-01T00:00:01.5Z".into(),
            direction: perch_plugin_api::Direction::In,
            peer: "bob@example.org".into(),
            from: "bob@example.org/x".into(),
            to: "alice@example.org/y".into(),
            kind: "chat".into(),
            body: "hi\n".into(),
            state: perch_plugin_api::MessageState::Received,
            origin_id: Some("o1".into()),
            stanza_id: None,
            extra: serde_json::Map::new(),
        };
        let (uid, ts, from, to, body, subject, kind, extra) = history_row(&m);
        assert_eq!(uid, "m1");
        assert!((ts - 1_767_225_601.5).abs() < 1e-6, "{ts}");
        assert_eq!(
            (from.as_str(), to.as_str()),
            ("bob@example.org/x", "alice@example.org/y")
        );
        assert_eq!(body[""], "hi\n");
        assert!(subject.is_empty());
        assert_eq!(kind, "chat");
        let extra: serde_json::Value = serde_json::from_str(&extra).unwrap();
        assert_eq!(extra["origin_id"], "o1");
        assert_eq!(extra["message_id"], "m1");
    }

    #[test]
    fn available_is_an_empty_show_and_statuses_go_under_default() {
        assert_eq!(show(Show::Available), "");
        assert_eq!(show(Show::Away), "away");
        assert_eq!(statuses(Some("busy"))["default"], "busy");
        assert!(statuses(Some("")).is_empty());
    }
}
