//! XEP-0060: Publish-Subscribe — the client side, for PEP and pubsub services.
//!
//! Why it is shaped this way: the pubsub cache (issue 6) sits on top of this plugin
//! without this plugin knowing it. Every items request goes through the
//! `pubsub.items.request` trigger point, where a handler may answer in the service's
//! place (`StopWith(page)`); every notification goes through one point per kind
//! (`pubsub.event.items`, `…retract`, `…purge`, `…delete`, `…configuration`,
//! `…subscription`) before it becomes a `ps_event` signal. Frontends reach every
//! operation as an action (`pubsub_*`, see `doc/pubsub.rst`); other plugins call the
//! public functions here ([`get_items`], [`NodeWalk`]).
//!
//! The service defaults to the profile's own account (PEP). Stanza errors reach
//! frontends typed by their condition (`ItemNotFound`, `Conflict`, …) with the
//! pubsub-specific condition and the service's text.

use std::collections::HashSet;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::points::{IncomingMessage, MessageReceived};
use perch_plugin_api::{
    BuildResult, Flow, Host, HostError, Plugin, PluginFactory, PluginInfo, PluginPoint,
    TriggerPoint,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::xep_0059::{self, Next, Pager, RsmRequest, RsmResponse};

pub use perch_codec::xep_0060::xml;

pub use xml::{EventKind, Item, PsEvent};

pub const IMPORT_NAME: &str = "XEP-0060";
/// The signal carrying every notification (`PluginSignal(XEP-0060, ps_event, …)`).
pub const PS_EVENT: &str = "ps_event";
/// Page size when walking a whole node with RSM.
pub const PAGE_SIZE: usize = 250;
/// Upper bound of items fetched by one whole-node request unless told otherwise.
pub const DEFAULT_BOUND: usize = 50_000;

/// An items request, as the `pubsub.items.request` handlers see it.
#[derive(Debug, Clone)]
pub struct ItemsRequest {
    pub profile: String,
    /// None: the profile's own PEP service.
    pub service: Option<Jid>,
    pub node: String,
    /// The newest N items.
    pub max_items: Option<usize>,
    /// These items only.
    pub item_ids: Vec<String>,
    /// One page by RSM (`max` is then the page size).
    pub rsm: Option<RsmRequest>,
    /// Every item of the node (paged with RSM where the service supports it).
    pub all: bool,
    /// False: a cache must not answer.
    pub use_cache: bool,
}

/// The answer to an items request: the same shape from the service or from a cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemsPage {
    pub service: String,
    pub node: String,
    /// In the service's order (chronological, oldest first, on Prosody and ejabberd).
    pub items: Vec<Item>,
    /// The page's RSM data (from the service, or computed when we paged ourselves).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsm: Option<RsmResponse>,
    /// Whether `items` is every item of the node (whole-node requests).
    pub complete: bool,
    /// "service" or "cache".
    pub source: String,
    /// How the result was obtained when it matters (RSM ignored, paging stopped, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `pubsub.items.request`: items are about to be asked of a service.
#[derive(Debug)]
pub struct ItemsRequested;
impl TriggerPoint for ItemsRequested {
    const NAME: &'static str = "pubsub.items.request";
    const DOC: &'static str = "items are about to be requested from a pubsub service; handlers may \
                               edit the request. StopWith(page): answered with that page, the service \
                               is not asked; Stop: the request fails (BadArgument naming the plugin)";
    type Args = ItemsRequest;
    type Value = ItemsPage;
}
/// Shared: whoever wants items (this plugin's actions, the microblog plugin) asks
/// through it, so a cache answers them all.
impl PluginPoint for ItemsRequested {}

macro_rules! event_point {
    ($ty:ident, $name:literal, $what:literal) => {
        #[doc = concat!("`", $name, "`: ", $what)]
        #[derive(Debug)]
        pub struct $ty;
        impl TriggerPoint for $ty {
            const NAME: &'static str = $name;
            const DOC: &'static str = concat!(
                $what,
                "; handlers see the parsed event. Stop/StopWith: no ps_event signal"
            );
            type Args = PsEvent;
            type Value = ();
        }
        /// Fired by this plugin alone, from a notification it read.
        impl PluginPoint for $ty {}
    };
}

event_point!(
    EventItems,
    "pubsub.event.items",
    "a notification of published (new or edited) items"
);
event_point!(
    EventRetract,
    "pubsub.event.retract",
    "a notification of retracted items"
);
event_point!(EventPurge, "pubsub.event.purge", "a node was purged");
event_point!(EventDelete, "pubsub.event.delete", "a node was deleted");
event_point!(
    EventConfiguration,
    "pubsub.event.configuration",
    "a node's configuration changed"
);
event_point!(
    EventSubscription,
    "pubsub.event.subscription",
    "a subscription changed (approved, refused, removed)"
);

