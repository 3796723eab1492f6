//! XEP-0461: Message Replies — sending a reply, announcing the feature.
//!
//! A reply names the message it answers (`<reply to=… id=…/>`) and quotes it at
//! the start of its body, marked as a XEP-0428 fallback, for clients that do not
//! know replies. The quote is read from history through the host (the core's
//! table). Receiving is the core's (`backend/src/xmpp/stanzas.rs`, `content`):
//! history stores the reply's own text, the quote stripped, with `extra.reply_to`
//! = {id, to}, for what we send and what arrives alike.

use std::sync::Arc;

use perch_actions::messages::{MessageReply, MessageReplyArgs};
use perch_codec::xep_0461::{self, Reply};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::parsers::message::{Lang, Message};
use perch_plugin_api::{Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};
use serde_json::Value;

use crate::message_ref;

pub const IMPORT_NAME: &str = "XEP-0461";

#[derive(Debug)]
pub struct MessageReplies;

impl Plugin for MessageReplies {}

pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Message Replies",
    description: "Replies to a message, quoting it for clients that do not know replies",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(xep_0461::NS);
        host.serve(MessageReply, host.clone(), message_reply);
        Ok(Arc::new(MessageReplies) as Arc<dyn Plugin>)
    })
}

/// The reply: `text` after the quote of `quoted`, naming `reply`.
pub fn reply_message(
    to: perch_plugin_api::jid::Jid,
    groupchat: bool,
    reply: &Reply,
    quoted: &str,
    text: &str,
) -> Message {
    let (body, fallback) = xep_0461::quoted_body(quoted, text);
    let mut m = message_ref::new(to, groupchat).with_body(Lang(String::new()), body);
    m.payloads.push(reply.to_element());
    m.payloads.extend(fallback);
    m
}

async fn message_reply(
    host: Arc<dyn Host>,
    profile: String,
    args: MessageReplyArgs,
) -> Result<Value, HostError> {
    let to = jid_arg("to", &args.to)?;
    if args.body.is_empty() {
        return Err(HostError::BadArgument("body: a reply needs a text".into()));
    }
    // A message we do not have (older than our history) is replied to unquoted.
    let (reply, quoted) = match message_ref::find(&*host, &profile, &to, &args.id).await? {
        Some(t) => (
            Reply {
                id: message_ref::wire_id(&t, args.groupchat),
                to: Some(t.from.clone()).filter(|f| !f.is_empty()),
            },
            t.body,
        ),
        None => (
            Reply {
                id: args.id.clone(),
                to: None,
            },
            String::new(),
        ),
    };
    let m = reply_message(to, args.groupchat, &reply, &quoted, &args.body);
    message_ref::answer(host.send_message(&profile, m).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::minidom::Element;

    #[test]
    fn reply_message_xml() {
        let reply = Reply {
            id: "m1".into(),
            to: Some("b@x/phone".into()),
        };
        let m = reply_message("b@x".parse().expect("jid"), false, &reply, "cake?", "yes");
        let xml = String::from(&Element::from(m));
        assert!(xml.contains("<body>&gt; cake?\nyes</body>"), "{xml}");
        assert!(
            xml.contains("<reply xmlns='urn:xmpp:reply:0' id='m1' to='b@x/phone'/>"),
            "{xml}"
        );
        assert!(
            xml.contains(
                "<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body end='8' start='0'/></fallback>"
            ),
            "{xml}"
        );
    }
}
