//! SDP ⇄ Jingle: the frontend speaks JSEP (SDP offers and answers), the network speaks
//! Jingle; this is the only place that knows both.
//!
//! Rules (`doc/calls.rst`, "SDP and Jingle"):
//! - content order is m-line order and a content's name is its `a=mid` (an m-line
//!   without one is named after its index, as browsers do);
//! - what Jingle carries survives both ways: `a=group:BUNDLE`, codecs (`rtpmap`,
//!   `fmtp`, `rtcp-fb`, `rtcp-fb:*`), `extmap` and `extmap-allow-mixed`, `ssrc` and
//!   `ssrc-group`, `rtcp-mux`, the direction, `fingerprint` and `setup`, ICE
//!   credentials and candidates;
//! - what it does not carry is dropped (`rtcp-rsize`, `rtcp-mux-only`, `bundle-only`,
//!   `framerate`, `msid`, …), and so are TCP and mDNS candidates (see
//!   [`crate::xep_0176::CandidateSkip`]), each with a reason the caller logs;
//! - Jingle → SDP gives every m-line port 9 and its own ICE and DTLS attributes,
//!   since port 0 would mean "rejected" to the other side.

use crate::xep_0166::xml::{Content, Group, Senders};
use crate::xep_0167::rtp::{Description, HdrExt, PayloadType, RtcpFb, Source, SsrcGroup};
use crate::xep_0176::{Candidate, Transport};
use crate::xep_0320::Fingerprint;

/// Who wrote an SDP (or a Jingle message): needed to map directions to `senders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Responder,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initiator => "initiator",
            Self::Responder => "responder",
        }
    }
    fn senders(self) -> Senders {
        match self {
            Self::Initiator => Senders::Initiator,
            Self::Responder => Senders::Responder,
        }
    }
    fn other(self) -> Self {
        match self {
            Self::Initiator => Self::Responder,
            Self::Responder => Self::Initiator,
        }
    }
}

/// An SDP that cannot be turned into Jingle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP line {line}: {why}: {text:?}")]
    Line {
        line: usize,
        text: String,
        why: &'static str,
    },
    #[error("the SDP has no audio or video m-line")]
    NoMedia,
}

/// The Jingle side of an SDP.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Converted {
    pub contents: Vec<Content>,
    pub group: Option<Group>,
    /// What was left out and why (logged by the caller).
    pub dropped: Vec<String>,
}

fn new_candidate_id() -> String {
    crate::ids::random_hex(5)
}

#[derive(Default)]
struct Section {
    media: String,
    fmts: Vec<String>,
    mid: Option<String>,
    ufrag: Option<String>,
    pwd: Option<String>,
    fingerprint: Option<(String, String)>,
    setup: Option<String>,
    direction: Option<String>,
    desc: Description,
    candidates: Vec<Candidate>,
}

/// Reads an SDP written by `author`; the contents are created by `creator`.
pub fn to_jingle(sdp: &str, author: Role, creator: Role) -> Result<Converted, SdpError> {
    let mut reader = SdpReader::default();
    for (n, raw) in sdp.lines().enumerate() {
        let text = raw.trim_end_matches('\r');
        if !text.is_empty() {
            reader.read_line(
                &SdpLine {
                    number: n + 1,
                    text,
                },
                author,
            )?;
        }
    }
    reader.into_jingle(author, creator)
}

/// One line of the SDP being read, kept to say where it is wrong.
struct SdpLine<'a> {
    number: usize,
    text: &'a str,
}

impl SdpLine<'_> {
    fn bad(&self, why: &'static str) -> SdpError {
        SdpError::Line {
            line: self.number,
            text: self.text.to_owned(),
            why,
        }
    }
}

/// What has been read of an SDP so far: the session-level attributes, the m-line
/// sections in order, and what applies to the whole session (BUNDLE,
/// `extmap-allow-mixed`).
#[derive(Default)]
struct SdpReader {
    out: Converted,
    session: Section,
    sections: Vec<Section>,
    bundle: Option<Vec<String>>,
    allow_mixed: bool,
}

