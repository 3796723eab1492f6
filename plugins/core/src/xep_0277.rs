//! XEP-0277: Microblogging over XMPP — blog posts as Atom entries in pubsub.
//!
//! Why here and how: frontends think in posts (title, content, tags), the network in
//! Atom entries; this plugin converts both ways ([`atom_to_json`], [`json_to_atom`])
//! and registers the `blog` analyser of the pubsub cache, so blogs are cached whole
//! and `blog_get` (which goes through the XEP-0060 items request) is answered from the
//! cache once a node is synced. Posts live on the profile's PEP node
//! `urn:xmpp:microblog:0` unless another service or node is given.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::action::{ActionSpec, Call, Param, ParamType};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::minidom::rxml::{Namespace, NcName};
use perch_plugin_api::{Host, HostError, Plugin, PluginError, PluginInfo};
use serde_json::{Map, Value, json};

use crate::dom::Attr;
use crate::pubsub_cache::{Analyser, Analysers, Analysis};
use crate::xep_0059::RsmRequest;
use crate::xep_0060::{self, ItemsRequest, xml};

pub const IMPORT_NAME: &str = "XEP-0277";
pub const NODE: &str = "urn:xmpp:microblog:0";
pub const COMMENTS_PREFIX: &str = "urn:xmpp:microblog:0:comments/";
pub const NS_ATOM: &str = "http://www.w3.org/2005/Atom";
pub const NS_XHTML: &str = "http://www.w3.org/1999/xhtml";

/// RFC 3339 now, to the second, UTC.
fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// An Atom entry as a post: `{id, title, content, content_xhtml, author: {name, jid},
/// published, updated, tags, language, comments: [{uri, service, node}]}` (absent
/// keys are left out).
pub fn atom_to_json(entry: &Element) -> Value {
    let mut out = Map::new();
    let child = |name: &str| entry.children().find(|c| c.is(name, NS_ATOM));
    let text = |name: &str| child(name).map(Element::text).map(|t| t.trim().to_owned());
    if let Some(id) = text("id") {
        out.insert("id".into(), json!(id));
    }
    if let Some(t) = text("title") {
        out.insert("title".into(), json!(t));
    }
    for c in entry.children().filter(|c| c.is("content", NS_ATOM)) {
        match c.attr("type").unwrap_or("text") {
            "xhtml" => {
                if let Some(div) = c.children().next() {
                    out.insert("content_xhtml".into(), json!(String::from(div)));
                }
            }
            _ => {
                out.insert("content".into(), json!(c.text().trim()));
            }
        }
    }
    if let Some(a) = child("author") {
        let mut author = Map::new();
        if let Some(n) = a.get_child("name", NS_ATOM) {
            author.insert("name".into(), json!(n.text().trim()));
        }
        if let Some(u) = a.get_child("uri", NS_ATOM) {
            let uri = u.text();
            let uri = uri.trim();
            author.insert(
                "jid".into(),
                json!(uri.strip_prefix("xmpp:").unwrap_or(uri)),
            );
        }
        out.insert("author".into(), Value::Object(author));
    }
    for k in ["published", "updated"] {
        if let Some(t) = text(k) {
            out.insert(k.into(), json!(t));
        }
    }
    let tags: Vec<&str> = entry
        .children()
        .filter(|c| c.is("category", NS_ATOM))
        .filter_map(|c| c.attr("term"))
        .collect();
    if !tags.is_empty() {
        out.insert("tags".into(), json!(tags));
    }
    if let Some(lang) = xml_lang(entry) {
        out.insert("language".into(), json!(lang));
    }
    let comments: Vec<Value> = entry
        .children()
        .filter(|c| c.is("link", NS_ATOM) && c.attr("rel") == Some("replies"))
        .filter_map(|l| l.attr("href"))
        .map(|href| {
            let (service, node) = parse_xmpp_uri(href);
            json!({"uri": href, "service": service, "node": node})
        })
        .collect();
    if !comments.is_empty() {
        out.insert("comments".into(), json!(comments));
    }
    Value::Object(out)
}

