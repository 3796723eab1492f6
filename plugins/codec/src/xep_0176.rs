//! XEP-0176: the ICE-UDP transport (credentials, candidates, the DTLS fingerprint of
//! XEP-0320 inside it), and its SDP `a=candidate` form.
//!
//! Why our own types: xmpp-parsers 0.23 keeps this transport's fields private and
//! reads a candidate's address as an IP, so browser mDNS names fail to parse. XEP-0176
//! has no TCP candidates: [`Candidate::from_sdp`] refuses them (and `.local` names,
//! which the peer cannot resolve) with a reason the caller logs.

use perch_plugin_api::minidom::Element;

use crate::dom::Attr;
use crate::xep_0166::xml::{ParseError, attr, num, opt_num};
use crate::xep_0320::Fingerprint;

pub const NS: &str = "urn:xmpp:jingle:transports:ice-udp:1";

/// One `<candidate/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidate {
    pub component: u8,
    pub foundation: String,
    pub generation: u8,
    pub id: String,
    pub ip: String,
    pub network: Option<u8>,
    pub port: u16,
    pub priority: u32,
    /// `udp`.
    pub protocol: String,
    /// `host`, `srflx`, `prflx`, `relay`.
    pub kind: String,
    pub rel_addr: Option<String>,
    pub rel_port: Option<u16>,
}

/// Why an SDP candidate is not sent over Jingle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandidateSkip {
    #[error("TCP candidates cannot be carried by XEP-0176 (protocol {0})")]
    Tcp(String),
    #[error("mDNS candidate {0} cannot be resolved by the peer")]
    Mdns(String),
    #[error("malformed candidate {0:?}: {1}")]
    Malformed(String, &'static str),
}

impl Candidate {
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        Ok(Self {
            component: num(e, "component")?,
            foundation: attr(e, "foundation")?.to_owned(),
            generation: opt_num(e, "generation")?.unwrap_or(0),
            id: e.attr("id").unwrap_or_default().to_owned(),
            ip: attr(e, "ip")?.to_owned(),
            network: opt_num(e, "network")?,
            port: num(e, "port")?,
            priority: num(e, "priority")?,
            protocol: attr(e, "protocol")?.to_ascii_lowercase(),
            kind: attr(e, "type")?.to_owned(),
            rel_addr: e.attr("rel-addr").map(str::to_owned),
            rel_port: opt_num(e, "rel-port")?,
        })
    }

    pub fn to_element(&self) -> Element {
        Element::builder("candidate", NS)
            .a("component", self.component.to_string())
            .a("foundation", self.foundation.as_str())
            .a("generation", self.generation.to_string())
            .a("id", self.id.as_str())
            .a("ip", self.ip.as_str())
            .a("network", self.network.map(|n| n.to_string()))
            .a("port", self.port.to_string())
            .a("priority", self.priority.to_string())
            .a("protocol", self.protocol.as_str())
            .a("rel-addr", self.rel_addr.clone())
            .a("rel-port", self.rel_port.map(|p| p.to_string()))
            .a("type", self.kind.as_str())
            .build()
    }

    /// Reads an SDP candidate (`candidate:…`, with or without `a=`); `id` is given
    /// by the caller (XEP-0176 wants one per candidate).
    pub fn from_sdp(line: &str, id: String) -> Result<Self, CandidateSkip> {
        let body = line.trim();
        let body = body.strip_prefix("a=").unwrap_or(body);
        let malformed = |why| CandidateSkip::Malformed(line.to_owned(), why);
        let body = body
            .strip_prefix("candidate:")
            .ok_or_else(|| malformed("does not start with candidate:"))?;
        let f: Vec<&str> = body.split_whitespace().collect();
        if f.len() < 8 || f[6] != "typ" {
            return Err(malformed("fewer than 8 fields or no typ"));
        }
        let protocol = f[2].to_ascii_lowercase();
        if protocol != "udp" {
            return Err(CandidateSkip::Tcp(protocol));
        }
        if f[4].ends_with(".local") {
            return Err(CandidateSkip::Mdns(f[4].to_owned()));
        }
        let mut c = Candidate {
            foundation: f[0].to_owned(),
            component: f[1].parse().map_err(|_| malformed("component"))?,
            protocol,
            priority: f[3].parse().map_err(|_| malformed("priority"))?,
            ip: f[4].to_owned(),
            port: f[5].parse().map_err(|_| malformed("port"))?,
            kind: f[7].to_owned(),
            id,
            network: Some(0),
            ..Default::default()
        };
        for pair in f[8..].chunks(2) {
            match pair {
                ["raddr", v] => c.rel_addr = Some((*v).to_owned()),
                ["rport", v] => c.rel_port = Some(v.parse().map_err(|_| malformed("rport"))?),
                ["generation", v] => {
                    c.generation = v.parse().map_err(|_| malformed("generation"))?
                }
                ["network-id", v] => c.network = v.parse().ok(),
                _ => {}
            }
        }
        Ok(c)
    }

    /// The SDP form, without `a=` (what webrtcbin's `add-ice-candidate` takes).
    pub fn to_sdp(&self) -> String {
        let mut s = format!(
            "candidate:{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.protocol.to_ascii_uppercase(),
            self.priority,
            self.ip,
            self.port,
            self.kind
        );
        if let (Some(a), Some(p)) = (&self.rel_addr, self.rel_port) {
            s.push_str(&format!(" raddr {a} rport {p}"));
        }
        s.push_str(&format!(" generation {}", self.generation));
        s
    }
}