impl SdpReader {
    /// Reads one non-empty line: an m-line opens a section, an attribute goes to the
    /// current section (the session's before the first m-line); other lines carry
    /// nothing Jingle needs.
    fn read_line(&mut self, at: &SdpLine<'_>, author: Role) -> Result<(), SdpError> {
        let Some((kind, value)) = at.text.split_once('=') else {
            return Err(at.bad("not of the form x=value"));
        };
        match kind {
            "m" => self.open_section(value, at),
            "a" => self.read_attribute(value, author, at),
            _ => Ok(()),
        }
    }

    fn open_section(&mut self, value: &str, at: &SdpLine<'_>) -> Result<(), SdpError> {
        let f: Vec<&str> = value.split_whitespace().collect();
        if f.len() < 3 {
            return Err(at.bad("m-line with fewer than 3 fields"));
        }
        self.sections.push(Section {
            media: f[0].to_owned(),
            fmts: f[3..].iter().map(|s| (*s).to_owned()).collect(),
            desc: Description {
                media: f[0].to_owned(),
                ..Default::default()
            },
            ..Default::default()
        });
        Ok(())
    }

    /// Reads an `a=` line (`value` is what follows `a=`); what Jingle does not carry
    /// is noted in `dropped`.
    fn read_attribute(
        &mut self,
        value: &str,
        author: Role,
        at: &SdpLine<'_>,
    ) -> Result<(), SdpError> {
        let (name, arg) = match value.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (value, None),
        };
        let in_session = self.sections.is_empty();
        let sec = self.sections.last_mut().unwrap_or(&mut self.session);
        match (name, arg) {
            ("group", Some(g)) => {
                let mut parts = g.split_whitespace();
                if parts.next() == Some("BUNDLE") {
                    self.bundle = Some(parts.map(str::to_owned).collect());
                } else {
                    self.out
                        .dropped
                        .push(format!("a={value}: only BUNDLE groups are carried"));
                }
            }
            ("extmap-allow-mixed", None) => {
                if in_session {
                    self.allow_mixed = true;
                } else {
                    sec.desc.extmap_allow_mixed = true;
                }
            }
            ("mid", Some(m)) => sec.mid = Some(m.to_owned()),
            ("ice-ufrag", Some(v)) => sec.ufrag = Some(v.to_owned()),
            ("ice-pwd", Some(v)) => sec.pwd = Some(v.to_owned()),
            ("setup", Some(v)) => sec.setup = Some(v.to_owned()),
            ("fingerprint", Some(v)) => {
                let (h, f) = v
                    .split_once(' ')
                    .ok_or_else(|| at.bad("fingerprint without a hash"))?;
                sec.fingerprint = Some((h.to_owned(), f.trim().to_owned()));
            }
            ("sendrecv" | "sendonly" | "recvonly" | "inactive", None) => {
                sec.direction = Some(name.to_owned())
            }
            ("rtcp-mux", None) => sec.desc.rtcp_mux = true,
            ("candidate", Some(_)) => match Candidate::from_sdp(value, new_candidate_id()) {
                Ok(c) => sec.candidates.push(c),
                Err(e) => self.out.dropped.push(e.to_string()),
            },
            ("end-of-candidates", None) => {}
            (_, Some(v)) if read_codec_attribute(&mut sec.desc, name, v, author, at)? => {}
            _ => self
                .out
                .dropped
                .push(format!("a={value}: not carried by Jingle")),
        }
        Ok(())
    }

    /// The contents (audio and video m-lines only) and the BUNDLE group.
    fn into_jingle(self, author: Role, creator: Role) -> Result<Converted, SdpError> {
        let Self {
            mut out,
            session,
            sections,
            bundle,
            allow_mixed,
        } = self;
        for (index, sec) in sections.into_iter().enumerate() {
            if sec.media != "audio" && sec.media != "video" {
                out.dropped.push(format!(
                    "m-line {index} ({}): only audio and video are carried",
                    sec.media
                ));
                continue;
            }
            let content = sec.into_content(index, &session, allow_mixed, author, creator);
            out.contents.push(content);
        }
        if out.contents.is_empty() {
            return Err(SdpError::NoMedia);
        }
        out.group = bundle.map(|contents| Group {
            semantics: "BUNDLE".into(),
            contents,
        });
        Ok(out)
    }
}