/// The service as frontends name it: the given JID, or the profile's own bare JID.
pub async fn service_name(host: &dyn Host, profile: &str, service: Option<&Jid>) -> String {
    match service {
        Some(s) => s.to_string(),
        None => host
            .bound_jid(profile)
            .await
            .map(|j| j.to_bare().to_string())
            .unwrap_or_default(),
    }
}

/// Gets items: through the `pubsub.items.request` point (a cache may answer), else
/// from the service.
pub async fn get_items(host: &dyn Host, mut req: ItemsRequest) -> Result<ItemsPage, HostError> {
    use perch_plugin_api::Outcome;
    let outcome = host
        .triggers()
        .fire::<ItemsRequested>(&mut req)
        .await
        .map_err(|e| HostError::Internal(e.to_string()))?;
    match outcome {
        Outcome::Proceed => fetch_items(host, &req).await,
        Outcome::Replaced { value, .. } => Ok(value),
        Outcome::Stopped { by } => Err(HostError::BadArgument(format!(
            "items request for node {:?} stopped by {by}",
            req.node
        ))),
    }
}

/// Gets items from the service itself (no trigger).
pub async fn fetch_items(host: &dyn Host, req: &ItemsRequest) -> Result<ItemsPage, HostError> {
    let service = service_name(host, &req.profile, req.service.as_ref()).await;
    if req.all {
        let mut walk = NodeWalk::new(
            req.profile.clone(),
            req.service.clone(),
            req.node.clone(),
            PAGE_SIZE,
            req.max_items.unwrap_or(DEFAULT_BOUND),
        );
        let mut items = Vec::new();
        while let Some(page) = walk.next_page(host).await? {
            items.extend(page);
        }
        let (complete, reason) = walk.outcome().unwrap_or((false, "never ended"));
        return Ok(ItemsPage {
            service,
            node: req.node.clone(),
            rsm: Some(RsmResponse {
                first: items.first().map(|i| i.id.clone()),
                first_index: items.first().map(|_| 0),
                last: items.last().map(|i| i.id.clone()),
                count: complete.then_some(items.len()),
            }),
            items,
            complete,
            source: "service".into(),
            note: Some(reason.to_owned()),
        });
    }
    let payload = xml::items(&req.node, req.max_items, &req.item_ids, req.rsm.as_ref());
    let reply = host
        .iq(&req.profile, req.service.clone(), false, payload)
        .await?;
    let (items, set) = xml::parse_items(reply).map_err(|e| xml::malformed("items reply", e))?;
    let whole = req.item_ids.is_empty() && req.max_items.is_none();
    match (&req.rsm, set) {
        // The service ignored RSM and sent the whole node: page it ourselves.
        (Some(rsm), None) if req.item_ids.is_empty() => {
            let (page, resp) =
                xep_0059::emulate(items, |i| i.id.as_str(), rsm).map_err(xml::into_host)?;
            Ok(ItemsPage {
                service,
                node: req.node.clone(),
                items: page,
                rsm: Some(resp),
                complete: false,
                source: "service".into(),
                note: Some("the service ignores RSM: paged from its whole-node answer".into()),
            })
        }
        (rsm, set) => Ok(ItemsPage {
            service,
            node: req.node.clone(),
            complete: whole && rsm.is_none() && set.is_none(),
            items,
            rsm: set,
            source: "service".into(),
            note: None,
        }),
    }
}

/// Walks every item of a node, page by page: RSM where the service honours it, its
/// whole-node answer where it does not, never looping on a broken service.
pub struct NodeWalk {
    profile: String,
    service: Option<Jid>,
    node: String,
    pager: Pager,
    next: Option<RsmRequest>,
    seen: HashSet<String>,
    done: Option<(bool, String)>,
}

impl NodeWalk {
    pub fn new(
        profile: String,
        service: Option<Jid>,
        node: String,
        page_size: usize,
        bound: usize,
    ) -> Self {
        let pager = Pager::new(page_size, bound);
        Self {
            next: Some(pager.first()),
            profile,
            service,
            node,
            pager,
            seen: HashSet::new(),
            done: None,
        }
    }