/// The `xml:lang` of an element.
fn xml_lang(e: &Element) -> Option<&str> {
    e.attrs()
        .iter()
        .find(|((ns, name), _)| **ns == Namespace::XML && name.as_str() == "lang")
        .map(|(_, v)| v.as_str())
}

/// `xmpp:service?;node=name` → (service, node).
fn parse_xmpp_uri(uri: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = uri.strip_prefix("xmpp:") else {
        return (None, None);
    };
    let (service, query) = rest.split_once('?').unwrap_or((rest, ""));
    let node = query
        .split(';')
        .find_map(|p| p.strip_prefix("node="))
        .map(|n| n.replace("%2F", "/").replace("%3A", ":"));
    (Some(service.to_owned()), node)
}

fn field<'a>(post: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    post.get(key).and_then(Value::as_str)
}

/// A post as an Atom entry. `content_xhtml` must be one XHTML element (a `<div/>`
/// in the XHTML namespace is added around text without one).
pub fn json_to_atom(post: &Map<String, Value>) -> Result<Element, String> {
    let leaf = |name: &str, t: &str| Element::builder(name, NS_ATOM).append(t).build();
    let mut e = Element::builder("entry", NS_ATOM);
    if let (Some(lang), Ok(name)) = (field(post, "language"), NcName::try_from("lang")) {
        e = e.attr_ns(Namespace::XML, name, lang);
    }
    let mut entry = e.build();
    let mut push = |c: Element| {
        entry.append_child(c);
    };
    push(
        Element::builder("title", NS_ATOM)
            .a("type", "text")
            .append(field(post, "title").unwrap_or_default())
            .build(),
    );
    if let Some(id) = field(post, "id") {
        push(leaf("id", id));
    }
    for k in ["published", "updated"] {
        if let Some(t) = field(post, k) {
            push(leaf(k, t));
        }
    }
    if let Some(a) = post.get("author").and_then(Value::as_object) {
        let mut author = Element::builder("author", NS_ATOM);
        if let Some(n) = field(a, "name") {
            author = author.append(leaf("name", n));
        }
        if let Some(j) = field(a, "jid") {
            author = author.append(leaf("uri", &format!("xmpp:{j}")));
        }
        push(author.build());
    }
    if let Some(c) = field(post, "content") {
        push(
            Element::builder("content", NS_ATOM)
                .a("type", "text")
                .append(c)
                .build(),
        );
    }
    if let Some(x) = field(post, "content_xhtml") {
        let div: Element = match x.trim().parse::<Element>() {
            Ok(d) if d.ns() == NS_XHTML => d,
            _ => format!("<div xmlns='{NS_XHTML}'>{x}</div>")
                .parse()
                .map_err(|e| format!("content_xhtml: not XHTML: {e}"))?,
        };
        push(
            Element::builder("content", NS_ATOM)
                .a("type", "xhtml")
                .append(div)
                .build(),
        );
    }
    for t in post
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        push(Element::builder("category", NS_ATOM).a("term", t).build());
    }
    for c in post
        .get("comments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let href = match (c["uri"].as_str(), c["service"].as_str(), c["node"].as_str()) {
            (Some(u), _, _) => u.to_owned(),
            (None, Some(s), Some(n)) => format!("xmpp:{s}?;node={n}"),
            _ => return Err(format!("comments: {c} needs uri, or service and node")),
        };
        push(
            Element::builder("link", NS_ATOM)
                .a("rel", "replies")
                .a("title", "comments")
                .a("href", href)
                .build(),
        );
    }
    Ok(entry)
}

/// The `blog` analyser: microblog nodes (and their comment nodes), Atom items.
pub fn analyser() -> Analyser {
    Analyser {
        name: IMPORT_NAME.into(),
        kind: "blog".into(),
        subtype: None,
        node_prefix: Some(NODE.into()),
        namespace: Some(NS_ATOM.into()),
        to_sync: true,
        priority: 0,
        parser: Some(Arc::new(|e: &Element| {
            e.is("entry", NS_ATOM).then(|| atom_to_json(e))
        })),
        on_match: Some(Arc::new(|node: &str, a: &mut Analysis| {
            if node.starts_with(COMMENTS_PREFIX) {
                a.subtype = Some("comment".into());
            }
        })),
    }
}