/// Reads the codec and RTP attributes of a section into its description; false if
/// `name` is none of them.
fn read_codec_attribute(
    desc: &mut Description,
    name: &str,
    v: &str,
    author: Role,
    at: &SdpLine<'_>,
) -> Result<bool, SdpError> {
    match name {
        "rtpmap" => read_rtpmap(desc, v, at)?,
        "fmtp" => read_fmtp(desc, v, at)?,
        "rtcp-fb" => read_rtcp_fb(desc, v, at)?,
        "extmap" => read_extmap(desc, v, author, at)?,
        "ssrc" => read_ssrc(desc, v, at)?,
        "ssrc-group" => read_ssrc_group(desc, v, at)?,
        _ => return Ok(false),
    }
    Ok(true)
}

fn read_rtpmap(desc: &mut Description, v: &str, at: &SdpLine<'_>) -> Result<(), SdpError> {
    let (pt, rest) = v
        .split_once(' ')
        .ok_or_else(|| at.bad("rtpmap without a codec"))?;
    let pt: u8 = pt.parse().map_err(|_| at.bad("rtpmap payload type"))?;
    let mut it = rest.trim().split('/');
    let p = payload(desc, pt);
    p.name = it.next().map(str::to_owned);
    p.clockrate = match it.next() {
        Some(c) => Some(c.parse().map_err(|_| at.bad("rtpmap clock rate"))?),
        None => None,
    };
    p.channels = match it.next() {
        Some(c) => Some(c.parse().map_err(|_| at.bad("rtpmap channels"))?),
        None => None,
    };
    Ok(())
}

fn read_fmtp(desc: &mut Description, v: &str, at: &SdpLine<'_>) -> Result<(), SdpError> {
    let (pt, rest) = v
        .split_once(' ')
        .ok_or_else(|| at.bad("fmtp without parameters"))?;
    let pt: u8 = pt.parse().map_err(|_| at.bad("fmtp payload type"))?;
    let p = payload(desc, pt);
    for kv in rest.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        p.parameters.push((k.to_owned(), v.to_owned()));
    }
    Ok(())
}

/// `a=rtcp-fb:*` applies to every codec of the section, `a=rtcp-fb:<pt>` to one.
fn read_rtcp_fb(desc: &mut Description, v: &str, at: &SdpLine<'_>) -> Result<(), SdpError> {
    let mut f = v.split_whitespace();
    let pt = f.next().unwrap_or_default();
    let fb = RtcpFb {
        kind: f
            .next()
            .ok_or_else(|| at.bad("rtcp-fb without a type"))?
            .to_owned(),
        subtype: f.next().map(str::to_owned),
    };
    if pt == "*" {
        desc.rtcp_fbs.push(fb);
    } else {
        let pt: u8 = pt.parse().map_err(|_| at.bad("rtcp-fb payload type"))?;
        payload(desc, pt).rtcp_fbs.push(fb);
    }
    Ok(())
}

fn read_extmap(
    desc: &mut Description,
    v: &str,
    author: Role,
    at: &SdpLine<'_>,
) -> Result<(), SdpError> {
    let mut f = v.split_whitespace();
    let idd = f.next().unwrap_or_default();
    let (id, dir) = match idd.split_once('/') {
        Some((i, d)) => (i, Some(d)),
        None => (idd, None),
    };
    desc.hdrexts.push(HdrExt {
        id: id.parse().map_err(|_| at.bad("extmap id"))?,
        uri: f
            .next()
            .ok_or_else(|| at.bad("extmap without a URI"))?
            .to_owned(),
        senders: dir.map(|d| direction_to_senders(d, author).as_str().to_owned()),
    });
    Ok(())
}

/// `a=ssrc:<ssrc> <attribute>[:<value>]`; a bare `a=ssrc:<ssrc>` only declares it.
fn read_ssrc(desc: &mut Description, v: &str, at: &SdpLine<'_>) -> Result<(), SdpError> {
    let (ssrc, attr) = v.split_once(' ').unwrap_or((v, ""));
    let ssrc: u32 = ssrc.parse().map_err(|_| at.bad("ssrc"))?;
    let (k, val) = match attr.split_once(':') {
        Some((k, val)) => (k.to_owned(), Some(val.to_owned())),
        None => (attr.to_owned(), None),
    };
    let pos = match desc.sources.iter().position(|s| s.ssrc == ssrc) {
        Some(p) => p,
        None => {
            desc.sources.push(Source {
                ssrc,
                parameters: Vec::new(),
            });
            desc.sources.len() - 1
        }
    };
    if !k.is_empty() {
        desc.sources[pos].parameters.push((k, val));
    }
    Ok(())
}

