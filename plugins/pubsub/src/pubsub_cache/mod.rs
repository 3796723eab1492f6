//! The pubsub cache: selected nodes kept whole in the database, served in the
//! service's place, kept coherent by notifications, searchable.
//!
//! Why it is a plugin on top of XEP-0060 and not part of it: the cache only hooks the
//! `pubsub.items.request` point (answering with `StopWith(page)` when the node is
//! synced and coherent, letting the request through otherwise) and the
//! `pubsub.event.*` points (updating what it keeps). Disable it and pubsub works the
//! same, from the network. Layout (as every plugin that owns data): `model` (types,
//! analysers), `dao` (its tables, the only code touching them), `service` (the rules),
//! `search` (query checking and SQL; `fts_pg` and `filters_pg` its PostgreSQL
//! parts), this file (wiring and actions). See
//! `doc/pubsub_cache.rst`.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::cache::{self as actions, GetArgs, PurgeArgs, Purged, SearchArgs};
use perch_actions::pubsub::{NodeArgs, ServiceArgs};
use perch_actions::{Empty, JobStarted, NoArgs};
use perch_plugin_api::action::opt_jid_arg;
use perch_plugin_api::points::{SessionInfo, SessionStarted};
use perch_plugin_api::{
    BuildResult, Flow, Host, HostError, Plugin, PluginError, PluginFactory, PluginInfo, Serve,
    TriggerError,
};
use serde_json::{Value, json};

use crate::xep_0059::RsmRequest;
use crate::xep_0060::{self, ItemsRequest, ItemsRequested};

pub mod dao;
pub mod filters_pg;
pub mod fts_pg;
pub mod model;
pub mod search;
pub mod served;
pub mod service;

pub use model::{Analyser, Analysers, Analysis, Settings};
use service::Cache;

pub const IMPORT_NAME: &str = "PUBSUB_CACHE";
/// Runs before any other handler of the items request.
const PRIORITY: i32 = 1000;

/// The plugin: its cache, built with its host.
#[derive(Debug)]
pub struct PubsubCache {
    cache: Arc<Cache>,
}

impl PubsubCache {
    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }
}

impl Plugin for PubsubCache {}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Pubsub cache",
    description: "Keeps selected pubsub nodes whole in the database: served locally, coherent, searchable",
    dependencies: &[xep_0060::IMPORT_NAME],
    recommendations: &[],
    tables: TABLES,
    signals_as: None,
};

/// Its tables: the nodes, their items, the items' full-text index.
pub const TABLES: &[&str] = &["pubsub_node", "pubsub_item", "pubsub_item_fts"];

/// The plugin, built by the daemon with its host. `analysers`: where analysers go,
/// its own (from the options) and other plugins' (the composition root hands them
/// the same handle).
pub fn factory(analysers: Arc<Analysers>) -> PluginFactory {
    PluginFactory::new(INFO, move |host| build(host, analysers))
}

async fn build(host: Arc<dyn Host>, analysers: Arc<Analysers>) -> BuildResult {
    let settings: Settings = serde_json::from_value(host.options())
        .map_err(|e| PluginError(format!("[plugins.options.{IMPORT_NAME}]: {e}")))?;
    for a in settings.analysers.clone() {
        let name = a.name.clone();
        analysers.register(a.into_analyser()).map_err(|e| {
            PluginError(format!(
                "[plugins.options.{IMPORT_NAME}] analyser {name:?}: {e}"
            ))
        })?;
    }
    let cache = Arc::new(Cache::new(host.clone(), analysers, settings));
    hooks(&host, &cache)?;
    actions(&host, &cache);
    // Nodes in error are retried when their time comes.
    let c = cache.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            c.retry_due().await;
        }
    });
    Ok(Arc::new(PubsubCache { cache }))
}

fn hooks(host: &Arc<dyn Host>, cache: &Arc<Cache>) -> Result<(), TriggerError> {
    let t = host.triggers();
    t.add_with::<ItemsRequested, _>(PRIORITY, cache.clone(), serve)?;
    t.add_with::<xep_0060::EventItems, _>(PRIORITY, cache.clone(), on_event)?;
    t.add_with::<xep_0060::EventRetract, _>(PRIORITY, cache.clone(), on_event)?;
    t.add_with::<xep_0060::EventPurge, _>(PRIORITY, cache.clone(), on_event)?;
    t.add_with::<xep_0060::EventDelete, _>(PRIORITY, cache.clone(), on_event)?;
    t.add_with::<xep_0060::EventConfiguration, _>(PRIORITY, cache.clone(), on_event)?;
    t.add_with::<xep_0060::EventSubscription, _>(PRIORITY, cache.clone(), on_event)?;
    t.add_with::<SessionStarted, _>(0, cache.clone(), on_session_started)
}

/// `pubsub.items.request`: answered from the cache when it can.
fn serve(c: Arc<Cache>, req: &mut ItemsRequest) -> BoxFuture<'_, Flow<xep_0060::ItemsPage>> {
    let req = req.clone();
    async move {
        match c.serve(&req).await {
            Ok(page) => Flow::StopWith(page),
            Err(why) => {
                tracing::debug!(profile = %req.profile, node = %req.node, %why, "not answered from the cache");
                Flow::Continue
            }
        }
    }
    .boxed()
}

