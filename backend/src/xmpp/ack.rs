//! XEP-0198 acknowledgements that count only what perchd has kept.
//!
//! Why: tokio-xmpp counts a stanza towards the `h` of its `<a/>` as soon as it has
//! read it, and answers the server's `<r/>` with that count. A stanza read but not
//! yet stored (waiting in the inbox, or refused by a full disk) was thus acknowledged
//! to the server, which then forgot it: a `kill -9` during a flood lost the 945
//! messages delivered to the dead connection. The library offers no hook, so the
//! count is corrected on the bytes, in the stream wrapper of `limits.rs`:
//!
//! - the read side tells [`AckGate::released`] of every top-level element it hands
//!   to the parser, in order (each stanza gets a wire index; `<enabled/>` starts the
//!   count at 0, as it does for the library);
//! - the session claims each stanza the library hands it ([`AckGate::claim`]) and
//!   marks it [`AckGate::done`] once it is handled: an IQ at once, a message or a
//!   presence when the inbox has finished with it (a message: stored). A stanza the
//!   library dropped as unparsable is done when the next one is claimed;
//! - the write side lowers the `h` of every `<a/>` to the number of stanzas of the
//!   current count that are all done ([`AckGate::ack`]), never below what was sent
//!   before (the server closes a stream whose `h` goes back).
//!
//! What is not acknowledged stays the server's: it re-sends it on a resumption, or,
//! when the session ends without one, keeps it for the next session (Prosody:
//! offline storage) or tells the sender it was not delivered. A `<resume/>` carries
//! the library's own count: only a live perchd resumes, and it still holds what it
//! read, so nothing is lost there; its `h` becomes the floor.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

/// A stanza's kind, as the wire and the library both name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    Presence,
    Iq,
}

impl Kind {
    fn of(name: &[u8]) -> Option<Self> {
        match name {
            b"message" => Some(Self::Message),
            b"presence" => Some(Self::Presence),
            b"iq" => Some(Self::Iq),
            _ => None,
        }
    }
}

/// How many handled stanzas may wait behind one that is not.
const MAX_HOLES_BEHIND: usize = 4096;

/// A claim that names no released stanza (the wrapper was not in the path).
pub const UNTRACKED: u64 = u64::MAX;

#[derive(Debug, Default)]
struct State {
    /// Released to the parser, not yet claimed by the session: (wire index, kind, id).
    released: VecDeque<(u64, Kind, Option<String>)>,
    /// The wire index of the next stanza released.
    next: u64,
    /// The wire index where the current count (since `<enabled/>`) starts.
    frame_start: u64,
    /// Every stanza below this wire index is done.
    watermark: u64,
    /// Done stanzas above the watermark.
    done: BTreeSet<u64>,
    /// The highest `h` sent in this count (or carried by a `<resume/>`).
    floor: u32,
    /// The library's own latest `h`: it has at least that many stanzas.
    library_h: u32,
}

/// The count of kept stanzas of one session, shared by its connections.
#[derive(Debug, Default)]
pub struct AckGate {
    st: Mutex<State>,
}