fn read_ssrc_group(desc: &mut Description, v: &str, at: &SdpLine<'_>) -> Result<(), SdpError> {
    let mut f = v.split_whitespace();
    let semantics = f.next().unwrap_or_default().to_owned();
    desc.ssrc_groups.push(SsrcGroup {
        semantics,
        ssrcs: f
            .map(|s| s.parse().map_err(|_| at.bad("ssrc-group ssrc")))
            .collect::<Result<_, _>>()?,
    });
    Ok(())
}

impl Section {
    /// The Jingle content of an audio or video m-line; ICE and DTLS attributes it
    /// lacks are taken from the session level.
    fn into_content(
        mut self,
        index: usize,
        session: &Section,
        allow_mixed: bool,
        author: Role,
        creator: Role,
    ) -> Content {
        self.order_codecs();
        if allow_mixed {
            self.desc.extmap_allow_mixed = true;
        }
        let fingerprint = self.fingerprint.or_else(|| session.fingerprint.clone());
        let setup = self.setup.or_else(|| session.setup.clone());
        let transport = Transport {
            ufrag: self.ufrag.or_else(|| session.ufrag.clone()),
            pwd: self.pwd.or_else(|| session.pwd.clone()),
            candidates: self.candidates,
            fingerprint: fingerprint.map(|(hash, value)| Fingerprint { hash, setup, value }),
        };
        Content {
            creator: creator.as_str().to_owned(),
            name: self.mid.unwrap_or_else(|| index.to_string()),
            senders: self
                .direction
                .as_deref()
                .map(|d| direction_to_senders(d, author))
                .filter(|s| *s != Senders::Both),
            disposition: None,
            description: Some(self.desc),
            transport: Some(transport),
            other: Vec::new(),
        }
    }

    /// Codecs in m-line order; those only named in the m-line get a bare entry.
    fn order_codecs(&mut self) {
        let mut ordered = Vec::new();
        for f in &self.fmts {
            if let Ok(pt) = f.parse::<u8>() {
                let p = match self.desc.payload_types.iter().position(|p| p.id == pt) {
                    Some(i) => self.desc.payload_types.remove(i),
                    None => PayloadType {
                        id: pt,
                        ..Default::default()
                    },
                };
                ordered.push(p);
            }
        }
        self.desc.payload_types = ordered;
    }
}

fn payload(desc: &mut Description, pt: u8) -> &mut PayloadType {
    let i = match desc.payload_types.iter().position(|p| p.id == pt) {
        Some(i) => i,
        None => {
            desc.payload_types.push(PayloadType {
                id: pt,
                ..Default::default()
            });
            desc.payload_types.len() - 1
        }
    };
    &mut desc.payload_types[i]
}

fn direction_to_senders(d: &str, author: Role) -> Senders {
    match d {
        "sendonly" => author.senders(),
        "recvonly" => author.other().senders(),
        "inactive" => Senders::None,
        _ => Senders::Both,
    }
}

fn senders_to_direction(s: Senders, author: Role) -> &'static str {
    match s {
        Senders::Both => "sendrecv",
        Senders::None => "inactive",
        s if s == author.senders() => "sendonly",
        _ => "recvonly",
    }
}

/// A stable numeric SDP session id from the Jingle sid (FNV-1a, 63 bits).
fn session_id(sid: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sid.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h >> 1
}

