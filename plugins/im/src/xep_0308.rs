//! XEP-0308: Last Message Correction — sending corrections.
//!
//! A correction is a new message naming the one it corrects (`<replace id=…/>`).
//! Applying one, in either direction, is history's work (the core): the corrected
//! message takes the new text and keeps the earlier ones in `extra.edits`, only if
//! the correction comes from the same sender in the same conversation. This plugin
//! announces the feature and offers `message_correct`, which sends a correction of
//! one of our messages the way any message goes out (stored, outbox).

use std::sync::Arc;

use perch_actions::messages::{MessageCorrect, MessageCorrectArgs};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::{Lang, Message, MessageType};
use perch_plugin_api::parsers::ns;
use perch_plugin_api::{Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};
use serde_json::Value;

use perch_codec::dom::Attr;

pub const IMPORT_NAME: &str = "XEP-0308";

#[derive(Debug)]
pub struct Correction;

/// A correction of message `id` to `to`, with the new text.
pub fn correction(
    to: perch_plugin_api::jid::Jid,
    id: &str,
    body: &str,
    groupchat: bool,
) -> Message {
    let kind = if groupchat {
        MessageType::Groupchat
    } else {
        MessageType::Chat
    };
    let mut m =
        Message::new_with_type(kind, Some(to)).with_body(Lang(String::new()), body.to_owned());
    m.payloads.push(
        Element::builder("replace", ns::MESSAGE_CORRECT)
            .a("id", id)
            .build(),
    );
    m
}

impl Plugin for Correction {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Last Message Correction",
    description: "Corrects a sent message; history keeps the earlier texts",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(ns::MESSAGE_CORRECT);
        host.serve(MessageCorrect, host.clone(), message_correct);
        Ok(Arc::new(Correction) as Arc<dyn Plugin>)
    })
}

/// The `message_correct` action.
async fn message_correct(
    host: Arc<dyn Host>,
    profile: String,
    args: MessageCorrectArgs,
) -> Result<Value, HostError> {
    let to = jid_arg("to", &args.to)?;
    if args.id.is_empty() || args.body.is_empty() {
        return Err(HostError::BadArgument(
            "id and body: a correction needs both".into(),
        ));
    }
    let sent = host
        .send_message(
            &profile,
            correction(to, &args.id, &args.body, args.groupchat),
        )
        .await?;
    serde_json::to_value(sent).map_err(|e| HostError::Internal(format!("serialising: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correction_xml() {
        let m = correction("b@x".parse().expect("jid"), "m1", "fixed", false);
        let xml = String::from(&Element::from(m));
        assert!(
            xml.contains("<replace xmlns='urn:xmpp:message-correct:0' id='m1'/>"),
            "{xml}"
        );
        assert!(xml.contains("<body>fixed</body>"), "{xml}");
        assert!(xml.contains("type='chat'"), "{xml}");
    }
}
