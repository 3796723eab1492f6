//! minidom helpers: a shorthand for building elements with minidom 0.19, whose
//! builder takes attribute names as validated `NcName`s, and a fast serialiser.

use crate::minidom::rxml::{Namespace, NcName};
use crate::minidom::{Element, ElementBuilder, IntoAttributeValue, Node};

pub trait Attr {
    /// Sets attribute `name` (a literal XML name; an invalid one is a bug caught by
    /// the literal-XML tests, and is left out).
    #[must_use]
    fn a<V: IntoAttributeValue>(self, name: &'static str, value: V) -> Self;
}

impl Attr for ElementBuilder {
    fn a<V: IntoAttributeValue>(self, name: &'static str, value: V) -> Self {
        match NcName::try_from(name) {
            Ok(n) => self.attr(n, value),
            Err(_) => {
                debug_assert!(false, "invalid attribute name {name:?}");
                self
            }
        }
    }
}

/// Serialises `e` as minidom does (`String::from(&e)`: each element in its default
/// namespace, attribute values in `'…'`, the same escapes), several times faster.
///
/// Why: every item a sync fetches is stored as XML, so this runs for each of them;
/// minidom writes through rxml's validating writer, this walks the tree once into one
/// buffer, several times faster (doc/performance.rst, "Design figures"). Trees come from
/// the stream's parser or our builders, so names are already valid; a character XML
/// cannot carry (a C0 control, U+FFFE, U+FFFF) is left out rather than written, so
/// what is written always reads back.
pub fn to_xml(e: &Element) -> String {
    let mut out = String::with_capacity(1024);
    write_element(e, None, &mut out);
    out
}

fn write_element(e: &Element, parent_ns: Option<&str>, out: &mut String) {
    out.push('<');
    out.push_str(e.name());
    let own;
    let ns = match parent_ns {
        Some(p) if e.has_ns(p) => p,
        _ => {
            own = e.ns();
            out.push_str(" xmlns='");
            escape(&own, true, out);
            out.push('\'');
            own.as_str()
        }
    };
    let mut prefixes = 0;
    for ((attr_ns, name), value) in e.attrs().iter() {
        out.push(' ');
        if attr_ns.is_none() {
        } else if **attr_ns == Namespace::XML {
            out.push_str("xml:");
        } else {
            // A namespaced attribute other than xml:…: declare a prefix for it here.
            let prefix = format!("ns{prefixes}");
            prefixes += 1;
            out.push_str("xmlns:");
            out.push_str(&prefix);
            out.push_str("='");
            escape(attr_ns.as_str(), true, out);
            out.push_str("' ");
            out.push_str(&prefix);
            out.push(':');
        }
        out.push_str(name.as_str());
        out.push_str("='");
        escape(value, true, out);
        out.push('\'');
    }
    let mut nodes = e.nodes().peekable();
    if nodes.peek().is_none() {
        out.push_str("/>");
        return;
    }
    out.push('>');
    for n in nodes {
        match n {
            Node::Element(c) => write_element(c, Some(ns), out),
            Node::Text(t) => escape(t, false, out),
        }
    }
    out.push_str("</");
    out.push_str(e.name());
    out.push('>');
}

/// XML escapes as rxml writes them (`attr`: inside an attribute value); C0 controls
/// and U+FFFE/U+FFFF, which XML cannot carry, are left out.
fn escape(s: &str, attr: bool, out: &mut String) {
    let bytes = s.as_bytes();
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if i < last {
            continue;
        }
        let rep = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'\r' => "&#xd;",
            b'"' if attr => "&#34;",
            b'\'' if attr => "&#39;",
            b'\n' if attr => "&#xa;",
            b'\t' if attr => "&#x9;",
            b'\t' | b'\n' => continue,
            0..=0x1f => "",
            // U+FFFE, U+FFFF: EF BF BE, EF BF BF.
            0xEF if matches!(bytes.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])) => {
                out.push_str(&s[last..i]);
                last = i + 3;
                continue;
            }
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte for byte what minidom writes, for the shapes items come in.
    #[test]
    fn to_xml_is_minidoms_output() {
        for xml in [
            "<x xmlns='urn:t'/>",
            "<x xmlns='urn:t'>2</x>",
            "<entry xmlns='http://www.w3.org/2005/Atom' xml:lang='fr'><title type='text'>a &amp; b &lt;c&gt; 'q' \"d\"</title>\
             <content type='xhtml'><div xmlns='http://www.w3.org/1999/xhtml'><p>Un <b>texte</b></p></div></content>\
             <link href='xmpp:s?;node=a&amp;b' rel='replies'/><empty></empty></entry>",
            "<a xmlns='urn:a' v='&#39;&#34;&lt;&amp;&#xa;&#x9;&#xd;'>line\nnext\tx&#xd;</a>",
            "<a xmlns='urn:a'><b xmlns='urn:b'><c>in b</c></b><c>in a</c></a>",
        ] {
            let e: Element = xml.parse().unwrap();
            assert_eq!(to_xml(&e), String::from(&e), "{xml}");
            assert_eq!(to_xml(&e).parse::<Element>().unwrap(), e, "{xml}");
        }
    }

    /// U+FFFE and U+FFFF were written as they came, and the stored item no longer
    /// read back (found by `to_xml_always_reads_back`).
    #[test]
    fn to_xml_leaves_out_what_xml_cannot_carry() {
        let e = Element::builder("a", "urn:a")
            .a("v", "x\u{FFFE}y\u{1}")
            .append("p\u{FFFF}q\u{FFFD}\u{10FFFF}")
            .build();
        let out = to_xml(&e);
        assert_eq!(out, "<a xmlns='urn:a' v='xy'>pq\u{FFFD}\u{10FFFF}</a>");
        assert!(out.parse::<Element>().is_ok());
    }

    /// Namespaced attributes get a prefix of their own; the tree reads back the same.
    #[test]
    fn to_xml_prefixed_attributes_read_back() {
        let xml = "<a xmlns='urn:a' xmlns:p='urn:p' xmlns:q='urn:q' p:one='1' q:two='2' plain='3'><p:b p:x='y'/></a>";
        let e: Element = xml.parse().unwrap();
        let out = to_xml(&e);
        assert_eq!(out.parse::<Element>().unwrap(), e, "{out}");
    }
}