/// Writes the SDP of Jingle contents written by `author`, for session `sid`.
pub fn to_sdp(contents: &[Content], group: Option<&Group>, author: Role, sid: &str) -> String {
    let mut w = SdpWriter(String::with_capacity(2048));
    w.line("v=0");
    w.line(&format!("o=- {} 2 IN IP4 0.0.0.0", session_id(sid)));
    w.line("s=-");
    w.line("t=0 0");
    if let Some(g) = group {
        w.line(&format!("a=group:{} {}", g.semantics, g.contents.join(" ")));
    }
    let descs: Vec<&Description> = contents
        .iter()
        .filter_map(|c| c.description.as_ref())
        .collect();
    let mixed_everywhere = !descs.is_empty() && descs.iter().all(|d| d.extmap_allow_mixed);
    if mixed_everywhere {
        w.line("a=extmap-allow-mixed");
    }
    for c in contents {
        if let Some(d) = &c.description {
            w.media_section(c, d, author, mixed_everywhere);
        }
    }
    w.0
}

/// An SDP being written, line by line (CRLF-terminated).
struct SdpWriter(String);

impl SdpWriter {
    fn line(&mut self, l: &str) {
        self.0.push_str(l);
        self.0.push_str("\r\n");
    }

    /// The m-line of a content and its attributes; a session-level
    /// `extmap-allow-mixed` (`mixed_everywhere`) is not repeated.
    fn media_section(
        &mut self,
        c: &Content,
        d: &Description,
        author: Role,
        mixed_everywhere: bool,
    ) {
        let pts: Vec<String> = d.payload_types.iter().map(|p| p.id.to_string()).collect();
        self.line(&format!(
            "m={} 9 UDP/TLS/RTP/SAVPF {}",
            d.media,
            pts.join(" ")
        ));
        self.line("c=IN IP4 0.0.0.0");
        let t = c.transport.clone().unwrap_or_default();
        self.ice_and_dtls(&t);
        self.line(&format!("a=mid:{}", c.name));
        for h in &d.hdrexts {
            match h.senders.as_deref().and_then(Senders::parse) {
                Some(sd) if sd != Senders::Both => self.line(&format!(
                    "a=extmap:{}/{} {}",
                    h.id,
                    senders_to_direction(sd, author),
                    h.uri
                )),
                _ => self.line(&format!("a=extmap:{} {}", h.id, h.uri)),
            }
        }
        if d.extmap_allow_mixed && !mixed_everywhere {
            self.line("a=extmap-allow-mixed");
        }
        self.line(&format!("a={}", senders_to_direction(c.senders(), author)));
        if d.rtcp_mux {
            self.line("a=rtcp-mux");
        }
        for fb in &d.rtcp_fbs {
            self.line(&fb_line("*", fb));
        }
        for p in &d.payload_types {
            self.codec(p);
        }
        self.sources(d);
        for cand in &t.candidates {
            self.line(&format!("a={}", cand.to_sdp()));
        }
    }

    /// ICE credentials, then the DTLS fingerprint and setup role.
    fn ice_and_dtls(&mut self, t: &Transport) {
        if let Some(u) = &t.ufrag {
            self.line(&format!("a=ice-ufrag:{u}"));
        }
        if let Some(p) = &t.pwd {
            self.line(&format!("a=ice-pwd:{p}"));
        }
        self.line("a=ice-options:trickle");
        if let Some(f) = &t.fingerprint {
            self.line(&format!("a=fingerprint:{} {}", f.hash, f.value));
            if let Some(setup) = &f.setup {
                self.line(&format!("a=setup:{setup}"));
            }
        }
    }

