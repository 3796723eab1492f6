//! Depth and size limits on what the server sends, in front of tokio-xmpp's parser.
//!
//! Why: tokio-xmpp builds each stanza into a tree by recursion, one stack frame (or
//! more) per level, so a message nested 5,000 deep — which a server relays as it is —
//! overflowed the stack and aborted perchd with every profile (issue 11). It also
//! reads a stanza of any size whole into memory, and its XML parser (rxml) ends the
//! stream on a name or attribute value longer than 8,192 bytes. Ending the stream is
//! no answer either: the server keeps the stanza and delivers it again on resumption
//! (XEP-0198) or from offline storage, so the profile would reconnect for ever.
//!
//! So [`Limited`] sits between the TLS stream and tokio-xmpp's buffered reader and
//! scans the bytes the server sends (a small state machine of the XML structure, no
//! tree): the stream header and its restart after SASL pass at once; each top-level
//! element (stanza or nonza) is held until it is complete, then released as is. One
//! that is nested deeper than `max_depth`, larger than `max_bytes`, or has a name or
//! attribute value longer than rxml's limit is not released: what comes out instead
//! is its own start tag, the marker `<perch-refused xmlns='urn:perch:limits'
//! reason='depth|size|token' limit='N'/>` and its end tag. The stanza count of
//! XEP-0198 stays right, the session sees who sent it, answers a refused IQ request
//! with `policy-violation` and drops a refused message or presence (see
//! [`check_iq`], [`refusal`]); the refusal is logged here with the profile and the
//! sender. Memory stays bounded: at most `max_bytes` of one element is held, the rest
//! of a refused element is skipped without being stored. When the start tag alone is
//! over a limit, a start tag is rebuilt from its routing attributes (`from`, `to`,
//! `id`, `type`, `xml:lang`, namespace declarations) when they are short.
//!
//! What cannot be handled per stanza ends the stream with a [`LimitError`] naming
//! it: a comment, processing instruction or DTD (RFC 6120 §11.1 restricts them; rxml
//! would end the stream on them too), or a stream-level construct (the stream header,
//! the XML declaration) over the size limit. A server never relays those: it parsed
//! what it relays.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_xmpp::minidom::Element;
use tokio_xmpp::parsers::iq::Iq;
use tokio_xmpp::parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// Namespace of the refusal marker.
pub const NS: &str = "urn:perch:limits";
/// Name of the refusal marker element.
pub const MARKER: &str = "perch-refused";
/// rxml's `max_token_length`: a longer element name, attribute name or attribute
/// value is a hard parse error there, which would end the stream.
pub const MAX_TOKEN: usize = 8192;

/// Routing attributes kept for a rebuilt start tag are at most this long (a JID is at
/// most 3,071 bytes).
const MAX_KEPT_VALUE: usize = 3072;
const MAX_KEPT_NAME: usize = 64;
const MAX_KEPT_NS_DECLS: usize = 4;
/// Buffers grown past this are given back after use. Small: an idle connection
/// keeps its buffers for hours, and a thousand profiles keep a thousand
/// (doc/performance.rst, "Where each profile's memory goes"); growing one again for
/// a burst costs a few reallocations.
const KEEP_CAPACITY: usize = 4 * 1024;
/// Bytes read from the inner stream at once (kept, zeroed, as long as the
/// connection).
const READ_CHUNK: usize = 4 * 1024;

/// The limits in force (from `[xmpp]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting inside one top-level element, the element itself being level 1.
    pub max_depth: u32,
    /// Largest top-level element, in bytes as received (start tag to end tag).
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Why a top-level element was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Nested deeper than `max_depth`.
    Depth,
    /// Larger than `max_bytes`.
    Size,
    /// A name or attribute value longer than [`MAX_TOKEN`].
    Token,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Depth => "depth",
            Self::Size => "size",
            Self::Token => "token",
        }
    }
}

