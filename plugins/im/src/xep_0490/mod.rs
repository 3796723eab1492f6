//! Read state: chat markers (XEP-0333 `displayed`), our read position shared with
//! our other devices (XEP-0490 Message Displayed Synchronization), and unread counts.
//!
//! Why it is shaped this way:
//! - **The position is the plugin's, the count the core's.** The plugin keeps the
//!   last message read per conversation (its `read_state` table, so it survives a
//!   restart); counting what came after it needs the message table, which is the
//!   core's (`Host::unread`). Incoming messages newer than both the read position
//!   and our own newest message are unread: writing in a conversation reads it.
//! - **Markers are message actions.** `message_read` sends `<displayed/>` as a
//!   message (stored, outbox), and a contact's `<displayed/>` arrives as one: the
//!   core's history applies both to the message they name (`extra.displayed` =
//!   {by: […]}, signalled with `MessageUpdated`), as it does reactions. One naming a
//!   message we do not have is ignored and logged there. Our chat messages carry
//!   `<markable/>`; we send a marker only for a markable chat message (in rooms,
//!   markers would tell everyone; they are left out).
//! - **MDS by PEP.** The read position goes to our PEP node
//!   `urn:xmpp:mds:displayed:0` (item id: the conversation's bare JID; private,
//!   whitelist), named by the archive's stanza-id. Notifications from our own
//!   account (`+notify`), and the node's items fetched at each session start, move
//!   our stored position; a position naming a message not (yet) in history is kept
//!   as is and counted from once it arrives.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::messages::{
    MessageRead, MessageReadArgs, MessageUnread, MessageUnreadArgs, ReadChanged, Unread,
};
use perch_codec::xep_0060::xml as pubsub;
use perch_codec::{xep_0333, xep_0490};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::MessageType;
use perch_plugin_api::points::{IncomingMessage, MessageReceived, MessageSend, OutgoingMessage};
use perch_plugin_api::{
    BuildResult, Direction, Flow, HistoryMessage, Host, HostError, Plugin, PluginFactory,
    PluginInfo, Serve, Signals,
};

use crate::message_ref;

pub mod store;

pub const IMPORT_NAME: &str = "XEP-0490";
const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// Before the pubsub plugin (50), which takes every notification.
const PRIORITY: i32 = 60;

pub struct ReadState {
    host: Arc<dyn Host>,
}

pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Read state",
    description: "Marks conversations read: chat markers to contacts (XEP-0333), the read \
                  position shared with our other devices (XEP-0490), unread counts",
    dependencies: &[],
    recommendations: &["XEP-0115"],
    tables: &["read_state"],
    signals_as: None,
};

pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let me = Arc::new(ReadState { host: host.clone() });
    host.declare(ReadChanged);
    host.add_feature(xep_0333::NS);
    host.add_feature(&format!("{}+notify", xep_0490::NS));
    host.serve(MessageRead, me.clone(), |me, profile, args| async move {
        me.read(&profile, args).await
    });
    host.serve(MessageUnread, me.clone(), |me, profile, args| async move {
        me.unread(&profile, args).await
    });
    let t = host.triggers();
    t.add_with::<MessageReceived, _>(PRIORITY, me.clone(), |me, args| {
        me.on_message(args);
        async { Flow::Continue }.boxed()
    })?;
    t.add_with::<MessageSend, _>(-20, me.clone(), |_, args| {
        mark_markable(args);
        async { Flow::Continue }.boxed()
    })?;
    Ok(me)
}

/// `message.send`: our chat messages with a text ask for a marker.
pub fn mark_markable(args: &mut OutgoingMessage) {
    let m = &mut args.message;
    if m.type_ == MessageType::Chat && !m.bodies.is_empty() && !xep_0333::is_markable(&m.payloads) {
        m.payloads.push(xep_0333::markable());
    }
}

/// The message that tells a contact we were shown message `id`.
pub fn displayed_message(to: Jid, id: &str) -> perch_plugin_api::parsers::message::Message {
    let mut m = message_ref::new(to, false);
    m.payloads.push(xep_0333::displayed(id));
    m.payloads.push(perch_codec::xep_0444::store_hint());
    m
}

/// The MDS publish of our read position in conversation `with`.
pub fn mds_publish(with: &str, position: &xep_0490::Displayed) -> Element {
    pubsub::publish(
        xep_0490::NODE,
        Some(with),
        position.to_element(),
        Some(&xep_0490::publish_options()),
    )
}

