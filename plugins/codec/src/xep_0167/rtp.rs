//! XEP-0167 RTP description, with what XEP-0293 (rtcp-fb), XEP-0294 (header
//! extensions), XEP-0339 (sources and their groups) and XEP-0167's own session-info
//! add to it.
//!
//! Why our own types: xmpp-parsers drops description-level `rtcp-fb` and
//! `extmap-allow-mixed`, and its `Bandwidth` is declared under the wrong element
//! name; every attribute the SDP side needs must survive (`doc/calls.rst`).

use perch_plugin_api::minidom::Element;

use crate::dom::Attr;
use crate::xep_0166::xml::{ParseError, attr, num, opt_num};

pub const NS: &str = "urn:xmpp:jingle:apps:rtp:1";
pub const NS_INFO: &str = "urn:xmpp:jingle:apps:rtp:info:1";
pub const NS_RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
pub const NS_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
pub const NS_SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
pub const NS_AUDIO: &str = "urn:xmpp:jingle:apps:rtp:audio";
pub const NS_VIDEO: &str = "urn:xmpp:jingle:apps:rtp:video";

/// XEP-0293 `<rtcp-fb type subtype/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpFb {
    pub kind: String,
    pub subtype: Option<String>,
}

impl RtcpFb {
    fn from_element(e: &Element) -> Result<Self, ParseError> {
        Ok(Self {
            kind: attr(e, "type")?.to_owned(),
            subtype: e.attr("subtype").map(str::to_owned),
        })
    }
    fn to_element(&self) -> Element {
        Element::builder("rtcp-fb", NS_RTCP_FB)
            .a("type", self.kind.as_str())
            .a("subtype", self.subtype.clone())
            .build()
    }
}

/// One `<payload-type/>`: a codec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PayloadType {
    pub id: u8,
    pub name: Option<String>,
    pub clockrate: Option<u32>,
    pub channels: Option<u8>,
    pub ptime: Option<u32>,
    pub maxptime: Option<u32>,
    /// `<parameter name value/>`, in order (the SDP `a=fmtp` keys).
    pub parameters: Vec<(String, String)>,
    pub rtcp_fbs: Vec<RtcpFb>,
    /// XEP-0293 `<rtcp-fb-trr-int value/>`.
    pub trr_int: Option<u32>,
}

impl PayloadType {
    fn from_element(e: &Element) -> Result<Self, ParseError> {
        let mut p = PayloadType {
            id: num(e, "id")?,
            name: e.attr("name").map(str::to_owned),
            clockrate: opt_num(e, "clockrate")?,
            channels: opt_num(e, "channels")?,
            ptime: opt_num(e, "ptime")?,
            maxptime: opt_num(e, "maxptime")?,
            ..Default::default()
        };
        for c in e.children() {
            if c.is("parameter", NS) {
                p.parameters.push((
                    attr(c, "name")?.to_owned(),
                    c.attr("value").unwrap_or_default().to_owned(),
                ));
            } else if c.is("rtcp-fb", NS_RTCP_FB) {
                p.rtcp_fbs.push(RtcpFb::from_element(c)?);
            } else if c.is("rtcp-fb-trr-int", NS_RTCP_FB) {
                p.trr_int = Some(num(c, "value")?);
            }
        }
        Ok(p)
    }

    fn to_element(&self) -> Element {
        let mut b = Element::builder("payload-type", NS)
            .a("id", self.id.to_string())
            .a("name", self.name.clone())
            .a("clockrate", self.clockrate.map(|v| v.to_string()))
            .a("channels", self.channels.map(|v| v.to_string()))
            .a("ptime", self.ptime.map(|v| v.to_string()))
            .a("maxptime", self.maxptime.map(|v| v.to_string()));
        b = b.append_all(self.rtcp_fbs.iter().map(RtcpFb::to_element));
        if let Some(v) = self.trr_int {
            b = b.append(
                Element::builder("rtcp-fb-trr-int", NS_RTCP_FB)
                    .a("value", v.to_string())
                    .build(),
            );
        }
        b.append_all(self.parameters.iter().map(|(n, v)| {
            Element::builder("parameter", NS)
                .a("name", n.as_str())
                .a("value", v.as_str())
                .build()
        }))
        .build()
    }
}

/// XEP-0294 `<rtp-hdrext id uri senders/>` (SDP `a=extmap`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HdrExt {
    pub id: u16,
    pub uri: String,
    pub senders: Option<String>,
}

/// XEP-0339 `<source ssrc>` with its `<parameter name value/>`s (SDP `a=ssrc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub ssrc: u32,
    pub parameters: Vec<(String, Option<String>)>,
}

/// XEP-0339 `<ssrc-group semantics>` (SDP `a=ssrc-group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsrcGroup {
    pub semantics: String,
    pub ssrcs: Vec<u32>,
}

