//! Pubsub requests and replies, built and read with minidom.
//!
//! Why not xmpp-parsers' `PubSub`: it rejects any reply carrying an RSM `<set/>`
//! (ejabberd adds one even to a `max_items` request) and keeps some elements private
//! (the subscription state of a subscribe reply, owner affiliations). Reading the few
//! elements we need by hand is short, and tolerant of what real services send.

use crate::minidom::{Element, Node};
use crate::{ReplyError, StanzaError};

use crate::dom::Attr;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::xep_0004;
use crate::xep_0059::{RsmRequest, RsmResponse};

pub const NS: &str = "http://jabber.org/protocol/pubsub";
pub const NS_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const NS_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
pub const FORM_NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
pub const FORM_PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";
pub const FORM_SUBSCRIBE_OPTIONS: &str = "http://jabber.org/protocol/pubsub#subscribe_options";
pub const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
pub const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";

/// One pubsub item as frontends get it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The item id ("" when the service gave none, e.g. a transient node).
    pub id: String,
    /// The publisher's JID, when the service tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    /// The payload element, serialised as received (None: a notification without it).
    pub payload: Option<String>,
    /// The same payload as the stream parsed it, when the item came from the network:
    /// whoever reads it (the cache's analysers) needs not parse `payload` again.
    #[serde(skip)]
    pub element: Option<Element>,
}

impl Item {
    /// An item with a payload given as XML text only (from the cache, a frontend).
    pub fn new(id: impl Into<String>, publisher: Option<String>, payload: Option<String>) -> Self {
        Self {
            id: id.into(),
            publisher,
            payload,
            element: None,
        }
    }

    pub fn parse(item: &Element) -> Self {
        Self::take(item.clone())
    }

    /// [`Self::parse`], keeping the payload element without copying it.
    pub fn take(mut item: Element) -> Self {
        let id = item.attr("id").unwrap_or_default().to_owned();
        let publisher = item.attr("publisher").map(str::to_owned);
        let element = item.take_nodes().into_iter().find_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        });
        Self {
            id,
            publisher,
            payload: element.as_ref().map(crate::dom::to_xml),
            element,
        }
    }
}

/// A payload given by a frontend: one XML element with its namespace.
pub fn parse_payload(xml: &str) -> Result<Element, String> {
    xml.trim()
        .parse::<Element>()
        .map_err(|e| format!("not one XML element with a namespace: {e}"))
}

fn node_attr(
    b: crate::minidom::ElementBuilder,
    node: Option<&str>,
) -> crate::minidom::ElementBuilder {
    match node {
        Some(n) => b.a("node", n),
        None => b,
    }
}

fn pubsub(child: Element) -> Element {
    Element::builder("pubsub", NS).append(child).build()
}

fn owner(child: Element) -> Element {
    Element::builder("pubsub", NS_OWNER).append(child).build()
}

/// `<create/>` with an optional configuration (no node: an instant node).
pub fn create(node: Option<&str>, config: Option<&Map<String, Value>>) -> Element {
    let mut p = Element::builder("pubsub", NS)
        .append(node_attr(Element::builder("create", NS), node).build());
    if let Some(c) = config {
        p = p.append(
            Element::builder("configure", NS)
                .append(xep_0004::submit(FORM_NODE_CONFIG, c))
                .build(),
        );
    }
    p.build()
}

/// The node a create reply names (instant nodes), or the one we asked for.
pub fn created_node(reply: Option<&Element>) -> Option<String> {
    reply?
        .get_child("create", NS)?
        .attr("node")
        .map(str::to_owned)
}

pub fn delete(node: &str, redirect: Option<&str>) -> Element {
    let mut d = Element::builder("delete", NS_OWNER).a("node", node);
    if let Some(uri) = redirect {
        d = d.append(Element::builder("redirect", NS_OWNER).a("uri", uri).build());
    }
    owner(d.build())
}

pub fn purge(node: &str) -> Element {
    owner(Element::builder("purge", NS_OWNER).a("node", node).build())
}

pub fn configure_get(node: &str) -> Element {
    owner(
        Element::builder("configure", NS_OWNER)
            .a("node", node)
            .build(),
    )
}

pub fn configure_set(node: &str, config: &Map<String, Value>) -> Element {
    owner(
        Element::builder("configure", NS_OWNER)
            .a("node", node)
            .append(xep_0004::submit(FORM_NODE_CONFIG, config))
            .build(),
    )
}

pub fn default_get() -> Element {
    owner(Element::builder("default", NS_OWNER).build())
}