    /// The next page of new items; None when the walk is over (see [`Self::outcome`]).
    pub async fn next_page(&mut self, host: &dyn Host) -> Result<Option<Vec<Item>>, HostError> {
        let Some(req) = self.next.take() else {
            return Ok(None);
        };
        let payload = xml::items(&self.node, None, &[], Some(&req));
        let reply = host
            .iq(&self.profile, self.service.clone(), false, payload)
            .await?;
        let (items, set) = xml::parse_items(reply).map_err(|e| xml::malformed("items reply", e))?;
        let got = items.len();
        let fresh: Vec<Item> = items
            .into_iter()
            .filter(|i| i.id.is_empty() || self.seen.insert(i.id.clone()))
            .collect();
        match self.pager.next(set.as_ref(), got, fresh.len()) {
            Next::Fetch(r) => self.next = Some(r),
            Next::Done { complete, reason } => {
                if complete {
                    tracing::debug!(profile = %self.profile, node = %self.node, items = self.pager.fetched(), %reason, "node walked");
                } else {
                    tracing::warn!(profile = %self.profile, node = %self.node, items = self.pager.fetched(), %reason, "node walk stopped early");
                }
                self.done = Some((complete, reason));
            }
        }
        Ok(Some(fresh))
    }

    /// After the walk: whether it got every item, and why it stopped.
    pub fn outcome(&self) -> Option<(bool, &str)> {
        self.done.as_ref().map(|(c, r)| (*c, r.as_str()))
    }

    pub fn fetched(&self) -> usize {
        self.pager.fetched()
    }
}

#[derive(Debug)]
pub struct PubSub;

impl Plugin for PubSub {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Publish-Subscribe",
    description: "Pubsub and PEP: nodes, items, subscriptions, affiliations, notifications",
    dependencies: &[xep_0059::IMPORT_NAME],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    // `[plugins.options."XEP-0060"] notify = ["urn:xmpp:microblog:0", …]`: PEP nodes
    // we want notifications of without subscribing (XEP-0163 +notify).
    for ns in host.options()["notify"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        host.add_feature(&format!("{ns}+notify"));
    }
    let t = host.triggers();
    t.declare_shared::<ItemsRequested>()?;
    t.declare::<EventItems>()?;
    t.declare::<EventRetract>()?;
    t.declare::<EventPurge>()?;
    t.declare::<EventDelete>()?;
    t.declare::<EventConfiguration>()?;
    t.declare::<EventSubscription>()?;
    host.declare_signal(
        PS_EVENT,
        "a pubsub notification: {profile, service, node, kind (items|retract|purge|delete|\
         configuration|subscription), items?, retracted?, redirect?, config?, subscription?}",
    );
    t.add_with::<MessageReceived, _>(50, host.clone(), on_message)?;
    actions::register(&host);
    Ok(Arc::new(PubSub))
}

/// `message.received`: a pubsub notification goes through the event points, never
/// to the history.
fn on_message(host: Arc<dyn Host>, args: &mut IncomingMessage) -> BoxFuture<'_, Flow<()>> {
    let event = args
        .message
        .payloads
        .iter()
        .find(|p| p.is("event", xml::NS_EVENT))
        .cloned();
    let from = args.message.from.clone();
    let profile = args.profile.clone();
    async move {
        let Some(event) = event else {
            return Flow::Continue;
        };
        on_event(&*host, &profile, from, &event).await;
        // A notification is not a chat message for the history.
        Flow::Stop
    }
    .boxed()
}

/// Fires the event point `P`: whether the `ps_event` signal goes out.
async fn fire_event<P>(host: &dyn Host, ev: &mut PsEvent) -> bool
where
    P: PluginPoint<Args = PsEvent>,
{
    match host.triggers().fire::<P>(ev).await {
        Ok(outcome) => outcome.proceeds(),
        Err(e) => {
            tracing::error!(error = %e, "pubsub event point");
            true
        }
    }
}

async fn on_event(
    host: &dyn Host,
    profile: &str,
    from: Option<Jid>,
    event: &perch_plugin_api::minidom::Element,
) {
    let service = match from {
        Some(f) => f.to_string(),
        None => service_name(host, profile, None).await,
    };
    let events = match xml::parse_event(profile, &service, event) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(%profile, %service, error = %e, "unreadable pubsub event ignored");
            return;
        }
    };
    for mut ev in events {
        let outcome = match ev.kind {
            EventKind::Items => fire_event::<EventItems>(host, &mut ev).await,
            EventKind::Retract => fire_event::<EventRetract>(host, &mut ev).await,
            EventKind::Purge => fire_event::<EventPurge>(host, &mut ev).await,
            EventKind::Delete => fire_event::<EventDelete>(host, &mut ev).await,
            EventKind::Configuration => fire_event::<EventConfiguration>(host, &mut ev).await,
            EventKind::Subscription => fire_event::<EventSubscription>(host, &mut ev).await,
        };
        tracing::debug!(%profile, %service, node = %ev.node, kind = ?ev.kind, "pubsub event");
        if outcome {
            host.emit(
                PS_EVENT,
                profile,
                serde_json::to_value(&ev).unwrap_or(Value::Null),
            );
        }
    }
}

mod actions;