/// Input that cannot be refused one stanza at a time: the stream ends with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the server sent restricted XML ({0}), which RFC 6120 §11.1 forbids")]
    Restricted(&'static str),
    #[error(
        "the server sent {what} larger than the limit of {limit} bytes (xmpp.max_stanza_bytes)"
    )]
    TooLarge { what: &'static str, limit: usize },
    #[error("the server sent {what} longer than {MAX_TOKEN} bytes")]
    TooLong { what: &'static str },
}

/// One refused top-level element, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub element: String,
    pub reason: Reason,
    pub limit: u64,
    pub from: Option<String>,
    pub id: Option<String>,
    pub kind: Option<String>,
    /// Bytes the element had (skipped ones included).
    pub bytes: u64,
    /// The deepest level seen in it.
    pub depth: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Character data (or whitespace between top-level elements).
    Text,
    /// After `<`.
    Lt,
    /// In the name of a start tag.
    StartName,
    /// In a start tag, between or in attribute names.
    Tag,
    /// In an attribute value quoted by this byte.
    Value(u8),
    /// After `/` in a start tag.
    EmptySlash,
    /// In the name of an end tag.
    EndName,
    /// After the name of an end tag.
    EndTail,
    /// After `<!`, this many bytes of `[CDATA[` matched.
    Bang(u8),
    /// In a CDATA section, this many `]` just seen (at most 2).
    CData(u8),
    /// After `<?`, this many bytes of `xml` matched.
    Pi(u8),
    /// In the XML declaration; whether `?` was the last byte.
    Decl(bool),
    /// After an error: nothing more is read.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Bytes go out at once (stream level).
    Pass,
    /// Bytes are held until the construct is complete.
    Buffer,
    /// Bytes of a refused element are counted and dropped.
    Skip,
}