/// The read positions an MDS notification or items answer carries: (conversation,
/// position) per item, items that are not positions skipped.
pub fn mds_items(items: &Element) -> Vec<(String, xep_0490::Displayed)> {
    items
        .children()
        .filter(|i| i.name() == "item")
        .filter_map(|i| {
            let with = i.attr("id").filter(|w| !w.is_empty())?;
            let d = i.children().find_map(xep_0490::Displayed::parse)?;
            Some((with.to_owned(), d))
        })
        .collect()
}

impl ReadState {
    /// `message_read`: store, mark, publish; answers the conversation's state.
    async fn read(&self, profile: &str, args: MessageReadArgs) -> Result<Unread, HostError> {
        let with = jid_arg("with", &args.with)?;
        let peer = with.to_bare().to_string();
        let target = match args.id.as_deref() {
            Some(id) => message_ref::require(&*self.host, profile, &with, id).await?,
            None => self.newest(profile, &peer).await?,
        };
        let profile_id = self.host.profile_id(profile).await?;
        store::set(self.host.store(), profile_id, &peer, &target.id, true).await?;
        self.send_marker(profile, &with, &target).await;
        if self.publish(profile, &peer, &target).await {
            store::published(self.host.store(), profile_id, &peer, &target.id).await?;
        }
        let state = self.state(profile, &peer, Some(target.id)).await?;
        self.host.signal(ReadChanged, profile, &state);
        Ok(state)
    }

    async fn newest(&self, profile: &str, peer: &str) -> Result<HistoryMessage, HostError> {
        let counts = self
            .host
            .unread(profile, Some(peer), BTreeMap::new())
            .await?;
        counts
            .into_iter()
            .find_map(|c| c.newest)
            .ok_or_else(|| HostError::BadArgument(format!("with: no messages with {peer}")))
    }

    /// A displayed marker, for a contact's markable chat message.
    async fn send_marker(&self, profile: &str, with: &Jid, target: &HistoryMessage) {
        let markable = target.extra.get("markable").and_then(|v| v.as_bool()) == Some(true);
        if target.direction != Direction::In || target.kind != "chat" || !markable {
            return;
        }
        let id = message_ref::wire_id(target, false);
        let to = with.to_bare().into();
        if let Err(e) = self
            .host
            .send_message(profile, displayed_message(to, &id))
            .await
        {
            tracing::info!(%profile, %id, error = %e, "no displayed marker sent");
        }
    }

