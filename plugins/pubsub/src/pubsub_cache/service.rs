//! The cache's rules: analysing a node, synchronising it, answering from it, and
//! keeping it coherent with the notifications. Every rule lives here once; the
//! trigger handlers and actions in `mod.rs` only call in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::{Host, HostError, JobHandle};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::dao::{self, NewItem, Node};
use super::model::Settings;
use super::model::{Analysers, SyncState, text_of, values_of};
use super::served::{Key, Served};
use crate::xep_0059::{RsmRequest, RsmResponse};
use crate::xep_0060::{self, Item, ItemsPage, ItemsRequest, NodeWalk, xml};

/// Where a node lives: a profile, a service (None: the profile's PEP), a node name.
#[derive(Debug, Clone)]
pub struct Target {
    pub profile: String,
    pub profile_id: i32,
    pub to: Option<Jid>,
    /// The service as stored (the bare JID for PEP).
    pub service: String,
    pub node: String,
}

pub struct Cache {
    pub host: Arc<dyn Host>,
    pub analysers: Arc<Analysers>,
    pub settings: Settings,
    /// Syncs running, by node id: their end is signalled (true) to waiting readers.
    running: Mutex<HashMap<i64, watch::Receiver<bool>>>,
    /// Rows of nodes being served, so a read costs one statement, and the last
    /// answers to plain newest-N reads, so a repeated one costs none; within
    /// `settings.memory_budget` bytes, and forgotten (all of them, with a new epoch)
    /// after any change of any node's state or items.
    served: Mutex<Served>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

/// Why the cache did not answer (the service is asked instead).
type Skip = String;

impl Cache {
    pub fn new(host: Arc<dyn Host>, analysers: Arc<Analysers>, settings: Settings) -> Self {
        let served = Mutex::new(Served::new(settings.memory_budget));
        Self {
            host,
            analysers,
            settings,
            running: Mutex::new(HashMap::new()),
            served,
        }
    }

    fn served(&self) -> std::sync::MutexGuard<'_, Served> {
        self.served.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After any write to a node's row or its items: reads go to the database again.
    pub fn forget_nodes(&self) {
        self.served().forget();
    }

    /// The bytes of node rows and answers remembered now (never above
    /// `memory_budget`), and how many there are.
    pub fn remembered(&self) -> (usize, usize) {
        let s = self.served();
        (s.bytes(), s.len())
    }

    fn db(&self) -> &perch_plugin_api::PluginStore {
        self.host.store()
    }

    pub async fn target(
        &self,
        profile: &str,
        to: Option<Jid>,
        node: &str,
    ) -> Result<Target, HostError> {
        let profile_id = self.host.profile_id(profile).await?;
        let service = xep_0060::service_name(&*self.host, profile, to.as_ref()).await;
        if service.is_empty() {
            return Err(HostError::NotConnected(profile.to_owned()));
        }
        Ok(Target {
            profile: profile.to_owned(),
            profile_id,
            to,
            service,
            node: node.to_owned(),
        })
    }

    /// The node's row with its analysis (at most one request: the newest item, when
    /// only the items' namespace can decide).
    pub async fn analysed(&self, t: &Target) -> Result<Node, HostError> {
        // The hot path (a read of a known node) is one SELECT, no write.
        if let Some(node) = dao::node(self.db(), t.profile_id, &t.service, &t.node).await?
            && node.analysed
        {
            return Ok(node);
        }
        let node = dao::node_ensure(self.db(), t.profile_id, &t.service, &t.node).await?;
        let ns = if self.analysers.needs_namespace(&t.node) {
            let req = ItemsRequest {
                profile: t.profile.clone(),
                service: t.to.clone(),
                node: t.node.clone(),
                max_items: Some(1),
                item_ids: Vec::new(),
                rsm: None,
                all: false,
                use_cache: false,
            };
            let page = xep_0060::fetch_items(&*self.host, &req).await?;
            page.items
                .first()
                .and_then(|i| i.payload.as_deref())
                .and_then(|p| p.parse::<Element>().ok())
                .map(|e| e.ns())
        } else {
            None
        };
        let analysis = self.analysers.analyse(&t.node, ns.as_deref());
        dao::set_analysis(self.db(), node.id, &analysis).await?;
        self.forget_nodes();
        tracing::debug!(profile = %t.profile, service = %t.service, node = %t.node, ?analysis, "node analysed");
        dao::node_by_id(self.db(), node.id)
            .await?
            .ok_or_else(|| HostError::Storage("node vanished".into()))
    }