/// The byte-level scanner behind [`Limited`]; usable on its own.
#[derive(Debug)]
pub struct Scanner {
    limits: Limits,
    st: St,
    mode: Mode,
    failure: Option<LimitError>,
    /// Open elements, the stream element included (0: outside the stream).
    depth: u64,
    /// The construct being held, from its `<`.
    buf: Vec<u8>,
    /// The construct is a top-level element (decided once its name is read).
    in_element: bool,
    /// Length of the top-level element's start tag in `buf`, once complete and kept.
    start_end: usize,
    unit_bytes: u64,
    unit_depth: u64,
    /// Name of the current start tag at stream level (top-level element or header).
    top: Vec<u8>,
    name_len: usize,
    attr: Vec<u8>,
    attr_len: usize,
    attr_ended: bool,
    keep_value: bool,
    value: Vec<u8>,
    value_len: usize,
    /// Routing attributes of the current top-level start tag: (name, quote, raw value).
    kept: Vec<(Vec<u8>, u8, Vec<u8>)>,
    refused: Option<Reason>,
    refusals: Vec<Refusal>,
    /// Top-level elements released since the last [`Scanner::take_released`]: name
    /// and raw `id`.
    released: Vec<(Vec<u8>, Option<String>)>,
    /// Top-level elements released so far (refused ones included).
    elements: u64,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_kept_name(name: &[u8]) -> bool {
    matches!(
        name,
        b"from" | b"to" | b"id" | b"type" | b"xml:lang" | b"xmlns"
    ) || name.starts_with(b"xmlns:")
}

/// Is this the name of a stream header (`stream:stream`, or `stream` with a default
/// namespace)? A new header inside the stream is the restart after SASL.
fn is_header_name(name: &[u8]) -> bool {
    name == b"stream" || name.ends_with(b":stream")
}

impl Scanner {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            st: St::Text,
            mode: Mode::Pass,
            failure: None,
            depth: 0,
            buf: Vec::new(),
            in_element: false,
            start_end: 0,
            unit_bytes: 0,
            unit_depth: 0,
            top: Vec::new(),
            name_len: 0,
            attr: Vec::new(),
            attr_len: 0,
            attr_ended: false,
            keep_value: false,
            value: Vec::new(),
            value_len: 0,
            kept: Vec::new(),
            refused: None,
            refusals: Vec::new(),
            released: Vec::new(),
            elements: 0,
        }
    }

    /// Top-level elements released so far, refused ones included: one out for each
    /// one in, so XEP-0198's count stays right.
    pub fn elements(&self) -> u64 {
        self.elements
    }

    /// The top-level elements released since the last call (name, raw `id`).
    pub fn take_released(&mut self) -> Vec<(Vec<u8>, Option<String>)> {
        std::mem::take(&mut self.released)
    }

    /// The refusals since the last call.
    pub fn take_refusals(&mut self) -> Vec<Refusal> {
        std::mem::take(&mut self.refusals)
    }

    /// Scans `input`; what may go on to the parser is appended to `out`. After an
    /// error every call fails the same way.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LimitError> {
        if let Some(e) = &self.failure {
            return Err(e.clone());
        }
        match self.scan(input, out) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.st = St::Failed;
                self.buf = Vec::new();
                self.failure = Some(e.clone());
                Err(e)
            }
        }
    }

    fn scan(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), LimitError> {
        let mut i = 0;
        while i < input.len() {
            i += self.step(&input[i..], out)?;
        }
        Ok(())
    }

    /// One step of the state machine at the start of `rest` (never empty): returns
    /// how many bytes it consumed, 0 when the state changed and the byte is read
    /// again in the new one.
    #[inline]
    fn step(&mut self, rest: &[u8], out: &mut Vec<u8>) -> Result<usize, LimitError> {
        let b = rest[0];
        let consumed = match self.st {
            St::Text => return self.text(rest, out),
            St::Lt => self.after_lt(b),
            St::StartName => self.start_name(b)?,
            St::Tag => return self.in_start_tag(b, out),
            St::Value(q) => return self.attr_value(q, rest, out),
            St::EmptySlash => return self.after_empty_slash(b, out),
            St::EndName => return self.end_name(b, out),
            St::EndTail => {
                if b == b'>' {
                    return self.end_tag_closed(out);
                }
                true
            }
            St::Bang(n) => self.after_bang(n, b)?,
            St::CData(k) => return self.cdata(k, rest, out),
            St::Pi(n) => self.after_question(n, b)?,
            St::Decl(question) => {
                if b == b'>' && question {
                    self.put(b">", out)?;
                    self.st = St::Text;
                    self.release_stream_level(out);
                    return Ok(1);
                }
                self.st = St::Decl(b == b'?');
                true
            }
            St::Failed => {
                return Err(self
                    .failure
                    .clone()
                    .unwrap_or(LimitError::Restricted("unreadable input")));
            }
        };
        if !consumed {
            return Ok(0);
        }
        self.put(&[b], out)?;
        Ok(1)
    }

    /// Character data, up to the next `<` (which opens a unit at stream level).
    #[inline]
    fn text(&mut self, rest: &[u8], out: &mut Vec<u8>) -> Result<usize, LimitError> {
        let n = rest.iter().position(|&c| c == b'<').unwrap_or(rest.len());
        self.put(&rest[..n], out)?;
        if n == rest.len() {
            return Ok(n);
        }
        if self.depth <= 1 && self.mode == Mode::Pass {
            self.open_unit();
        }
        self.put(b"<", out)?;
        self.st = St::Lt;
        Ok(n + 1)
    }

    /// The byte after `<`: an end tag, `<!`, `<?`, or a start tag's name (false: the
    /// byte is the name's first, read again).
    #[inline]
    fn after_lt(&mut self, b: u8) -> bool {
        match b {
            b'/' => {
                self.name_len = 0;
                self.st = St::EndName;
            }
            b'!' => self.st = St::Bang(0),
            b'?' => self.st = St::Pi(0),
            _ => {
                self.name_len = 0;
                if self.depth <= 1 {
                    self.top.clear();
                }
                self.st = St::StartName;
                return false;
            }
        }
        true
    }

    /// A byte of a start tag's name (false: the name ended, the byte is read again
    /// in the tag).
    #[inline]
    fn start_name(&mut self, b: u8) -> Result<bool, LimitError> {
        if is_ws(b) || b == b'/' || b == b'>' {
            self.name_done();
            self.st = St::Tag;
            return Ok(false);
        }
        self.name_len += 1;
        if self.depth <= 1 && self.top.len() < MAX_TOKEN {
            self.top.push(b);
        }
        if self.name_len > MAX_TOKEN {
            self.too_long("an element name")?;
        }
        Ok(true)
    }

    /// A byte of a start tag after its name: a quote opens a value, `/` may end an
    /// empty element, `>` ends the tag; others are attribute names.
    #[inline]
    fn in_start_tag(&mut self, b: u8, out: &mut Vec<u8>) -> Result<usize, LimitError> {
        match b {
            b'\'' | b'"' => {
                self.keep_value =
                    self.depth <= 1 && self.attr_len <= MAX_KEPT_NAME && is_kept_name(&self.attr);
                self.value.clear();
                self.value_len = 0;
                self.st = St::Value(b);
            }
            b'/' => self.st = St::EmptySlash,
            b'>' => {
                self.put(b">", out)?;
                self.start_tag_done(false, out);
                return Ok(1);
            }
            _ if is_ws(b) || b == b'=' => {
                if self.attr_len > 0 {
                    self.attr_ended = true;
                }
            }
            _ => {
                if self.attr_ended {
                    self.attr.clear();
                    self.attr_len = 0;
                    self.attr_ended = false;
                }
                self.attr_len += 1;
                if self.depth <= 1 && self.attr.len() <= MAX_KEPT_NAME {
                    self.attr.push(b);
                }
                if self.attr_len > MAX_TOKEN {
                    self.too_long("an attribute name")?;
                }
            }
        }
        self.put(&[b], out)?;
        Ok(1)
    }

    /// An attribute value quoted by `q`, up to and with its closing quote.
    #[inline]
    fn attr_value(&mut self, q: u8, rest: &[u8], out: &mut Vec<u8>) -> Result<usize, LimitError> {
        let n = rest.iter().position(|&c| c == q).unwrap_or(rest.len());
        let part = &rest[..n];
        self.put(part, out)?;
        self.value_len += n;
        if self.keep_value && self.value.len() + n <= MAX_KEPT_VALUE {
            self.value.extend_from_slice(part);
        }
        if self.value_len > MAX_TOKEN {
            self.too_long("an attribute value")?;
        }
        if n == rest.len() {
            return Ok(n);
        }
        self.put(&[q], out)?;
        self.attr_done(q);
        self.st = St::Tag;
        Ok(n + 1)
    }

    /// After `/` in a start tag: `>` ends an empty element; anything else is read
    /// again in the tag.
    #[inline]
    fn after_empty_slash(&mut self, b: u8, out: &mut Vec<u8>) -> Result<usize, LimitError> {
        if b == b'>' {
            self.put(b">", out)?;
            self.start_tag_done(true, out);
            Ok(1)
        } else {
            self.st = St::Tag;
            Ok(0)
        }
    }

    /// A byte of an end tag's name.
    #[inline]
    fn end_name(&mut self, b: u8, out: &mut Vec<u8>) -> Result<usize, LimitError> {
        if is_ws(b) {
            self.st = St::EndTail;
        } else if b == b'>' {
            return self.end_tag_closed(out);
        } else {
            self.name_len += 1;
            if self.name_len > MAX_TOKEN {
                self.too_long("an element name")?;
            }
        }
        self.put(&[b], out)?;
        Ok(1)
    }

    /// The `>` of an end tag.
    #[inline]
    fn end_tag_closed(&mut self, out: &mut Vec<u8>) -> Result<usize, LimitError> {
        self.put(b">", out)?;
        self.end_tag_done(out);
        Ok(1)
    }

    /// After `<!`: only `<![CDATA[` is read; a comment or DTD ends the stream.
    #[inline]
    fn after_bang(&mut self, n: u8, b: u8) -> Result<bool, LimitError> {
        const CDATA: &[u8] = b"[CDATA[";
        if b == CDATA[usize::from(n)] {
            self.st = if usize::from(n) + 1 == CDATA.len() {
                St::CData(0)
            } else {
                St::Bang(n + 1)
            };
            Ok(true)
        } else if n == 0 && b == b'-' {
            Err(LimitError::Restricted("a comment"))
        } else {
            Err(LimitError::Restricted("a document type declaration"))
        }
    }

    /// In a CDATA section after `k` `]`: up to the next `]`, or the section's end.
    #[inline]
    fn cdata(&mut self, k: u8, rest: &[u8], out: &mut Vec<u8>) -> Result<usize, LimitError> {
        if k == 0 {
            let n = rest.iter().position(|&c| c == b']').unwrap_or(rest.len());
            if n > 0 {
                self.put(&rest[..n], out)?;
                return Ok(n);
            }
        }
        let b = rest[0];
        match b {
            b']' => self.st = St::CData((k + 1).min(2)),
            b'>' if k == 2 => {
                self.put(b">", out)?;
                self.st = St::Text;
                if self.depth <= 1 {
                    self.release_stream_level(out);
                }
                return Ok(1);
            }
            _ => self.st = St::CData(0),
        }
        self.put(&[b], out)?;
        Ok(1)
    }

    /// After `<?` and `n` bytes of `xml`: only the XML declaration, at stream level,
    /// is read; a processing instruction ends the stream.
    #[inline]
    fn after_question(&mut self, n: u8, b: u8) -> Result<bool, LimitError> {
        if n < 3 && b == b"xml"[usize::from(n)] {
            self.st = St::Pi(n + 1);
        } else if n == 3 && is_ws(b) {
            if self.depth > 1 {
                return Err(LimitError::Restricted(
                    "an XML declaration inside an element",
                ));
            }
            self.st = St::Decl(false);
        } else {
            return Err(LimitError::Restricted("a processing instruction"));
        }
        Ok(true)
    }

    fn open_unit(&mut self) {
        self.mode = Mode::Buffer;
        self.buf.clear();
        self.in_element = false;
        self.start_end = 0;
        self.unit_bytes = 0;
        self.unit_depth = 0;
        self.kept.clear();
        self.refused = None;
    }

    fn put(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), LimitError> {
        match self.mode {
            Mode::Pass => out.extend_from_slice(bytes),
            Mode::Skip => self.unit_bytes += bytes.len() as u64,
            Mode::Buffer => {
                self.unit_bytes += bytes.len() as u64;
                if self.buf.len() + bytes.len() > self.limits.max_bytes {
                    if !self.inside_element() {
                        return Err(LimitError::TooLarge {
                            what: if self.depth == 0 {
                                "a stream header"
                            } else {
                                "a stream-level construct"
                            },
                            limit: self.limits.max_bytes,
                        });
                    }
                    self.refuse(Reason::Size);
                } else {
                    self.buf.extend_from_slice(bytes);
                }
            }
        }
        Ok(())
    }

    /// Inside a top-level element (its start tag included, once its name is known).
    fn inside_element(&self) -> bool {
        self.depth >= 2 || (self.depth == 1 && self.in_element)
    }

    fn too_long(&mut self, what: &'static str) -> Result<(), LimitError> {
        if self.inside_element() {
            self.refuse(Reason::Token);
            Ok(())
        } else {
            Err(LimitError::TooLong { what })
        }
    }

    fn refuse(&mut self, reason: Reason) {
        if self.refused.is_some() {
            return;
        }
        self.refused = Some(reason);
        self.mode = Mode::Skip;
        // Keep the start tag when it is complete; otherwise one is rebuilt.
        self.buf.truncate(self.start_end);
        self.shrink_buf();
    }

    fn shrink_buf(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.shrink_to(self.buf.len().max(KEEP_CAPACITY / 2));
        }
    }

    fn name_done(&mut self) {
        if self.depth == 1 {
            self.in_element = !is_header_name(&self.top);
        }
        self.attr.clear();
        self.attr_len = 0;
        self.attr_ended = false;
    }

    fn attr_done(&mut self, quote: u8) {
        if self.keep_value
            && self.value_len <= MAX_KEPT_VALUE
            && !self.kept.iter().any(|(n, _, _)| *n == self.attr)
            && (!self.attr.starts_with(b"xmlns:")
                || self
                    .kept
                    .iter()
                    .filter(|(n, _, _)| n.starts_with(b"xmlns:"))
                    .count()
                    < MAX_KEPT_NS_DECLS)
        {
            self.kept
                .push((self.attr.clone(), quote, std::mem::take(&mut self.value)));
        }
        self.keep_value = false;
        self.attr.clear();
        self.attr_len = 0;
        self.attr_ended = false;
    }

    fn start_tag_done(&mut self, empty: bool, out: &mut Vec<u8>) {
        self.st = St::Text;
        match self.depth {
            // The stream header, or its restart after SASL.
            0 => {
                if !empty {
                    self.depth = 1;
                }
                self.release_stream_level(out);
            }
            1 if !self.in_element => self.release_stream_level(out),
            // The start tag of a top-level element.
            1 => {
                if self.refused.is_none() {
                    self.start_end = self.buf.len();
                }
                self.unit_depth = 1;
                if empty {
                    self.element_done(out);
                } else {
                    self.depth = 2;
                }
            }
            // A child: its level in the top-level element is the current depth.
            level => {
                self.unit_depth = self.unit_depth.max(level);
                if level > u64::from(self.limits.max_depth) {
                    self.refuse(Reason::Depth);
                }
                if !empty {
                    self.depth += 1;
                }
            }
        }
    }

    fn end_tag_done(&mut self, out: &mut Vec<u8>) {
        self.st = St::Text;
        match self.depth {
            // A stray end tag: the parser will say what is wrong with it.
            0 => self.release_stream_level(out),
            // The end of the stream.
            1 => {
                self.depth = 0;
                self.release_stream_level(out);
            }
            2 => {
                self.depth = 1;
                self.element_done(out);
            }
            _ => self.depth -= 1,
        }
    }

    fn release_stream_level(&mut self, out: &mut Vec<u8>) {
        if self.mode == Mode::Buffer {
            out.extend_from_slice(&self.buf);
        }
        self.buf.clear();
        self.shrink_buf();
        self.mode = Mode::Pass;
        self.in_element = false;
    }

    fn kept_attr(&self, name: &[u8]) -> Option<String> {
        self.kept
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, v)| String::from_utf8_lossy(v).into_owned())
    }

    fn element_done(&mut self, out: &mut Vec<u8>) {
        self.elements += 1;
        self.released
            .push((self.top.clone(), self.kept_attr(b"id")));
        match self.refused {
            None => out.extend_from_slice(&self.buf),
            Some(reason) => {
                if self.start_end > 0 {
                    out.extend_from_slice(&self.buf[..self.start_end]);
                } else {
                    out.push(b'<');
                    out.extend_from_slice(&self.top);
                    for (name, q, value) in &self.kept {
                        out.push(b' ');
                        out.extend_from_slice(name);
                        out.push(b'=');
                        out.push(*q);
                        out.extend_from_slice(value);
                        out.push(*q);
                    }
                    out.push(b'>');
                }
                let limit = match reason {
                    Reason::Depth => u64::from(self.limits.max_depth),
                    Reason::Size => self.limits.max_bytes as u64,
                    Reason::Token => MAX_TOKEN as u64,
                };
                out.extend_from_slice(
                    format!(
                        "<{MARKER} xmlns='{NS}' reason='{}' limit='{limit}'/></",
                        reason.as_str()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(&self.top);
                out.push(b'>');
                self.refusals.push(Refusal {
                    element: String::from_utf8_lossy(&self.top).into_owned(),
                    reason,
                    limit,
                    from: self.kept_attr(b"from"),
                    id: self.kept_attr(b"id"),
                    kind: self.kept_attr(b"type"),
                    bytes: self.unit_bytes,
                    depth: self.unit_depth,
                });
            }
        }
        self.buf.clear();
        self.shrink_buf();
        self.mode = Mode::Pass;
        self.in_element = false;
        self.start_end = 0;
        self.refused = None;
        self.kept.clear();
    }
}

/// Whom the logs of a [`Limited`] stream name.
#[derive(Debug, Clone)]
pub struct LogContext {
    pub profile: Arc<str>,
    pub jid: Arc<str>,
}

/// An XMPP byte stream whose read side passes through a [`Scanner`].
#[derive(Debug)]
pub struct Limited<S> {
    inner: S,
    scanner: Scanner,
    /// The session's count of kept stanzas (XEP-0198), when it is tracked.
    gate: Option<Arc<super::ack::AckGate>>,
    /// Outgoing bytes accepted from the writer, not yet written to `inner`.
    pending: Vec<u8>,
    /// The start of an outgoing element cut short, held for the next write.
    carry: Vec<u8>,
    /// Where the outgoing bytes stand (for an acknowledgement of our own).
    out_at: super::ack::Boundary,
    /// Stream management is on for this connection (`<enabled/>` or `<resumed/>`).
    sm_on: bool,
    /// Client State Indication nonzas owed by the session (`csi.rs`).
    csi: Option<Arc<super::csi::Csi>>,
    log: LogContext,
    raw: Box<[u8]>,
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
    failed: Option<LimitError>,
}

impl<S> Limited<S> {
    pub fn new(inner: S, limits: Limits, log: LogContext) -> Self {
        Self {
            inner,
            scanner: Scanner::new(limits),
            gate: None,
            pending: Vec::new(),
            carry: Vec::new(),
            out_at: Default::default(),
            sm_on: false,
            csi: None,
            log,
            raw: vec![0; READ_CHUNK].into_boxed_slice(),
            out: Vec::new(),
            out_pos: 0,
            eof: false,
            failed: None,
        }
    }

    /// Tracks kept stanzas through `gate`: the read side reports each element it
    /// releases, the write side lowers the `h` of XEP-0198 acks (see `ack.rs`).
    pub fn with_gate(mut self, gate: Arc<super::ack::AckGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Writes the session's Client State Indication nonzas between elements; this is
    /// a new connection, which the server starts active.
    pub fn with_csi(mut self, csi: Arc<super::csi::Csi>) -> Self {
        csi.new_connection();
        self.csi = Some(csi);
        self
    }

    /// The inner stream (for the TLS upgrade after STARTTLS). Bytes read but not yet
    /// released are dropped; the server sends none after `<proceed/>`.
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn log_refusals(&mut self) {
        for r in self.scanner.take_refusals() {
            let what = match r.reason {
                Reason::Depth => format!("nested {} deep, over the limit of {}", r.depth, r.limit),
                Reason::Size => format!("{} bytes, over the limit of {}", r.bytes, r.limit),
                Reason::Token => format!(
                    "a name or attribute value over {} bytes, which the parser cannot take",
                    r.limit
                ),
            };
            tracing::warn!(
                profile = %self.log.profile,
                jid = %self.log.jid,
                element = %r.element,
                from = r.from.as_deref().unwrap_or("(server)"),
                id = r.id.as_deref().unwrap_or(""),
                stanza_type = r.kind.as_deref().unwrap_or(""),
                reason = r.reason.as_str(),
                limit = r.limit,
                bytes = r.bytes,
                depth = r.depth,
                "refused an incoming stanza ({what}): passed on as a marker, the stream goes on",
            );
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Limited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                    if this.out.capacity() > KEEP_CAPACITY {
                        this.out.shrink_to(KEEP_CAPACITY / 2);
                    }
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(e) = &this.failed {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, e.clone())));
            }
            if this.eof || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            this.csi_from_reader(cx);
            let mut rb = ReadBuf::new(&mut this.raw);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // An element cut short by the end of the stream is dropped with it.
                this.eof = true;
                continue;
            }
            let result = this.scanner.feed(&this.raw[..n], &mut this.out);
            this.log_refusals();
            let released = this.scanner.take_released();
            if let Some(gate) = &this.gate {
                for (name, id) in released {
                    if name == b"enabled" || name == b"resumed" {
                        this.sm_on = true;
                    }
                    gate.released(&name, id.as_deref());
                }
            }
            if let Err(e) = result {
                // What came before the error is still delivered; then reads fail.
                tracing::warn!(profile = %this.log.profile, jid = %this.log.jid, error = %e, "ending the stream");
                this.failed = Some(e);
            }
        }
    }
}