/// The form inside an owner `<configure/>` or `<default/>` reply.
pub fn config_form(reply: Option<&Element>) -> Option<Value> {
    let p = reply?;
    let holder = p
        .get_child("configure", NS_OWNER)
        .or_else(|| p.get_child("default", NS_OWNER))?;
    xep_0004::find(holder).map(xep_0004::to_json)
}

pub fn publish(
    node: &str,
    id: Option<&str>,
    payload: Element,
    options: Option<&Map<String, Value>>,
) -> Element {
    let mut item = Element::builder("item", NS);
    if let Some(id) = id {
        item = item.a("id", id);
    }
    let mut p = Element::builder("pubsub", NS).append(
        Element::builder("publish", NS)
            .a("node", node)
            .append(item.append(payload).build())
            .build(),
    );
    if let Some(o) = options.filter(|o| !o.is_empty()) {
        p = p.append(
            Element::builder("publish-options", NS)
                .append(xep_0004::submit(FORM_PUBLISH_OPTIONS, o))
                .build(),
        );
    }
    p.build()
}

/// The item id the service gave a publish (it may assign one).
pub fn published_id(reply: Option<&Element>) -> Option<String> {
    reply?
        .get_child("publish", NS)?
        .get_child("item", NS)?
        .attr("id")
        .map(str::to_owned)
}

pub fn retract(node: &str, ids: &[String], notify: bool) -> Element {
    let mut r = Element::builder("retract", NS).a("node", node);
    if notify {
        r = r.a("notify", "true");
    }
    for id in ids {
        r = r.append(Element::builder("item", NS).a("id", id.as_str()).build());
    }
    pubsub(r.build())
}

/// `<items/>`: by ids, the newest `max_items`, or all; with RSM when given.
pub fn items(
    node: &str,
    max_items: Option<usize>,
    ids: &[String],
    rsm: Option<&RsmRequest>,
) -> Element {
    let mut i = Element::builder("items", NS).a("node", node);
    if let Some(m) = max_items.filter(|_| ids.is_empty()) {
        i = i.a("max_items", m.to_string());
    }
    for id in ids {
        i = i.append(Element::builder("item", NS).a("id", id.as_str()).build());
    }
    let mut p = Element::builder("pubsub", NS).append(i.build());
    if let Some(r) = rsm.filter(|_| ids.is_empty()) {
        p = p.append(r.element());
    }
    p.build()
}

