//! XEP-0424: Message Retraction — retracting one of our messages, announcing the
//! feature.
//!
//! The retraction goes out as a message (stored, outbox) with the fallback body
//! for old clients and a `<store/>` hint. Applying retractions, ours and received
//! ones, is history's work (the core's, `backend/src/history.rs`): there the target
//! is found and a retraction is honoured only from the message's own sender; one
//! from anyone else is ignored and logged. The target's text goes and
//! `extra.retracted` = {timestamp, by} is set.

use std::sync::Arc;

use perch_actions::messages::{MessageRetract, MessageRetractArgs};
use perch_codec::xep_0424::{self, Retract};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::parsers::message::{Lang, Message};
use perch_plugin_api::{Direction, Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};
use serde_json::Value;

use crate::message_ref;

pub const IMPORT_NAME: &str = "XEP-0424";

#[derive(Debug)]
pub struct MessageRetraction;

impl Plugin for MessageRetraction {}

pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Message Retraction",
    description: "Takes back one of our messages; history drops its text",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(xep_0424::NS);
        host.serve(MessageRetract, host.clone(), message_retract);
        Ok(Arc::new(MessageRetraction) as Arc<dyn Plugin>)
    })
}

/// The retraction of message `id` (as the XEP names it).
pub fn retraction(to: perch_plugin_api::jid::Jid, groupchat: bool, id: &str) -> Message {
    let mut m = message_ref::new(to, groupchat)
        .with_body(Lang(String::new()), xep_0424::FALLBACK_BODY.to_owned());
    m.payloads.extend(
        Retract {
            id: id.to_owned(),
            moderated: None,
        }
        .payloads(),
    );
    m
}

async fn message_retract(
    host: Arc<dyn Host>,
    profile: String,
    args: MessageRetractArgs,
) -> Result<Value, HostError> {
    let to = jid_arg("to", &args.to)?;
    let target = message_ref::require(&*host, &profile, &to, &args.id).await?;
    if target.direction != Direction::Out {
        return Err(HostError::BadArgument(format!(
            "id: message {:?} is not ours to retract",
            args.id
        )));
    }
    let id = message_ref::wire_id(&target, args.groupchat);
    message_ref::answer(
        host.send_message(&profile, retraction(to, args.groupchat, &id))
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::minidom::Element;

    #[test]
    fn retraction_xml() {
        let m = retraction("b@x".parse().expect("jid"), false, "o1");
        let xml = String::from(&Element::from(m));
        assert!(xml.contains("type='chat'"), "{xml}");
        assert!(
            xml.contains("<retract xmlns='urn:xmpp:message-retract:1' id='o1'/>"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"
            ),
            "{xml}"
        );
        assert!(xml.contains("<store xmlns='urn:xmpp:hints'/>"), "{xml}");
        assert!(
            xml.contains("<body>This person attempted to retract a previous message"),
            "{xml}"
        );
    }
}