/// `pubsub.event.*`: what the cache keeps follows the notifications.
fn on_event(c: Arc<Cache>, ev: &mut xep_0060::PsEvent) -> BoxFuture<'_, Flow<()>> {
    let ev = ev.clone();
    async move {
        c.on_event(&ev).await;
        Flow::Continue
    }
    .boxed()
}

/// `session.started`: the profile's nodes are checked again.
fn on_session_started(c: Arc<Cache>, info: &mut SessionInfo) -> BoxFuture<'_, Flow<()>> {
    let profile = info.profile.clone();
    // In the background: the checks may take a while and must not hold the session's
    // inbox (notifications keep flowing meanwhile).
    tokio::spawn(async move { c.session_started(&profile).await });
    async { Flow::Continue }.boxed()
}

fn bad(what: &str, why: impl std::fmt::Display) -> HostError {
    HostError::BadArgument(format!("{what}: {why}"))
}

/// Microseconds from RFC 3339 text or Unix seconds.
fn when(name: &str, s: Option<&str>) -> Result<Option<i64>, HostError> {
    let Some(s) = s else {
        return Ok(None);
    };
    if let Ok(secs) = s.trim().parse::<i64>() {
        return Ok(Some(secs.saturating_mul(1_000_000)));
    }
    let t = humantime::parse_rfc3339_weak(s.trim()).map_err(|e| {
        bad(
            name,
            format!("{s:?} is not an RFC 3339 time or Unix seconds: {e}"),
        )
    })?;
    let d = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad(name, "before 1970"))?;
    Ok(Some(i64::try_from(d.as_micros()).unwrap_or(i64::MAX)))
}

fn actions(host: &Arc<dyn Host>, cache: &Arc<Cache>) {
    host.serve(actions::Status, cache.clone(), status);
    host.serve(actions::Get, cache.clone(), get);
    host.serve(actions::Sync, cache.clone(), sync);
    host.serve(actions::Purge, cache.clone(), purge);
    host.serve(actions::Reset, cache.clone(), |c, _, _: NoArgs| reset(c));
    host.serve(actions::Search, cache.clone(), search_items);
}

/// `pubsub_cache_status`.
async fn status(c: Arc<Cache>, profile: String, a: ServiceArgs) -> Result<Value, HostError> {
    let pid = c.host.profile_id(&profile).await?;
    let service = match opt_jid_arg("service", a.service.as_deref())? {
        Some(j) => Some(j.to_string()),
        None if a.node.is_some() => Some(xep_0060::service_name(&*c.host, &profile, None).await),
        None => None,
    };
    let db = c.host.store();
    let nodes = dao::nodes(db, Some(pid), service.as_deref(), a.node.as_deref()).await?;
    let mut out = Vec::new();
    for n in &nodes {
        let count = dao::count(db, n.id).await?;
        out.push(service::node_view(n, &profile, count));
    }
    let analysers: Vec<Value> = c.analysers.list().iter().map(Analyser::view).collect();
    Ok(json!({"nodes": out, "analysers": analysers}))
}

/// `pubsub_cache_get`.
async fn get(c: Arc<Cache>, profile: String, a: GetArgs) -> Result<Value, HostError> {
    let node = a.node;
    let to = opt_jid_arg("service", a.service.as_deref())?;
    let t = c.target(&profile, to, &node).await?;
    let n = dao::node(c.host.store(), t.profile_id, &t.service, &t.node)
        .await?
        .filter(|n| n.sync_state == model::SyncState::Completed && n.coherent)
        .ok_or_else(|| {
            bad(
                "node",
                format!(
                    "{node:?} on {} is not in the cache (see pubsub_cache_status)",
                    t.service
                ),
            )
        })?;
    let count = |name: &str, v: Option<i64>| {
        v.map(|m| usize::try_from(m).map_err(|_| bad(name, "negative")))
            .transpose()
    };
    let (max, index) = (count("max", a.max)?, count("index", a.index)?);
    let (before, after) = (a.before, a.after);
    let rsm = (before.is_some() || after.is_some() || index.is_some()).then(|| RsmRequest {
        max: Some(max.unwrap_or(20)),
        before,
        after,
        index,
    });
    let req = ItemsRequest {
        profile,
        service: t.to.clone(),
        node,
        max_items: if rsm.is_some() { None } else { max },
        item_ids: a.item_ids,
        rsm,
        all: false,
        use_cache: true,
    };
    let page = c.answer(&n, &req).await?;
    serde_json::to_value(page).map_err(|e| HostError::Internal(e.to_string()))
}

