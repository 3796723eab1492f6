//! Libervia's pubsub, cache and blog JSON in Perch's plugin-action terms, both ways.
//!
//! Why apart from the handlers: these are pure conversions (no daemon, no bus), the
//! part of the bridge where 0.9's exact shapes matter most (item XML strings, mb_data,
//! URIs, RSM pages, cache queries), so they are unit-tested here on their own.

use std::fmt::Write;

use serde_json::{Value, json};

use super::errors::LibError;
use super::reply::{Map, OrderedMap};

/// `[{k: …, v: …}]` → `{k: v}`.
pub fn pairs(list: &Value, k: &str, v: &str) -> Map {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|e| (s(&e[k]), s(&e[v])))
        .collect()
}

/// `{service?, node}`: an empty service is the profile's own PEP.
pub fn target(service: &str, node: &str) -> Value {
    let mut a = json!({"node": node});
    if !service.is_empty() {
        a["service"] = json!(service);
    }
    a
}

pub fn json_arg(name: &str, text: &str) -> Result<Value, LibError> {
    if text.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(text).map_err(|e| LibError::value(&format!("{name} is not JSON: {e}")))
}

/// The item id of a post sent with `mbSend`: the one in mb_data, else (unless
/// `user_friendly_id` is false: then the service picks one) a readable one as 0.9
/// makes it, the title (else the text) as a URL-friendly slug plus `-` and a short
/// random suffix, e.g. `first-post-bL1B`.
pub fn post_item_id(d: &Value) -> Option<String> {
    if let Some(id) = d["id"].as_str().filter(|i| !i.is_empty()) {
        return Some(id.to_owned());
    }
    if d["user_friendly_id"].as_bool() == Some(false) {
        return None;
    }
    let base = ["title", "title_rich", "content", "content_rich"]
        .iter()
        .find_map(|k| d[*k].as_str().filter(|t| !t.is_empty()))
        .unwrap_or_default();
    Some(format!("{}-{}", slug(base), short_suffix()))
}

/// Longest slug 0.9 makes; longer ones lose whole words from the end.
const SLUG_MAX: usize = 60;

/// Text made URL-friendly as 0.9 does: accents dropped (é → e), anything but ASCII
/// letters, digits, `,` and `_` is a word break, lower case, words joined by `-`.
fn slug(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let ascii: String = text.nfd().filter(char::is_ascii).collect();
    let spaced: String = ascii
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == ',' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let mut s = spaced.split_whitespace().collect::<Vec<_>>().join("-");
    while s.len() > SLUG_MAX {
        match s.rfind('-') {
            Some(i) => s.truncate(i),
            None => s.truncate(SLUG_MAX),
        }
    }
    s
}

/// Four random letters or digits (0.9 uses four URL-safe base64 characters; leaving
/// out `-` and `_` keeps the slug's end unambiguous).
fn short_suffix() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let hex = perch_plugin_api::ids::random_hex(4);
    (0..4)
        .map(|i| {
            let b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or_default();
            char::from(ALPHABET[usize::from(b) % ALPHABET.len()])
        })
        .collect()
}

/// A node configuration form as 0.9's `psNodeConfigurationGet` gives it: the fields in
/// the form's order, each as Python's `str()` of the field's first value once typed
/// (`True`/`False` for booleans, `None` for no value), `FORM_TYPE` left out.
pub fn config_values(form: &Value) -> OrderedMap {
    let fields = form["fields"].as_array().into_iter().flatten();
    OrderedMap(
        fields
            .filter_map(|f| {
                let var = f["var"].as_str().filter(|v| *v != "FORM_TYPE")?;
                let first = match &f["value"] {
                    Value::Array(l) => l.first().and_then(Value::as_str),
                    v => v.as_str(),
                };
                let text = match (f["type"].as_str(), first) {
                    (_, None) => "None".to_owned(),
                    (Some("boolean"), Some(b)) => {
                        if matches!(b.trim().to_ascii_lowercase().as_str(), "1" | "true") {
                            "True".to_owned()
                        } else {
                            "False".to_owned()
                        }
                    }
                    (_, Some(t)) => t.to_owned(),
                };
                Some((var.to_owned(), text))
            })
            .collect(),
    )
}