/// Generators of what a stranger may send, for the property tests of the readers.
#[cfg(any(test, feature = "arb"))]
pub mod arb {
    use crate::minidom::rxml::NcName;
    use crate::minidom::{Element, Node};
    use proptest::prelude::*;
    use proptest::sample::select;
    use proptest::test_runner::Config;

    /// 256 cases a property, so that the whole suite adds about a second to `cargo
    /// test`; `PROPTEST_CASES=N` runs N instead, for a deeper search.
    pub fn config() -> Config {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(256);
        Config::with_cases(cases)
    }

    /// Text XML can carry (what the stream's parser hands over): mostly ASCII with
    /// markup characters, sometimes any character XML allows.
    pub fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => "[ -~\t\n]{0,12}",
            1 => r"[^\x00-\x08\x0B\x0C\x0E-\x1F\x{FFFE}\x{FFFF}]{0,12}",
        ]
    }

    /// Any string, including characters XML cannot carry (and often them).
    pub fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            text(),
            any::<String>(),
            r"[\x00-\x1F\x{FFFD}-\x{FFFF}a<&'\x22]{0,8}",
        ]
    }

    fn build(
        name: &str,
        ns: &str,
        attrs: Vec<(&'static str, String)>,
        children: Vec<Node>,
    ) -> Element {
        let mut b = Element::builder(name, ns);
        for (k, v) in attrs {
            if let Ok(k) = NcName::try_from(k) {
                b = b.attr(k, v);
            }
        }
        b.append_all(children).build()
    }

    /// Elements named from `names`, in namespaces from `nss`, with attributes from
    /// `attrs`, nested up to 4 deep, as the parser would give them (built, written,
    /// read back: adjacent texts merged, empty ones gone).
    pub fn element(
        names: &'static [&'static str],
        nss: &'static [&'static str],
        attrs: &'static [&'static str],
    ) -> impl Strategy<Value = Element> {
        let attr_list = move || prop::collection::vec((select(attrs), text()), 0..4);
        let leaf = (select(names), select(nss), attr_list(), text())
            .prop_map(|(n, ns, a, t)| build(n, ns, a, vec![Node::Text(t)]));
        leaf.prop_recursive(4, 48, 6, move |inner| {
            (
                select(names),
                select(nss),
                attr_list(),
                prop::collection::vec(
                    prop_oneof![
                        3 => inner.prop_map(Node::Element),
                        1 => text().prop_map(Node::Text),
                    ],
                    0..6,
                ),
            )
                .prop_map(|(n, ns, a, c)| build(n, ns, a, c))
        })
        .prop_map(|e| {
            String::from(&e)
                .parse()
                .expect("a built element reads back")
        })
    }
}

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    const NAMES: &[&str] = &["a", "entry", "x", "item"];
    const NSS: &[&str] = &["urn:a", "urn:b", "http://www.w3.org/2005/Atom"];
    const ATTRS: &[&str] = &["id", "v", "type"];

    proptest! {
        #![proptest_config(arb::config())]

        /// Byte for byte what minidom writes, and the same tree when read back.
        #[test]
        fn to_xml_is_minidoms_output(e in arb::element(NAMES, NSS, ATTRS)) {
            let out = to_xml(&e);
            prop_assert_eq!(&out, &String::from(&e));
            prop_assert_eq!(out.parse::<Element>().ok(), Some(e));
        }

        /// Text built from a frontend's strings may hold what XML cannot carry: what
        /// is written still reads back.
        #[test]
        fn to_xml_always_reads_back(t in arb::any_text(), v in arb::any_text()) {
            let e = Element::builder("a", "urn:a").a("v", v).append(t).build();
            let out = to_xml(&e);
            prop_assert!(out.parse::<Element>().is_ok(), "{}", out);
        }
    }
}
