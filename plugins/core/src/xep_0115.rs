//! XEP-0115: Entity Capabilities — say what we support in every presence.
//!
//! Why it matters: servers and contacts learn our features from a hash in our
//! presence instead of asking each time, and PEP (XEP-0163) relies on it: Prosody
//! sends PEP notifications for a node only to contacts whose capabilities include
//! `<namespace>+notify`. The hash is computed from the features announced at the
//! moment the presence goes out; the XEP-0030 plugin answers the disco#info query on
//! `node#ver` with the same features.

use std::sync::Arc;

use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::presence::Type as PresenceType;
use perch_plugin_api::points::{OutgoingPresence, PresenceSend};
use perch_plugin_api::{Flow, Host, Plugin, PluginFactory, PluginInfo};

use perch_codec::dom::Attr;

pub const IMPORT_NAME: &str = "XEP-0115";
pub const NS: &str = "http://jabber.org/protocol/caps";
/// Our software's node (XEP-0115 §4: a URI identifying the client).
pub const NODE: &str = "https://perch.im/caps";

/// The verification string's hash (§5.1) of one identity and `features`.
pub fn ver(identity: (&str, &str, &str, &str), features: &[String]) -> String {
    let (category, type_, lang, name) = identity;
    let mut features: Vec<&str> = features.iter().map(String::as_str).collect();
    features.sort_unstable();
    features.dedup();
    let mut s = format!("{category}/{type_}/{lang}/{name}<");
    for f in features {
        s.push_str(f);
        s.push('<');
    }
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

#[derive(Debug)]
pub struct Caps;

impl Plugin for Caps {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Entity Capabilities",
    description: "Announces our features in every presence (needed for PEP +notify)",
    dependencies: &[crate::xep_0030::IMPORT_NAME],
    recommendations: &[],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(NS);
        host.triggers()
            .add_with::<PresenceSend, _>(0, host.clone(), add_caps)?;
        Ok(Arc::new(Caps) as Arc<dyn Plugin>)
    })
}

/// `presence.send`: our capabilities in every availability presence.
fn add_caps(host: Arc<dyn Host>, args: &mut OutgoingPresence) -> BoxFuture<'_, Flow<()>> {
    if args.presence.type_ == PresenceType::None {
        let ver = ver(crate::xep_0030::IDENTITY, &host.features());
        args.presence.payloads.push(
            Element::builder("c", NS)
                .a("hash", "sha-1")
                .a("node", NODE)
                .a("ver", ver)
                .build(),
        );
    }
    async { Flow::Continue }.boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of XEP-0115 §5.2.
    #[test]
    fn ver_of_the_spec_example() {
        let features = [
            "http://jabber.org/protocol/muc",
            "http://jabber.org/protocol/disco#info",
            "http://jabber.org/protocol/disco#items",
            "http://jabber.org/protocol/caps",
        ]
        .map(String::from);
        assert_eq!(
            ver(("client", "pc", "", "Exodus 0.9.1"), &features),
            "QgayPKawpkPSDYmwT/WM94uAlu0="
        );
    }
}