/// Items of an `<items/>` reply, in the service's order, and its `<set/>` if any.
pub fn parse_items(reply: Option<Element>) -> Result<(Vec<Item>, Option<RsmResponse>), String> {
    let Some(mut p) = reply else {
        return Ok((Vec::new(), None));
    };
    if !p.is("pubsub", NS) {
        return Err(format!(
            "expected <pubsub xmlns='{NS}'>, got <{}>",
            p.name()
        ));
    }
    let set = RsmResponse::find_in(&p);
    let items = p
        .remove_child("items", NS)
        .map(|mut i| {
            i.take_nodes()
                .into_iter()
                .filter_map(|n| match n {
                    Node::Element(c) if c.is("item", NS) => Some(Item::take(c)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((items, set))
}

pub fn subscribe(node: &str, jid: &str, options: Option<&Map<String, Value>>) -> Element {
    let mut p = Element::builder("pubsub", NS).append(
        Element::builder("subscribe", NS)
            .a("node", node)
            .a("jid", jid)
            .build(),
    );
    if let Some(o) = options.filter(|o| !o.is_empty()) {
        p = p.append(
            // XEP-0060 §6.3.7: inside a subscribe, <options/> carries no node/jid.
            Element::builder("options", NS)
                .append(xep_0004::submit(FORM_SUBSCRIBE_OPTIONS, o))
                .build(),
        );
    }
    p.build()
}

pub fn unsubscribe(node: &str, jid: &str, subid: Option<&str>) -> Element {
    let mut u = Element::builder("unsubscribe", NS)
        .a("node", node)
        .a("jid", jid);
    if let Some(s) = subid {
        u = u.a("subid", s);
    }
    pubsub(u.build())
}

/// `<subscriptions/>` or `<affiliations/>` of the user, for a node or all.
pub fn mine(what: &str, node: Option<&str>) -> Element {
    pubsub(node_attr(Element::builder(what, NS), node).build())
}

/// Owner `<subscriptions/>` / `<affiliations/>` of a node: get (no entries) or set.
pub fn owner_list(what: &str, node: &str, entries: Option<&Map<String, Value>>) -> Element {
    let (child, attr) = if what == "subscriptions" {
        ("subscription", "subscription")
    } else {
        ("affiliation", "affiliation")
    };
    let mut l = Element::builder(what, NS_OWNER).a("node", node);
    for (jid, value) in entries.into_iter().flatten() {
        let v = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        l = l.append(
            Element::builder(child, NS_OWNER)
                .a("jid", jid.as_str())
                .a(attr, v)
                .build(),
        );
    }
    owner(l.build())
}

/// Entries of a `<subscriptions/>` or `<affiliations/>` reply (user or owner), each as
/// an object of its attributes (`node`, `jid`, `subscription`, `subid`, `affiliation`).
pub fn parse_list(reply: Option<&Element>, what: &str) -> Vec<Value> {
    let Some(p) = reply else {
        return Vec::new();
    };
    let Some(list) = p.children().find(|c| c.name() == what) else {
        return Vec::new();
    };
    let default_node = list.attr("node");
    list.children()
        .map(|e| {
            let mut o = Map::new();
            for ((_, k), v) in e.attrs().iter() {
                o.insert(k.to_string(), json!(v));
            }
            if let Some(n) = default_node {
                o.entry("node").or_insert_with(|| json!(n));
            }
            Value::Object(o)
        })
        .collect()
}

/// The `<subscription/>` of a subscribe reply.
pub fn parse_subscription(reply: Option<&Element>) -> Option<Value> {
    let s = reply?.get_child("subscription", NS)?;
    let mut o = Map::new();
    for ((_, k), v) in s.attrs().iter() {
        o.insert(k.to_string(), json!(v));
    }
    Some(Value::Object(o))
}

pub fn disco_items(node: Option<&str>) -> Element {
    node_attr(Element::builder("query", NS_DISCO_ITEMS), node).build()
}

pub fn disco_info(node: Option<&str>) -> Element {
    node_attr(Element::builder("query", NS_DISCO_INFO), node).build()
}

pub fn parse_disco_items(reply: Option<&Element>) -> Vec<Value> {
    reply
        .map(|q| {
            q.children()
                .filter(|c| c.is("item", NS_DISCO_ITEMS))
                .map(|i| json!({"jid": i.attr("jid"), "node": i.attr("node"), "name": i.attr("name")}))
                .collect()
        })
        .unwrap_or_default()
}

/// Node info: identities, features and the meta-data form's values.
pub fn parse_disco_info(reply: Option<&Element>) -> Value {
    let Some(q) = reply else {
        return json!({"identities": [], "features": [], "meta": {}});
    };
    let identities: Vec<Value> = q
        .children()
        .filter(|c| c.is("identity", NS_DISCO_INFO))
        .map(|i| json!({"category": i.attr("category"), "type": i.attr("type"), "name": i.attr("name")}))
        .collect();
    let features: Vec<&str> = q
        .children()
        .filter(|c| c.is("feature", NS_DISCO_INFO))
        .filter_map(|f| f.attr("var"))
        .collect();
    let meta = xep_0004::find(q)
        .map(|x| xep_0004::to_json(x)["values"].clone())
        .unwrap_or_else(|| json!({}));
    json!({"identities": identities, "features": features, "meta": meta})
}

/// What an event notification was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// Items published (new or edited).
    Items,
    /// Items retracted.
    Retract,
    Purge,
    Delete,
    Configuration,
    Subscription,
}

/// One pubsub notification, the payload of the `ps_event` signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PsEvent {
    pub profile: String,
    /// The service that sent it (a bare JID for PEP).
    pub service: String,
    pub node: String,
    pub kind: EventKind,
    /// Published items (`items`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    /// Retracted item ids (`retract`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retracted: Vec<String>,
    /// Where the deleted node's subscribers should go (`delete`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect: Option<String>,
    /// The new configuration form, when the service included it (`configuration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// `{jid, subscription, subid}` (`subscription`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Value>,
}

/// The notifications in an `<event/>` element; an `<items/>` holding both items and
/// retractions gives two events. Unknown children are skipped (with the reason).
pub fn parse_event(profile: &str, service: &str, event: &Element) -> Result<Vec<PsEvent>, String> {
    let base = |node: &str, kind| PsEvent {
        profile: profile.to_owned(),
        service: service.to_owned(),
        node: node.to_owned(),
        kind,
        items: Vec::new(),
        retracted: Vec::new(),
        redirect: None,
        config: None,
        subscription: None,
    };
    let mut out = Vec::new();
    for c in event.children().filter(|c| c.ns() == NS_EVENT) {
        let node = c.attr("node");
        let need_node = || node.ok_or_else(|| format!("<{}/> without a node", c.name()));
        match c.name() {
            "items" => {
                let node = need_node()?;
                let items: Vec<Item> = c
                    .children()
                    .filter(|i| i.is("item", NS_EVENT))
                    .map(Item::parse)
                    .collect();
                let retracted: Vec<String> = c
                    .children()
                    .filter(|i| i.is("retract", NS_EVENT))
                    .filter_map(|i| i.attr("id").map(str::to_owned))
                    .collect();
                if !items.is_empty() {
                    out.push(PsEvent {
                        items,
                        ..base(node, EventKind::Items)
                    });
                }
                if !retracted.is_empty() {
                    out.push(PsEvent {
                        retracted,
                        ..base(node, EventKind::Retract)
                    });
                }
            }
            "purge" => out.push(base(need_node()?, EventKind::Purge)),
            "delete" => out.push(PsEvent {
                redirect: c
                    .get_child("redirect", NS_EVENT)
                    .and_then(|r| r.attr("uri"))
                    .map(str::to_owned),
                ..base(need_node()?, EventKind::Delete)
            }),
            "configuration" => out.push(PsEvent {
                config: xep_0004::find(c).map(xep_0004::to_json),
                ..base(need_node()?, EventKind::Configuration)
            }),
            "subscription" => {
                let mut o = Map::new();
                for ((_, k), v) in c.attrs().iter() {
                    o.insert(k.to_string(), json!(v));
                }
                out.push(PsEvent {
                    subscription: Some(Value::Object(o)),
                    ..base(need_node()?, EventKind::Subscription)
                });
            }
            other => return Err(format!("unknown pubsub event <{other}/>")),
        }
    }
    Ok(out)
}

/// An error for replies that do not have the expected shape.
pub fn malformed(what: &str, why: impl std::fmt::Display) -> ReplyError {
    ReplyError::Malformed(format!("{what}: {why}"))
}

/// The error for an RSM id that the emulation did not find.
pub fn into_host(e: StanzaError) -> ReplyError {
    ReplyError::Stanza(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn publish_with_options_xml() {
        let mut o = Map::new();
        o.insert("pubsub#access_model".into(), json!("open"));
        let e = publish(
            "n",
            Some("i1"),
            el("<entry xmlns='urn:t'>hi</entry>"),
            Some(&o),
        );
        assert_eq!(
            String::from(&e),
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='i1'>\
             <entry xmlns='urn:t'>hi</entry></item></publish><publish-options>\
             <x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'>\
             <value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
             <field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub>"
        );
    }

    #[test]
    fn items_request_and_ejabberd_reply_with_set() {
        let r = RsmRequest {
            max: Some(2),
            after: Some("t1".into()),
            ..Default::default()
        };
        assert_eq!(
            String::from(&items("n", None, &[], Some(&r))),
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/>\
             <set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>t1</after></set></pubsub>"
        );
        assert_eq!(
            String::from(&items("n", Some(5), &["a".into()], None)),
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'><item id='a'/></items></pubsub>"
        );
        let reply = el(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>\
            <item id='a' publisher='alice@localhost'><x xmlns='urn:t'>1</x></item><item id='b'><x xmlns='urn:t'>2</x></item>\
            </items><set xmlns='http://jabber.org/protocol/rsm'><first index='3'>t3</first><last>t4</last><count>9</count></set></pubsub>",
        );
        let (items, set) = parse_items(Some(reply)).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].publisher.as_deref(), Some("alice@localhost"));
        assert_eq!(items[1].payload.as_deref(), Some("<x xmlns='urn:t'>2</x>"));
        // The element as parsed travels with the text: analysers need not parse again.
        assert!(
            items[1]
                .element
                .as_ref()
                .is_some_and(|e| e.is("x", "urn:t"))
        );
        let set = set.unwrap();
        assert_eq!(
            (set.first_index, set.count, set.last.as_deref()),
            (Some(3), Some(9), Some("t4"))
        );
    }

    #[test]
    fn events_of_each_kind() {
        let ev = el("<event xmlns='http://jabber.org/protocol/pubsub#event'>\
            <items node='n'><item id='a'><x xmlns='urn:t'/></item><retract id='b'/></items></event>");
        let v = parse_event("p", "s", &ev).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            (v[0].kind, v[0].items[0].id.as_str()),
            (EventKind::Items, "a")
        );
        assert_eq!(
            (v[1].kind, v[1].retracted.clone()),
            (EventKind::Retract, vec!["b".to_owned()])
        );
        let ev = el(
            "<event xmlns='http://jabber.org/protocol/pubsub#event'><delete node='n'>\
            <redirect uri='xmpp:s?;node=m'/></delete></event>",
        );
        let v = parse_event("p", "s", &ev).unwrap();
        assert_eq!(v[0].redirect.as_deref(), Some("xmpp:s?;node=m"));
        let ev = el("<event xmlns='http://jabber.org/protocol/pubsub#event'>\
            <subscription node='n' jid='bob@localhost' subscription='subscribed' subid='x'/></event>");
        let v = parse_event("p", "s", &ev).unwrap();
        assert_eq!(
            v[0].subscription.as_ref().unwrap()["subscription"],
            "subscribed"
        );
        let json = serde_json::to_value(&v[0]).unwrap();
        assert_eq!(json["kind"], "subscription");
        assert!(json.get("items").is_none());
        let ev = el("<event xmlns='http://jabber.org/protocol/pubsub#event'><purge/></event>");
        assert!(parse_event("p", "s", &ev).unwrap_err().contains("node"));
    }

    #[test]
    fn owner_lists_and_replies() {
        let mut m = Map::new();
        m.insert("bob@localhost".into(), json!("publisher"));
        assert_eq!(
            String::from(&owner_list("affiliations", "n", Some(&m))),
            "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'>\
             <affiliation affiliation='publisher' jid='bob@localhost'/></affiliations></pubsub>"
        );
        let reply = el(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions>\
            <subscription node='a' jid='bob@localhost' subscription='subscribed'/></subscriptions></pubsub>",
        );
        let l = parse_list(Some(&reply), "subscriptions");
        assert_eq!(l[0]["node"], "a");
        let reply = el(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='n'>\
            <subscription jid='bob@localhost' subscription='subscribed'/></subscriptions></pubsub>",
        );
        assert_eq!(parse_list(Some(&reply), "subscriptions")[0]["node"], "n");
    }
}

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::dom::{Attr, arb, to_xml};
    use crate::xep_0059::NS as NS_RSM;
    use proptest::option::of;
    use proptest::prelude::*;

    type Items = Vec<(Option<String>, Option<String>, Option<Element>)>;

    fn payload() -> impl Strategy<Value = Element> {
        arb::element(
            &["entry", "x"],
            &["urn:t", "http://www.w3.org/2005/Atom"],
            &["id"],
        )
    }

    fn items() -> impl Strategy<Value = Items> {
        prop::collection::vec((of(arb::text()), of(arb::text()), of(payload())), 0..5)
    }

    fn item_element(
        ns: &str,
        (id, publisher, payload): &(Option<String>, Option<String>, Option<Element>),
    ) -> Element {
        let mut i = Element::builder("item", ns);
        if let Some(id) = id {
            i = i.a("id", id.as_str());
        }
        if let Some(p) = publisher {
            i = i.a("publisher", p.as_str());
        }
        i.append_all(payload.clone()).build()
    }

    fn expected(items: &Items) -> Vec<Item> {
        items
            .iter()
            .map(|(id, publisher, payload)| Item {
                id: id.clone().unwrap_or_default(),
                publisher: publisher.clone(),
                payload: payload.as_ref().map(to_xml),
                element: payload.clone(),
            })
            .collect()
    }

    fn reparsed(e: &Element) -> Element {
        to_xml(e).parse().expect("what we write reads back")
    }

    /// An event child: (kind, node, items, retracted ids, redirect).
    #[derive(Debug, Clone)]
    enum Ev {
        Items(String, Items, Vec<String>),
        Purge(String),
        Delete(String, Option<String>),
    }

    fn event_child() -> impl Strategy<Value = Ev> {
        prop_oneof![
            (
                arb::text(),
                items(),
                prop::collection::vec(arb::text(), 0..3)
            )
                .prop_map(|(n, i, r)| Ev::Items(n, i, r)),
            arb::text().prop_map(Ev::Purge),
            (arb::text(), of(arb::text())).prop_map(|(n, r)| Ev::Delete(n, r)),
        ]
    }

    const NAMES: &[&str] = &[
        "pubsub",
        "items",
        "item",
        "retract",
        "event",
        "purge",
        "delete",
        "configuration",
        "subscription",
        "subscriptions",
        "affiliations",
        "affiliation",
        "create",
        "publish",
        "configure",
        "default",
        "set",
        "first",
        "count",
        "x",
        "field",
        "value",
        "query",
        "identity",
        "feature",
        "redirect",
    ];
    const NSS: &[&str] = &[
        NS,
        NS_OWNER,
        NS_EVENT,
        NS_RSM,
        xep_0004::NS,
        NS_DISCO_INFO,
        NS_DISCO_ITEMS,
        "urn:t",
    ];
    const ATTRS: &[&str] = &[
        "node",
        "id",
        "jid",
        "subscription",
        "publisher",
        "index",
        "var",
        "type",
        "uri",
        "category",
        "name",
    ];

    proptest! {
        #![proptest_config(arb::config())]

        /// A service's `<items/>` reply (with or without `<set/>`) reads back as the
        /// items it held, in its order, payloads written as received.
        #[test]
        fn items_replies_read_back(
            node in arb::text(),
            items in items(),
            set in of(any::<(Option<usize>, Option<usize>)>()),
        ) {
            let mut list = Element::builder("items", NS).a("node", node.as_str());
            for i in &items {
                list = list.append(item_element(NS, i));
            }
            let mut p = Element::builder("pubsub", NS).append(list.build());
            let set = set.map(|(first_index, count)| RsmResponse {
                first: Some("f".into()),
                first_index,
                last: Some("l".into()),
                count,
            });
            if let Some(s) = &set {
                p = p.append(s.element());
            }
            let (got, got_set) = parse_items(Some(reparsed(&p.build()))).map_err(TestCaseError::fail)?;
            prop_assert_eq!(got, expected(&items));
            prop_assert_eq!(got_set, set);
        }

        /// An `<event/>` reads back as its notifications, items and retractions of one
        /// `<items/>` as two.
        #[test]
        fn events_read_back(children in prop::collection::vec(event_child(), 0..4)) {
            let mut ev = Element::builder("event", NS_EVENT);
            let mut want = Vec::new();
            for c in &children {
                let base = |node: &str, kind| (kind, node.to_owned(), Vec::new(), Vec::new(), None);
                ev = ev.append(match c {
                    Ev::Items(node, items, retracted) => {
                        if !items.is_empty() {
                            let mut w = base(node, EventKind::Items);
                            w.2 = expected(items);
                            want.push(w);
                        }
                        if !retracted.is_empty() {
                            let mut w = base(node, EventKind::Retract);
                            w.3.clone_from(retracted);
                            want.push(w);
                        }
                        let mut e = Element::builder("items", NS_EVENT).a("node", node.as_str());
                        for i in items {
                            e = e.append(item_element(NS_EVENT, i));
                        }
                        for r in retracted {
                            e = e.append(Element::builder("retract", NS_EVENT).a("id", r.as_str()).build());
                        }
                        e.build()
                    }
                    Ev::Purge(node) => {
                        want.push(base(node, EventKind::Purge));
                        Element::builder("purge", NS_EVENT).a("node", node.as_str()).build()
                    }
                    Ev::Delete(node, redirect) => {
                        let mut w = base(node, EventKind::Delete);
                        w.4.clone_from(redirect);
                        want.push(w);
                        let r = redirect.iter().map(|u| {
                            Element::builder("redirect", NS_EVENT).a("uri", u.as_str()).build()
                        });
                        Element::builder("delete", NS_EVENT)
                            .a("node", node.as_str())
                            .append_all(r)
                            .build()
                    }
                });
            }
            let got = parse_event("p", "s", &reparsed(&ev.build())).map_err(TestCaseError::fail)?;
            let got: Vec<_> = got
                .into_iter()
                .map(|e| (e.kind, e.node, e.items, e.retracted, e.redirect))
                .collect();
            prop_assert_eq!(got, want);
        }

        /// Any element, given to every reader: no panic.
        #[test]
        fn any_element_is_read(e in arb::element(NAMES, NSS, ATTRS)) {
            let r = Some(&e);
            let _ = parse_items(Some(e.clone()));
            let _ = parse_event("p", "s", &e);
            let _ = parse_list(r, "subscriptions");
            let _ = parse_list(r, "affiliations");
            let _ = parse_subscription(r);
            let _ = parse_disco_items(r);
            prop_assert!(parse_disco_info(r).is_object());
            let _ = config_form(r);
            let _ = created_node(r);
            let _ = published_id(r);
            let item = Item::parse(&e);
            prop_assert_eq!(item.payload.is_some(), item.element.is_some());
        }
    }
}