#[derive(Debug)]
pub struct Microblog {
    analysers: Arc<Analysers>,
}

impl Microblog {
    /// `analysers`: the pubsub cache's, where the `blog` analyser goes.
    pub fn new(analysers: Arc<Analysers>) -> Self {
        Self { analysers }
    }
}

fn target(call: &Call) -> (Option<perch_plugin_api::jid::Jid>, String) {
    (
        call.args.jid("service"),
        call.args.str("node").unwrap_or(NODE).to_owned(),
    )
}

fn post_of(item: &xep_0060::Item) -> Value {
    let mut v = item
        .payload
        .as_deref()
        .and_then(|p| p.parse::<Element>().ok())
        .filter(|e| e.is("entry", NS_ATOM))
        .map_or_else(|| json!({}), |e| atom_to_json(&e));
    v["item_id"] = json!(item.id);
    v
}

impl Plugin for Microblog {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            import_name: IMPORT_NAME,
            name: "Microblogging",
            description: "Blog posts as Atom entries over pubsub; cached whole by the pubsub cache",
            dependencies: &[xep_0060::IMPORT_NAME],
            recommendations: &[crate::pubsub_cache::IMPORT_NAME],
        }
    }

    fn init(self: Arc<Self>, host: Arc<dyn Host>) -> BoxFuture<'static, Result<(), PluginError>> {
        async move {
            self.analysers.register(analyser()).map_err(PluginError)?;
            // Contacts' blogs arrive without subscribing (XEP-0163).
            host.add_feature(IMPORT_NAME, &format!("{NODE}+notify"));
            let service = || {
                Param::optional(
                    "service",
                    ParamType::Jid,
                    "the pubsub service; default: the profile's own account (PEP)",
                )
            };
            let node = || {
                Param::optional(
                    "node",
                    ParamType::String,
                    "the node; default urn:xmpp:microblog:0",
                )
            };
            let spec = |name, doc, params| ActionSpec {
                name,
                plugin: String::new(),
                doc,
                needs_session: true,
                params,
            };
            let h = host.clone();
            host.add_action(
                IMPORT_NAME,
                spec(
                    "blog_publish",
                    "Publishes a post, or edits one (same item_id: its publication date is kept)",
                    vec![
                        service(),
                        node(),
                        Param::optional(
                            "item_id",
                            ParamType::String,
                            "the post's item id; default: a new one",
                        ),
                        Param::required(
                            "post",
                            ParamType::Object,
                            "{title, content, content_xhtml, tags, language, comments}",
                        ),
                    ],
                ),
                Arc::new(move |call: Call| {
                    let host = h.clone();
                    async move { publish(&*host, &call).await }.boxed()
                }),
            );
            let h = host.clone();
            host.add_action(
                IMPORT_NAME,
                spec(
                    "blog_get",
                    "Gets posts (newest max, ids, an RSM page), through the pubsub cache",
                    vec![
                        service(),
                        node(),
                        Param::optional(
                            "max",
                            ParamType::Integer,
                            "the newest N posts (default 10)",
                        ),
                        Param::optional("item_ids", ParamType::List, "these posts only"),
                        Param::optional(
                            "before",
                            ParamType::String,
                            "RSM: the page before this id",
                        ),
                        Param::optional("after", ParamType::String, "RSM: the page after this id"),
                        Param::optional("index", ParamType::Integer, "RSM: the page starting here"),
                        Param::optional("use_cache", ParamType::Boolean, "false: ask the service")
                            .with_default(json!(true)),
                    ],
                ),
                Arc::new(move |call: Call| {
                    let host = h.clone();
                    async move {
                        let (to, node) = target(&call);
                        let max = call.args.i64("max").and_then(|m| usize::try_from(m).ok());
                        let index = call.args.i64("index").and_then(|m| usize::try_from(m).ok());
                        let (before, after) = (call.args.str("before"), call.args.str("after"));
                        let rsm =
                            (before.is_some() || after.is_some() || index.is_some()).then(|| {
                                RsmRequest {
                                    max: Some(max.unwrap_or(10)),
                                    before: before.map(str::to_owned),
                                    after: after.map(str::to_owned),
                                    index,
                                }
                            });
                        let item_ids = call.args.list("item_ids");
                        let req = ItemsRequest {
                            profile: call.profile.clone(),
                            service: to,
                            node,
                            max_items: if rsm.is_some() || !item_ids.is_empty() {
                                None
                            } else {
                                Some(max.unwrap_or(10))
                            },
                            item_ids,
                            rsm,
                            all: false,
                            use_cache: call.args.bool("use_cache").unwrap_or(true),
                        };
                        let page = xep_0060::get_items(&*host, req).await?;
                        let posts: Vec<Value> = page.items.iter().rev().map(post_of).collect();
                        Ok(json!({
                            "service": page.service, "node": page.node, "posts": posts,
                            "rsm": page.rsm, "source": page.source,
                        }))
                    }
                    .boxed()
                }),
            );
            let h = host.clone();
            host.add_action(
                IMPORT_NAME,
                spec(
                    "blog_retract",
                    "Deletes a post",
                    vec![
                        service(),
                        node(),
                        Param::required("item_id", ParamType::String, "the post's item id"),
                    ],
                ),
                Arc::new(move |call: Call| {
                    let host = h.clone();
                    async move {
                        let (to, node) = target(&call);
                        let id = call.args.str("item_id").unwrap_or_default().to_owned();
                        host.iq(
                            &call.profile,
                            to.clone(),
                            true,
                            xml::retract(&node, std::slice::from_ref(&id), true),
                        )
                        .await?;
                        let service =
                            xep_0060::service_name(&*host, &call.profile, to.as_ref()).await;
                        Ok(json!({"service": service, "node": node, "item_id": id}))
                    }
                    .boxed()
                }),
            );
            Ok(())
        }
        .boxed()
    }
}