/// The items request of `psItemsGet`/`psCacheGet`/`mbGet`: `max` -1 is no limit;
/// `rsm_max`/`rsm_before`/`rsm_after`/`rsm_index` (strings) in `extra` ask for an RSM
/// page; `use_cache: false` bypasses the cache.
pub fn items_args(
    service: &str,
    node: &str,
    max: i32,
    item_ids: &[String],
    extra: &Value,
) -> Result<Value, LibError> {
    let mut a = target(service, node);
    let num = |k: &str| -> Result<Option<i64>, LibError> {
        match &extra[k] {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(n.as_i64()),
            Value::String(t) => t
                .parse()
                .map(Some)
                .map_err(|_| LibError::value(&format!("{k} {t:?} is not a number"))),
            other => Err(LibError::value(&format!("{k} {other} is not a number"))),
        }
    };
    let rsm_max = num("rsm_max")?;
    let index = num("rsm_index")?;
    let before = extra["rsm_before"].as_str();
    let after = extra["rsm_after"].as_str();
    if !item_ids.is_empty() {
        a["item_ids"] = json!(item_ids);
    } else if before.is_some() || after.is_some() || index.is_some() {
        if let Some(b) = before {
            a["before"] = json!(b);
        }
        if let Some(x) = after {
            a["after"] = json!(x);
        }
        if let Some(i) = index {
            a["index"] = json!(i);
        }
        if let Some(m) = rsm_max.or((max >= 0).then_some(i64::from(max))) {
            a["max"] = json!(m);
        }
    } else if let Some(m) = rsm_max.or((max >= 0).then_some(i64::from(max))) {
        a["max"] = json!(m);
    } else {
        a["all"] = json!(true);
    }
    if extra["use_cache"].as_bool() == Some(false) {
        a["use_cache"] = json!(false);
    }
    Ok(a)
}

/// The parsed data of a cached item as 0.9's cache search gives it: a blog post as
/// mb_data (what `mbGet` gives), anything else as Perch parsed it.
pub fn search_parsed(item: &Value) -> Value {
    let (service, node) = (s(&item["service"]), s(&item["node"]));
    let blog = item["type"].as_str() == Some("blog") || node.starts_with("urn:xmpp:microblog:0");
    match &item["parsed"] {
        Value::Object(p) if blog => {
            let mut post = p.clone();
            post.insert("item_id".into(), item["item_id"].clone());
            mb_data(&Value::Object(post), &service, &node)
        }
        other => other.clone(),
    }
}

/// Whether `extra` asks for an RSM page (any `rsm_*` key).
pub fn rsm_asked(extra: &Value) -> bool {
    ["rsm_max", "rsm_before", "rsm_after", "rsm_index"]
        .iter()
        .any(|k| !extra[*k].is_null())
}

/// A node's XMPP URI as 0.9 writes it (RFC 5122 form; the node percent-encoded).
pub fn uri(service: &str, node: &str) -> String {
    format!("xmpp:{service}?;node={}", quote_plus(node))
}

/// An item's XMPP URI as 0.9 writes it: the JID encoded too, its `@` kept.
fn item_uri(service: &str, node: &str, item: &str) -> String {
    format!(
        "xmpp:{}?;node={};item={}",
        quote_plus(service).replace("%40", "@"),
        quote_plus(node),
        quote_plus(item)
    )
}

