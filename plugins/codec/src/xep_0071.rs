//! XEP-0071: XHTML-IM, the formatted twin of a message's plain body.
//!
//! Why it is filtered both ways: XHTML reaches frontends that may render it as HTML,
//! so what a contact sends (or a frontend gives us to send) is cut down to XEP-0071's
//! recommended profile (§7–§8): its thirteen elements, their few attributes, the
//! listed style properties, and links only to `http`, `https`, `xmpp` and `mailto`.
//! Anything else is removed: an unknown element keeps its text and children, a
//! dangerous one (`script`, `style`, `object`…) goes with all it holds.

use crate::dom::Attr;
use crate::minidom::rxml::{Namespace, NcName};
use crate::minidom::{Element, Node};

/// The wrapper's namespace.
pub const NS: &str = "http://jabber.org/protocol/xhtml-im";
/// The XHTML namespace the `<body>` elements are in.
pub const XHTML: &str = "http://www.w3.org/1999/xhtml";

/// Elements kept, with the attributes each may carry (XEP-0071 §7, "Recommended
/// Profile").
const ALLOWED: &[(&str, &[&str])] = &[
    ("a", &["href", "style", "type"]),
    ("blockquote", &["style"]),
    ("br", &[]),
    ("cite", &["style"]),
    ("code", &["style"]),
    ("em", &[]),
    ("img", &["alt", "height", "src", "style", "width"]),
    ("li", &["style"]),
    ("ol", &["style"]),
    ("p", &["style"]),
    ("span", &["style"]),
    ("strong", &[]),
    ("ul", &["style"]),
];

/// Elements removed with everything inside them.
const DROPPED: &[&str] = &[
    "script", "style", "object", "embed", "iframe", "frame", "frameset", "applet", "head", "title",
    "meta", "link", "form", "input", "button", "textarea", "select", "svg", "math",
];

/// CSS properties kept in `style` (XEP-0071 §8).
const STYLES: &[&str] = &[
    "background-color",
    "color",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "margin-left",
    "margin-right",
    "text-align",
    "text-decoration",
];

/// Link schemes kept in `href` and `src`.
const SCHEMES: &[&str] = &["http:", "https:", "xmpp:", "mailto:"];

/// Why a frontend's XHTML cannot be sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XhtmlError {
    #[error("the XHTML is not well-formed XML: {0}")]
    NotWellFormed(String),
    #[error("the XHTML has no text once filtered to XHTML-IM")]
    Empty,
}

/// The filtered `<body>`s of a message's `<html/>`, by language (`""` when unset), each
/// serialised as one `<div xmlns='http://www.w3.org/1999/xhtml'>…</div>`.
pub fn read(payloads: &[Element]) -> Vec<(String, String)> {
    let Some(html) = payloads.iter().find(|p| p.is("html", NS)) else {
        return Vec::new();
    };
    html.children()
        .filter(|b| b.is("body", XHTML))
        .filter_map(|b| {
            let div = filtered(b, "div");
            (!div.text().trim().is_empty() || div.children().next().is_some()).then(|| {
                let lang = b.attr_ns(&Namespace::XML, "lang").unwrap_or_default();
                (lang.to_owned(), crate::dom::to_xml(&div))
            })
        })
        .collect()
}

/// The `<html/>` payload for a frontend's XHTML `markup` (a fragment: elements and
/// text, in the XHTML namespace or none), filtered, with its `<body>` in `lang` when
/// given; and the plain text of it, for a message sent without a body.
pub fn build(markup: &str, lang: &str) -> Result<(Element, String), XhtmlError> {
    let wrapped = format!("<body xmlns='{XHTML}'>{markup}</body>");
    let parsed: Element = wrapped
        .parse()
        .map_err(|e: crate::minidom::Error| XhtmlError::NotWellFormed(e.to_string()))?;
    let mut body = filtered(&parsed, "body");
    let text = plain_text(&body);
    if text.trim().is_empty() {
        return Err(XhtmlError::Empty);
    }
    if !lang.is_empty()
        && let Ok(name) = NcName::try_from("lang")
    {
        body.attrs_mut()
            .insert(Namespace::XML, name, lang.to_owned());
    }
    let html = Element::builder("html", NS).append(body).build();
    Ok((html, text))
}

/// `e`'s children filtered, under a new `name` element in the XHTML namespace.
fn filtered(e: &Element, name: &str) -> Element {
    let mut out = Element::builder(name, XHTML).build();
    for node in filter_nodes(e) {
        out.append_node(node);
    }
    out
}