/// A new post gets an id, dates and its author; an edit keeps its publication date.
async fn publish(host: &dyn Host, call: &Call) -> Result<Value, HostError> {
    let (to, node) = target(call);
    let mut post = call.args.object("post").cloned().unwrap_or_default();
    let me = host
        .bound_jid(&call.profile)
        .await
        .ok_or_else(|| HostError::NotConnected(call.profile.clone()))?
        .to_bare();
    let service = xep_0060::service_name(host, &call.profile, to.as_ref()).await;
    let item_id = match call.args.str("item_id") {
        Some(i) => i.to_owned(),
        None => perch_plugin_api::ids::random_hex(8),
    };
    let now = now_rfc3339();
    // An edit keeps the original publication date.
    let previous = if call.args.str("item_id").is_some() {
        let req = ItemsRequest {
            profile: call.profile.clone(),
            service: to.clone(),
            node: node.clone(),
            max_items: None,
            item_ids: vec![item_id.clone()],
            rsm: None,
            all: false,
            use_cache: true,
        };
        xep_0060::get_items(host, req)
            .await
            .ok()
            .and_then(|p| p.items.first().map(post_of))
    } else {
        None
    };
    let published = previous
        .as_ref()
        .and_then(|p| p["published"].as_str().map(str::to_owned))
        .unwrap_or_else(|| now.clone());
    post.entry("published").or_insert(json!(published));
    post.insert("updated".into(), json!(now));
    post.entry("id")
        .or_insert_with(|| json!(format!("xmpp:{service}?;node={node};item={item_id}")));
    post.entry("author").or_insert_with(|| json!({"jid": me.to_string(), "name": me.node().map(|n| n.to_string()).unwrap_or_default()}));
    if post.get("content").is_none()
        && post.get("content_xhtml").is_none()
        && post.get("title").is_none()
    {
        return Err(HostError::BadArgument(
            "post: give at least a title or a content".into(),
        ));
    }
    let entry = json_to_atom(&post).map_err(|e| HostError::BadArgument(format!("post: {e}")))?;
    // A blog keeps every post: ask for it (XEP-0060 "max"; Prosody's PEP keeps one
    // item by default). A node configured otherwise refuses the precondition: its
    // owner chose, publish as it is.
    let mut options = Map::new();
    options.insert("pubsub#max_items".into(), json!("max"));
    let with = host
        .iq(
            &call.profile,
            to.clone(),
            true,
            xml::publish(&node, Some(&item_id), entry.clone(), Some(&options)),
        )
        .await;
    match with {
        Err(HostError::Stanza(e))
            if matches!(
                e.condition.as_str(),
                "conflict" | "bad-request" | "not-acceptable"
            ) =>
        {
            tracing::debug!(profile = %call.profile, %node, error = %e, "publish-options refused; publishing without");
            host.iq(
                &call.profile,
                to,
                true,
                xml::publish(&node, Some(&item_id), entry, None),
            )
            .await?;
        }
        other => {
            other?;
        }
    }
    Ok(json!({"service": service, "node": node, "item_id": item_id}))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = "<entry xmlns='http://www.w3.org/2005/Atom' xml:lang='fr'>\
        <title type='text'>Bonjour</title><id>tag:example.org,2026:1</id>\
        <published>2026-11-23T10:00:00Z</published><updated>2026-11-23T11:00:00Z</updated>\
        <author><name>Alice</name><uri>xmpp:alice@example.org</uri></author>\
        <content type='text'>Un texte</content>\
        <content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><p>Un <b>texte</b></p></div></content>\
        <category term='perch'/><category term='xmpp'/>\
        <link rel='replies' title='comments' href='xmpp:pubsub.example.org?;node=urn:xmpp:microblog:0:comments/1'/>\
        </entry>";

    #[test]
    fn atom_to_json_and_back() {
        let e: Element = ENTRY.parse().unwrap();
        let j = atom_to_json(&e);
        assert_eq!(j["title"], "Bonjour");
        assert_eq!(j["content"], "Un texte");
        assert_eq!(
            j["content_xhtml"],
            "<div xmlns='http://www.w3.org/1999/xhtml'><p>Un <b>texte</b></p></div>"
        );
        assert_eq!(
            j["author"],
            json!({"name": "Alice", "jid": "alice@example.org"})
        );
        assert_eq!(j["tags"], json!(["perch", "xmpp"]));
        assert_eq!(j["language"], "fr");
        assert_eq!(j["comments"][0]["service"], "pubsub.example.org");
        assert_eq!(j["comments"][0]["node"], "urn:xmpp:microblog:0:comments/1");
        // JSON → Atom → JSON is stable.
        let back = json_to_atom(j.as_object().unwrap()).unwrap();
        assert_eq!(atom_to_json(&back), j);
    }

    #[test]
    fn plain_text_xhtml_is_wrapped_and_bad_comments_refused() {
        let mut m = Map::new();
        m.insert("title".into(), json!("t"));
        m.insert("content_xhtml".into(), json!("<p>hi</p>"));
        let e = json_to_atom(&m).unwrap();
        assert!(
            String::from(&e).contains("<div xmlns='http://www.w3.org/1999/xhtml'><p>hi</p></div>")
        );
        m.insert("comments".into(), json!([{"service": "s"}]));
        assert!(json_to_atom(&m).unwrap_err().contains("comments"));
    }

    #[test]
    fn analyser_marks_comment_nodes() {
        let a = Analysers::default();
        a.register(analyser()).unwrap();
        assert_eq!(a.analyse(NODE, None).kind.as_deref(), Some("blog"));
        assert_eq!(
            a.analyse("urn:xmpp:microblog:0:comments/x", None)
                .subtype
                .as_deref(),
            Some("comment")
        );
        assert_eq!(
            a.analyse("other", Some(NS_ATOM)).analyser.as_deref(),
            Some(IMPORT_NAME)
        );
    }
}
