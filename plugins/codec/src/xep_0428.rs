//! XEP-0428: Fallback Indication — which part of a body is there only for clients
//! that do not know an extension (a reply's quote, a retraction's notice).
//!
//! Why it matters to Perch: a reply (XEP-0461) carries the quoted text in its body
//! for old clients; a client that shows the reply itself must strip that range, or
//! the quote is shown twice. Ranges count Unicode code points (XEP-0426), not bytes.

use crate::dom::Attr;
use crate::minidom::Element;

pub const NS: &str = "urn:xmpp:fallback:0";
/// Its namespace until 0.2 (the "Compatibility Fallbacks" protoXEP), which some
/// clients still send (slixmpp 1.8's replies). Read, never written.
pub const NS_OLD: &str = "urn:xmpp:feature-fallback:0";

/// A `<fallback for=…>`: the whole body (`None`) or a range `[start, end)` of it.
pub fn element(for_ns: &str, range: Option<(usize, usize)>) -> Element {
    let mut b = Element::builder("fallback", NS).a("for", for_ns);
    if let Some((start, end)) = range {
        b = b.append(
            Element::builder("body", NS)
                .a("start", start.to_string())
                .a("end", end.to_string())
                .build(),
        );
    }
    b.build()
}

/// What the payloads say is fallback for `for_ns`: `None` when nothing is; else
/// the ranges, where `None` is the whole body.
pub fn ranges(payloads: &[Element], for_ns: &str) -> Option<Vec<Option<(usize, usize)>>> {
    let mut found = None;
    for f in payloads.iter().filter(|p| {
        (p.is("fallback", NS) || p.is("fallback", NS_OLD)) && p.attr("for") == Some(for_ns)
    }) {
        let list: &mut Vec<_> = found.get_or_insert_with(Vec::new);
        let ns = f.ns();
        let bodies: Vec<_> = f.children().filter(|c| c.is("body", ns.as_str())).collect();
        if bodies.is_empty() {
            list.push(None);
        }
        for b in bodies {
            let num = |a: &str| b.attr(a).and_then(|v| v.parse::<usize>().ok());
            match (num("start"), num("end")) {
                (Some(s), Some(e)) if s <= e => list.push(Some((s, e))),
                // A range we cannot read marks nothing: better a quote shown twice
                // than a text lost.
                _ => {}
            }
        }
    }
    found
}

/// `body` without the given ranges (code points; out-of-range parts are clamped).
/// A whole-body range leaves nothing.
pub fn strip(body: &str, ranges: &[Option<(usize, usize)>]) -> String {
    if ranges.iter().any(Option::is_none) {
        return String::new();
    }
    body.chars()
        .enumerate()
        .filter(|(i, _)| !ranges.iter().flatten().any(|(s, e)| (*s..*e).contains(i)))
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(xml: &str) -> Vec<Element> {
        vec![xml.parse().expect("xml")]
    }

    #[test]
    fn a_range_is_read_and_stripped_in_code_points() {
        let p = payloads(
            "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>\
             <body start='0' end='8'/></fallback>",
        );
        let r = ranges(&p, "urn:xmpp:reply:0").expect("a fallback");
        assert_eq!(r, vec![Some((0, 8))]);
        assert_eq!(strip("> héllo\nyes", &r), "yes");
        assert_eq!(ranges(&p, "urn:xmpp:message-retract:1"), None);
    }

    #[test]
    fn the_earlier_namespace_is_read_too() {
        let p = payloads(
            "<fallback xmlns='urn:xmpp:feature-fallback:0' for='urn:xmpp:reply:0'>\
             <body start='0' end='4'/></fallback>",
        );
        let r = ranges(&p, "urn:xmpp:reply:0").expect("a fallback");
        assert_eq!(strip("> a\nb", &r), "b");
    }

    #[test]
    fn no_range_is_the_whole_body_and_a_broken_one_nothing() {
        let whole =
            payloads("<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>");
        let r = ranges(&whole, "urn:xmpp:message-retract:1").expect("a fallback");
        assert_eq!(strip("This person attempted to retract", &r), "");
        let broken = payloads(
            "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>\
             <body start='9' end='2'/></fallback>",
        );
        let r = ranges(&broken, "urn:xmpp:reply:0").expect("a fallback");
        assert_eq!(strip("kept as is", &r), "kept as is");
    }

    #[test]
    fn built_as_the_xep_writes_it() {
        let e = element("urn:xmpp:reply:0", Some((0, 12)));
        assert_eq!(
            String::from(&e),
            "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>\
             <body end='12' start='0'/></fallback>"
        );
    }
}