/// `<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' ufrag pwd>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transport {
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    pub candidates: Vec<Candidate>,
    pub fingerprint: Option<Fingerprint>,
}

impl Transport {
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        let mut t = Transport {
            ufrag: e.attr("ufrag").map(str::to_owned),
            pwd: e.attr("pwd").map(str::to_owned),
            ..Default::default()
        };
        for c in e.children() {
            if c.is("candidate", NS) {
                t.candidates.push(Candidate::from_element(c)?);
            } else if c.is("fingerprint", crate::xep_0320::NS) {
                t.fingerprint = Some(Fingerprint::from_element(c)?);
            }
        }
        Ok(t)
    }

    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("transport", NS)
            .a("ufrag", self.ufrag.clone())
            .a("pwd", self.pwd.clone());
        if let Some(f) = &self.fingerprint {
            b = b.append(f.to_element());
        }
        b.append_all(self.candidates.iter().map(Candidate::to_element))
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// XEP-0176 Example 1's transport, with XEP-0320's fingerprint.
    #[test]
    fn transport_round_trips() {
        let xml = "<transport xmlns='urn:xmpp:jingle:transports:ice-udp:1' pwd='asd88fgpdd777uzjYhagZg' ufrag='8hhy'>\
            <fingerprint xmlns='urn:xmpp:jingle:apps:dtls:0' hash='sha-256' setup='actpass'>02:1A:CC:54:27:AB:EB:9C:53:3F:3E:4B:65:2E:7D:46:3F:54:42:CD:54:F1:7A:03:A2:7D:F9:B0:7F:46:19:B2</fingerprint>\
            <candidate component='1' foundation='1' generation='0' id='el0747fg11' ip='10.0.1.1' network='1' port='8998' priority='2130706431' protocol='udp' type='host'/>\
            <candidate component='1' foundation='2' generation='0' id='y3s2b30v3r' ip='192.0.2.3' network='1' port='45664' priority='1694498815' protocol='udp' rel-addr='10.0.1.1' rel-port='8998' type='srflx'/>\
            </transport>";
        let e: Element = xml.parse().unwrap();
        let t = Transport::from_element(&e).unwrap();
        assert_eq!(t.ufrag.as_deref(), Some("8hhy"));
        assert_eq!(t.candidates[1].rel_port, Some(8998));
        assert_eq!(t.to_element(), e);
    }

    #[test]
    fn sdp_candidates_both_ways_and_refusals() {
        let line = "candidate:1 1 UDP 2015363327 10.77.0.1 43125 typ host";
        let c = Candidate::from_sdp(line, "x1".into()).unwrap();
        assert_eq!(
            (c.ip.as_str(), c.port, c.component),
            ("10.77.0.1", 43125, 1)
        );
        assert_eq!(c.to_sdp(), format!("{line} generation 0"));
        let srflx = "candidate:842163049 1 udp 1677729535 192.0.2.3 3478 typ srflx raddr 10.0.0.1 rport 54321 generation 0 ufrag 70vR network-cost 999";
        let c = Candidate::from_sdp(&format!("a={srflx}"), "x2".into()).unwrap();
        assert_eq!(c.rel_addr.as_deref(), Some("10.0.0.1"));
        assert_eq!(
            c.to_sdp(),
            "candidate:842163049 1 UDP 1677729535 192.0.2.3 3478 typ srflx raddr 10.0.0.1 rport 54321 generation 0"
        );
        let back = Candidate::from_element(&c.to_element()).unwrap();
        assert_eq!(back, c);
        assert!(matches!(
            Candidate::from_sdp(
                "candidate:3 1 TCP 1010827775 10.77.0.1 9 typ host tcptype active",
                "x".into()
            ),
            Err(CandidateSkip::Tcp(_))
        ));
        assert!(matches!(
            Candidate::from_sdp(
                "candidate:4 1 udp 2122260223 6b1c1e3e-1f2a.local 5000 typ host",
                "x".into()
            ),
            Err(CandidateSkip::Mdns(_))
        ));
        assert!(matches!(
            Candidate::from_sdp("candidate:nope", "x".into()),
            Err(CandidateSkip::Malformed(..))
        ));
    }
}
