//! XEP-0277: Microblogging over XMPP — blog posts as Atom entries in pubsub.
//!
//! Why here and how: frontends think in posts (title, content, tags), the network in
//! Atom entries; this plugin converts both ways ([`atom_to_json`], [`json_to_atom`])
//! and registers the `blog` analyser of the pubsub cache, so blogs are cached whole
//! and `blog_get` (which goes through the XEP-0060 items request) is answered from the
//! cache once a node is synced. Posts live on the profile's PEP node
//! `urn:xmpp:microblog:0` unless another service or node is given.

use std::sync::Arc;

use perch_actions::blog::{self as actions, GetArgs, PostRef, Posts, PublishArgs, RetractArgs};
use perch_plugin_api::action::opt_jid_arg;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::minidom::rxml::{Namespace, NcName};
use perch_plugin_api::{Host, HostError, Plugin, PluginError, PluginFactory, PluginInfo, Serve};
use serde_json::{Map, Value, json};

use crate::pubsub_cache::{Analyser, Analysers, Analysis};
use crate::xep_0059::RsmRequest;
use crate::xep_0060::{self, ItemsRequest, xml};
use perch_codec::dom::Attr;

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
                // The XHTML `<div/>` (RFC 4287 §4.1.3.3); what else a sender put
                // there is not XHTML content.
                if let Some(div) = c.children().find(|d| d.ns() == NS_XHTML) {
                    out.insert("content_xhtml".into(), json!(perch_codec::dom::to_xml(div)));
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

/// `xmpp:service?;node=name` → (service, node), percent-decoded (RFC 5122).
fn parse_xmpp_uri(uri: &str) -> (Option<String>, Option<String>) {
    let Some(rest) = uri.strip_prefix("xmpp:") else {
        return (None, None);
    };
    let (service, query) = rest.split_once('?').unwrap_or((rest, ""));
    let node = query
        .split(';')
        .find_map(|p| p.strip_prefix("node="))
        .map(percent_decode);
    (Some(percent_decode(service)), node)
}

/// (service, node) → `xmpp:service?;node=name`, each part percent-encoded where it
/// would end its part or the URI (`?`, `;`, `#`, `%`, …) or is not ASCII.
fn xmpp_uri(service: &str, node: &str) -> String {
    format!(
        "xmpp:{}?;node={}",
        percent_encode(service, b"!$&'()*+,;=:@/"),
        percent_encode(node, b"!$'()*+,:@/")
    )
}

fn percent_encode(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` escapes decoded; text that does not decode to UTF-8 is kept as it came.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(x)) => {
                out.push(x);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_owned())
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
            (None, Some(s), Some(n)) => xmpp_uri(s, n),
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
pub struct Microblog;

/// The `service` and `node` arguments: the profile's own account and the
/// microblog node when not given.
fn target(
    service: Option<&str>,
    node: Option<String>,
) -> Result<(Option<perch_plugin_api::jid::Jid>, String), HostError> {
    Ok((
        opt_jid_arg("service", service)?,
        node.unwrap_or_else(|| NODE.to_owned()),
    ))
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

impl Plugin for Microblog {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Microblogging",
    description: "Blog posts as Atom entries over pubsub; cached whole by the pubsub cache",
    dependencies: &[xep_0060::IMPORT_NAME],
    recommendations: &[crate::pubsub_cache::IMPORT_NAME],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host; `analysers`: the pubsub cache's,
/// where the `blog` analyser goes.
pub fn factory(analysers: Arc<Analysers>) -> PluginFactory {
    PluginFactory::new(INFO, move |host: Arc<dyn Host>| async move {
        analysers.register(analyser()).map_err(PluginError)?;
        // Contacts' blogs arrive without subscribing (XEP-0163).
        host.add_feature(&format!("{NODE}+notify"));
        register_actions(&host);
        Ok(Arc::new(Microblog) as Arc<dyn Plugin>)
    })
}

fn register_actions(host: &Arc<dyn Host>) {
    host.serve(
        actions::Publish,
        host.clone(),
        |h, profile, args| async move { publish(&*h, &profile, args).await },
    );
    host.serve(actions::Get, host.clone(), blog_get);
    host.serve(actions::Retract, host.clone(), blog_retract);
}

/// `blog_get`.
async fn blog_get(host: Arc<dyn Host>, profile: String, a: GetArgs) -> Result<Posts, HostError> {
    let (to, node) = target(a.service.as_deref(), a.node)?;
    let max = a.max.and_then(|m| usize::try_from(m).ok());
    let index = a.index.and_then(|m| usize::try_from(m).ok());
    let (before, after) = (a.before, a.after);
    let rsm = (before.is_some() || after.is_some() || index.is_some()).then(|| RsmRequest {
        max: Some(max.unwrap_or(10)),
        before,
        after,
        index,
    });
    let item_ids = a.item_ids;
    let req = ItemsRequest {
        profile,
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
        use_cache: a.use_cache,
    };
    let page = xep_0060::get_items(&*host, req).await?;
    let posts: Vec<Value> = page.items.iter().rev().map(post_of).collect();
    Ok(Posts {
        service: page.service,
        node: page.node,
        posts,
        rsm: json!(page.rsm),
        source: json!(page.source),
    })
}

/// `blog_retract`.
async fn blog_retract(
    host: Arc<dyn Host>,
    profile: String,
    a: RetractArgs,
) -> Result<PostRef, HostError> {
    let (to, node) = target(a.service.as_deref(), a.node)?;
    let id = a.item_id;
    host.iq(
        &profile,
        to.clone(),
        true,
        xml::retract(&node, std::slice::from_ref(&id), true),
    )
    .await?;
    Ok(PostRef {
        service: xep_0060::service_name(&*host, &profile, to.as_ref()).await,
        node,
        item_id: id,
    })
}

/// The publication date of post `item_id`, as the service has it (`None`: no such
/// post, or undated).
async fn published_date(
    host: &dyn Host,
    profile: &str,
    service: Option<perch_plugin_api::jid::Jid>,
    node: &str,
    item_id: &str,
) -> Option<String> {
    let req = ItemsRequest {
        profile: profile.to_owned(),
        service,
        node: node.to_owned(),
        max_items: None,
        item_ids: vec![item_id.to_owned()],
        rsm: None,
        all: false,
        // Asked of the service: before a first post the node does not exist, and a
        // cache sync started by this read would fail on it and keep the node out of
        // the cache.
        use_cache: false,
    };
    let page = xep_0060::get_items(host, req).await.ok()?;
    let post = post_of(page.items.first()?);
    post["published"].as_str().map(str::to_owned)
}

/// A new post gets an id, dates and its author; an edit keeps its publication date.
async fn publish(host: &dyn Host, profile: &str, a: PublishArgs) -> Result<PostRef, HostError> {
    let (to, node) = target(a.service.as_deref(), a.node)?;
    let mut post = a.post;
    let me = host
        .bound_jid(profile)
        .await
        .ok_or_else(|| HostError::NotConnected(profile.to_owned()))?
        .to_bare();
    let service = xep_0060::service_name(host, profile, to.as_ref()).await;
    let edit = a.item_id.is_some();
    let item_id = a
        .item_id
        .unwrap_or_else(|| perch_plugin_api::ids::random_hex(8));
    let now = now_rfc3339();
    // An edit keeps the original publication date.
    let previous = if edit {
        published_date(host, profile, to.clone(), &node, &item_id).await
    } else {
        None
    };
    let published = previous.unwrap_or_else(|| now.clone());
    post.entry("published").or_insert(json!(published));
    post.insert("updated".into(), json!(now));
    // The item's XMPP URI, node and item id percent-encoded (as Libervia writes it).
    post.entry("id").or_insert_with(|| {
        json!(format!(
            "xmpp:{}?;node={};item={}",
            percent_encode(&service, b"@"),
            percent_encode(&node, b""),
            percent_encode(&item_id, b"")
        ))
    });
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
            profile,
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
            tracing::debug!(%profile, %node, error = %e, "publish-options refused; publishing without");
            host.iq(
                profile,
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
    Ok(PostRef {
        service,
        node,
        item_id,
    })
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

    /// A comments node given as service and node went into the URI as it was: one
    /// holding `;`, `%` or `?` read back cut or changed (found by
    /// `posts_survive_atom_and_back`).
    #[test]
    fn comment_uris_are_percent_encoded() {
        let mut m = Map::new();
        m.insert(
            "comments".into(),
            json!([{"service": "s@example.org", "node": "a;b%2Fc?d é"}]),
        );
        let j = atom_to_json(&json_to_atom(&m).unwrap());
        assert_eq!(j["comments"][0]["node"], "a;b%2Fc?d é");
        assert_eq!(j["comments"][0]["service"], "s@example.org");
        assert_eq!(
            j["comments"][0]["uri"],
            "xmpp:s@example.org?;node=a%3Bb%252Fc%3Fd%20%C3%A9"
        );
        // Other clients' URIs, encoded or not, read as before.
        let read = |u| parse_xmpp_uri(u);
        assert_eq!(
            read("xmpp:pubsub.example.org?;node=urn%3Axmpp%3Amicroblog%3A0%3Acomments%2F1"),
            (
                Some("pubsub.example.org".into()),
                Some("urn:xmpp:microblog:0:comments/1".into())
            )
        );
        assert_eq!(
            read("xmpp:s?;node=100%;item=x"),
            (Some("s".into()), Some("100%".into()))
        );
        assert_eq!(
            read("xmpp:s?;node=%+f%ff"),
            (Some("s".into()), Some("%+f%ff".into()))
        );
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

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use perch_codec::dom::{arb, to_xml};
    use perch_plugin_api::minidom::Node;
    use proptest::option::of;
    use proptest::prelude::*;
    use proptest::sample::select;

    /// Text as a frontend gives it, without the surrounding blanks Atom reading trims.
    fn trimmed() -> impl Strategy<Value = String> {
        arb::text().prop_map(|s| s.trim().to_owned())
    }

    fn xhtml() -> impl Strategy<Value = Element> {
        arb::element(&["div", "p", "b"], &[NS_XHTML], &["class"])
    }

    /// A post as a frontend sends it, and the post it must read back as.
    fn post() -> impl Strategy<Value = (Map<String, Value>, Map<String, Value>)> {
        let comment = prop_oneof![
            (arb::text(), arb::text()).prop_map(|(s, n)| json!({"service": s, "node": n})),
            "xmpp:[ -~]{0,20}".prop_map(|u| json!({"uri": u})),
        ];
        let xhtml = prop_oneof![
            xhtml().prop_map(|e| {
                let x = String::from(&e);
                (x.clone(), x)
            }),
            "[a-z][a-z ]{0,10}[a-z]"
                .prop_map(|t| (t.clone(), format!("<div xmlns='{NS_XHTML}'>{t}</div>"))),
        ];
        (
            (of(trimmed()), of(trimmed()), of(trimmed()), of(xhtml)),
            (
                of((of(trimmed()), of(trimmed()))),
                of(trimmed()),
                of(trimmed()),
            ),
            (
                prop::collection::vec(arb::text(), 0..4),
                of(arb::text()),
                prop::collection::vec(comment, 0..3),
            ),
        )
            .prop_map(
                |(
                    (title, id, content, xhtml),
                    (author, published, updated),
                    (tags, language, comments),
                )| {
                    let mut post = Map::new();
                    let mut put = |k: &str, v: Option<String>| {
                        if let Some(v) = v {
                            post.insert(k.into(), json!(v));
                        }
                    };
                    put("title", title);
                    put("id", id);
                    put("content", content);
                    put("published", published);
                    put("updated", updated);
                    put("language", language);
                    let mut expected = post.clone();
                    expected.entry("title").or_insert(json!(""));
                    if let Some((given, read)) = xhtml {
                        post.insert("content_xhtml".into(), json!(given));
                        expected.insert("content_xhtml".into(), json!(read));
                    }
                    if let Some((name, jid)) = author {
                        let mut a = Map::new();
                        if let Some(n) = name {
                            a.insert("name".into(), json!(n));
                        }
                        if let Some(j) = jid {
                            a.insert("jid".into(), json!(j));
                        }
                        post.insert("author".into(), json!(a.clone()));
                        expected.insert("author".into(), json!(a));
                    }
                    if !tags.is_empty() {
                        post.insert("tags".into(), json!(tags));
                        expected.insert("tags".into(), json!(tags));
                    }
                    if !comments.is_empty() {
                        post.insert("comments".into(), json!(comments));
                        expected.insert("comments".into(), json!(comments));
                    }
                    (post, expected)
                },
            )
    }

    /// An Atom entry as other clients write them, with what they may add.
    fn entry() -> impl Strategy<Value = Element> {
        let leaf = |names: &'static [&'static str]| {
            (select(names), arb::text())
                .prop_map(|(n, t)| Element::builder(n, NS_ATOM).append(t).build())
        };
        let content = (
            of(select(&["text", "html", "xhtml", "xml"][..])),
            prop::collection::vec(
                prop_oneof![
                    arb::text().prop_map(Node::Text),
                    xhtml().prop_map(Node::Element),
                    arb::element(&["x"], &["urn:other"], &["a"]).prop_map(Node::Element),
                ],
                0..3,
            ),
        )
            .prop_map(|(kind, nodes)| {
                let mut c = Element::builder("content", NS_ATOM).append_all(nodes);
                if let Some(k) = kind {
                    c = c.a("type", k);
                }
                c.build()
            });
        let author = (of(leaf(&["name"])), of(leaf(&["uri", "email"]))).prop_map(|(n, u)| {
            Element::builder("author", NS_ATOM)
                .append_all(n.into_iter().chain(u))
                .build()
        });
        let category = of(arb::text()).prop_map(|t| {
            let c = Element::builder("category", NS_ATOM);
            match t {
                Some(t) => c.a("term", t).build(),
                None => c.build(),
            }
        });
        let link = (select(&["replies", "alternate"][..]), "(xmpp:)?[ -~]{0,24}").prop_map(
            |(rel, href)| {
                Element::builder("link", NS_ATOM)
                    .a("rel", rel)
                    .a("href", href)
                    .build()
            },
        );
        let child = prop_oneof![
            leaf(&["title", "id", "published", "updated", "summary"]),
            content,
            author,
            category,
            link,
            arb::element(&["entry", "title", "content"], &["urn:other"], &["type"]),
        ];
        (of(arb::text()), prop::collection::vec(child, 0..8)).prop_map(|(lang, children)| {
            let mut e = Element::builder("entry", NS_ATOM);
            if let (Some(l), Ok(n)) = (lang, NcName::try_from("lang")) {
                e = e.attr_ns(Namespace::XML, n, l);
            }
            reparsed(&e.append_all(children).build())
        })
    }

    /// What the network hands over: the element written and read back.
    fn reparsed(e: &Element) -> Element {
        to_xml(e).parse().expect("what we write reads back")
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            arb::any_text().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(
                    select(&["uri", "service", "node", "name", "jid", "x"][..]),
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(arb::config())]

        /// Post → Atom (written, read back) → post: the same post (a missing title
        /// reads as "", plain-text XHTML comes back in its `<div/>`, a comments node
        /// given as service and node comes back with its URI too).
        #[test]
        fn posts_survive_atom_and_back((post, mut expected) in post()) {
            let entry = json_to_atom(&post).map_err(TestCaseError::fail)?;
            let mut got = atom_to_json(&reparsed(&entry));
            let got_comments = got.as_object_mut().and_then(|o| o.remove("comments"));
            let comments = expected.remove("comments");
            prop_assert_eq!(got, Value::Object(expected));
            let (got_comments, comments) = (
                got_comments.unwrap_or_default(),
                comments.unwrap_or_default(),
            );
            prop_assert_eq!(got_comments.as_array().map(Vec::len), comments.as_array().map(Vec::len));
            for (g, c) in got_comments.as_array().into_iter().flatten().zip(comments.as_array().into_iter().flatten()) {
                for (k, v) in c.as_object().into_iter().flatten() {
                    prop_assert_eq!(&g[k], v, "{}", k);
                }
            }
        }

        /// Atom → post → Atom → post: the post is stable (a missing title reads as "").
        #[test]
        fn entries_read_stably(e in entry()) {
            let mut first = atom_to_json(&e);
            let entry = json_to_atom(first.as_object().expect("an object"))
                .map_err(TestCaseError::fail)?;
            first.as_object_mut().expect("an object").entry("title").or_insert(json!(""));
            prop_assert_eq!(atom_to_json(&reparsed(&entry)), first);
        }

        /// Any element reads without a panic.
        #[test]
        fn any_element_is_read(
            e in arb::element(
                &["entry", "title", "content", "author", "uri", "link", "category", "div"],
                &[NS_ATOM, NS_XHTML, "urn:other"],
                &["type", "term", "rel", "href"],
            )
        ) {
            prop_assert!(atom_to_json(&e).is_object());
        }

        /// Any JSON object: an entry that can be written, or an error; never a panic.
        #[test]
        fn any_post_is_written_or_refused(
            post in prop::collection::btree_map(
                select(&["title", "id", "content", "content_xhtml", "author", "published",
                         "updated", "tags", "language", "comments"][..]),
                json_value(),
                0..8,
            )
        ) {
            let post: Map<String, Value> = post.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Ok(entry) = json_to_atom(&post) {
                prop_assert!(to_xml(&entry).parse::<Element>().is_ok());
            }
        }
    }
}