/// Python's `urllib.parse.quote_plus` on UTF-8: ASCII letters, digits and `_.-~` as
/// they are, a space as `+`, every other byte as `%XX` (upper-case hex).
fn quote_plus(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

fn attr_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// A Perch items page as Libervia's `psItemsGet` result: items as XML strings in the
/// pubsub namespace, in the service's order.
pub fn items_result(v: &Value) -> String {
    let (svc, node) = (s(&v["service"]), s(&v["node"]));
    let items: Vec<String> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let publisher = i["publisher"]
                .as_str()
                .map(|p| format!(" publisher='{}'", attr_escape(p)))
                .unwrap_or_default();
            format!(
                "<item xmlns='http://jabber.org/protocol/pubsub' id='{}'{publisher}>{}</item>",
                attr_escape(&s(&i["id"])),
                s(&i["payload"])
            )
        })
        .collect();
    let mut r = json!({"service": svc, "node": node, "uri": uri(&svc, &node), "items": items});
    if !v["rsm"].is_null() {
        r["rsm"] = v["rsm"].clone();
        r["complete"] = v["complete"].clone();
    }
    r.to_string()
}

/// A Perch post as Libervia's mb_data.
pub fn mb_data(post: &Value, service: &str, node: &str) -> Value {
    let id = s(&post["item_id"]);
    let epoch = |k: &str| {
        post[k]
            .as_str()
            .and_then(crate::time::parse)
            .map(|m| m / 1_000_000)
    };
    let mut d = json!({
        "service": service,
        "node": node,
        "id": id,
        "uri": item_uri(service, node, &id),
        "extra": {},
        "comments": [],
        "author_jid_verified": false,
    });
    for k in ["title", "content", "content_xhtml", "language", "tags"] {
        if !post[k].is_null() {
            d[k] = post[k].clone();
        }
    }
    if let Some(x) = d["content_xhtml"].as_str() {
        d["content_xhtml"] = json!(without_xhtml_xmlns(x));
    }
    if let Some(a) = post["id"].as_str() {
        d["atom_id"] = json!(a);
    }
    if let Some(n) = post["author"]["name"].as_str() {
        d["author"] = json!(n);
    }
    if let Some(j) = post["author"]["jid"].as_str() {
        d["author_jid"] = json!(j);
    }
    for k in ["published", "updated"] {
        if let Some(t) = epoch(k) {
            d[k] = json!(t);
        }
    }
    if let Some(c) = post["comments"].as_array() {
        d["comments"] = json!(
            c.iter()
                .map(|c| json!({"uri": c["uri"], "service": c["service"], "node": c["node"]}))
                .collect::<Vec<_>>()
        );
    }
    d
}

/// XHTML content as Libervia's frontends get it: the root `<div>` without its
/// namespace declaration (0.9 sends `<div><p>…`; what Perch parsed from the Atom entry
/// carries `xmlns='http://www.w3.org/1999/xhtml'`, the same element for an XML reader
/// but a different string for a frontend that compares or embeds it).
fn without_xhtml_xmlns(x: &str) -> String {
    for q in ['\'', '"'] {
        let decl = format!(" xmlns={q}http://www.w3.org/1999/xhtml{q}");
        if let Some(rest) = x.strip_prefix("<div")
            && let Some(after) = rest.strip_prefix(decl.as_str())
        {
            return format!("<div{after}");
        }
    }
    x.to_owned()
}