/// `&amp;` and the other predefined entities, as in a raw attribute value.
fn unescape(raw: &str) -> String {
    if !raw.contains('&') {
        return raw.to_owned();
    }
    raw.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

impl AckGate {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The read side released a top-level element named `name` (its raw `id`).
    pub fn released(&self, name: &[u8], id: Option<&str>) {
        let mut st = self.lock();
        if let Some(kind) = Kind::of(name) {
            let k = st.next;
            st.next += 1;
            st.released.push_back((k, kind, id.map(unescape)));
        } else if name == b"enabled" {
            // A new count: what came before is the old stream's (the server decides
            // its fate), and the library counts from 0 again.
            let start = st.next;
            st.frame_start = start;
            if st.watermark < start {
                st.watermark = start;
                st.done = st.done.split_off(&start);
            }
            st.floor = 0;
            st.library_h = 0;
        }
    }

    /// The session got a stanza from the library: its wire index.
    pub fn claim(&self, kind: Kind, id: Option<&str>) -> u64 {
        let mut st = self.lock();
        while let Some((k, released_kind, released_id)) = st.released.pop_front() {
            if released_kind == kind && released_id.as_deref() == id {
                return k;
            }
            // The library dropped this one (it could not parse it): nothing to keep.
            Self::mark(&mut st, k);
        }
        UNTRACKED
    }

    /// The stanza at wire index `k` is handled (stored, when it is a message).
    pub fn done(&self, k: u64) {
        if k == UNTRACKED {
            return;
        }
        Self::mark(&mut self.lock(), k);
    }

    fn mark(st: &mut State, k: u64) {
        if k < st.watermark {
            return;
        }
        st.done.insert(k);
        while st.done.remove(&st.watermark) {
            st.watermark += 1;
        }
        // A stanza that is never done (its storing failed, on a stream without
        // stream management that never ends) must not make this set grow for ever:
        // past a bound, the oldest hole is given up (its message stays unacknowledged
        // only as long as the bound held).
        if st.done.len() > MAX_HOLES_BEHIND {
            tracing::warn!(
                behind = st.done.len(),
                "a stanza was never stored; acknowledging past it so the count stays bounded"
            );
            if let Some(&first) = st.done.iter().next() {
                st.watermark = first;
                while st.done.remove(&st.watermark) {
                    st.watermark += 1;
                }
            }
        }
    }

    /// The `h` to send for the library's `h`: no more than what is done.
    pub fn ack(&self, library_h: u32) -> u32 {
        let mut st = self.lock();
        st.library_h = st.library_h.max(library_h);
        let h = library_h.min(Self::kept(&st)).max(st.floor);
        st.floor = h;
        h
    }

    fn kept(st: &State) -> u32 {
        u32::try_from(st.watermark.saturating_sub(st.frame_start)).unwrap_or(u32::MAX)
    }

    /// An `h` to send of our own accord, when more is handled than was acknowledged
    /// (a message stored after the library had answered the server's `<r/>`): never
    /// more than the library's own count.
    pub fn owed(&self) -> Option<u32> {
        let mut st = self.lock();
        let h = Self::kept(&st).min(st.library_h);
        (h > st.floor).then(|| {
            st.floor = h;
            h
        })
    }

    /// A `<resume/>` went out with `h`: the server now counts that much as handled.
    pub fn resumed_with(&self, h: u32) {
        let mut st = self.lock();
        st.floor = st.floor.max(h);
        st.library_h = st.library_h.max(h);
    }
}

/// Rewrites the `h` of the XEP-0198 elements in `out`-bound bytes: `<a/>` lowered
/// through `gate`, `<resume/>` noted. Works on whole elements; returns how many bytes
/// of `input` it consumed into `out` (the rest is an element cut short, to come again
/// with more bytes).
pub fn rewrite(gate: &AckGate, input: &[u8], out: &mut Vec<u8>) -> usize {
    let mut i = 0;
    while i < input.len() {
        let Some(rel) = input[i..].iter().position(|&b| b == b'<') else {
            out.extend_from_slice(&input[i..]);
            return input.len();
        };
        let lt = i + rel;
        out.extend_from_slice(&input[i..lt]);
        let rest = &input[lt..];
        let is_a = rest.starts_with(b"<a ") || rest.starts_with(b"<a\t");
        let is_resume = rest.starts_with(b"<resume ");
        if !is_a && !is_resume {
            // Could it still become one? Keep a short tail for the next call.
            if rest.len() < 8 && (b"<a ".starts_with(rest) || b"<resume ".starts_with(rest)) {
                return lt;
            }
            out.push(b'<');
            i = lt + 1;
            continue;
        }
        let Some(end) = rest.iter().position(|&b| b == b'>') else {
            if rest.len() > 256 {
                // Not one of ours (too long): pass it on.
                out.extend_from_slice(rest);
                return input.len();
            }
            return lt;
        };
        let elem = &rest[..=end];
        let text = String::from_utf8_lossy(elem);
        if !text.contains("urn:xmpp:sm:3") {
            out.extend_from_slice(elem);
            i = lt + end + 1;
            continue;
        }
        match h_value(&text) {
            Some((start, stop, h)) if is_a => {
                let new = gate.ack(h);
                if new != h {
                    tracing::trace!(
                        library_h = h,
                        sent_h = new,
                        "XEP-0198 ack lowered to what is kept"
                    );
                }
                out.extend_from_slice(&elem[..start]);
                out.extend_from_slice(new.to_string().as_bytes());
                out.extend_from_slice(&elem[stop..]);
            }
            Some((_, _, h)) => {
                gate.resumed_with(h);
                out.extend_from_slice(elem);
            }
            None => out.extend_from_slice(elem),
        }
        i = lt + end + 1;
    }
    input.len()
}

/// Where outgoing bytes stand in the stream: whether the last byte ended a top-level
/// element, so an acknowledgement of our own can go in between two of them.
#[derive(Debug, Default)]
pub struct Boundary {
    depth: u32,
    in_tag: bool,
    closing: bool,
    quote: Option<u8>,
    prev: u8,
    /// The tag's name so far (a stream header restarts the count).
    name: Vec<u8>,
    name_done: bool,
}

impl Boundary {
    /// Follows `bytes` (well-formed XML as the library writes it).
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(q) = self.quote {
                if b == q {
                    self.quote = None;
                }
            } else if self.in_tag {
                match b {
                    b'\'' | b'"' => self.quote = Some(b),
                    b'>' => {
                        self.in_tag = false;
                        let header = self.name == b"stream" || self.name.ends_with(b":stream");
                        if self.closing {
                            self.depth = self.depth.saturating_sub(1);
                        } else if header {
                            // A stream header, or its restart after SASL.
                            self.depth = 1;
                        } else if self.prev != b'/' && self.prev != b'?' {
                            self.depth += 1;
                        }
                    }
                    b'/' if self.prev == b'<' => self.closing = true,
                    b' ' | b'\t' | b'\r' | b'\n' | b'/' => self.name_done = true,
                    _ if !self.name_done && self.name.len() < 64 => self.name.push(b),
                    _ => {}
                }
            } else if b == b'<' {
                self.in_tag = true;
                self.closing = false;
                self.name.clear();
                self.name_done = false;
            }
            self.prev = b;
        }
    }

    /// Between two top-level elements of the stream.
    pub fn between_elements(&self) -> bool {
        self.depth == 1 && !self.in_tag
    }
}

