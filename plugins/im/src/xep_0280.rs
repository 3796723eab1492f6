//! XEP-0280: Message Carbons.
//!
//! Enabled when a session starts, so what the account's other devices send and
//! receive lands in this profile's history too. A carbon is unwrapped where it
//! enters (`message.received`, before anything else reads it): the forwarded
//! message replaces the wrapper, marked as a carbon and with its direction (a
//! `<sent/>` carbon is ours, from another device), and the core files it like any
//! message, recognising one it already has by its ids.
//!
//! Only our own server may send carbons: a wrapper whose sender is not our own
//! bare JID (the `to` of the stanza, bare) is a forgery — anyone can send us a
//! message with a `<sent/>` inside — and is dropped.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::Message;
use perch_plugin_api::parsers::ns;
use perch_plugin_api::points::{IncomingMessage, MessageReceived};
use perch_plugin_api::{Direction, Flow, Host, Plugin, PluginFactory, PluginInfo, Source};

pub const IMPORT_NAME: &str = "XEP-0280";

/// Runs before every other `message.received` handler: they see the unwrapped
/// message.
pub const PRIORITY: i32 = 1000;

pub struct Carbons {
    host: Arc<dyn Host>,
}

/// What a message is, for carbons.
#[derive(Debug, PartialEq)]
pub enum Carbon {
    /// Not a carbon.
    No,
    /// A carbon from our server: the forwarded message and its direction.
    Copy(Box<Message>, Direction),
    /// A carbon wrapper from someone else, or one without a message inside.
    Forged,
}

/// Reads a carbon wrapper.
pub fn unwrap(m: &Message) -> Carbon {
    let Some((wrapper, direction)) = m.payloads.iter().find_map(|p| {
        if p.is("sent", ns::CARBONS) {
            Some((p, Direction::Out))
        } else if p.is("received", ns::CARBONS) {
            Some((p, Direction::In))
        } else {
            None
        }
    }) else {
        return Carbon::No;
    };
    // From our own bare JID (the server, for the account), to us.
    let ours = match (&m.from, &m.to) {
        (Some(from), Some(to)) => from.resource().is_none() && from.to_bare() == to.to_bare(),
        _ => false,
    };
    if !ours {
        return Carbon::Forged;
    }
    let inner = wrapper
        .get_child("forwarded", ns::FORWARD)
        .and_then(|f| f.get_child("message", ns::DEFAULT_NS))
        .and_then(|e| Message::try_from(e.clone()).ok());
    let Some(inner) = inner else {
        return Carbon::Forged;
    };
    // The copy must be about our account: sent from it, or received by it.
    let own = m.to.as_ref().map(|t| t.to_bare());
    let about_us = match direction {
        Direction::Out => inner.from.as_ref().map(|f| f.to_bare()) == own,
        Direction::In => inner.to.as_ref().map(|t| t.to_bare()) == own,
    };
    if !about_us {
        return Carbon::Forged;
    }
    Carbon::Copy(Box::new(inner), direction)
}

fn enable() -> Element {
    Element::builder("enable", ns::CARBONS).build()
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Message Carbons",
    description: "Copies of what the account's other devices send and receive",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(ns::CARBONS);
        host.triggers()
            .add::<MessageReceived, _>(PRIORITY, on_received)?;
        Ok(Arc::new(Carbons { host }) as Arc<dyn Plugin>)
    })
}

/// `message.received`, first of all: a carbon is unwrapped, a forged one dropped.
fn on_received(args: &mut IncomingMessage) -> BoxFuture<'_, Flow<()>> {
    let flow = match unwrap(&args.message) {
        Carbon::No => Flow::Continue,
        Carbon::Copy(inner, direction) => {
            args.message = *inner;
            args.source = Source::Carbon;
            args.direction = Some(direction);
            Flow::Continue
        }
        Carbon::Forged => {
            tracing::warn!(profile = %args.profile, from = ?args.message.from, "a carbon not from our own account; dropped");
            Flow::Stop
        }
    };
    async move { flow }.boxed()
}

impl Plugin for Carbons {
    fn session_started(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            let host = self.host.clone();
            // Off the inbox path: the answer comes through this very session.
            tokio::spawn(async move {
                match host.iq(&profile, None, true, enable()).await {
                    Ok(_) => tracing::debug!(%profile, "carbons enabled"),
                    Err(e) => tracing::warn!(%profile, error = %e, "enabling carbons failed"),
                }
            });
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(xml: &str) -> Message {
        let e: Element = xml.parse().expect("xml");
        Message::try_from(e).expect("message")
    }

    const SENT: &str = "<message xmlns='jabber:client' from='a@x' to='a@x/perch' type='chat'>\
        <sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
        <message xmlns='jabber:client' from='a@x/phone' to='b@x/r' type='chat' id='p1'>\
        <body>from my phone</body></message></forwarded></sent></message>";

    #[test]
    fn sent_and_received_carbons_unwrap_with_their_direction() {
        let Carbon::Copy(inner, dir) = unwrap(&msg(SENT)) else {
            panic!("not a copy")
        };
        assert_eq!(dir, Direction::Out);
        assert_eq!(inner.id.as_ref().map(|i| i.0.as_str()), Some("p1"));
        let received = "<message xmlns='jabber:client' from='a@x' to='a@x/perch' type='chat'>\
            <received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>\
            <message xmlns='jabber:client' from='b@x/r' to='a@x/phone' type='chat' id='b1'>\
            <body>to my phone</body></message></forwarded></received></message>";
        let Carbon::Copy(inner, dir) = unwrap(&msg(received)) else {
            panic!("not a copy")
        };
        assert_eq!(dir, Direction::In);
        assert_eq!(inner.from.map(|f| f.to_string()).as_deref(), Some("b@x/r"));
    }

    #[test]
    fn forged_carbons_are_refused() {
        // From a stranger.
        let stranger = SENT.replacen("from='a@x'", "from='mallory@x'", 1);
        assert_eq!(unwrap(&msg(&stranger)), Carbon::Forged);
        // From our own account but a full JID (another of our resources, not the server).
        let resource = SENT.replacen("from='a@x'", "from='a@x/evil'", 1);
        assert_eq!(unwrap(&msg(&resource)), Carbon::Forged);
        // A "sent" carbon of a message someone else sent.
        let not_ours = SENT.replacen("from='a@x/phone'", "from='c@x/r'", 1);
        assert_eq!(unwrap(&msg(&not_ours)), Carbon::Forged);
        // Not a carbon at all.
        let plain = msg(
            "<message xmlns='jabber:client' from='b@x/r' to='a@x/perch' type='chat'><body>hi</body></message>",
        );
        assert_eq!(unwrap(&plain), Carbon::No);
    }
}