    /// Tells our other devices (XEP-0490). False when it must be done later (offline,
    /// or the server refused): the position stays pending, published at the next
    /// session start. A message without an archive id cannot be named to them:
    /// nothing to do.
    async fn publish(&self, profile: &str, peer: &str, target: &HistoryMessage) -> bool {
        let Some(id) = target.stanza_id.clone() else {
            tracing::debug!(%profile, %peer, "no stanza-id: read position not published");
            return true;
        };
        let Some(me) = self.host.bound_jid(profile).await else {
            return false;
        };
        let by = if target.kind == "groupchat" {
            peer.to_owned()
        } else {
            me.to_bare().to_string()
        };
        let position = xep_0490::Displayed { id, by };
        let publish = mds_publish(peer, &position);
        match self.host.iq(profile, None, true, publish).await {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(%profile, %peer, error = %e, "read position not published yet");
                false
            }
        }
    }

    /// The read state of `peer`, its position `read` (resolved to a history id
    /// when the message is there).
    async fn state(
        &self,
        profile: &str,
        peer: &str,
        read: Option<String>,
    ) -> Result<Unread, HostError> {
        let reads: BTreeMap<_, _> = read.iter().map(|r| (peer.to_owned(), r.clone())).collect();
        let count = self.host.unread(profile, Some(peer), reads).await?;
        let unread = count.first().map_or(0, |c| c.unread);
        Ok(Unread {
            with: peer.to_owned(),
            unread,
            last_read_id: self.resolve(profile, peer, read).await,
        })
    }

    async fn resolve(&self, profile: &str, peer: &str, read: Option<String>) -> Option<String> {
        let id = read?;
        match self.host.message(profile, peer, &id).await {
            Ok(Some(m)) => Some(m.id),
            _ => Some(id),
        }
    }

    /// `message_unread`: every conversation's (or one's) state.
    async fn unread(
        &self,
        profile: &str,
        args: MessageUnreadArgs,
    ) -> Result<Vec<Unread>, HostError> {
        let with = match args.with.as_deref() {
            Some(w) => Some(jid_arg("with", w)?.to_bare().to_string()),
            None => None,
        };
        let profile_id = self.host.profile_id(profile).await?;
        let reads = store::all(self.host.store(), profile_id).await?;
        let counts = self
            .host
            .unread(profile, with.as_deref(), reads.clone())
            .await?;
        let mut out = Vec::with_capacity(counts.len());
        for c in counts {
            let read = reads.get(&c.with).cloned();
            out.push(Unread {
                last_read_id: self.resolve(profile, &c.with, read).await,
                with: c.with,
                unread: c.unread,
            });
        }
        Ok(out)
    }

    /// `message.received`: an MDS notification from our own account.
    fn on_message(self: &Arc<Self>, args: &IncomingMessage) {
        let items = args
            .message
            .payloads
            .iter()
            .filter(|p| p.is("event", NS_EVENT))
            .flat_map(Element::children)
            .find(|i| i.is("items", NS_EVENT) && i.attr("node") == Some(xep_0490::NODE));
        let Some(items) = items else {
            return;
        };
        let positions = mds_items(items);
        let (me, profile) = (self.clone(), args.profile.clone());
        let from = args.message.from.clone();
        tokio::spawn(async move {
            let own = me.host.bound_jid(&profile).await.map(|j| j.to_bare());
            let from_us = match &from {
                None => true,
                Some(f) => Some(f.to_bare()) == own,
            };
            if !from_us {
                tracing::info!(%profile, ?from, "an MDS notification not from our account was ignored");
                return;
            }
            me.apply(&profile, positions).await;
        });
    }

    /// Stores read positions learnt from our other devices.
    async fn apply(&self, profile: &str, positions: Vec<(String, xep_0490::Displayed)>) {
        let Ok(profile_id) = self.host.profile_id(profile).await else {
            return;
        };
        for (with, d) in positions {
            let Ok(jid) = with.parse::<Jid>() else {
                tracing::info!(%profile, %with, "an MDS item for no JID was ignored");
                continue;
            };
            let peer = jid.to_bare().to_string();
            // Kept by the id we know it by, else by the archive's id.
            let id = match self.host.message(profile, &peer, &d.id).await {
                Ok(Some(m)) => m.id,
                _ => d.id,
            };
            match store::set(self.host.store(), profile_id, &peer, &id, false).await {
                Ok(()) => {
                    tracing::debug!(%profile, %peer, %id, "read position from another device");
                    if let Ok(state) = self.state(profile, &peer, Some(id)).await {
                        self.host.signal(ReadChanged, profile, &state);
                    }
                }
                Err(e) => {
                    tracing::warn!(%profile, %peer, error = %e, "storing a read position failed")
                }
            }
        }
    }

    /// At session start: the positions our other devices published meanwhile.
    async fn fetch(&self, profile: &str) -> Result<usize, HostError> {
        let request = pubsub::items(xep_0490::NODE, None, &[], None);
        let reply = self.host.iq(profile, None, false, request).await?;
        let positions = reply
            .as_ref()
            .and_then(|p| p.get_child("items", pubsub::NS))
            .map(mds_items)
            .unwrap_or_default();
        let n = positions.len();
        let positions = self.publish_pending(profile, positions).await?;
        self.apply(profile, positions).await;
        Ok(n)
    }

    /// Publishes the positions set while offline, unless the server's (another
    /// device's, meanwhile) is on a newer message; answers the server's positions
    /// still to apply.
    async fn publish_pending(
        &self,
        profile: &str,
        mut server: Vec<(String, xep_0490::Displayed)>,
    ) -> Result<Vec<(String, xep_0490::Displayed)>, HostError> {
        let profile_id = self.host.profile_id(profile).await?;
        for (peer, id) in store::pending(self.host.store(), profile_id).await? {
            let Ok(Some(ours)) = self.host.message(profile, &peer, &id).await else {
                continue;
            };
            let theirs = server.iter().position(|(with, _)| bare_of(with) == peer);
            if let Some(i) = theirs {
                let newer = match self.host.message(profile, &peer, &server[i].1.id).await {
                    Ok(Some(m)) => m.timestamp > ours.timestamp,
                    _ => false,
                };
                if newer {
                    continue;
                }
                server.remove(i);
            }
            if self.publish(profile, &peer, &ours).await {
                store::published(self.host.store(), profile_id, &peer, &id).await?;
                tracing::debug!(%profile, %peer, "a read position set offline was published");
            }
        }
        Ok(server)
    }
}

/// The bare form of a JID as MDS items name it (`with` unparsable: as given).
fn bare_of(with: &str) -> String {
    with.parse::<Jid>()
        .map_or_else(|_| with.to_owned(), |j| j.to_bare().to_string())
}

impl Plugin for ReadState {
    fn session_started(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            // Off the inbox: the answer comes through this very session.
            tokio::spawn(async move {
                match self.fetch(&profile).await {
                    Ok(n) => tracing::debug!(%profile, positions = n, "MDS read positions fetched"),
                    Err(e) => tracing::info!(%profile, error = %e, "no MDS read positions"),
                }
            });
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests;
