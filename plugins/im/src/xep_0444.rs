//! XEP-0444: Message Reactions — sending ours, announcing the feature.
//!
//! A reaction goes out as a message like any other (stored, outbox: it is sent
//! when the profile is connected, across restarts), with no body and a `<store/>`
//! hint. Applying reactions, ours and received ones, to the message they name is
//! history's work (the core's, `backend/src/history.rs`), as corrections are: the
//! target is found in the message table, which no plugin may read, and the same
//! rule must hold for what we send and what arrives (a sender's new set replaces
//! their earlier one). History keeps them as the target's `extra.reactions`.

use std::sync::Arc;

use perch_actions::messages::{MessageReact, MessageReactArgs};
use perch_codec::xep_0444::{self, MAX_REACTION, MAX_REACTIONS, Reactions};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::parsers::message::Message;
use perch_plugin_api::{Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};
use serde_json::Value;

use crate::message_ref;

pub const IMPORT_NAME: &str = "XEP-0444";

#[derive(Debug)]
pub struct MessageReactions;

impl Plugin for MessageReactions {}

pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Message Reactions",
    description: "Reacts to messages with emojis; history keeps who reacted with what",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(xep_0444::NS);
        host.serve(MessageReact, host.clone(), message_react);
        Ok(Arc::new(MessageReactions) as Arc<dyn Plugin>)
    })
}

/// Our reactions, checked: distinct, none blank, none too long, not too many.
pub fn checked(reactions: &[String]) -> Result<Vec<String>, HostError> {
    let mut out: Vec<String> = Vec::new();
    for r in reactions {
        let r = r.trim();
        if r.is_empty() || r.len() > MAX_REACTION {
            return Err(HostError::BadArgument(format!(
                "reactions: {r:?} is not a reaction (1 to {MAX_REACTION} bytes)"
            )));
        }
        if !out.iter().any(|x| x == r) {
            out.push(r.to_owned());
        }
    }
    if out.len() > MAX_REACTIONS {
        return Err(HostError::BadArgument(format!(
            "reactions: at most {MAX_REACTIONS}"
        )));
    }
    Ok(out)
}

/// The reactions message: our whole set for message `id`.
pub fn reactions_message(
    to: perch_plugin_api::jid::Jid,
    groupchat: bool,
    r: &Reactions,
) -> Message {
    let mut m = message_ref::new(to, groupchat);
    m.payloads.push(r.to_element());
    m.payloads.push(xep_0444::store_hint());
    m
}

async fn message_react(
    host: Arc<dyn Host>,
    profile: String,
    args: MessageReactArgs,
) -> Result<Value, HostError> {
    let to = jid_arg("to", &args.to)?;
    let reactions = checked(&args.reactions)?;
    let target = message_ref::require(&*host, &profile, &to, &args.id).await?;
    let r = Reactions {
        id: message_ref::wire_id(&target, args.groupchat),
        reactions,
    };
    let sent = host
        .send_message(&profile, reactions_message(to, args.groupchat, &r))
        .await?;
    message_ref::answer(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::minidom::Element;

    #[test]
    fn reactions_message_xml() {
        let r = Reactions {
            id: "s1".into(),
            reactions: vec!["👍".into()],
        };
        let m = reactions_message("room@muc.x".parse().expect("jid"), true, &r);
        let xml = String::from(&Element::from(m));
        assert!(xml.contains("type='groupchat'"), "{xml}");
        assert!(
            xml.contains(
                "<reactions xmlns='urn:xmpp:reactions:0' id='s1'><reaction>👍</reaction></reactions>"
            ),
            "{xml}"
        );
        assert!(xml.contains("<store xmlns='urn:xmpp:hints'/>"), "{xml}");
        assert!(!xml.contains("<body"), "{xml}");
    }

    #[test]
    fn reactions_are_checked() {
        let ok = checked(&["👍".into(), "👍".into(), " 🎉 ".into()]).expect("fine");
        assert_eq!(ok, ["👍", "🎉"]);
        assert!(checked(&[String::new()]).is_err());
        assert!(checked(&["x".repeat(MAX_REACTION + 1)]).is_err());
        assert!(checked(&[]).expect("empty takes ours back").is_empty());
    }
}
