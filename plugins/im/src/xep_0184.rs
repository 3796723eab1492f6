//! XEP-0184: Message Delivery Receipts.
//!
//! Built entirely on triggers: `message.send` adds the request, `message.received`
//! turns receipts into a `delivered` mark on the stored message plus a
//! `message_delivered` signal (receipts are bodiless and never reach history), and
//! `message.stored` answers requests: a receipt says the message is kept, so it goes
//! out only once the message is in the database (never for one a full disk lost).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::signals::{self, Delivery};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::{Id, Message, MessageType};
use perch_plugin_api::parsers::ns;
use perch_plugin_api::parsers::receipts::{Received, Request};
use perch_plugin_api::points::{
    IncomingMessage, MessageReceived, MessageSend, MessageStored, OutgoingMessage, StoredMessage,
};
use perch_plugin_api::{
    BuildResult, Direction, Flow, Host, Plugin, PluginFactory, PluginInfo, Signals, Source,
};
use serde_json::json;

pub const IMPORT_NAME: &str = "XEP-0184";

#[derive(Debug)]
pub struct Receipts;

/// Whether a message type takes receipts (XEP-0184 §5.4: not groupchat, not error).
fn wants_receipts(t: &MessageType) -> bool {
    matches!(
        t,
        MessageType::Chat | MessageType::Normal | MessageType::Headline
    )
}

/// Adds `<request/>` to an outgoing message that has a body and an id.
pub fn add_request(m: &mut Message) {
    if m.id.is_some()
        && !m.bodies.is_empty()
        && wants_receipts(&m.type_)
        && !m.payloads.iter().any(|p| p.is("request", ns::RECEIPTS))
    {
        m.payloads.push(Request.into());
    }
}

/// What an incoming message means for receipts.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A receipt for our message with this id.
    Receipt(String),
    /// The sender asks for a receipt of message `id`.
    Request(String),
    Nothing,
}

pub fn classify(m: &Message) -> Incoming {
    if let Some(r) = m.payloads.iter().find(|p| p.is("received", ns::RECEIPTS))
        && let Some(id) = r.attr("id").filter(|id| !id.is_empty())
    {
        return Incoming::Receipt(id.to_owned());
    }
    if m.payloads.iter().any(|p| p.is("request", ns::RECEIPTS))
        && wants_receipts(&m.type_)
        && !m.bodies.is_empty()
        && let Some(Id(id)) = &m.id
    {
        return Incoming::Request(id.clone());
    }
    Incoming::Nothing
}

/// The receipt answering message `id` from `to`.
pub fn receipt(to: perch_plugin_api::jid::Jid, id: &str, type_: MessageType) -> Message {
    let mut m = Message::new(Some(to));
    m.type_ = type_;
    m.payloads.push(Received { id: id.to_owned() }.into());
    m
}

impl Plugin for Receipts {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Message Delivery Receipts",
    description: "Asks for receipts of sent messages, answers requests, marks messages delivered",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    host.add_feature(ns::RECEIPTS);
    host.declare(signals::MessageDelivered);
    let t = host.triggers();
    t.add::<MessageSend, _>(0, |args: &mut OutgoingMessage| {
        add_request(&mut args.message);
        async { Flow::Continue }.boxed()
    })?;
    t.add_with::<MessageReceived, _>(0, host.clone(), on_received)?;
    t.add_with::<MessageStored, _>(0, host.clone(), on_stored)?;
    Ok(Arc::new(Receipts))
}

