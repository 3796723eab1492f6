//! XEP-0308: Last Message Correction — sending corrections.
//!
//! A correction is a new message naming the one it corrects (`<replace id=…/>`).
//! Applying one, in either direction, is history's work (the core): the corrected
//! message takes the new text and keeps the earlier ones in `extra.edits`, only if
//! the correction comes from the same sender in the same conversation. This plugin
//! announces the feature and offers `message_correct`, which sends a correction of
//! one of our messages the way any message goes out (stored, outbox).

use perch_actions::{self as actions, Action as _};
use std::sync::Arc;

use perch_plugin_api::action::{ActionResult, ActionSpec, Call, Param, ParamType};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::{Lang, Message, MessageType};
use perch_plugin_api::parsers::ns;
use perch_plugin_api::{Host, HostError, Plugin, PluginFactory, PluginInfo, action_fn};

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
        host.add_action(
            ActionSpec {
                name: actions::messages::MessageCorrect::NAME,
                plugin: String::new(),
                doc: "Corrects one of our messages: sends the new text, which replaces the old one in history (kept in extra.edits)",
                needs_session: false,
                params: vec![
                    Param::required("to", ParamType::Jid, "the contact or room the message went to"),
                    Param::required("id", ParamType::String, "the id of the message to correct"),
                    Param::required("body", ParamType::String, "the corrected text"),
                    Param::optional("groupchat", ParamType::Boolean, "the message went to a room")
                        .with_default(serde_json::Value::Bool(false)),
                ],
            },
            action_fn(host.clone(), message_correct),
        );
        Ok(Arc::new(Correction) as Arc<dyn Plugin>)
    })
}

/// The `message_correct` action.
async fn message_correct(host: Arc<dyn Host>, call: Call) -> ActionResult {
    let to = call
        .args
        .jid("to")
        .ok_or_else(|| HostError::BadArgument("to".into()))?;
    let id = call.args.str("id").unwrap_or_default();
    let body = call.args.str("body").unwrap_or_default();
    if id.is_empty() || body.is_empty() {
        return Err(HostError::BadArgument(
            "id and body: a correction needs both".into(),
        ));
    }
    let groupchat = call.args.bool("groupchat").unwrap_or(false);
    let sent = host
        .send_message(&call.profile, correction(to, id, body, groupchat))
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
