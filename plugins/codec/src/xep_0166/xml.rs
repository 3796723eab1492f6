//! XEP-0166 Jingle elements, as our own types over minidom.
//!
//! Why not xmpp-parsers' `jingle`: its ICE-UDP transport has private fields and its
//! parser drops children it does not know, so what a peer sent would not survive to
//! the SDP the frontend gets (`doc/calls.rst`, "Why our own Jingle types").

use perch_plugin_api::minidom::Element;

use crate::dom::Attr;
use crate::xep_0167::rtp::Description;
use crate::xep_0176::Transport;

pub const NS: &str = "urn:xmpp:jingle:1";
pub const NS_ERRORS: &str = "urn:xmpp:jingle:errors:1";
/// XEP-0338 grouping (BUNDLE).
pub const NS_GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";

/// A Jingle element that could not be read; answered `bad-request`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Jingle: {0}")]
pub struct ParseError(pub String);

pub(crate) fn attr<'a>(e: &'a Element, name: &'a str) -> Result<&'a str, ParseError> {
    e.attr(name)
        .ok_or_else(|| ParseError(format!("<{}/> without the {name:?} attribute", e.name())))
}

pub(crate) fn num<T: std::str::FromStr>(e: &Element, name: &str) -> Result<T, ParseError> {
    let v = attr(e, name)?;
    v.parse()
        .map_err(|_| ParseError(format!("<{}/>: {name}={v:?} is not a number", e.name())))
}

pub(crate) fn opt_num<T: std::str::FromStr>(
    e: &Element,
    name: &str,
) -> Result<Option<T>, ParseError> {
    match e.attr(name) {
        None => Ok(None),
        Some(_) => num(e, name).map(Some),
    }
}

/// The fifteen actions of XEP-0166 §7.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ContentAccept,
    ContentAdd,
    ContentModify,
    ContentReject,
    ContentRemove,
    DescriptionInfo,
    SecurityInfo,
    SessionAccept,
    SessionInfo,
    SessionInitiate,
    SessionTerminate,
    TransportAccept,
    TransportInfo,
    TransportReject,
    TransportReplace,
}

const ACTIONS: &[(Action, &str)] = &[
    (Action::ContentAccept, "content-accept"),
    (Action::ContentAdd, "content-add"),
    (Action::ContentModify, "content-modify"),
    (Action::ContentReject, "content-reject"),
    (Action::ContentRemove, "content-remove"),
    (Action::DescriptionInfo, "description-info"),
    (Action::SecurityInfo, "security-info"),
    (Action::SessionAccept, "session-accept"),
    (Action::SessionInfo, "session-info"),
    (Action::SessionInitiate, "session-initiate"),
    (Action::SessionTerminate, "session-terminate"),
    (Action::TransportAccept, "transport-accept"),
    (Action::TransportInfo, "transport-info"),
    (Action::TransportReject, "transport-reject"),
    (Action::TransportReplace, "transport-replace"),
];

impl Action {
    pub fn as_str(self) -> &'static str {
        ACTIONS
            .iter()
            .find(|(a, _)| *a == self)
            .map_or("session-info", |(_, s)| s)
    }
    pub fn parse(s: &str) -> Option<Self> {
        ACTIONS.iter().find(|(_, n)| *n == s).map(|(a, _)| *a)
    }
}

/// Who may send media on a content (`senders`), relative to the session's roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Senders {
    #[default]
    Both,
    Initiator,
    Responder,
    None,
}

impl Senders {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Initiator => "initiator",
            Self::Responder => "responder",
            Self::None => "none",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "both" => Self::Both,
            "initiator" => Self::Initiator,
            "responder" => Self::Responder,
            "none" => Self::None,
            _ => return None,
        })
    }
}

/// One content: a media stream with its description and transport.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Content {
    /// `initiator` or `responder`.
    pub creator: String,
    pub name: String,
    /// `None`: the attribute was absent (both).
    pub senders: Option<Senders>,
    pub disposition: Option<String>,
    pub description: Option<Description>,
    pub transport: Option<Transport>,
    /// Children we do not model (security, another application), kept as they came.
    pub other: Vec<Element>,
}

impl Content {
    pub fn senders(&self) -> Senders {
        self.senders.unwrap_or_default()
    }

    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        let mut c = Content {
            creator: attr(e, "creator")?.to_owned(),
            name: attr(e, "name")?.to_owned(),
            senders: match e.attr("senders") {
                None => None,
                Some(s) => Some(
                    Senders::parse(s)
                        .ok_or_else(|| ParseError(format!("content senders={s:?}")))?,
                ),
            },
            disposition: e.attr("disposition").map(str::to_owned),
            ..Default::default()
        };
        for child in e.children() {
            if child.is("description", crate::xep_0167::rtp::NS) {
                c.description = Some(Description::from_element(child)?);
            } else if child.is("transport", crate::xep_0176::NS) {
                c.transport = Some(Transport::from_element(child)?);
            } else {
                c.other.push(child.clone());
            }
        }
        Ok(c)
    }

    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("content", NS)
            .a("creator", self.creator.as_str())
            .a("name", self.name.as_str())
            .a("senders", self.senders.map(Senders::as_str))
            .a("disposition", self.disposition.clone());
        if let Some(d) = &self.description {
            b = b.append(d.to_element());
        }
        if let Some(t) = &self.transport {
            b = b.append(t.to_element());
        }
        b.append_all(self.other.iter().cloned()).build()
    }
}

