//! perchd's signals, decoded into one enum.
//!
//! Why not the proxy's `receive_*` streams: a frontend that shows "everything perchd
//! says" wants one stream in order, and peer to peer there is no bus to resolve the
//! sender's name with. So the stream takes every signal of [`INTERFACE`] at [`PATH`]
//! (on a bus from perchd's unique name only) and decodes each with the proxy's
//! generated signal types, so the argument types are the proxy's.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use zbus::message::Type;
use zbus::names::UniqueName;
use zbus::{Connection, Message, MessageStream};

use crate::error::{Error, Result};
use crate::proxy;
use crate::{INTERFACE, PATH};

/// One signal of `org.perch.Perch1` (`doc/bridge.rst`). JSON payloads stay strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    ConnectionState {
        profile: String,
        state: String,
        jid: String,
        reason: String,
    },
    MessageReceived {
        profile: String,
        message: String,
    },
    MessageUpdated {
        profile: String,
        message: String,
    },
    PresenceUpdate {
        profile: String,
        jid: String,
        show: String,
        status: String,
        priority: i32,
    },
    RosterChanged {
        profile: String,
        jid: String,
        subscription: String,
        name: String,
        groups: Vec<String>,
    },
    SubscriptionRequest {
        profile: String,
        action: String,
        jid: String,
    },
    PluginSignal {
        plugin: String,
        name: String,
        profile: String,
        data: String,
    },
    ProgressStarted {
        id: String,
        profile: String,
        data: String,
    },
    Progress {
        id: String,
        profile: String,
        data: String,
    },
    ProgressFinished {
        id: String,
        profile: String,
        data: String,
    },
    ProgressError {
        id: String,
        profile: String,
        data: String,
    },
    /// A signal of the interface this client does not know (a newer perchd).
    Other {
        member: String,
        signature: String,
    },
}

fn bad(member: &str, e: zbus::Error) -> Error {
    Error::DBus(format!("undecodable {member} signal: {e}"))
}

impl Signal {
    /// The signal's D-Bus member name.
    pub fn member(&self) -> &str {
        match self {
            Signal::ConnectionState { .. } => "ConnectionState",
            Signal::MessageReceived { .. } => "MessageReceived",
            Signal::MessageUpdated { .. } => "MessageUpdated",
            Signal::PresenceUpdate { .. } => "PresenceUpdate",
            Signal::RosterChanged { .. } => "RosterChanged",
            Signal::SubscriptionRequest { .. } => "SubscriptionRequest",
            Signal::PluginSignal { .. } => "PluginSignal",
            Signal::ProgressStarted { .. } => "ProgressStarted",
            Signal::Progress { .. } => "Progress",
            Signal::ProgressFinished { .. } => "ProgressFinished",
            Signal::ProgressError { .. } => "ProgressError",
            Signal::Other { member, .. } => member,
        }
    }

    /// Decodes `msg`: `None` when it is not a signal of perchd's interface, an error
    /// when its arguments do not fit the signal's signature.
    pub fn decode(msg: &Message) -> Option<Result<Self>> {
        let header = msg.header();
        if msg.message_type() != Type::Signal
            || header.interface().map(|i| i.as_str()) != Some(INTERFACE)
            || header.path().map(|p| p.as_str()) != Some(PATH)
        {
            return None;
        }
        let member = header.member()?.as_str().to_owned();
        Some(Self::decode_member(&member, msg).map_err(|e| bad(&member, e)))
    }

