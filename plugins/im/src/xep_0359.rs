//! XEP-0359: Unique and Stable Stanza IDs — the sending side.
//!
//! Every message we send carries `<origin-id/>` with the message's own id. Why:
//! the outbox may send a message twice (the stream died before the server
//! confirmed it), and a message reaches its receiver more than once anyway (live,
//! as a carbon, from an archive); the origin-id is what lets a receiver — Perch's
//! history among them — keep one copy. Reading ids (origin-id, and the archive's
//! stanza-id) is the core's: it is how history recognises a message seen before.

use std::sync::Arc;

use futures::FutureExt;
use perch_plugin_api::minidom::Element;

use perch_codec::dom::Attr;
use perch_plugin_api::parsers::message::{Id, Message};
use perch_plugin_api::parsers::ns;
use perch_plugin_api::points::{MessageSend, OutgoingMessage};
use perch_plugin_api::{Flow, Host, Plugin, PluginFactory, PluginInfo};

pub const IMPORT_NAME: &str = "XEP-0359";

#[derive(Debug)]
pub struct StanzaIds;

/// Adds `<origin-id id=…/>` (the message's id) unless there is one.
pub fn add_origin_id(m: &mut Message) {
    let Some(Id(id)) = &m.id else { return };
    if m.payloads.iter().any(|p| p.is("origin-id", ns::SID)) {
        return;
    }
    let el = Element::builder("origin-id", ns::SID)
        .a("id", id.as_str())
        .build();
    m.payloads.push(el);
}

impl Plugin for StanzaIds {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Unique and Stable Stanza IDs",
    description: "Gives every sent message an origin-id, so receivers keep one copy",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(ns::SID);
        // Last (lowest priority): the id is final once other handlers ran.
        host.triggers()
            .add::<MessageSend, _>(-100, |args: &mut OutgoingMessage| {
                add_origin_id(&mut args.message);
                async { Flow::Continue }.boxed()
            })?;
        Ok(Arc::new(StanzaIds) as Arc<dyn Plugin>)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_id_is_the_message_id_once() {
        let e: Element =
            "<message xmlns='jabber:client' to='b@x' id='m1' type='chat'><body>hi</body></message>"
                .parse()
                .expect("xml");
        let mut m = Message::try_from(e).expect("message");
        add_origin_id(&mut m);
        add_origin_id(&mut m);
        let xml = String::from(&Element::from(m));
        assert_eq!(
            xml.matches("<origin-id xmlns='urn:xmpp:sid:0' id='m1'/>")
                .count(),
            1,
            "{xml}"
        );
    }
}