/// How many accepted outgoing bytes may wait before a write waits too.
const PENDING_MAX: usize = 64 * 1024;

impl<S: AsyncWrite + Unpin> Limited<S> {
    /// Between two elements, an acknowledgement of what was handled since the last
    /// one (a message stored after the library had answered): the server then drops
    /// it from its queue, and does not send it again at the next session.
    ///
    /// Likewise a Client State Indication the session owes (`csi.rs`).
    fn nonzas_owed(&mut self) {
        let Some(gate) = &self.gate else { return };
        if !self.carry.is_empty() || !self.out_at.between_elements() {
            return;
        }
        if self.sm_on
            && let Some(h) = gate.owed()
        {
            let a = format!("<a xmlns='urn:xmpp:sm:3' h='{h}'/>");
            self.out_at.feed(a.as_bytes());
            self.pending.extend_from_slice(a.as_bytes());
        }
        if let Some(nonza) = self.csi.as_ref().and_then(|c| c.owed()) {
            self.out_at.feed(nonza);
            self.pending.extend_from_slice(nonza);
        }
    }

    /// From the read side, which the stream's task always polls: a Client State
    /// Indication owed while nothing is being written goes out now (`csi.rs`), and
    /// the reader asks to be woken for the next one.
    fn csi_from_reader(&mut self, cx: &mut Context<'_>) {
        let Some(csi) = self.csi.clone() else { return };
        csi.park(cx.waker());
        if self.gate.is_none() || !self.carry.is_empty() || !self.out_at.between_elements() {
            return;
        }
        if let Some(nonza) = csi.owed() {
            self.out_at.feed(nonza);
            self.pending.extend_from_slice(nonza);
            // What does not go now goes with the next write or flush.
            if let Poll::Ready(Ok(())) = self.drain(cx) {
                let _ = Pin::new(&mut self.inner).poll_flush(cx);
            }
        }
    }