/// The reasons of XEP-0166 §7.4.
pub const REASONS: &[&str] = &[
    "alternative-session",
    "busy",
    "cancel",
    "connectivity-error",
    "decline",
    "expired",
    "failed-application",
    "failed-transport",
    "general-error",
    "gone",
    "incompatible-parameters",
    "media-error",
    "security-error",
    "success",
    "timeout",
    "unsupported-applications",
    "unsupported-transports",
];

/// Why a session (or content) ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    /// One of [`REASONS`] (an unknown one reads as `general-error`).
    pub condition: String,
    pub text: Option<String>,
}

impl Reason {
    pub fn new(condition: &str) -> Self {
        Self {
            condition: condition.to_owned(),
            text: None,
        }
    }

    /// Reads `<reason/>` in namespace `ns` (Jingle's, or JMI's which reuses it).
    pub fn from_element(e: &Element) -> Self {
        let mut condition = None;
        let mut text = None;
        for c in e.children() {
            if c.name() == "text" {
                text = Some(c.text()).filter(|t| !t.is_empty());
            } else if condition.is_none() && REASONS.contains(&c.name()) {
                condition = Some(c.name().to_owned());
            }
        }
        Self {
            condition: condition.unwrap_or_else(|| "general-error".into()),
            text,
        }
    }

    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("reason", NS)
            .append(Element::builder(self.condition.as_str(), NS).build());
        if let Some(t) = &self.text {
            b = b.append(Element::builder("text", NS).append(t.as_str()).build());
        }
        b.build()
    }
}

/// XEP-0338 `<group semantics='BUNDLE'>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub semantics: String,
    pub contents: Vec<String>,
}

impl Group {
    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        Ok(Self {
            semantics: attr(e, "semantics")?.to_owned(),
            contents: e
                .children()
                .filter(|c| c.is("content", NS_GROUPING))
                .map(|c| attr(c, "name").map(str::to_owned))
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn to_element(&self) -> Element {
        Element::builder("group", NS_GROUPING)
            .a("semantics", self.semantics.as_str())
            .append_all(self.contents.iter().map(|n| {
                Element::builder("content", NS_GROUPING)
                    .a("name", n.as_str())
                    .build()
            }))
            .build()
    }
}

/// A `<jingle/>` element.
#[derive(Debug, Clone, PartialEq)]
pub struct Jingle {
    pub action: Action,
    pub sid: String,
    pub initiator: Option<String>,
    pub responder: Option<String>,
    pub contents: Vec<Content>,
    pub reason: Option<Reason>,
    pub group: Option<Group>,
    /// Other children: session-info payloads (XEP-0167 ringing, mute, …) and what we
    /// do not model, kept as they came.
    pub other: Vec<Element>,
}

impl Jingle {
    pub fn new(action: Action, sid: &str) -> Self {
        Self {
            action,
            sid: sid.to_owned(),
            initiator: None,
            responder: None,
            contents: Vec::new(),
            reason: None,
            group: None,
            other: Vec::new(),
        }
    }

    pub fn from_element(e: &Element) -> Result<Self, ParseError> {
        if !e.is("jingle", NS) {
            return Err(ParseError(format!(
                "<{}/> is not <jingle xmlns='{NS}'/>",
                e.name()
            )));
        }
        let action = attr(e, "action")?;
        let action = Action::parse(action)
            .ok_or_else(|| ParseError(format!("unknown action {action:?}")))?;
        let sid = attr(e, "sid")?;
        if sid.is_empty() {
            return Err(ParseError("empty sid".into()));
        }
        let mut j = Jingle::new(action, sid);
        j.initiator = e.attr("initiator").map(str::to_owned);
        j.responder = e.attr("responder").map(str::to_owned);
        for c in e.children() {
            if c.is("content", NS) {
                j.contents.push(Content::from_element(c)?);
            } else if c.is("reason", NS) {
                j.reason = Some(Reason::from_element(c));
            } else if c.is("group", NS_GROUPING) {
                j.group = Some(Group::from_element(c)?);
            } else {
                j.other.push(c.clone());
            }
        }
        Ok(j)
    }

    pub fn to_element(&self) -> Element {
        let mut b = Element::builder("jingle", NS)
            .a("action", self.action.as_str())
            .a("sid", self.sid.as_str())
            .a("initiator", self.initiator.clone())
            .a("responder", self.responder.clone());
        if let Some(g) = &self.group {
            b = b.append(g.to_element());
        }
        b = b.append_all(self.contents.iter().map(Content::to_element));
        if let Some(r) = &self.reason {
            b = b.append(r.to_element());
        }
        b.append_all(self.other.iter().cloned()).build()
    }
}