/// `<description xmlns='urn:xmpp:jingle:apps:rtp:1' media>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description {
    pub media: String,
    pub ssrc: Option<u32>,
    pub payload_types: Vec<PayloadType>,
    pub rtcp_mux: bool,
    /// Description-level feedback (`a=rtcp-fb:*`).
    pub rtcp_fbs: Vec<RtcpFb>,
    pub hdrexts: Vec<HdrExt>,
    /// XEP-0294 `<extmap-allow-mixed/>`.
    pub extmap_allow_mixed: bool,
    pub sources: Vec<Source>,
    pub ssrc_groups: Vec<SsrcGroup>,
    /// What we do not model (SDES `<encryption/>`, `<bandwidth/>`), kept.
    pub other: Vec<Element>,
}

impl Description {
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        let mut d = Description {
            media: attr(e, "media")?.to_owned(),
            ssrc: opt_num(e, "ssrc")?,
            ..Default::default()
        };
        for c in e.children() {
            if c.is("payload-type", NS) {
                d.payload_types.push(PayloadType::from_element(c)?);
            } else if c.is("rtcp-mux", NS) {
                d.rtcp_mux = true;
            } else if c.is("rtcp-fb", NS_RTCP_FB) {
                d.rtcp_fbs.push(RtcpFb::from_element(c)?);
            } else if c.is("rtp-hdrext", NS_HDREXT) {
                d.hdrexts.push(HdrExt {
                    id: num(c, "id")?,
                    uri: attr(c, "uri")?.to_owned(),
                    senders: c.attr("senders").map(str::to_owned),
                });
            } else if c.is("extmap-allow-mixed", NS_HDREXT) {
                d.extmap_allow_mixed = true;
            } else if c.is("source", NS_SSMA) {
                d.sources.push(Source {
                    ssrc: num(c, "ssrc")?,
                    parameters: c
                        .children()
                        .filter(|p| p.is("parameter", NS_SSMA))
                        .map(|p| {
                            attr(p, "name")
                                .map(|n| (n.to_owned(), p.attr("value").map(str::to_owned)))
                        })
                        .collect::<Result<_, _>>()?,
                });
            } else if c.is("ssrc-group", NS_SSMA) {
                d.ssrc_groups.push(SsrcGroup {
                    semantics: attr(c, "semantics")?.to_owned(),
                    ssrcs: c
                        .children()
                        .filter(|s| s.is("source", NS_SSMA))
                        .map(|s| num(s, "ssrc"))
                        .collect::<Result<_, _>>()?,
                });
            } else {
                d.other.push(c.clone());
            }
        }
        Ok(d)
    }

    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("description", NS)
            .a("media", self.media.as_str())
            .a("ssrc", self.ssrc.map(|v| v.to_string()));
        b = b.append_all(self.payload_types.iter().map(PayloadType::to_element));
        b = b.append_all(self.rtcp_fbs.iter().map(RtcpFb::to_element));
        b = b.append_all(self.hdrexts.iter().map(|h| {
            Element::builder("rtp-hdrext", NS_HDREXT)
                .a("id", h.id.to_string())
                .a("uri", h.uri.as_str())
                .a("senders", h.senders.clone())
                .build()
        }));
        if self.extmap_allow_mixed {
            b = b.append(Element::builder("extmap-allow-mixed", NS_HDREXT).build());
        }
        b = b.append_all(self.sources.iter().map(|s| {
            Element::builder("source", NS_SSMA)
                .a("ssrc", s.ssrc.to_string())
                .append_all(s.parameters.iter().map(|(n, v)| {
                    Element::builder("parameter", NS_SSMA)
                        .a("name", n.as_str())
                        .a("value", v.clone())
                        .build()
                }))
                .build()
        }));
        b = b.append_all(self.ssrc_groups.iter().map(|g| {
            Element::builder("ssrc-group", NS_SSMA)
                .a("semantics", g.semantics.as_str())
                .append_all(g.ssrcs.iter().map(|s| {
                    Element::builder("source", NS_SSMA)
                        .a("ssrc", s.to_string())
                        .build()
                }))
                .build()
        }));
        if self.rtcp_mux {
            b = b.append(Element::builder("rtcp-mux", NS).build());
        }
        b.append_all(self.other.iter().cloned()).build()
    }
}

/// XEP-0167 §7 session-info payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Info {
    Active,
    Hold,
    Unhold,
    Ringing,
    /// `name`: the content muted, `None` for all.
    Mute(Option<String>),
    Unmute(Option<String>),
}