/// The byte range of the digits of the `h` attribute in `elem`, and their value.
fn h_value(elem: &str) -> Option<(usize, usize, u32)> {
    let bytes = elem.as_bytes();
    let mut from = 0;
    while let Some(rel) = elem[from..].find("h=") {
        let at = from + rel;
        let before_ok = at > 0 && matches!(bytes[at - 1], b' ' | b'\t' | b'\n' | b'\r');
        let quote = bytes.get(at + 2).copied();
        if before_ok && matches!(quote, Some(b'\'') | Some(b'"')) {
            let start = at + 3;
            let len = elem[start..].find(quote? as char)?;
            let value = elem[start..start + len].parse().ok()?;
            return Some((start, start + len, value));
        }
        from = at + 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(gate: &AckGate, s: &str) -> String {
        let mut out = Vec::new();
        let n = rewrite(gate, s.as_bytes(), &mut out);
        assert_eq!(n, s.len(), "{s}");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn acks_count_only_what_is_done_in_order() {
        let g = AckGate::new();
        g.released(b"enabled", None);
        for id in ["m1", "p1", "m2"] {
            let name: &[u8] = if id.starts_with('m') {
                b"message"
            } else {
                b"presence"
            };
            g.released(name, Some(id));
        }
        let m1 = g.claim(Kind::Message, Some("m1"));
        let p1 = g.claim(Kind::Presence, Some("p1"));
        let m2 = g.claim(Kind::Message, Some("m2"));
        // The library has read all three; nothing is done yet.
        assert_eq!(
            rewritten(&g, "<a xmlns='urn:xmpp:sm:3' h='3'/>"),
            "<a xmlns='urn:xmpp:sm:3' h='0'/>"
        );
        g.done(p1);
        g.done(m2);
        // m1 still waits (a full disk): nothing after it counts either.
        assert_eq!(g.ack(3), 0);
        g.done(m1);
        assert_eq!(g.ack(3), 3);
        assert_eq!(g.ack(2), 3, "never below what was sent");
    }

    #[test]
    fn stanzas_the_library_dropped_count_as_done() {
        let g = AckGate::new();
        g.released(b"enabled", None);
        g.released(b"message", Some("bad"));
        g.released(b"message", Some("a&amp;b"));
        let k = g.claim(Kind::Message, Some("a&b"));
        assert_eq!(k, 1);
        g.done(k);
        assert_eq!(g.ack(2), 2);
    }

    #[test]
    fn a_new_count_starts_at_enabled_and_resume_sets_the_floor() {
        let g = AckGate::new();
        g.released(b"message", Some("before"));
        let old = g.claim(Kind::Message, Some("before"));
        g.released(b"enabled", None);
        g.released(b"iq", Some("q"));
        let q = g.claim(Kind::Iq, Some("q"));
        g.done(q);
        assert_eq!(g.ack(1), 1);
        g.done(old); // the old stream's: no effect
        let mut out = Vec::new();
        rewrite(
            &g,
            b"<resume xmlns='urn:xmpp:sm:3' h='7' previd='x'/>",
            &mut out,
        );
        assert_eq!(g.ack(5), 7);
    }

    #[test]
    fn an_owed_ack_never_exceeds_the_library_count() {
        let g = AckGate::new();
        g.released(b"enabled", None);
        g.released(b"message", Some("m"));
        let m = g.claim(Kind::Message, Some("m"));
        assert_eq!(g.ack(1), 0);
        assert_eq!(g.owed(), None);
        g.done(m);
        assert_eq!(g.owed(), Some(1));
        assert_eq!(g.owed(), None, "owed once");
    }

    #[test]
    fn boundaries_between_top_level_elements() {
        let mut b = Boundary::default();
        b.feed(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' to='x'>");
        assert!(b.between_elements());
        b.feed(b"<message to='a>b'><body>1 &gt; 0</bo");
        assert!(!b.between_elements());
        b.feed(b"dy></message><presence/>");
        assert!(b.between_elements());
        b.feed(b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/>");
        assert!(!b.between_elements());
        b.feed(b"</iq>");
        assert!(b.between_elements());
        // The restart after SASL: a new header, no end of the old one.
        b.feed(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGI=</auth>");
        b.feed(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' to='x'>");
        assert!(b.between_elements());
    }

    #[test]
    fn other_bytes_pass_untouched_and_cut_elements_wait() {
        let g = AckGate::new();
        let s = "<message to='x'><body>a <a href='y'>link</a></body></message><r xmlns='urn:xmpp:sm:3'/>";
        assert_eq!(rewritten(&g, s), s);
        let mut out = Vec::new();
        let whole = b"<iq/><a xmlns='urn:xmpp:sm:3' h='4'/>";
        let n = rewrite(&g, &whole[..12], &mut out);
        assert_eq!(&out[..], b"<iq/>");
        assert_eq!(n, 5);
        let n = rewrite(&g, &whole[5..], &mut out);
        assert_eq!(n, whole.len() - 5);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<iq/><a xmlns='urn:xmpp:sm:3' h='0'/>"
        );
    }
}