    /// Writes what is pending; `Ready` once it is all out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        if self.pending.capacity() > KEEP_CAPACITY {
            self.pending.shrink_to(KEEP_CAPACITY / 2);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Limited<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(gate) = this.gate.clone() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        if this.pending.len() >= PENDING_MAX {
            ready!(this.drain(cx))?;
        }
        // The acks' `h` is rewritten on whole elements; an element cut short by the
        // writer's buffer waits in `carry` for the rest.
        this.nonzas_owed();
        let mut input = std::mem::take(&mut this.carry);
        input.extend_from_slice(buf);
        let before = this.pending.len();
        let used = super::ack::rewrite(&gate, &input, &mut this.pending);
        this.out_at.feed(&this.pending[before..]);
        this.carry = input[used..].to_vec();
        // Push out what we can now; the rest goes at the next write or flush.
        if let Poll::Ready(Err(e)) = this.drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.carry.is_empty() {
            // No more bytes are coming for it: it was not one of ours.
            let carry = std::mem::take(&mut this.carry);
            this.out_at.feed(&carry);
            this.pending.extend_from_slice(&carry);
        }
        this.nonzas_owed();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The reason of a refusal marker, when `e` is one.
pub fn refusal_reason(e: &Element) -> Option<&str> {
    e.is(MARKER, NS)
        .then(|| e.attr("reason").unwrap_or("unknown"))
}

/// The reason of the refusal marker among a stanza's children, if one is there: the
/// stanza was refused by the limits (and logged with its sender); drop it.
pub fn refusal(children: &[Element]) -> Option<&str> {
    children.iter().find_map(refusal_reason)
}

fn refusal_error(reason: &str) -> StanzaError {
    StanzaError::new(
        ErrorType::Modify,
        DefinedCondition::PolicyViolation,
        "en",
        format!("refused by the client's XML limits ({reason})"),
    )
}

/// What the session does with an incoming IQ.
#[derive(Debug)]
pub enum IqCheck {
    /// Not refused: handle it as usual.
    Pass(Iq),
    /// A refused request: send this error answer.
    Answer(Iq),
    /// A refused answer: its waiter gets this error.
    Fail {
        from: Option<tokio_xmpp::jid::Jid>,
        id: String,
        error: StanzaError,
    },
}

/// Sorts out IQs refused by the limits: a request (get/set) is answered
/// `policy-violation`, an answer fails whoever waits for it.
pub fn check_iq(iq: Iq) -> IqCheck {
    match iq {
        Iq::Get {
            from, id, payload, ..
        }
        | Iq::Set {
            from, id, payload, ..
        } if refusal_reason(&payload).is_some() => {
            let error = refusal_error(refusal_reason(&payload).unwrap_or("unknown"));
            IqCheck::Answer(Iq::Error {
                from: None,
                to: from,
                id,
                error,
                payload: None,
            })
        }
        Iq::Result {
            from,
            id,
            payload: Some(payload),
            ..
        } if refusal_reason(&payload).is_some() => IqCheck::Fail {
            from,
            id,
            error: refusal_error(refusal_reason(&payload).unwrap_or("unknown")),
        },
        other => IqCheck::Pass(other),
    }
}

#[cfg(test)]
mod tests;