/// The filtered children of `e`.
fn filter_nodes(e: &Element) -> Vec<Node> {
    let mut out = Vec::new();
    for node in e.nodes() {
        match node {
            Node::Text(t) => out.push(Node::Text(t.clone())),
            Node::Element(child) => {
                let name = child.name();
                if !child.has_ns(XHTML) || DROPPED.contains(&name) {
                    continue;
                }
                match ALLOWED.iter().find(|(n, _)| *n == name) {
                    Some((_, attrs)) => out.push(Node::Element(keep(child, attrs))),
                    // Unknown: its contents stay, without it.
                    None => out.extend(filter_nodes(child)),
                }
            }
        }
    }
    out
}

/// An allowed element with its allowed attributes (checked) and filtered children.
fn keep(e: &Element, attrs: &'static [&'static str]) -> Element {
    let mut b = Element::builder(e.name(), XHTML);
    for &attr in attrs {
        let Some(value) = e.attr(attr) else { continue };
        let value = match attr {
            "href" | "src" => safe_link(value),
            "style" => safe_style(value),
            _ => Some(value.to_owned()),
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            b = b.a(attr, v);
        }
    }
    let mut out = b.build();
    for node in filter_nodes(e) {
        out.append_node(node);
    }
    out
}

/// A link kept only with one of [`SCHEMES`].
fn safe_link(value: &str) -> Option<String> {
    let v = value.trim();
    let lower = v.to_ascii_lowercase();
    SCHEMES
        .iter()
        .any(|s| lower.starts_with(s))
        .then(|| v.to_owned())
}

/// The declarations of [`STYLES`] in `value`; none whose value could fetch or run
/// something.
fn safe_style(value: &str) -> Option<String> {
    let kept: Vec<String> = value
        .split(';')
        .filter_map(|decl| {
            let (name, v) = decl.split_once(':')?;
            let (name, v) = (name.trim().to_ascii_lowercase(), v.trim());
            let lower = v.to_ascii_lowercase();
            let risky = ["url(", "expression", "javascript:", "\\", "@import"]
                .iter()
                .any(|r| lower.contains(r));
            (STYLES.contains(&name.as_str()) && !v.is_empty() && !risky)
                .then(|| format!("{name}: {v}"))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// The text a reader sees: line breaks for `br` and between paragraphs and items.
pub fn plain_text(e: &Element) -> String {
    let mut out = String::new();
    text_into(e, &mut out);
    out.trim().to_owned()
}

fn text_into(e: &Element, out: &mut String) {
    for node in e.nodes() {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Element(c) if c.name() == "br" => out.push('\n'),
            Node::Element(c) => {
                let block = matches!(c.name(), "p" | "li" | "blockquote" | "ul" | "ol");
                if block && !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                text_into(c, out);
                if block && !out.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(xml: &str) -> Element {
        xml.parse().unwrap()
    }

    #[test]
    fn a_received_body_is_filtered_to_the_profile() {
        let html = payload(
            "<html xmlns='http://jabber.org/protocol/xhtml-im'>\
             <body xmlns='http://www.w3.org/1999/xhtml' xml:lang='fr'>\
             <p style='color: red; position: fixed; background-color: url(x)'>Salut \
             <strong>toi</strong><script>alert(1)</script><blink>!</blink></p>\
             <a href='javascript:alert(1)' onclick='x()'>clic</a> \
             <a href='https://example.org/'>ok</a></body></html>",
        );
        assert_eq!(
            read(&[html]),
            vec![(
                "fr".to_owned(),
                "<div xmlns='http://www.w3.org/1999/xhtml'><p style='color: red'>Salut \
                 <strong>toi</strong>!</p><a>clic</a> <a href='https://example.org/'>ok</a></div>"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn no_html_payload_reads_nothing_and_an_emptied_body_is_skipped() {
        assert!(read(&[payload("<x xmlns='y'/>")]).is_empty());
        let html = payload(
            "<html xmlns='http://jabber.org/protocol/xhtml-im'>\
             <body xmlns='http://www.w3.org/1999/xhtml'><script>x</script></body></html>",
        );
        assert!(read(&[html]).is_empty());
    }

    #[test]
    fn built_from_a_fragment_with_its_text() {
        let (html, text) = build(
            "<p>Hello <em>you</em></p><p>line<br/>two</p><iframe>x</iframe>",
            "en",
        )
        .unwrap();
        assert_eq!(
            crate::dom::to_xml(&html),
            "<html xmlns='http://jabber.org/protocol/xhtml-im'>\
             <body xmlns='http://www.w3.org/1999/xhtml' xml:lang='en'><p>Hello <em>you</em></p>\
             <p>line<br/>two</p></body></html>"
        );
        assert_eq!(text, "Hello you\nline\ntwo");
    }

    #[test]
    fn bad_fragments_are_refused_by_name() {
        assert!(matches!(
            build("<p>unclosed", ""),
            Err(XhtmlError::NotWellFormed(_))
        ));
        assert_eq!(build("<script>x</script>", ""), Err(XhtmlError::Empty));
    }
}
