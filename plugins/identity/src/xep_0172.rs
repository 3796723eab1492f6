//! XEP-0172: User Nickname — the name a contact chose for itself, as opposed to the
//! roster name we gave it.
//!
//! Why it is shaped this way:
//! - **Over PEP, with `+notify`.** Ours is published on the `http://jabber.org/protocol/nick`
//!   node (open to anyone, as other clients publish it); contacts' come as PEP
//!   notifications because our caps carry `…/nick+notify`. An empty `<nick/>` is
//!   "no nickname" (how we clear ours).
//! - **In subscription requests.** XEP-0172 §4.2: a request carries the requester's
//!   nickname, so the one asked knows who asks before any PEP is shared; ours is
//!   added through `presence.send`, theirs is kept from `presence.received`.
//! - **Kept.** The `nickname` table keeps each JID's last nickname per profile, so it
//!   answers offline and after a restart; a change is signalled (`nick_changed`).
//! - **Checked.** A nickname is text of at most [`MAX_CHARS`] characters, without
//!   control characters; a notification counts only from the PEP service of the
//!   account itself (a bare JID with a local part).

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::identity::{NickChanged, NickGet, NickGetArgs, NickSet, NickSetArgs, Nickname};
use perch_codec::xep_0060::xml as pubsub;
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::BareJid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::presence::Type as PresenceType;
use perch_plugin_api::points::{
    IncomingMessage, IncomingPresence, MessageReceived, OutgoingPresence, PresenceReceived,
    PresenceSend,
};
use perch_plugin_api::{
    BuildResult, Flow, Host, HostError, Plugin, PluginFactory, PluginInfo, Serve, Signals,
};
use serde_json::{Map, Value, json};

use crate::store;

pub const IMPORT_NAME: &str = "XEP-0172";
pub const NS_NICK: &str = "http://jabber.org/protocol/nick";
const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
/// The longest nickname kept or published, in characters.
pub const MAX_CHARS: usize = 256;

/// Before the pubsub plugin (50), which takes every notification.
const PRIORITY: i32 = 60;

pub struct Nicknames {
    host: Arc<dyn Host>,
}

impl Plugin for Nicknames {}

pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "User Nickname",
    description: "Nicknames: ours published over PEP and sent with our subscription requests, \
                  contacts' received and kept (XEP-0172)",
    dependencies: &[],
    recommendations: &["XEP-0115"],
    tables: &["nickname"],
    signals_as: None,
};

pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let me = Arc::new(Nicknames { host: host.clone() });
    host.add_feature(NS_NICK);
    host.add_feature(&format!("{NS_NICK}+notify"));
    host.declare(NickChanged);
    host.serve(NickSet, me.clone(), nick_set);
    host.serve(NickGet, me.clone(), nick_get);
    let t = host.triggers();
    t.add_with::<MessageReceived, _>(PRIORITY, me.clone(), |me, args| {
        let news = notified(args);
        let profile = args.profile.clone();
        async move {
            if let Some((jid, nick)) = news {
                me.keep_logged(&profile, &jid, nick.as_deref()).await;
            }
            Flow::Continue
        }
        .boxed()
    })?;
    t.add_with::<PresenceReceived, _>(PRIORITY, me.clone(), |me, args| {
        let news = requested(args);
        let profile = args.profile.clone();
        async move {
            if let Some((jid, nick)) = news {
                me.keep_logged(&profile, &jid, Some(&nick)).await;
            }
            Flow::Continue
        }
        .boxed()
    })?;
    t.add_with::<PresenceSend, _>(0, me.clone(), on_send)?;
    Ok(me)
}