    fn decode_member(member: &str, msg: &Message) -> zbus::Result<Self> {
        if let Some(s) = Self::decode_progress(member, msg)? {
            return Ok(s);
        }
        let none = || zbus::Error::Failure(format!("not a {member} signal"));
        let m = || msg.clone();
        Ok(match member {
            "ConnectionState" => {
                let s = proxy::ConnectionState::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::ConnectionState {
                    profile: a.profile.to_owned(),
                    state: a.state.to_owned(),
                    jid: a.jid.to_owned(),
                    reason: a.reason.to_owned(),
                }
            }
            "MessageReceived" => {
                let s = proxy::MessageReceived::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::MessageReceived {
                    profile: a.profile.to_owned(),
                    message: a.message.to_owned(),
                }
            }
            "MessageUpdated" => {
                let s = proxy::MessageUpdated::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::MessageUpdated {
                    profile: a.profile.to_owned(),
                    message: a.message.to_owned(),
                }
            }
            "PresenceUpdate" => {
                let s = proxy::PresenceUpdate::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::PresenceUpdate {
                    profile: a.profile.to_owned(),
                    jid: a.jid.to_owned(),
                    show: a.show.to_owned(),
                    status: a.status.to_owned(),
                    priority: a.priority,
                }
            }
            "RosterChanged" => {
                let s = proxy::RosterChanged::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::RosterChanged {
                    profile: a.profile.to_owned(),
                    jid: a.jid.to_owned(),
                    subscription: a.subscription.to_owned(),
                    name: a.name.to_owned(),
                    groups: a.groups,
                }
            }
            "SubscriptionRequest" => {
                let s = proxy::SubscriptionRequest::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::SubscriptionRequest {
                    profile: a.profile.to_owned(),
                    action: a.action.to_owned(),
                    jid: a.jid.to_owned(),
                }
            }
            "PluginSignal" => {
                let s = proxy::PluginSignal::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::PluginSignal {
                    plugin: a.plugin.to_owned(),
                    name: a.name.to_owned(),
                    profile: a.profile.to_owned(),
                    data: a.data.to_owned(),
                }
            }
            other => Signal::Other {
                member: other.to_owned(),
                signature: msg.body().signature().to_string(),
            },
        })
    }

    /// The signals of jobs' progress; `None` for another member.
    fn decode_progress(member: &str, msg: &Message) -> zbus::Result<Option<Self>> {
        let none = || zbus::Error::Failure(format!("not a {member} signal"));
        let m = || msg.clone();
        Ok(Some(match member {
            "ProgressStarted" => {
                let s = proxy::ProgressStarted::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::ProgressStarted {
                    id: a.id.to_owned(),
                    profile: a.profile.to_owned(),
                    data: a.data.to_owned(),
                }
            }
            "Progress" => {
                let s = proxy::Progress::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::Progress {
                    id: a.id.to_owned(),
                    profile: a.profile.to_owned(),
                    data: a.data.to_owned(),
                }
            }
            "ProgressFinished" => {
                let s = proxy::ProgressFinished::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::ProgressFinished {
                    id: a.id.to_owned(),
                    profile: a.profile.to_owned(),
                    data: a.data.to_owned(),
                }
            }
            "ProgressError" => {
                let s = proxy::ProgressError::from_message(m()).ok_or_else(none)?;
                let a = s.args()?;
                Signal::ProgressError {
                    id: a.id.to_owned(),
                    profile: a.profile.to_owned(),
                    data: a.data.to_owned(),
                }
            }
            _ => return Ok(None),
        }))
    }
}

/// perchd's signals as they come; ends when the connection does, or on a bus when
/// perchd leaves it.
pub struct SignalStream {
    inner: MessageStream,
    /// On a bus: `NameOwnerChanged` of perchd's unique name, which only comes when
    /// perchd's connection goes.
    gone: Option<MessageStream>,
}

impl SignalStream {
    pub(crate) async fn new(conn: &Connection, sender: Option<&UniqueName<'_>>) -> Result<Self> {
        let Some(sender) = sender else {
            // Peer to peer only perchd can send anything; `decode` filters.
            return Ok(Self {
                inner: MessageStream::from(conn),
                gone: None,
            });
        };
        let rule = zbus::MatchRule::builder()
            .msg_type(Type::Signal)
            .sender(sender)
            .interface(INTERFACE)
            .path(PATH)
            .build()?;
        let inner = MessageStream::for_match_rule(rule, conn, None).await?;
        let gone_rule = zbus::MatchRule::builder()
            .msg_type(Type::Signal)
            .sender("org.freedesktop.DBus")
            .interface("org.freedesktop.DBus")
            .member("NameOwnerChanged")
            .arg(0, sender.as_str())
            .build()?;
        let gone = MessageStream::for_match_rule(gone_rule, conn, None).await?;
        Ok(Self {
            inner,
            gone: Some(gone),
        })
    }
}

impl Stream for SignalStream {
    type Item = Result<Signal>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(gone) = self.gone.as_mut()
            && let Poll::Ready(_) = Pin::new(gone).poll_next(cx)
        {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(Some(Ok(msg))) => {
                    if let Some(decoded) = Signal::decode(&msg) {
                        return Poll::Ready(Some(decoded));
                    }
                }
            }
        }
    }
}