    /// The items request trigger: an answer from the cache, or why not.
    pub async fn serve(self: &Arc<Self>, req: &ItemsRequest) -> Result<ItemsPage, Skip> {
        if !self.settings.enabled {
            return Err("cache disabled".into());
        }
        if !req.use_cache {
            return Err("use_cache is false".into());
        }
        let t = self
            .target(&req.profile, req.service.clone(), &req.node)
            .await
            .map_err(|e| e.to_string())?;
        let key = Key::node(t.profile_id, &t.service, &t.node);
        // A plain newest-N read, the commonest, is remembered until anything changes.
        let plain = req
            .max_items
            .filter(|_| !req.all && req.item_ids.is_empty() && req.rsm.is_none());
        let (epoch, known, page) = {
            let mut s = self.served();
            let page = plain.and_then(|n| s.page(&key.page(n)));
            // A page answered keeps its node's row fresh too (the next read may ask
            // another max).
            let known = if page.is_some() {
                s.mark_used(&key);
                None
            } else {
                s.node(&key)
            };
            (s.epoch(), known, page)
        };
        if let Some(page) = page {
            return Ok(page);
        }
        if let Some(node) = known {
            let page = self.answer(&node, req).await.map_err(|e| e.to_string())?;
            if let Some(n) = plain {
                self.served().put_page(epoch, key.page(n), page.clone());
            }
            return Ok(page);
        }
        let mut node = self
            .analysed(&t)
            .await
            .map_err(|e| format!("analysis: {e}"))?;
        if !node.to_sync && node.sync_state != SyncState::Completed {
            return Err("not a node to sync".into());
        }
        if !(node.sync_state == SyncState::Completed && node.coherent) {
            let due = match node.sync_state {
                SyncState::Error => node.retry_at.is_some_and(|r| r <= dao::now_micros()),
                SyncState::Completed => false,
                _ => true,
            };
            if due || node.sync_state == SyncState::InProgress {
                let done = self.clone().start_sync(t.clone(), false, None).await;
                let wait = Duration::from_millis(self.settings.first_read_wait_ms);
                let mut done = done;
                let _ = tokio::time::timeout(wait, done.wait_for(|d| *d)).await;
                node = dao::node_by_id(self.db(), node.id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("node vanished")?;
            }
        }
        if node.sync_state != SyncState::Completed || !node.coherent {
            return Err(format!(
                "node not servable: {}{}",
                node.sync_state.as_str(),
                node.incoherent_reason
                    .as_deref()
                    .or(node.sync_error.as_deref())
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
        // Only if nothing changed since the row was read.
        self.served().put_node(epoch, key, node.clone());
        self.answer(&node, req).await.map_err(|e| e.to_string())
    }

    /// A request answered from the database, with the service's semantics.
    pub async fn answer(&self, node: &Node, req: &ItemsRequest) -> Result<ItemsPage, HostError> {
        let db = self.db();
        let page = |rows: Vec<dao::Row>| -> Vec<Item> {
            rows.into_iter()
                .map(|r| Item::new(r.item_id, r.publisher, Some(r.data)))
                .collect()
        };
        // The common read (newest N) is one statement.
        if let Some(max) = req
            .max_items
            .filter(|_| !req.all && req.item_ids.is_empty() && req.rsm.is_none())
        {
            let (rows, count) = dao::newest(db, node.id, max).await?;
            let items = page(rows);
            let rsm = RsmResponse {
                first: items.first().map(|i| i.id.clone()),
                first_index: items.first().map(|_| count - items.len()),
                last: items.last().map(|i| i.id.clone()),
                count: Some(count),
            };
            return Ok(ItemsPage {
                service: node.service.clone(),
                node: node.name.clone(),
                items,
                rsm: Some(rsm),
                complete: false,
                source: "cache".into(),
                note: None,
            });
        }
        let count = dao::count(db, node.id).await?;
        let (items, rsm, complete) = if !req.item_ids.is_empty() {
            (
                page(dao::by_ids(db, node.id, &req.item_ids).await?),
                None,
                false,
            )
        } else if let Some(r) = &req.rsm {
            let (start, end) = rsm_window(db, node.id, r, count).await?;
            let items = page(dao::range(db, node.id, start, end - start).await?);
            let resp = RsmResponse {
                first: items.first().map(|i| i.id.clone()),
                first_index: items.first().map(|_| start),
                last: items.last().map(|i| i.id.clone()),
                count: Some(count),
            };
            (items, Some(resp), false)
        } else if let Some(max) = req.max_items.filter(|_| !req.all) {
            let start = count.saturating_sub(max);
            let items = page(dao::range(db, node.id, start, max).await?);
            let resp = RsmResponse {
                first: items.first().map(|i| i.id.clone()),
                first_index: items.first().map(|_| start),
                last: items.last().map(|i| i.id.clone()),
                count: Some(count),
            };
            (items, Some(resp), false)
        } else {
            let items = page(dao::range(db, node.id, 0, count).await?);
            (items, None, true)
        };
        Ok(ItemsPage {
            service: node.service.clone(),
            node: node.name.clone(),
            items,
            rsm,
            complete,
            source: "cache".into(),
            note: None,
        })
    }

    /// Starts a sync of `t` unless one runs; returns a receiver that turns true at
    /// its end.
    pub async fn start_sync(
        self: Arc<Self>,
        t: Target,
        forced: bool,
        job: Option<JobHandle>,
    ) -> watch::Receiver<bool> {
        let node_key = dao::node_ensure(self.db(), t.profile_id, &t.service, &t.node).await;
        let Ok(node) = node_key else {
            let (tx, rx) = watch::channel(true);
            drop(tx);
            return rx;
        };
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rx) = running.get(&node.id)
            && !*rx.borrow()
        {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(false);
        running.insert(node.id, rx.clone());
        drop(running);
        let me = self.clone();
        tokio::spawn(async move {
            let outcome = me.sync(&t, node.id, forced, job.as_ref()).await;
            match (&outcome, job) {
                (Ok(n), Some(j)) => j.finish(json!({"items": n})).await,
                (Err(e), Some(j)) => j.fail(&e.to_string()).await,
                _ => {}
            }
            if let Err(e) = outcome {
                tracing::warn!(profile = %t.profile, service = %t.service, node = %t.node, error = %e, "node sync failed");
            }
            let _ = tx.send(true);
            me.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&node.id);
        });
        rx
    }

    /// Subscribes, then fetches every item page by page (one transaction each).
    async fn sync(
        &self,
        t: &Target,
        node_id: i64,
        forced: bool,
        job: Option<&JobHandle>,
    ) -> Result<usize, HostError> {
        let db = self.db();
        let generation = dao::sync_started(db, node_id, forced).await?;
        self.forget_nodes();
        tracing::info!(profile = %t.profile, service = %t.service, node = %t.node, generation, "node sync started");
        self.allow_and_subscribe(t, node_id).await?;
        let analyser = dao::node_by_id(db, node_id)
            .await?
            .and_then(|n| n.analyser)
            .and_then(|a| self.analysers.by_name(&a));
        // Three stages that overlap: the network brings page N+2 while a blocking
        // thread parses page N+1 while page N is written.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<NewItem>, HostError>>(2);
        let producer = self.spawn_page_walk(t, analyser, tx);
        let mut stored = 0;
        while let Some(page) = rx.recv().await {
            let items = match page {
                Ok(items) => items,
                Err(e) => {
                    producer.abort();
                    self.fetch_failed(node_id, &e).await?;
                    return Err(e);
                }
            };
            stored += dao::store_items(db, node_id, generation, items, true).await?;
            self.forget_nodes();
            if let Some(j) = job {
                j.progress(&format!("{stored} items"), None, json!({"items": stored}))
                    .await;
            }
        }
        let outcome = producer
            .await
            .map_err(|e| HostError::Internal(format!("node walk: {e}")))?;
        self.sync_ended(t, node_id, generation, stored, outcome)
            .await
    }

    /// Before a sync: refuses a node the service says not to cache (XEP-0460), then
    /// subscribes to it; either refusal is recorded on the node.
    async fn allow_and_subscribe(&self, t: &Target, node_id: i64) -> Result<(), HostError> {
        let db = self.db();
        if let Some(reason) = self.hints_forbid(t).await {
            dao::set_no_sync(db, node_id, &reason).await?;
            self.forget_nodes();
            tracing::info!(profile = %t.profile, service = %t.service, node = %t.node, %reason, "node not cached");
            return Err(HostError::BadArgument(format!("not cacheable: {reason}")));
        }
        if let Err(e) = self.subscribe(t, node_id).await {
            let reason = format!("subscription refused: {e}");
            // Not retried by itself: the service said no; a forced sync asks again.
            dao::sync_failed(db, node_id, &reason, None).await?;
            self.forget_nodes();
            return Err(HostError::BadArgument(reason));
        }
        Ok(())
    }

    /// The first two stages of a sync: walks the node page by page and parses each
    /// page on a blocking thread, sending the items to `tx`. Ends with the walk's
    /// outcome (complete?, why not), or None if it failed or the receiver went away.
    fn spawn_page_walk(
        &self,
        t: &Target,
        analyser: Option<super::model::Analyser>,
        tx: tokio::sync::mpsc::Sender<Result<Vec<NewItem>, HostError>>,
    ) -> tokio::task::JoinHandle<Option<(bool, String)>> {
        let mut walk = NodeWalk::new(
            t.profile.clone(),
            t.to.clone(),
            t.node.clone(),
            self.settings.page_size,
            self.settings.max_items,
        );
        let host = self.host.clone();
        tokio::spawn(async move {
            loop {
                match walk.next_page(&*host).await {
                    Ok(Some(page)) => {
                        let a = analyser.clone();
                        let parsed = tokio::task::spawn_blocking(move || {
                            page.iter()
                                .map(|i| to_new(i, a.as_ref()))
                                .collect::<Vec<_>>()
                        })
                        .await
                        .map_err(|e| HostError::Internal(format!("parsing a page: {e}")));
                        if tx.send(parsed).await.is_err() {
                            return None;
                        }
                    }
                    Ok(None) => return walk.outcome().map(|(c, r)| (c, r.to_owned())),
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return None;
                    }
                }
            }
        })
    }

    /// A page could not be fetched: the sync failed, to be retried later.
    async fn fetch_failed(&self, node_id: i64, e: &HostError) -> Result<(), HostError> {
        let db = self.db();
        let attempts = dao::node_by_id(db, node_id)
            .await?
            .map_or(0, |n| n.attempts);
        let retry = self.retry_at(attempts);
        dao::sync_failed(db, node_id, &format!("fetching items: {e}"), Some(retry)).await?;
        self.forget_nodes();
        Ok(())
    }

    /// Records how the walk ended: the node complete, or the sync failed.
    async fn sync_ended(
        &self,
        t: &Target,
        node_id: i64,
        generation: i64,
        stored: usize,
        outcome: Option<(bool, String)>,
    ) -> Result<usize, HostError> {
        let db = self.db();
        match outcome {
            Some((true, _)) => {
                dao::sync_completed(db, node_id, generation).await?;
                self.forget_nodes();
                tracing::info!(profile = %t.profile, service = %t.service, node = %t.node, items = stored, "node sync completed");
                Ok(stored)
            }
            Some((false, reason)) => {
                let reason = format!("incomplete: {reason}");
                dao::sync_failed(db, node_id, &reason, None).await?;
                self.forget_nodes();
                Err(HostError::Xmpp(reason))
            }
            None => Err(HostError::Internal("node walk without an end".into())),
        }
    }

    async fn subscribe(&self, t: &Target, node_id: i64) -> Result<(), HostError> {
        let me = self
            .host
            .bound_jid(&t.profile)
            .await
            .ok_or_else(|| HostError::NotConnected(t.profile.clone()))?
            .to_bare()
            .to_string();
        let reply = self
            .host
            .iq(
                &t.profile,
                t.to.clone(),
                true,
                xml::subscribe(&t.node, &me, None),
            )
            .await?;
        let state = xml::parse_subscription(reply.as_ref())
            .and_then(|s| s["subscription"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "subscribed".into());
        if state != "subscribed" {
            return Err(HostError::Xmpp(format!("subscription is {state:?}")));
        }
        dao::set_subscribed(self.db(), node_id, true).await
    }

    /// The node's metadata, read for XEP-0460 caching hints; None when it may be
    /// cached (no hints, or hints that allow it; a service without node metadata).
    async fn hints_forbid(&self, t: &Target) -> Option<String> {
        let reply = self
            .host
            .iq(
                &t.profile,
                t.to.clone(),
                false,
                xml::disco_info(Some(&t.node)),
            )
            .await;
        match reply {
            Ok(r) => hints_forbid(&xml::parse_disco_info(r.as_ref())["meta"]),
            Err(e) => {
                tracing::debug!(profile = %t.profile, node = %t.node, error = %e, "no node metadata (XEP-0460 hints)");
                None
            }
        }
    }

    fn retry_at(&self, attempts: i64) -> i64 {
        let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
        let delay = self
            .settings
            .retry_s
            .saturating_mul(2u64.saturating_pow(exp))
            .min(self.settings.retry_max_s);
        dao::now_micros() + i64::try_from(delay.saturating_mul(1_000_000)).unwrap_or(i64::MAX / 2)
    }

    /// Coherence: a notification for a cached node updates it, or marks it not
    /// coherent when it can't be applied.
    pub async fn on_event(self: &Arc<Self>, ev: &xep_0060::PsEvent) {
        if let Err(e) = self.apply_event(ev).await {
            tracing::warn!(profile = %ev.profile, service = %ev.service, node = %ev.node, error = %e, "cache event not applied");
        }
    }

    async fn apply_event(self: &Arc<Self>, ev: &xep_0060::PsEvent) -> Result<(), HostError> {
        use xep_0060::EventKind as K;
        let db = self.db();
        let profile_id = self.host.profile_id(&ev.profile).await?;
        let Some(node) = dao::node(db, profile_id, &ev.service, &ev.node).await? else {
            return Ok(());
        };
        if !matches!(
            node.sync_state,
            SyncState::Completed | SyncState::InProgress
        ) {
            return Ok(());
        }
        match ev.kind {
            K::Items => {
                let analyser = node
                    .analyser
                    .as_deref()
                    .and_then(|a| self.analysers.by_name(a));
                let (with, without): (Vec<&Item>, Vec<&Item>) =
                    ev.items.iter().partition(|i| i.payload.is_some());
                let mut items: Vec<NewItem> =
                    with.iter().map(|i| to_new(i, analyser.as_ref())).collect();
                if !without.is_empty() {
                    // Notifications without payloads: fetch the items themselves.
                    let to = if ev.service == self.own_bare(&ev.profile).await {
                        None
                    } else {
                        Jid::new(&ev.service).ok()
                    };
                    let req = ItemsRequest {
                        profile: ev.profile.clone(),
                        service: to,
                        node: ev.node.clone(),
                        max_items: None,
                        item_ids: without.iter().map(|i| i.id.clone()).collect(),
                        rsm: None,
                        all: false,
                        use_cache: false,
                    };
                    match xep_0060::fetch_items(&*self.host, &req).await {
                        Ok(page) => {
                            items.extend(page.items.iter().map(|i| to_new(i, analyser.as_ref())))
                        }
                        Err(e) => {
                            dao::set_incoherent(
                                db,
                                node.id,
                                &format!("notified items could not be fetched: {e}"),
                            )
                            .await?;
                            self.forget_nodes();
                            return Ok(());
                        }
                    }
                }
                dao::store_items(db, node.id, node.sync_gen, items, false).await?;
                self.forget_nodes();
            }
            K::Retract => {
                dao::delete_items(db, node.id, &ev.retracted).await?;
                self.forget_nodes();
            }
            K::Purge => {
                dao::purge_node_items(db, node.id).await?;
                self.forget_nodes();
            }
            K::Delete => {
                dao::delete_node(db, node.id).await?;
                self.forget_nodes();
            }
            K::Configuration => {
                // A new configuration may have trimmed the node: check it again.
                dao::set_incoherent(db, node.id, "configuration changed; resynchronising").await?;
                self.forget_nodes();
                if let Ok(t) = self.target_of(&ev.profile, &node).await {
                    self.clone().start_sync(t, false, None).await;
                }
            }
            K::Subscription => {
                let state = ev
                    .subscription
                    .as_ref()
                    .and_then(|s| s["subscription"].as_str())
                    .unwrap_or("");
                if state != "subscribed" {
                    dao::set_subscribed(db, node.id, false).await?;
                    dao::set_incoherent(db, node.id, &format!("subscription lost ({state})"))
                        .await?;
                    self.forget_nodes();
                }
            }
        }
        Ok(())
    }

    async fn own_bare(&self, profile: &str) -> String {
        xep_0060::service_name(&*self.host, profile, None).await
    }

    /// The target of a stored node (PEP of the profile itself: no `to`).
    pub async fn target_of(&self, profile: &str, node: &Node) -> Result<Target, HostError> {
        let to = if node.service == self.own_bare(profile).await {
            None
        } else {
            Some(Jid::new(&node.service).map_err(|e| HostError::InvalidJid {
                jid: node.service.clone(),
                reason: e.to_string(),
            })?)
        };
        Ok(Target {
            profile: profile.to_owned(),
            profile_id: node.profile_id,
            to,
            service: node.service.clone(),
            node: node.name.clone(),
        })
    }

    /// A session (re)started: nodes that were synced are checked again (items may
    /// have come while we were away), interrupted syncs resume, due retries run.
    pub async fn session_started(self: &Arc<Self>, profile: &str) {
        let Ok(pid) = self.host.profile_id(profile).await else {
            return;
        };
        let Ok(nodes) = dao::nodes(self.db(), Some(pid), None, None).await else {
            return;
        };
        let now = dao::now_micros();
        // Not served until checked again: reads meanwhile go to the service.
        for node in nodes
            .iter()
            .filter(|n| n.sync_state == SyncState::Completed)
        {
            let _ =
                dao::set_incoherent(self.db(), node.id, "re-checking after the session started")
                    .await;
            self.forget_nodes();
        }
        for node in nodes {
            let again = match node.sync_state {
                SyncState::Completed | SyncState::InProgress => true,
                SyncState::Error => node.retry_at.is_some_and(|r| r <= now),
                _ => false,
            };
            if again && let Ok(t) = self.target_of(profile, &node).await {
                let mut done = self.clone().start_sync(t, false, None).await;
                // One at a time: a reconnection must not flood the server.
                let _ = done.wait_for(|d| *d).await;
            }
        }
    }

    /// Retries nodes in error whose time has come, for connected profiles.
    pub async fn retry_due(self: &Arc<Self>) {
        let Ok(nodes) = dao::nodes_in_state(self.db(), SyncState::Error).await else {
            return;
        };
        let now = dao::now_micros();
        for node in nodes
            .into_iter()
            .filter(|n| n.retry_at.is_some_and(|r| r <= now))
        {
            let Some(profile) = self.host.profile_name(node.profile_id).await else {
                continue;
            };
            if self.host.bound_jid(&profile).await.is_none() {
                continue;
            }
            if let Ok(t) = self.target_of(&profile, &node).await {
                tracing::info!(%profile, service = %t.service, node = %t.node, "retrying node sync");
                let mut done = self.clone().start_sync(t, false, None).await;
                let _ = done.wait_for(|d| *d).await;
            }
        }
    }
}

/// XEP-0460 caching hints (node metadata values) that forbid caching the node whole:
/// items not stored (transient), dynamic items, or items that expire silently.
pub fn hints_forbid(meta: &Value) -> Option<String> {
    const NS: &str = "{urn:xmpp:pubsub-caching:0}";
    let get = |k: &str| meta[format!("{NS}{k}")].as_str().map(str::trim);
    if let Some(p @ ("transient" | "transient-with-last-item")) = get("persistence") {
        return Some(format!(
            "the service keeps no items to cache ({p}, XEP-0460)"
        ));
    }
    if matches!(get("consistent-items"), Some("false" | "0")) {
        return Some("the service's items are dynamic (XEP-0460 consistent-items false)".into());
    }
    if let Some(secs) = meta["pubsub#item_expire"]
        .as_str()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
    {
        return Some(format!(
            "items expire silently after {secs} s (pubsub#item_expire)"
        ));
    }
    None
}

/// RSM over the cached node: item ids are the cursors.
async fn rsm_window(
    db: &perch_plugin_api::PluginStore,
    node_id: i64,
    r: &RsmRequest,
    count: usize,
) -> Result<(usize, usize), HostError> {
    let max = r.max.unwrap_or(count);
    let missing = |id: &str| {
        HostError::Stanza(perch_plugin_api::StanzaError::new(
            "item-not-found",
            Some(format!("no item with RSM id {id:?}")),
        ))
    };
    Ok(if let Some(after) = &r.after {
        let p = dao::position(db, node_id, after)
            .await?
            .ok_or_else(|| missing(after))?;
        let s = p + 1;
        (s, s.saturating_add(max).min(count))
    } else if let Some(before) = &r.before {
        let e = if before.is_empty() {
            count
        } else {
            dao::position(db, node_id, before)
                .await?
                .ok_or_else(|| missing(before))?
        };
        (e.saturating_sub(max), e)
    } else {
        let s = r.index.unwrap_or(0).min(count);
        (s, s.saturating_add(max).min(count))
    })
}

/// An item as stored: parsed by the node's analyser, its text for full-text search.
/// Runs where a sync parses (a blocking thread), so everything CPU-bound about an
/// item is done here and the writer only binds strings.
pub fn to_new(i: &Item, analyser: Option<&super::model::Analyser>) -> NewItem {
    let data = i.payload.clone().unwrap_or_default();
    // The stream already parsed items fetched from the network; others are read here.
    let read;
    let element = match &i.element {
        Some(e) => Some(e),
        None => {
            read = data.parse::<Element>().ok();
            read.as_ref()
        }
    };
    let parsed = match (element, analyser.and_then(|a| a.parser.as_ref())) {
        (Some(e), Some(p)) => p(e),
        _ => None,
    };
    let text = index_text(element, parsed.as_ref());
    NewItem {
        item_id: i.id.clone(),
        publisher: i.publisher.clone(),
        data,
        parsed: parsed.as_ref().map(Value::to_string),
        text,
    }
}

/// What full-text search indexes of an item: the character data of its XML, then
/// the parsed values the XML does not already hold.
pub fn index_text(element: Option<&Element>, parsed: Option<&Value>) -> String {
    let mut text = String::new();
    if let Some(e) = element {
        text_of(e, &mut text);
    }
    if let Some(p) = parsed {
        // Parsed values mostly repeat the XML's text: index only what is new, so
        // full-text search does not pay twice for every word.
        let mut values = String::new();
        values_of(p, &mut values);
        for v in values.split(' ').filter(|v| !v.is_empty()) {
            if !text.contains(v) {
                text.push_str(v);
                text.push(' ');
            }
        }
    }
    text
}

/// [`index_text`] of an item as stored (its XML and parsed JSON, as text): what a
/// rebuilt index holds (`perch-admin migrate` fills PostgreSQL's from a SQLite
/// cache, whose contentless FTS5 index cannot be read back).
pub fn stored_index_text(data: &str, parsed: Option<&str>) -> String {
    let element = data.parse::<Element>().ok();
    let parsed = parsed.and_then(|p| serde_json::from_str::<Value>(p).ok());
    index_text(element.as_ref(), parsed.as_ref())
}

pub fn node_view(n: &Node, profile: &str, count: usize) -> Value {
    json!({
        "profile": profile,
        "service": n.service,
        "node": n.name,
        "analyser": n.analyser,
        "type": n.kind,
        "subtype": n.subtype,
        "to_sync": n.to_sync,
        "sync_state": n.sync_state.as_str(),
        "sync_state_updated": n.sync_state_updated,
        "sync_error": n.sync_error,
        "coherent": n.coherent,
        "incoherent_reason": n.incoherent_reason,
        "subscribed": n.subscribed,
        "attempts": n.attempts,
        "retry_at": n.retry_at,
        "items": count,
        "served": n.sync_state == SyncState::Completed && n.coherent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rebuilt index entry (from the stored XML and JSON) is the one the item got
    /// when it came in.
    #[test]
    fn a_rebuilt_index_text_is_the_stored_items() {
        let xml = "<entry xmlns='urn:t'><title>Hello world</title><n>42</n></entry>";
        let element: Element = xml.parse().unwrap();
        let parsed = json!({"title": "Hello world", "n": 42, "tags": ["extra", "world"]});
        let fresh = index_text(Some(&element), Some(&parsed));
        assert_eq!(fresh, "Hello world 42 extra ");
        assert_eq!(stored_index_text(xml, Some(&parsed.to_string())), fresh);
        assert_eq!(stored_index_text("not xml", None), "");
    }

    #[test]
    fn xep_0460_hints() {
        let reply: Element = "<query xmlns='http://jabber.org/protocol/disco#info' node='n'>\
            <identity category='pubsub' type='leaf'/>\
            <x xmlns='jabber:x:data' type='result'>\
            <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#meta-data</value></field>\
            <field var='{urn:xmpp:pubsub-caching:0}persistence' type='list-single'><value>transient</value></field>\
            </x></query>"
            .parse()
            .unwrap();
        let meta = xml::parse_disco_info(Some(&reply))["meta"].clone();
        assert!(hints_forbid(&meta).unwrap().contains("transient"));
        assert!(
            hints_forbid(
                &json!({"{urn:xmpp:pubsub-caching:0}persistence": "persistent",
            "{urn:xmpp:pubsub-caching:0}consistent-items": "true", "pubsub#item_expire": "max"})
            )
            .is_none()
        );
        assert!(
            hints_forbid(&json!({"{urn:xmpp:pubsub-caching:0}consistent-items": "false"}))
                .is_some()
        );
        assert!(
            hints_forbid(&json!({"pubsub#item_expire": "3600"}))
                .unwrap()
                .contains("3600")
        );
        assert!(hints_forbid(&json!({})).is_none());
    }
}
