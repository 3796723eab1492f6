//! XEP-0461: Message Replies — `<reply to=… id=…/>`, with the quoted text as a
//! XEP-0428 fallback at the start of the body for clients that do not know replies.

use crate::dom::Attr;
use crate::minidom::Element;
use crate::xep_0428;

pub const NS: &str = "urn:xmpp:reply:0";

/// What a reply answers: the message `id` (its origin-id / id in a chat, the
/// room's stanza-id in a room) and its author `to`, when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub id: String,
    pub to: Option<String>,
}

impl Reply {
    /// Reads a `<reply/>`; `None` if it is not one or has no `id`.
    pub fn parse(e: &Element) -> Option<Self> {
        if !e.is("reply", NS) {
            return None;
        }
        let id = e.attr("id").filter(|i| !i.is_empty())?.to_owned();
        let to = e.attr("to").filter(|t| !t.is_empty()).map(str::to_owned);
        Some(Self { id, to })
    }

    /// The first `<reply/>` among a message's payloads.
    pub fn find(payloads: &[Element]) -> Option<Self> {
        payloads.iter().find_map(Self::parse)
    }

    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("reply", NS);
        if let Some(to) = &self.to {
            b = b.a("to", to.as_str());
        }
        b.a("id", self.id.as_str()).build()
    }
}

/// The body of a reply quoting `quoted` (each line behind "> "), and the
/// `<fallback/>` marking the quote; an empty quote gives the text alone, no marker.
pub fn quoted_body(quoted: &str, text: &str) -> (String, Option<Element>) {
    if quoted.trim().is_empty() {
        return (text.to_owned(), None);
    }
    let mut quote: String = quoted.lines().map(|l| format!("> {l}\n")).collect();
    let end = quote.chars().count();
    quote.push_str(text);
    (quote, Some(xep_0428::element(NS, Some((0, end)))))
}

/// A received reply's own text: the body without the fallback quote.
pub fn strip_quote(body: &str, payloads: &[Element]) -> String {
    match xep_0428::ranges(payloads, NS) {
        Some(r) => xep_0428::strip(body, &r),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_xeps_example_and_strips_the_quote() {
        let m: Element = "<message xmlns='jabber:client' to='anna@example.com' id='message-id2' type='chat'>\
             <body>&gt; Anna wrote:\n&gt; We should bake a cake\nGreat idea!</body>\
             <reply to='anna@example.com/laptop' id='message-id1' xmlns='urn:xmpp:reply:0'/>\
             <fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='38'/></fallback>\
             </message>"
            .parse()
            .expect("xml");
        let payloads: Vec<Element> = m.children().cloned().collect();
        let r = Reply::find(&payloads).expect("a reply");
        assert_eq!(r.id, "message-id1");
        assert_eq!(r.to.as_deref(), Some("anna@example.com/laptop"));
        let body = m.get_child("body", "jabber:client").expect("body").text();
        assert_eq!(strip_quote(&body, &payloads), "Great idea!");
    }

    #[test]
    fn no_id_is_no_reply() {
        let e: Element = "<reply xmlns='urn:xmpp:reply:0' to='a@b'/>"
            .parse()
            .expect("xml");
        assert_eq!(Reply::parse(&e), None);
    }

    #[test]
    fn built_with_its_quote_and_marker() {
        let r = Reply {
            id: "m1".into(),
            to: Some("a@x/r".into()),
        };
        assert_eq!(
            String::from(&r.to_element()),
            "<reply xmlns='urn:xmpp:reply:0' id='m1' to='a@x/r'/>"
        );
        let (body, marker) = quoted_body("héllo\nthere", "yes");
        assert_eq!(body, "> héllo\n> there\nyes");
        let marker = marker.expect("a fallback");
        assert_eq!(
            String::from(&marker),
            "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'>\
             <body end='16' start='0'/></fallback>"
        );
        assert_eq!(strip_quote(&body, &[marker]), "yes");
        assert_eq!(quoted_body("", "yes"), ("yes".to_owned(), None));
    }
}