impl Info {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Hold => "hold",
            Self::Unhold => "unhold",
            Self::Ringing => "ringing",
            Self::Mute(_) => "mute",
            Self::Unmute(_) => "unmute",
        }
    }

    /// From the bridge's `info` name, with the content a mute applies to.
    pub fn parse(s: &str, name: Option<String>) -> Option<Self> {
        Some(match s {
            "active" => Self::Active,
            "hold" => Self::Hold,
            "unhold" => Self::Unhold,
            "ringing" => Self::Ringing,
            "mute" => Self::Mute(name),
            "unmute" => Self::Unmute(name),
            _ => return None,
        })
    }

    pub fn from_element(e: &Element) -> Option<Self> {
        if e.ns() != NS_INFO {
            return None;
        }
        Self::parse(e.name(), e.attr("name").map(str::to_owned))
    }

    /// `creator`: our role, for mute/unmute.
    pub fn to_element(&self, creator: &str) -> Element {
        let b = Element::builder(self.as_str(), NS_INFO);
        match self {
            Self::Mute(n) | Self::Unmute(n) => b.a("creator", creator).a("name", n.clone()).build(),
            _ => b.build(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(xml: &str) -> Element {
        let e: Element = xml.parse().expect("test XML parses");
        let d = Description::from_element(&e).expect("reads");
        let back = d.to_element();
        assert_eq!(back, e, "round trip of {xml}");
        back
    }

    /// XEP-0167 Example 1's description, with XEP-0293 and XEP-0294 additions.
    #[test]
    fn xep_0167_description_round_trips() {
        let xml = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
            <payload-type channels='2' clockrate='48000' id='111' name='opus'>\
            <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='transport-cc'/>\
            <parameter name='minptime' value='10'/>\
            <parameter name='useinbandfec' value='1'/></payload-type>\
            <payload-type clockrate='16000' id='97' name='speex'/>\
            <payload-type id='18' name='G729'/>\
            <payload-type id='103' name='L16' clockrate='16000' channels='2'/>\
            <rtcp-fb xmlns='urn:xmpp:jingle:apps:rtp:rtcp-fb:0' type='nack' subtype='pli'/>\
            <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='1' uri='urn:ietf:params:rtp-hdrext:ssrc-audio-level'/>\
            <rtp-hdrext xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0' id='2' senders='initiator' uri='urn:ietf:params:rtp-hdrext:toffset'/>\
            <extmap-allow-mixed xmlns='urn:xmpp:jingle:apps:rtp:rtp-hdrext:0'/>\
            <source xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' ssrc='1656081975'>\
            <parameter name='cname' value='Yv/wvbCdsDW2Prgd'/>\
            <parameter name='msid' value='MLTJKIHilGn71fNQoszkQ4jlPTuS5vJyKVIv MLTJKIHilGn71fNQoszkQ4jlPTuS5vJyKVIva0'/>\
            </source>\
            <ssrc-group xmlns='urn:xmpp:jingle:apps:rtp:ssma:0' semantics='FID'>\
            <source ssrc='2301230316'/><source ssrc='386328120'/></ssrc-group>\
            <rtcp-mux/></description>";
        let back = round_trip(xml);
        let d = Description::from_element(&back).unwrap();
        assert_eq!(d.payload_types.len(), 4);
        assert_eq!(
            d.payload_types[0].parameters[1],
            ("useinbandfec".into(), "1".into())
        );
        assert_eq!(d.ssrc_groups[0].ssrcs, [2301230316, 386328120]);
        assert!(d.rtcp_mux && d.extmap_allow_mixed);
        // The literal form minidom writes (attributes sorted).
        let one: Element = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
            <payload-type id='96' name='VP8' clockrate='90000'/><rtcp-mux/></description>"
            .parse()
            .unwrap();
        assert_eq!(
            String::from(&Description::from_element(&one).unwrap().to_element()),
            "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='video'>\
             <payload-type clockrate='90000' id='96' name='VP8'/><rtcp-mux/></description>"
        );
    }

    #[test]
    fn unknown_children_are_kept_and_bad_numbers_refused() {
        round_trip(
            "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
             <payload-type id='0' name='PCMU' clockrate='8000'/>\
             <encryption xmlns='urn:xmpp:jingle:apps:rtp:1' required='0'/></description>",
        );
        let bad: Element = "<description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'>\
            <payload-type id='x'/></description>"
            .parse()
            .unwrap();
        let e = Description::from_element(&bad).unwrap_err();
        assert!(e.to_string().contains("id=\"x\""), "{e}");
    }

    #[test]
    fn session_info_payloads() {
        for xml in [
            "<ringing xmlns='urn:xmpp:jingle:apps:rtp:info:1'/>",
            "<active xmlns='urn:xmpp:jingle:apps:rtp:info:1'/>",
            "<hold xmlns='urn:xmpp:jingle:apps:rtp:info:1'/>",
            "<unhold xmlns='urn:xmpp:jingle:apps:rtp:info:1'/>",
            "<mute xmlns='urn:xmpp:jingle:apps:rtp:info:1' creator='responder' name='voice'/>",
            "<unmute xmlns='urn:xmpp:jingle:apps:rtp:info:1' creator='responder' name='voice'/>",
        ] {
            let e: Element = xml.parse().unwrap();
            let info = Info::from_element(&e).expect(xml);
            assert_eq!(info.to_element("responder"), e, "{xml}");
        }
    }
}