/// `pubsub_cache_sync`.
async fn sync(c: Arc<Cache>, profile: String, a: NodeArgs) -> Result<JobStarted, HostError> {
    let node = a.node;
    let to = opt_jid_arg("service", a.service.as_deref())?;
    let t = c.target(&profile, to, &node).await?;
    let job = c
        .host
        .start_job(
            &profile,
            "sync",
            &format!("caching {node} of {}", t.service),
        )
        .await?;
    let id = job.id().to_owned();
    c.clone().start_sync(t, true, Some(job)).await;
    Ok(JobStarted { job: id })
}

/// `pubsub_cache_purge`.
async fn purge(c: Arc<Cache>, _profile: String, a: PurgeArgs) -> Result<Purged, HostError> {
    let mut clause = vec!["1 = 1".to_owned()];
    let mut values: Vec<sea_orm::Value> = Vec::new();
    let mut list = |col: &str, items: Vec<sea_orm::Value>| {
        if !items.is_empty() {
            clause.push(format!("{col} IN ({})", vec!["?"; items.len()].join(",")));
            values.extend(items);
        }
    };
    let strs = |names: Vec<String>| {
        names
            .into_iter()
            .map(sea_orm::Value::from)
            .collect::<Vec<_>>()
    };
    list("n.type", strs(a.types));
    list("n.subtype", strs(a.subtypes));
    list("n.service", strs(a.services));
    list("n.name", strs(a.nodes));
    let mut pids = Vec::new();
    for p in a.profiles {
        pids.push(sea_orm::Value::from(c.host.profile_id(&p).await?));
    }
    list("n.profile_id", pids);
    if let Some(t) = when("created_before", a.created_before.as_deref())? {
        clause.push("i.created < ?".into());
        values.push(t.into());
    }
    if let Some(t) = when("updated_before", a.updated_before.as_deref())? {
        clause.push("i.updated < ?".into());
        values.push(t.into());
    }
    let clause = clause.join(" AND ");
    let deleted = dao::purge_where(c.host.store(), &clause, values).await?;
    c.forget_nodes();
    Ok(Purged { deleted })
}

/// `pubsub_cache_reset`.
async fn reset(c: Arc<Cache>) -> Result<Empty, HostError> {
    dao::reset(c.host.store()).await?;
    c.forget_nodes();
    tracing::info!("pubsub cache reset");
    Ok(Empty {})
}

/// `pubsub_cache_search`.
async fn search_items(c: Arc<Cache>, _profile: String, a: SearchArgs) -> Result<Value, HostError> {
    let q: search::Query =
        serde_json::from_value(Value::Object(a.query)).map_err(|e| bad("query", e))?;
    let mut pids = Vec::new();
    for p in &q.profiles {
        pids.push(c.host.profile_id(p).await?);
    }
    let db = c.host.store();
    let backend = sea_orm::ConnectionTrait::get_database_backend(db);
    let built = search::build_for(&q, &pids, backend).map_err(|e| bad("query", e))?;
    let rows = match dao::query(db, &built.sql, built.values).await {
        Ok(rows) => rows,
        Err(e) => {
            // The frontend's full-text query, or the storage?
            let fts = match q.fts.as_deref() {
                Some(f) => dao::fts_error(db, f).await,
                None => None,
            };
            return Err(match fts {
                Some(why) => bad("query.fts", why),
                None => HostError::Storage(e.to_string()),
            });
        }
    };
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::new();
    for r in rows {
        let pid: i64 = r.try_get("", "profile_id").map_err(dao::db_err)?;
        let pid = i32::try_from(pid).unwrap_or_default();
        if let std::collections::hash_map::Entry::Vacant(e) = names.entry(pid) {
            e.insert(c.host.profile_name(pid).await.unwrap_or_default());
        }
        out.push(found_item(
            &r,
            names.get(&pid),
            built.with_xml,
            q.fts.is_some(),
        )?);
    }
    Ok(json!({"items": out}))
}

/// One search result as JSON.
fn found_item(
    r: &sea_orm::QueryResult,
    profile: Option<&String>,
    with_xml: bool,
    fts: bool,
) -> Result<Value, HostError> {
    let e = dao::db_err;
    let parsed: Option<String> = r.try_get("", "parsed").map_err(e)?;
    let mut item = json!({
        "profile": profile,
        "service": r.try_get::<String>("", "service").map_err(e)?,
        "node": r.try_get::<String>("", "node").map_err(e)?,
        "type": r.try_get::<Option<String>>("", "type").map_err(e)?,
        "subtype": r.try_get::<Option<String>>("", "subtype").map_err(e)?,
        "item_id": r.try_get::<String>("", "item_id").map_err(e)?,
        "publisher": r.try_get::<Option<String>>("", "publisher").map_err(e)?,
        "parsed": parsed.and_then(|p| serde_json::from_str::<Value>(&p).ok()),
        "created": r.try_get::<i64>("", "created").map_err(e)?,
        "updated": r.try_get::<i64>("", "updated").map_err(e)?,
    });
    if with_xml {
        item["xml"] = json!(r.try_get::<String>("", "data").map_err(e)?);
    }
    if fts {
        item["rank"] = json!(r.try_get::<f64>("", "rank").ok());
    }
    Ok(item)
}