    /// A codec's `rtpmap` (if named), `rtcp-fb` and `fmtp` lines.
    fn codec(&mut self, p: &PayloadType) {
        if let Some(name) = &p.name {
            let mut m = format!("a=rtpmap:{} {}/{}", p.id, name, p.clockrate.unwrap_or(8000));
            if let Some(ch) = p.channels {
                m.push_str(&format!("/{ch}"));
            }
            self.line(&m);
        }
        for fb in &p.rtcp_fbs {
            self.line(&fb_line(&p.id.to_string(), fb));
        }
        if !p.parameters.is_empty() {
            let params: Vec<String> = p
                .parameters
                .iter()
                .map(|(k, v)| {
                    if v.is_empty() {
                        k.clone()
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect();
            self.line(&format!("a=fmtp:{} {}", p.id, params.join(";")));
        }
    }

    /// `ssrc-group` lines, then every `ssrc` attribute.
    fn sources(&mut self, d: &Description) {
        for g in &d.ssrc_groups {
            let ssrcs: Vec<String> = g.ssrcs.iter().map(u32::to_string).collect();
            self.line(&format!("a=ssrc-group:{} {}", g.semantics, ssrcs.join(" ")));
        }
        for src in &d.sources {
            for (k, v) in &src.parameters {
                match v {
                    Some(v) => self.line(&format!("a=ssrc:{} {k}:{v}", src.ssrc)),
                    None => self.line(&format!("a=ssrc:{} {k}", src.ssrc)),
                }
            }
        }
    }
}

fn fb_line(pt: &str, fb: &RtcpFb) -> String {
    match &fb.subtype {
        Some(sub) => format!("a=rtcp-fb:{pt} {} {sub}", fb.kind),
        None => format!("a=rtcp-fb:{pt} {}", fb.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::minidom::Element;
    use crate::xep_0166::xml::{Action, Jingle};

    /// Found when the test runs (a built test may outlive its clone's path).
    fn fixtures() -> String {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
        format!("{dir}/tests/fixtures/jingle")
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/{name}", fixtures()))
            .unwrap_or_else(|e| panic!("reading fixture {name}: {e}"))
    }

    /// The lines Jingle carries, per section (0: session), as a sorted multiset. The
    /// m-line's port is masked (bundle-only m-lines have port 0, ours 9), and a
    /// session-level `extmap-allow-mixed` counts for every m-line.
    fn carried(sdp: &str) -> Vec<Vec<String>> {
        const KEEP: &[&str] = &[
            "a=mid:",
            "a=rtpmap:",
            "a=fmtp:",
            "a=rtcp-fb:",
            "a=extmap:",
            "a=ssrc:",
            "a=ssrc-group:",
            "a=setup:",
            "a=fingerprint:",
            "a=ice-ufrag:",
            "a=ice-pwd:",
            "a=candidate:",
            "a=group:BUNDLE",
        ];
        const EXACT: &[&str] = &[
            "a=rtcp-mux",
            "a=sendrecv",
            "a=sendonly",
            "a=recvonly",
            "a=inactive",
            "a=extmap-allow-mixed",
        ];
        let mut out: Vec<Vec<String>> = vec![Vec::new()];
        let mut mixed = false;
        for l in sdp.lines().map(|l| l.trim_end_matches('\r')) {
            if let Some(m) = l.strip_prefix("m=") {
                let f: Vec<&str> = m.split_whitespace().collect();
                let mut sec = vec![format!("m={} PORT {}", f[0], f[2..].join(" "))];
                if mixed {
                    sec.push("a=extmap-allow-mixed".into());
                }
                out.push(sec);
            } else if out.len() == 1 && l == "a=extmap-allow-mixed" {
                mixed = true;
            } else if KEEP.iter().any(|k| l.starts_with(k)) || EXACT.contains(&l) {
                out.last_mut().unwrap().push(l.to_owned());
            }
        }
        for s in &mut out {
            s.sort();
        }
        out
    }

    /// SDP → Jingle (written as XML and read back) → SDP keeps every m-line and every
    /// attribute Jingle carries; the output is also compared with its golden file
    /// (set PERCH_UPDATE_GOLDEN=1 to rewrite them after a deliberate change).
    fn golden(name: &str, author: Role) {
        let sdp = fixture(&format!("{name}.sdp"));
        let conv = to_jingle(&sdp, author, Role::Initiator).expect("converts");
        let mut j = Jingle::new(Action::SessionInitiate, "sid-golden");
        j.contents = conv.contents.clone();
        j.group = conv.group;
        let xml = String::from(&j.to_element());
        let back = Jingle::from_element(&xml.parse::<Element>().unwrap()).expect("reads back");
        assert_eq!(back, j, "Jingle XML round trip of {name}");
        let out = to_sdp(&back.contents, back.group.as_ref(), author, "sid-golden");
        assert_eq!(
            carried(&out),
            carried(&sdp),
            "{name}: carried lines differ\n{out}"
        );
        let golden_path = format!("{}/{name}.roundtrip.sdp", fixtures());
        if std::env::var_os("PERCH_UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden_path, &out).unwrap();
        }
        assert_eq!(
            out,
            fixture(&format!("{name}.roundtrip.sdp")),
            "{name}: golden file"
        );
        // Converting our own output again changes nothing.
        let again = to_jingle(&out, author, Role::Initiator).unwrap();
        assert_eq!(
            to_sdp(&again.contents, again.group.as_ref(), author, "sid-golden"),
            out
        );
    }

    #[test]
    fn webrtcbin_offer_golden() {
        golden("webrtcbin-1.22-offer", Role::Initiator);
        let c = to_jingle(
            &fixture("webrtcbin-1.22-offer.sdp"),
            Role::Initiator,
            Role::Initiator,
        )
        .unwrap();
        let names: Vec<&str> = c.contents.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["audio0", "video1"]);
        assert_eq!(c.group.unwrap().contents, ["audio0", "video1"]);
        // The bundle-only video keeps its ICE and DTLS attributes.
        let t = c.contents[1].transport.as_ref().unwrap();
        assert_eq!(
            t.fingerprint.as_ref().unwrap().setup.as_deref(),
            Some("actpass")
        );
        assert!(
            c.dropped.iter().any(|d| d.contains("rtcp-mux-only")),
            "{:?}",
            c.dropped
        );
    }

    #[test]
    fn webrtcbin_answer_golden() {
        golden("webrtcbin-1.22-answer", Role::Responder);
    }

    #[test]
    fn chromium_offer_golden() {
        golden("chromium-156-offer", Role::Initiator);
        let c = to_jingle(
            &fixture("chromium-156-offer.sdp"),
            Role::Initiator,
            Role::Initiator,
        )
        .unwrap();
        let video = c.contents[1].description.as_ref().unwrap();
        assert_eq!(video.payload_types.len(), 23);
        assert_eq!(
            video.payload_types[1].parameters,
            [("apt".into(), "96".into())]
        );
        assert!(video.extmap_allow_mixed);
        let audio = c.contents[0].description.as_ref().unwrap();
        // red's fmtp has no key=value: it survives as is.
        let red = audio.payload_types.iter().find(|p| p.id == 63).unwrap();
        assert_eq!(red.parameters, [("111/111".into(), String::new())]);
    }

    #[test]
    fn directions_map_to_senders_by_role() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:a\r\na=sendonly\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=recvonly\r\n";
        let c = to_jingle(sdp, Role::Responder, Role::Initiator).unwrap();
        assert_eq!(c.contents[0].senders, Some(Senders::Responder));
        assert_eq!(c.contents[1].senders, Some(Senders::Initiator));
        // Read from the other side, the directions flip.
        let out = to_sdp(&c.contents, None, Role::Initiator, "s");
        let dirs: Vec<&str> = out.lines().filter(|l| l.ends_with("only")).collect();
        assert_eq!(dirs, ["a=recvonly", "a=sendonly"]);
    }

    #[test]
    fn tcp_and_mdns_candidates_are_dropped_with_a_reason() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n\
                   a=candidate:1 1 UDP 2015363327 10.77.0.1 43125 typ host\r\n\
                   a=candidate:2 1 TCP 1015021823 10.77.0.1 9 typ host tcptype active\r\n\
                   a=candidate:3 1 udp 2122260223 0f1e.local 5000 typ host\r\n";
        let c = to_jingle(sdp, Role::Initiator, Role::Initiator).unwrap();
        let t = c.contents[0].transport.as_ref().unwrap();
        assert_eq!(t.candidates.len(), 1);
        let reasons = c.dropped.join("\n");
        assert!(
            reasons.contains("TCP") && reasons.contains(".local"),
            "{reasons}"
        );
    }

    #[test]
    fn bad_sdp_is_refused_naming_the_line() {
        let e = to_jingle("v=0\r\nnonsense\r\n", Role::Initiator, Role::Initiator).unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
        let e = to_jingle("v=0\r\n", Role::Initiator, Role::Initiator).unwrap_err();
        assert_eq!(e, SdpError::NoMedia);
        let e = to_jingle(
            "v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:x PCMU/8000\r\n",
            Role::Initiator,
            Role::Initiator,
        )
        .unwrap_err();
        assert!(e.to_string().contains("rtpmap"), "{e}");
    }
}