/// A nickname as received: trimmed, `None` when empty, refused when too long or
/// carrying control characters.
pub fn clean(text: &str) -> Result<Option<String>, String> {
    let t = text.trim();
    if t.chars().count() > MAX_CHARS {
        return Err(format!("longer than {MAX_CHARS} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err("it holds control characters".into());
    }
    Ok((!t.is_empty()).then(|| t.to_owned()))
}

/// The `<nick/>` element of a nickname (empty: none).
pub fn element(nick: Option<&str>) -> Element {
    let mut e = Element::builder("nick", NS_NICK);
    if let Some(n) = nick {
        e = e.append(n);
    }
    e.build()
}

/// What a PEP notification says of its sender's nickname: `Some((jid, nick))` (nick
/// `None`: cleared or retracted), or `None` when it is not a nickname notification.
pub fn notified(args: &IncomingMessage) -> Option<(BareJid, Option<String>)> {
    let from = args.message.from.as_ref()?;
    // Only the account's own PEP service speaks for its nickname.
    if from.node().is_none() || from.resource().is_some() {
        return None;
    }
    let items = args
        .message
        .payloads
        .iter()
        .filter(|p| p.is("event", NS_EVENT))
        .flat_map(Element::children)
        .find(|i| i.is("items", NS_EVENT) && i.attr("node") == Some(NS_NICK))?;
    let last = items.children().last()?;
    let nick = if last.is("retract", NS_EVENT) {
        None
    } else {
        let text = last.get_child("nick", NS_NICK).map(Element::text)?;
        clean(&text).ok()?
    };
    Some((from.to_bare(), nick))
}

/// The nickname a subscription request carries (XEP-0172 §4.2).
pub fn requested(args: &IncomingPresence) -> Option<(BareJid, String)> {
    let p = &args.presence;
    if p.type_ != PresenceType::Subscribe {
        return None;
    }
    let from = p.from.as_ref()?.to_bare();
    let text = p
        .payloads
        .iter()
        .find(|e| e.is("nick", NS_NICK))
        .map(Element::text)?;
    Some((from, clean(&text).ok()??))
}

impl Nicknames {
    /// Keeps `jid`'s nickname and signals it when it changed.
    async fn keep(
        &self,
        profile: &str,
        jid: &BareJid,
        nick: Option<&str>,
    ) -> Result<(), HostError> {
        let pid = self.host.profile_id(profile).await?;
        let db = self.host.store();
        let row = store::nick(db, pid, jid.as_str()).await?;
        if row.as_ref().map(Option::as_deref) == Some(nick) {
            return Ok(());
        }
        store::set_nick(db, pid, jid.as_str(), nick).await?;
        tracing::debug!(%profile, %jid, ?nick, "nickname kept");
        if row.flatten().as_deref() != nick {
            self.host.signal(NickChanged, profile, &shown(jid, nick));
        }
        Ok(())
    }

    async fn keep_logged(&self, profile: &str, jid: &BareJid, nick: Option<&str>) {
        if let Err(e) = self.keep(profile, jid, nick).await {
            tracing::info!(%profile, %jid, error = %e, "a nickname was not kept");
        }
    }

    /// Our own bare JID, for a session that is up.
    async fn own(&self, profile: &str) -> Result<BareJid, HostError> {
        Ok(self
            .host
            .bound_jid(profile)
            .await
            .ok_or_else(|| HostError::NotConnected(profile.to_owned()))?
            .to_bare())
    }

    /// `jid`'s nickname from its PEP node; `None` when it has none (or no node).
    async fn fetch(&self, profile: &str, jid: &BareJid) -> Result<Option<String>, HostError> {
        let request = pubsub::items(NS_NICK, Some(1), &[], None);
        match self
            .host
            .iq(profile, Some(jid.clone().into()), false, request)
            .await
        {
            Ok(reply) => Ok(reply
                .as_ref()
                .and_then(|p| p.get_child("items", pubsub::NS))
                .and_then(|i| i.children().last())
                .and_then(|i| i.get_child("nick", NS_NICK))
                .and_then(|n| clean(&n.text()).ok().flatten())),
            Err(HostError::Stanza(e)) => {
                tracing::debug!(%profile, %jid, error = %e, "no PEP nickname");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }
}

fn shown(jid: &BareJid, nick: Option<&str>) -> Nickname {
    Nickname {
        jid: jid.to_string(),
        nick: nick.map(str::to_owned),
    }
}

/// `presence.send`: our subscription requests carry our nickname (XEP-0172 §4.2).
fn on_send(me: Arc<Nicknames>, args: &mut OutgoingPresence) -> BoxFuture<'_, Flow<()>> {
    async move {
        if args.presence.type_ != PresenceType::Subscribe {
            return Flow::Continue;
        }
        let own = me.own(&args.profile).await.ok();
        let pid = me.host.profile_id(&args.profile).await.ok();
        if let (Some(own), Some(pid)) = (own, pid)
            && let Ok(Some(Some(nick))) = store::nick(me.host.store(), pid, own.as_str()).await
        {
            args.presence.payloads.push(element(Some(&nick)));
        }
        Flow::Continue
    }
    .boxed()
}

fn open_access() -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("pubsub#access_model".into(), json!("open"));
    o
}

/// `nick_set`.
async fn nick_set(
    me: Arc<Nicknames>,
    profile: String,
    a: NickSetArgs,
) -> Result<Nickname, HostError> {
    let nick = clean(&a.nick).map_err(|why| HostError::BadArgument(format!("nick: {why}")))?;
    let own = me.own(&profile).await?;
    let options = open_access();
    let publish = pubsub::publish(
        NS_NICK,
        Some("current"),
        element(nick.as_deref()),
        Some(&options),
    );
    me.host.iq(&profile, None, true, publish).await?;
    tracing::info!(%profile, ?nick, "nickname published");
    me.keep(&profile, &own, nick.as_deref()).await?;
    Ok(shown(&own, nick.as_deref()))
}

/// `nick_get`: the kept nickname, else (or with `refresh`) the one published.
async fn nick_get(
    me: Arc<Nicknames>,
    profile: String,
    a: NickGetArgs,
) -> Result<Nickname, HostError> {
    let jid = match &a.jid {
        Some(j) => jid_arg("jid", j)?.to_bare(),
        None => me.own(&profile).await?,
    };
    let pid = me.host.profile_id(&profile).await?;
    if !a.refresh
        && let Some(kept) = store::nick(me.host.store(), pid, jid.as_str()).await?
    {
        return Ok(shown(&jid, kept.as_deref()));
    }
    let nick = me.fetch(&profile, &jid).await?;
    me.keep(&profile, &jid, nick.as_deref()).await?;
    Ok(shown(&jid, nick.as_deref()))
}

#[cfg(test)]
mod tests;
