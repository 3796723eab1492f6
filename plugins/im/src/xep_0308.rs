//! XEP-0308: Last Message Correction — sending corrections.
//!
//! A correction is a new message naming the one it corrects (`<replace id=…/>`).
//! Applying one, in either direction, is history's work (the core): the corrected
//! message takes the new text and keeps the earlier ones in `extra.edits`, only if
//! the correction comes from the same sender in the same conversation. This plugin
//! announces the feature and offers `message_correct`, which sends a correction of
//! one of our messages the way any message goes out (stored, outbox).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::{Action, messages};
use perch_plugin_api::action::{ActionSpec, Param, ParamType, typed};
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::{Lang, Message, MessageType};
use perch_plugin_api::parsers::ns;
use perch_plugin_api::{Host, HostError, Plugin, PluginError, PluginInfo};

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

impl Plugin for Correction {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            import_name: IMPORT_NAME,
            name: "Last Message Correction",
            description: "Corrects a sent message; history keeps the earlier texts",
            dependencies: &[],
            recommendations: &["XEP-0030"],
        }
    }

    fn init(self: Arc<Self>, host: Arc<dyn Host>) -> BoxFuture<'static, Result<(), PluginError>> {
        async move {
            host.add_feature(IMPORT_NAME, ns::MESSAGE_CORRECT);
            let h = host.clone();
            host.add_action(
                IMPORT_NAME,
                ActionSpec {
                    name: messages::MessageCorrect::NAME,
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
                typed(messages::MessageCorrect::handler(move |profile, args| {
                    let host = h.clone();
                    async move {
                        let to = Jid::new(&args.to)
                            .map_err(|e| HostError::BadArgument(format!("to: {e}")))?;
                        let (id, body) = (args.id.as_str(), args.body.as_str());
                        if id.is_empty() || body.is_empty() {
                            return Err(HostError::BadArgument(
                                "id and body: a correction needs both".into(),
                            ));
                        }
                        let sent = host
                            .send_message(&profile, correction(to, id, body, args.groupchat))
                            .await?;
                        serde_json::to_value(sent)
                            .map_err(|e| HostError::Internal(format!("serialising: {e}")))
                    }
                })),
            );
            Ok(())
        }
        .boxed()
    }
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
