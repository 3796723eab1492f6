//! XEP-0320: DTLS-SRTP fingerprint and setup role in Jingle.
//!
//! Carried inside the ICE-UDP transport; the SDP side is `a=fingerprint` and
//! `a=setup` (`doc/calls.rst`, "DTLS roles").

use perch_plugin_api::minidom::Element;

use crate::dom::Attr;
use crate::xep_0166::xml::{ParseError, attr};

pub const NS: &str = "urn:xmpp:jingle:apps:dtls:0";

/// `<fingerprint hash setup>HEX</fingerprint>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// `sha-256`, …
    pub hash: String,
    /// `actpass` (offers), `active` or `passive` (answers).
    pub setup: Option<String>,
    /// Colon-separated upper-case hex, as in SDP.
    pub value: String,
}

impl Fingerprint {
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        Ok(Self {
            hash: attr(e, "hash")?.to_owned(),
            setup: e.attr("setup").map(str::to_owned),
            value: e.text().trim().to_owned(),
        })
    }

    pub fn to_element(&self) -> Element {
        Element::builder("fingerprint", NS)
            .a("hash", self.hash.as_str())
            .a("setup", self.setup.clone())
            .append(self.value.as_str())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0320 Example 1's fingerprint.
    #[test]
    fn round_trip() {
        let xml = "<fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>\
                   02:1A:CC:54:27:AB:EB:9C:53:3F:3E:4B:65:2E:7D:46:3F:54:42:CD:54:F1:7A:03:A2:7D:F9:B0:7F:46:19:B2</fingerprint>";
        let e: Element = xml.parse().unwrap();
        let f = Fingerprint::from_element(&e).unwrap();
        assert_eq!(f.setup.as_deref(), Some("actpass"));
        assert_eq!(f.to_element(), e);
    }
}
