//! XEP-0085: Chat State Notifications.
//!
//! Why a plugin of its own: chat states are ephemeral (typing, paused, gone), never
//! history. Sent chat messages carry `<active/>` (the XEP asks a client that
//! supports states to say so in its messages); states that arrive are signalled
//! (`chat_state`) and never stored; a frontend sends its user's state with the
//! `chat_state_send` action, as a bodiless message the server need not keep
//! (XEP-0334 `no-store`).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::messages::{ChatState, ChatStateSend};
use perch_actions::signals::{self, ContactState};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::{Message, MessageType};
use perch_plugin_api::parsers::ns;
use perch_plugin_api::points::{IncomingMessage, MessageReceived, MessageSend, OutgoingMessage};
use perch_plugin_api::{
    BuildResult, Direction, Flow, Host, HostError, Plugin, PluginFactory, PluginInfo, Serve,
    Signals, Source,
};

pub const IMPORT_NAME: &str = "XEP-0085";

/// XEP-0334 Message Processing Hints.
const HINTS: &str = "urn:xmpp:hints";

/// The five states.
pub const STATES: [&str; 5] = ["active", "composing", "paused", "inactive", "gone"];

#[derive(Debug)]
pub struct ChatStates;

/// The chat state a message carries.
pub fn state(m: &Message) -> Option<&'static str> {
    m.payloads
        .iter()
        .find_map(|p| STATES.iter().find(|s| p.is(**s, ns::CHATSTATES)).copied())
}

/// Adds `<active/>` to a chat message with a text that carries no state.
pub fn add_active(m: &mut Message) {
    if m.type_ == MessageType::Chat && !m.bodies.is_empty() && state(m).is_none() {
        m.payloads
            .push(Element::builder("active", ns::CHATSTATES).build());
    }
}

/// The bodiless message telling `to` our state.
pub fn notification(to: perch_plugin_api::jid::Jid, state: &str) -> Element {
    let mut m = Message::new(Some(to));
    m.type_ = MessageType::Chat;
    m.payloads
        .push(Element::builder(state, ns::CHATSTATES).build());
    m.payloads.push(Element::builder("no-store", HINTS).build());
    m.into()
}

impl Plugin for ChatStates {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Chat State Notifications",
    description: "Typing notifications: sends and signals chat states, never stores them",
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
    host.add_feature(ns::CHATSTATES);
    host.declare(signals::ChatState);
    host.triggers()
        .add::<MessageSend, _>(0, |args: &mut OutgoingMessage| {
            add_active(&mut args.message);
            async { Flow::Continue }.boxed()
        })?;
    host.triggers()
        .add_with::<MessageReceived, _>(0, host.clone(), on_received)?;
    host.serve(ChatStateSend, host.clone(), chat_state_send);
    Ok(Arc::new(ChatStates))
}

/// `message.received`: a contact's state, signalled.
fn on_received(host: Arc<dyn Host>, args: &mut IncomingMessage) -> BoxFuture<'_, Flow<()>> {
    // Only what a contact tells us now: not archived states, not our own other
    // devices'.
    let live = args.source != Source::Archive && args.direction != Some(Direction::Out);
    let found = state(&args.message).filter(|_| live);
    if let (Some(state), Some(from)) = (found, &args.message.from) {
        let payload = ContactState {
            from: from.to_string(),
            state: state.to_owned(),
        };
        host.signal(signals::ChatState, &args.profile, &payload);
    }
    async { Flow::Continue }.boxed()
}

/// The `chat_state_send` action.
async fn chat_state_send(
    host: Arc<dyn Host>,
    profile: String,
    args: ChatState,
) -> Result<ChatState, HostError> {
    let to = jid_arg("to", &args.to)?;
    let state = args.state;
    if !STATES.contains(&state.as_str()) {
        return Err(HostError::BadArgument(format!(
            "state: {state:?} is not one of {}",
            STATES.join(", ")
        )));
    }
    host.send(&profile, notification(to.clone(), &state))
        .await?;
    Ok(ChatState {
        to: to.to_string(),
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(xml: &str) -> Message {
        let e: Element = xml.parse().expect("xml");
        Message::try_from(e).expect("message")
    }

    #[test]
    fn states_are_read_and_active_added_once() {
        let typing = msg("<message xmlns='jabber:client' from='b@x/r' type='chat'>\
            <composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
        assert_eq!(state(&typing), Some("composing"));
        let mut m = msg(
            "<message xmlns='jabber:client' to='b@x' id='m1' type='chat'><body>hi</body></message>",
        );
        add_active(&mut m);
        add_active(&mut m);
        let xml = String::from(&Element::from(m));
        assert_eq!(
            xml.matches("<active xmlns='http://jabber.org/protocol/chatstates'/>")
                .count(),
            1,
            "{xml}"
        );
        let mut group = msg(
            "<message xmlns='jabber:client' to='r@x' type='groupchat'><body>hi</body></message>",
        );
        add_active(&mut group);
        assert!(group.payloads.is_empty());
    }

    #[test]
    fn notification_xml() {
        let xml = String::from(&notification("b@x".parse().expect("jid"), "paused"));
        assert_eq!(
            xml,
            "<message xmlns='jabber:client' to='b@x' type='chat'>\
             <paused xmlns='http://jabber.org/protocol/chatstates'/>\
             <no-store xmlns='urn:xmpp:hints'/></message>"
        );
    }
}