/// `message.received`: a receipt marks our message delivered, and goes no further.
fn on_received(host: Arc<dyn Host>, args: &mut IncomingMessage) -> BoxFuture<'_, Flow<()>> {
    // What our own other device sent (a carbon, our archive) is not a receipt for us.
    let what = if args.direction == Some(Direction::Out) {
        Incoming::Nothing
    } else {
        classify(&args.message)
    };
    let from = args.message.from.clone();
    let profile = args.profile.clone();
    async move {
        let Incoming::Receipt(id) = what else {
            return Flow::Continue;
        };
        // A receipt our own account sent (an archive result gives it no direction:
        // the core files it as ours later) is for a message we received, not sent.
        let own = host.bound_jid(&profile).await.map(|j| j.to_bare());
        if own.is_some() && from.as_ref().map(|f| f.to_bare()) == own {
            return Flow::Stop;
        }
        let from = from.map(|f| f.to_string()).unwrap_or_default();
        match host
            .set_message_extra(&profile, &id, "delivered", json!(true))
            .await
        {
            Ok(true) => {
                let delivery = Delivery { id, from };
                host.signal(signals::MessageDelivered, &profile, &delivery);
            }
            Ok(false) => tracing::debug!(%profile, %id, "receipt for a message we did not store"),
            Err(e) => {
                tracing::warn!(%profile, %id, error = %e, "marking a message delivered failed")
            }
        }
        // A receipt is not a message for the history.
        Flow::Stop
    }
    .boxed()
}

/// `message.stored`: a stored live message that asked for a receipt gets one.
fn on_stored(host: Arc<dyn Host>, args: &mut StoredMessage) -> BoxFuture<'_, Flow<()>> {
    let answer = match (classify(&args.message), args.message.from.clone()) {
        // Only a message that came to this session is owed a receipt (a carbon's
        // receiver answers it itself).
        (Incoming::Request(id), Some(from)) if args.source == Source::Live => Some(Element::from(
            receipt(from, &id, args.message.type_.clone()),
        )),
        _ => None,
    };
    let profile = args.profile.clone();
    async move {
        if let Some(answer) = answer
            && let Err(e) = host.send(&profile, answer).await
        {
            tracing::warn!(%profile, error = %e, "sending a receipt failed");
        }
        Flow::Continue
    }
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(xml: &str) -> Message {
        let e: Element = xml.parse().expect("xml");
        Message::try_from(e).expect("message")
    }

    #[test]
    fn request_is_added_once_to_messages_with_a_body() {
        let mut m = msg(
            "<message xmlns='jabber:client' to='b@x' id='m1' type='chat'><body>hi</body></message>",
        );
        add_request(&mut m);
        add_request(&mut m);
        let xml = String::from(&Element::from(m));
        assert_eq!(
            xml.matches("<request xmlns='urn:xmpp:receipts'/>").count(),
            1,
            "{xml}"
        );

        let mut bodiless = msg("<message xmlns='jabber:client' to='b@x' id='m2' type='chat'/>");
        add_request(&mut bodiless);
        assert!(bodiless.payloads.is_empty());
        let mut group = msg(
            "<message xmlns='jabber:client' to='r@x' id='m3' type='groupchat'><body>hi</body></message>",
        );
        add_request(&mut group);
        assert!(group.payloads.is_empty());
    }

    #[test]
    fn receipts_and_requests_are_recognised() {
        let r = msg(
            "<message xmlns='jabber:client' from='b@x/r' id='z'><received xmlns='urn:xmpp:receipts' id='m1'/></message>",
        );
        assert_eq!(classify(&r), Incoming::Receipt("m1".into()));
        let q = msg(
            "<message xmlns='jabber:client' from='b@x/r' id='m9' type='chat'><body>yo</body><request xmlns='urn:xmpp:receipts'/></message>",
        );
        assert_eq!(classify(&q), Incoming::Request("m9".into()));
        let plain = msg(
            "<message xmlns='jabber:client' from='b@x/r' id='m9' type='chat'><body>yo</body></message>",
        );
        assert_eq!(classify(&plain), Incoming::Nothing);
    }

    #[test]
    fn receipt_answer_xml() {
        let m = receipt("b@x/r".parse().expect("jid"), "m9", MessageType::Chat);
        let xml = String::from(&Element::from(m));
        assert!(
            xml.contains("<received xmlns='urn:xmpp:receipts' id='m9'/>"),
            "{xml}"
        );
        assert!(xml.contains("to='b@x/r'"), "{xml}");
    }
}