/// Libervia's cache search query in Perch's terms (same keys where they agree;
/// `order-by` and `parsed` renamed; Libervia's SQL operators mapped onto Perch's).
pub fn search_query(q: &Value) -> Result<Value, LibError> {
    let mut out = json!({});
    if let Some(f) = q["fts"].as_str() {
        out["fts"] = json!(f);
    }
    for k in ["profiles", "services", "nodes", "types", "subtypes"] {
        if let Some(l) = q[k].as_array() {
            let l: Vec<&Value> = l.iter().filter(|v| v.as_str() != Some("")).collect();
            out[k] = json!(l);
        }
    }
    for k in ["limit", "index"] {
        if let Some(n) = q[k].as_u64() {
            out[k] = json!(n);
        }
    }
    if q["with_payload"].as_bool() == Some(true) {
        out["with_xml"] = json!(true);
    }
    let mut order = Vec::new();
    for o in q["order-by"].as_array().into_iter().flatten() {
        let desc = o["direction"].as_str() == Some("desc");
        if let Some(p) = o.get("path") {
            order.push(json!({"key": "path", "path": p, "desc": desc}));
        } else {
            order.push(json!({"key": s(&o["order"]), "desc": desc}));
        }
    }
    if !order.is_empty() {
        out["order_by"] = json!(order);
    }
    let mut filters = Vec::new();
    for f in q["parsed"].as_array().into_iter().flatten() {
        let op = match s(&f["op"]).as_str() {
            "==" | "eq" => "eq".to_owned(),
            "!=" | "ne" => "ne".to_owned(),
            ">" | "gt" => "gt".to_owned(),
            ">=" | "ge" | "gte" => "gte".to_owned(),
            "<" | "lt" => "lt".to_owned(),
            "<=" | "le" | "lte" => "lte".to_owned(),
            "idisjoint" => "idisjoint".to_owned(),
            other => other.to_owned(),
        };
        filters.push(json!({"path": f["path"], "op": op, "value": f["value"]}));
    }
    if !filters.is_empty() {
        out["filters"] = json!(filters);
    }
    Ok(out)
}

pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xhtml_content_loses_only_the_root_namespace_declaration() {
        assert_eq!(
            without_xhtml_xmlns(
                "<div xmlns='http://www.w3.org/1999/xhtml'><p>Hello <em>world</em></p></div>"
            ),
            "<div><p>Hello <em>world</em></p></div>"
        );
        assert_eq!(
            without_xhtml_xmlns("<div xmlns=\"http://www.w3.org/1999/xhtml\" class=\"x\"/>"),
            "<div class=\"x\"/>"
        );
        // Anything else is left as it is.
        assert_eq!(without_xhtml_xmlns("<div><p/></div>"), "<div><p/></div>");
        assert_eq!(
            without_xhtml_xmlns("<div xmlns='urn:other'/>"),
            "<div xmlns='urn:other'/>"
        );
    }

    #[test]
    fn items_requests_translate_libervia_limits_and_rsm() {
        let none = json!({});
        assert_eq!(
            items_args("", "n", -1, &[], &none).unwrap(),
            json!({"node": "n", "all": true})
        );
        assert_eq!(
            items_args("pubsub.example.org", "n", 10, &[], &none).unwrap(),
            json!({"service": "pubsub.example.org", "node": "n", "max": 10})
        );
        let rsm = json!({"rsm_max": "5", "rsm_before": "", "use_cache": false});
        assert_eq!(
            items_args("", "n", -1, &[], &rsm).unwrap(),
            json!({"node": "n", "before": "", "max": 5, "use_cache": false})
        );
        assert_eq!(
            items_args("", "n", 10, &["a".into()], &none).unwrap(),
            json!({"node": "n", "item_ids": ["a"]})
        );
        let bad = json!({"rsm_max": "many"});
        assert!(items_args("", "n", -1, &[], &bad).is_err());
    }

    #[test]
    fn cache_search_queries_translate_to_perch_terms() {
        let q = json!({
            "fts": "hello", "types": ["blog", ""], "limit": 5,
            "order-by": [{"order": "creation", "direction": "desc"},
                         {"path": ["title"], "direction": "asc"}],
            "parsed": [{"path": ["author", "name"], "op": "==", "value": "alice"},
                       {"path": ["n"], "op": "<=", "value": 3}],
            "with_payload": true,
        });
        assert_eq!(
            search_query(&q).unwrap(),
            json!({
                "fts": "hello", "types": ["blog"], "limit": 5, "with_xml": true,
                "order_by": [{"key": "creation", "desc": true},
                             {"key": "path", "path": ["title"], "desc": false}],
                "filters": [{"path": ["author", "name"], "op": "eq", "value": "alice"},
                            {"path": ["n"], "op": "lte", "value": 3}],
            })
        );
    }

    #[test]
    fn pages_become_libervia_items_json_with_xml_strings() {
        let page = json!({
            "service": "alice@example.org", "node": "n",
            "items": [{"id": "it'1", "payload": "<x xmlns='urn:x'/>"}],
        });
        let v: Value = serde_json::from_str(&items_result(&page)).unwrap();
        assert_eq!(
            v,
            json!({
                "service": "alice@example.org", "node": "n",
                "uri": "xmpp:alice@example.org?;node=n",
                "items": ["<item xmlns='http://jabber.org/protocol/pubsub' id='it&apos;1'><x xmlns='urn:x'/></item>"],
            })
        );
    }

    #[test]
    fn config_forms_become_python_str_values_in_form_order() {
        let form = json!({"fields": [
            {"var": "FORM_TYPE", "type": "hidden", "value": "x"},
            {"var": "title", "type": "text-single", "value": null},
            {"var": "max_items", "type": "text-single", "value": "20"},
            {"var": "persist_items", "type": "boolean", "value": "1"},
            {"var": "notify_delete", "type": "boolean", "value": "false"},
            {"var": "owners", "type": "jid-multi", "value": ["a@b", "c@d"]},
            {"var": "empty", "type": "list-multi", "value": []},
        ]});
        let pairs = |l: &[(&str, &str)]| {
            OrderedMap(l.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect())
        };
        assert_eq!(
            config_values(&form),
            pairs(&[
                ("title", "None"),
                ("max_items", "20"),
                ("persist_items", "True"),
                ("notify_delete", "False"),
                ("owners", "a@b"),
                ("empty", "None"),
            ])
        );
    }

    #[test]
    fn readable_item_ids_as_libervia_makes_them() {
        assert_eq!(slug("First post"), "first-post");
        assert_eq!(slug("  Été à la mer, 2026!  "), "ete-a-la-mer,-2026");
        assert_eq!(slug(&"word ".repeat(30)).len(), 59);
        let id = post_item_id(&json!({"title": "First post"})).unwrap();
        let suffix = id.strip_prefix("first-post-").unwrap();
        assert!(suffix.len() == 4 && suffix.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            post_item_id(&json!({"id": "mine", "title": "x"})).unwrap(),
            "mine"
        );
        assert_eq!(
            post_item_id(&json!({"title": "x", "user_friendly_id": false})),
            None
        );
        let from_text = post_item_id(&json!({"content": "Hello *world*"})).unwrap();
        assert!(from_text.starts_with("hello-world-"));
    }

    #[test]
    fn uris_are_percent_encoded_as_libervia_does() {
        assert_eq!(
            uri("alice@localhost", "urn:xmpp:microblog:0"),
            "xmpp:alice@localhost?;node=urn%3Axmpp%3Amicroblog%3A0"
        );
        assert_eq!(
            item_uri("alice@localhost/r", "a b", "x;y"),
            "xmpp:alice@localhost%2Fr?;node=a+b;item=x%3By"
        );
        assert!(rsm_asked(&json!({"rsm_max": "5"})));
        assert!(!rsm_asked(&json!({"use_cache": false})));
    }

    #[test]
    fn posts_become_mb_data() {
        let post = json!({
            "item_id": "first", "id": "xmpp:a@b?;node=urn:xmpp:microblog:0;item=first",
            "title": "T", "content": "C", "published": "2026-01-01T00:00:00Z",
            "author": {"name": "alice", "jid": "a@b"}, "tags": ["x"],
        });
        let d = mb_data(&post, "a@b", "urn:xmpp:microblog:0");
        assert_eq!(d["id"], "first");
        assert_eq!(d["atom_id"], post["id"]);
        assert_eq!(d["published"], 1_767_225_600);
        assert_eq!(d["author"], "alice");
        assert_eq!(d["author_jid"], "a@b");
        assert_eq!(d["tags"], json!(["x"]));
        assert_eq!(d["comments"], json!([]));
    }
}
