//! The pubsub cache: selected nodes kept whole in the database, served in the
//! service's place, kept coherent by notifications, searchable.
//!
//! Why it is a plugin on top of XEP-0060 and not part of it: the cache only hooks the
//! `pubsub.items.request` point (answering with `StopWith(page)` when the node is
//! synced and coherent, letting the request through otherwise) and the
//! `pubsub.event.*` points (updating what it keeps). Disable it and pubsub works the
//! same, from the network. Layout (as every plugin that owns data): `model` (types,
//! analysers), `dao` (its tables, the only code touching them), `service` (the rules),
//! `search` (query checking and SQL), this file (wiring and actions). See
//! `doc/pubsub_cache.rst`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::{self as actions, Action};
use perch_plugin_api::action::{ActionResult, ActionSpec, Call, Param, ParamType};
use perch_plugin_api::points::{SessionInfo, SessionStarted};
use perch_plugin_api::{Flow, Host, HostError, Plugin, PluginError, PluginInfo};
use serde_json::{Value, json};

use crate::xep_0059::RsmRequest;
use crate::xep_0060::{self, ItemsRequest, ItemsRequested};

pub mod dao;
pub mod model;
pub mod search;
pub mod served;
pub mod service;

pub use model::{Analyser, Analysers, Analysis, Settings};
use service::Cache;

pub const IMPORT_NAME: &str = "PUBSUB_CACHE";
/// Runs before any other handler of the items request.
const PRIORITY: i32 = 1000;

/// The plugin. Other plugins register their analysers through [`PubsubCache::analysers`]
/// (the composition root hands them this handle).
#[derive(Debug, Default)]
pub struct PubsubCache {
    analysers: Arc<Analysers>,
    cache: OnceLock<Arc<Cache>>,
}

impl PubsubCache {
    pub fn analysers(&self) -> Arc<Analysers> {
        self.analysers.clone()
    }
}

impl Plugin for PubsubCache {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            import_name: IMPORT_NAME,
            name: "Pubsub cache",
            description: "Keeps selected pubsub nodes whole in the database: served locally, coherent, searchable",
            dependencies: &[xep_0060::IMPORT_NAME],
            recommendations: &[],
        }
    }

    fn init(self: Arc<Self>, host: Arc<dyn Host>) -> BoxFuture<'static, Result<(), PluginError>> {
        async move {
            let settings: Settings = serde_json::from_value(host.options(IMPORT_NAME))
                .map_err(|e| PluginError(format!("[plugins.options.{IMPORT_NAME}]: {e}")))?;
            for a in settings.analysers.clone() {
                let name = a.name.clone();
                self.analysers.register(a.into_analyser()).map_err(|e| {
                    PluginError(format!(
                        "[plugins.options.{IMPORT_NAME}] analyser {name:?}: {e}"
                    ))
                })?;
            }
            let cache = Arc::new(Cache::new(host.clone(), self.analysers.clone(), settings));
            let _ = self.cache.set(cache.clone());
            hooks(&host, &cache);
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
            Ok(())
        }
        .boxed()
    }
}

fn hooks(host: &Arc<dyn Host>, cache: &Arc<Cache>) {
    let t = host.triggers();
    let c = cache.clone();
    t.add::<ItemsRequested, _>(IMPORT_NAME, PRIORITY, move |req: &mut ItemsRequest| {
        let c = c.clone();
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
    });
    macro_rules! on {
        ($point:ty) => {{
            let c = cache.clone();
            t.add::<$point, _>(IMPORT_NAME, PRIORITY, move |ev: &mut xep_0060::PsEvent| {
                let c = c.clone();
                let ev = ev.clone();
                async move {
                    c.on_event(&ev).await;
                    Flow::Continue
                }
                .boxed()
            });
        }};
    }
    on!(xep_0060::EventItems);
    on!(xep_0060::EventRetract);
    on!(xep_0060::EventPurge);
    on!(xep_0060::EventDelete);
    on!(xep_0060::EventConfiguration);
    on!(xep_0060::EventSubscription);
    let c = cache.clone();
    t.add::<SessionStarted, _>(IMPORT_NAME, 0, move |info: &mut SessionInfo| {
        let c = c.clone();
        let profile = info.profile.clone();
        // In the background: the checks may take a while and must not hold the
        // session's inbox (notifications keep flowing meanwhile).
        tokio::spawn(async move { c.session_started(&profile).await });
        async { Flow::Continue }.boxed()
    });
}

fn spec(
    name: &'static str,
    doc: &'static str,
    needs_session: bool,
    params: Vec<Param>,
) -> ActionSpec {
    ActionSpec {
        name,
        plugin: String::new(),
        doc,
        needs_session,
        params,
    }
}

fn bad(what: &str, why: impl std::fmt::Display) -> HostError {
    HostError::BadArgument(format!("{what}: {why}"))
}

type Handler = fn(Arc<Cache>, Call) -> BoxFuture<'static, ActionResult>;

fn add(host: &Arc<dyn Host>, cache: &Arc<Cache>, spec: ActionSpec, f: Handler) {
    let c = cache.clone();
    host.add_action(IMPORT_NAME, spec, Arc::new(move |call| f(c.clone(), call)));
}

fn list_param(name: &'static str, doc: &'static str) -> Param {
    Param::optional(name, ParamType::List, doc)
}

/// Microseconds from RFC 3339 text or Unix seconds.
fn when(call: &Call, name: &str) -> Result<Option<i64>, HostError> {
    let Some(s) = call.args.str(name) else {
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
    let service = || {
        Param::optional(
            "service",
            ParamType::Jid,
            "the pubsub service; default: the profile's own account (PEP)",
        )
    };
    add(
        host,
        cache,
        spec(
            actions::cache::Status::NAME,
            "The cached nodes of the profile (or one node): analysis, sync state and why, coherence, items",
            true,
            vec![
                service(),
                Param::optional("node", ParamType::String, "only this node"),
            ],
        ),
        |c, call| {
            async move {
                let pid = c.host.profile_id(&call.profile).await?;
                let service = match call.args.jid("service") {
                    Some(j) => Some(j.to_string()),
                    None if call.args.str("node").is_some() => {
                        Some(xep_0060::service_name(&*c.host, &call.profile, None).await)
                    }
                    None => None,
                };
                let nodes = dao::nodes(
                    c.host.database(),
                    Some(pid),
                    service.as_deref(),
                    call.args.str("node"),
                )
                .await?;
                let mut out = Vec::new();
                for n in &nodes {
                    let count = dao::count(c.host.database(), n.id).await?;
                    out.push(service::node_view(n, &call.profile, count));
                }
                let analysers: Vec<Value> = c.analysers.list().iter().map(Analyser::view).collect();
                Ok(json!({"nodes": out, "analysers": analysers}))
            }
            .boxed()
        },
    );
    add(
        host,
        cache,
        spec(
            actions::cache::Get::NAME,
            "Items from the cache only (same parameters as pubsub_items_get); fails when the node is not cached",
            true,
            vec![
                service(),
                Param::required("node", ParamType::String, "the node"),
                Param::optional(
                    "max",
                    ParamType::Integer,
                    "the newest N items; with RSM: the page size",
                ),
                list_param("item_ids", "these items only"),
                Param::optional(
                    "before",
                    ParamType::String,
                    "RSM: the page before this id (\"\": the last page)",
                ),
                Param::optional("after", ParamType::String, "RSM: the page after this id"),
                Param::optional(
                    "index",
                    ParamType::Integer,
                    "RSM: the page starting at this position",
                ),
            ],
        ),
        |c, call| {
            async move {
                let node = call.args.str("node").unwrap_or_default().to_owned();
                let t = c
                    .target(&call.profile, call.args.jid("service"), &node)
                    .await?;
                let n = dao::node(c.host.database(), t.profile_id, &t.service, &t.node)
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
                let max = call
                    .args
                    .i64("max")
                    .map(|m| usize::try_from(m).map_err(|_| bad("max", "negative")))
                    .transpose()?;
                let index = call
                    .args
                    .i64("index")
                    .map(|m| usize::try_from(m).map_err(|_| bad("index", "negative")))
                    .transpose()?;
                let (before, after) = (call.args.str("before"), call.args.str("after"));
                let rsm =
                    (before.is_some() || after.is_some() || index.is_some()).then(|| RsmRequest {
                        max: Some(max.unwrap_or(20)),
                        before: before.map(str::to_owned),
                        after: after.map(str::to_owned),
                        index,
                    });
                let req = ItemsRequest {
                    profile: call.profile.clone(),
                    service: t.to.clone(),
                    node,
                    max_items: if rsm.is_some() { None } else { max },
                    item_ids: call.args.list("item_ids"),
                    rsm,
                    all: false,
                    use_cache: true,
                };
                let page = c.answer(&n, &req).await?;
                serde_json::to_value(page).map_err(|e| HostError::Internal(e.to_string()))
            }
            .boxed()
        },
    );
    add(
        host,
        cache,
        spec(
            actions::cache::Sync::NAME,
            "(Re)synchronises a node now, even one no analyser selects, as a job (returns {\"job\": id})",
            true,
            vec![
                service(),
                Param::required("node", ParamType::String, "the node"),
            ],
        ),
        |c, call| {
            async move {
                let node = call.args.str("node").unwrap_or_default().to_owned();
                let t = c
                    .target(&call.profile, call.args.jid("service"), &node)
                    .await?;
                let job = c
                    .host
                    .start_job(
                        &call.profile,
                        IMPORT_NAME,
                        "sync",
                        &format!("caching {node} of {}", t.service),
                    )
                    .await?;
                let id = job.id().to_owned();
                c.clone().start_sync(t, true, Some(job)).await;
                Ok(json!({"job": id}))
            }
            .boxed()
        },
    );
    add(
        host,
        cache,
        spec(
            actions::cache::Purge::NAME,
            "Deletes cached items by type, subtype, profile, service, node, created/updated before; \
             the nodes they belonged to are synchronised again on their next read",
            false,
            vec![
                list_param("types", "node types (blog, event, …)"),
                list_param("subtypes", "node subtypes"),
                list_param("profiles", "profile names"),
                list_param("services", "services (bare JIDs for PEP)"),
                list_param("nodes", "node names"),
                Param::optional(
                    "created_before",
                    ParamType::String,
                    "RFC 3339 time or Unix seconds",
                ),
                Param::optional(
                    "updated_before",
                    ParamType::String,
                    "RFC 3339 time or Unix seconds",
                ),
            ],
        ),
        |c, call| {
            async move {
                let mut clause = vec!["1 = 1".to_owned()];
                let mut values: Vec<sea_orm::Value> = Vec::new();
                let mut list = |col: &str, items: Vec<sea_orm::Value>| {
                    if !items.is_empty() {
                        clause.push(format!("{col} IN ({})", vec!["?"; items.len()].join(",")));
                        values.extend(items);
                    }
                };
                let strs = |name: &str| {
                    call.args
                        .list(name)
                        .into_iter()
                        .map(sea_orm::Value::from)
                        .collect::<Vec<_>>()
                };
                list("n.type", strs("types"));
                list("n.subtype", strs("subtypes"));
                list("n.service", strs("services"));
                list("n.name", strs("nodes"));
                let mut pids = Vec::new();
                for p in call.args.list("profiles") {
                    pids.push(sea_orm::Value::from(c.host.profile_id(&p).await?));
                }
                list("n.profile_id", pids);
                if let Some(t) = when(&call, "created_before")? {
                    clause.push("i.created < ?".into());
                    values.push(t.into());
                }
                if let Some(t) = when(&call, "updated_before")? {
                    clause.push("i.updated < ?".into());
                    values.push(t.into());
                }
                let clause = clause.join(" AND ");
                let deleted = dao::purge_where(c.host.database(), &clause, values).await?;
                c.forget_nodes();
                Ok(json!({"deleted": deleted}))
            }
            .boxed()
        },
    );
    add(
        host,
        cache,
        spec(
            actions::cache::Reset::NAME,
            "Drops the whole cache; it fills again as nodes are read",
            false,
            vec![],
        ),
        |c, _call| {
            async move {
                dao::reset(c.host.database()).await?;
                c.forget_nodes();
                tracing::info!("pubsub cache reset");
                Ok(json!({}))
            }
            .boxed()
        },
    );
    add(
        host,
        cache,
        spec(
            actions::cache::Search::NAME,
            "Searches cached items: full text, filters on parsed fields, order, limit (see doc/pubsub_cache.rst)",
            false,
            vec![Param::required(
                "query",
                ParamType::Object,
                "the search (fts, profiles, services, nodes, types, subtypes, item_ids, filters, order_by, limit, index, with_xml)",
            )],
        ),
        |c, call| {
            async move {
                let q: search::Query = serde_json::from_value(Value::Object(call.args.object("query").cloned().unwrap_or_default()))
                    .map_err(|e| bad("query", e))?;
                let mut pids = Vec::new();
                for p in &q.profiles {
                    pids.push(c.host.profile_id(p).await?);
                }
                let built = search::build(&q, &pids).map_err(|e| bad("query", e))?;
                let db = c.host.database();
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
                    let parsed: Option<String> = r.try_get("", "parsed").map_err(dao::db_err)?;
                    let mut item = json!({
                        "profile": names.get(&pid),
                        "service": r.try_get::<String>("", "service").map_err(dao::db_err)?,
                        "node": r.try_get::<String>("", "node").map_err(dao::db_err)?,
                        "type": r.try_get::<Option<String>>("", "type").map_err(dao::db_err)?,
                        "subtype": r.try_get::<Option<String>>("", "subtype").map_err(dao::db_err)?,
                        "item_id": r.try_get::<String>("", "item_id").map_err(dao::db_err)?,
                        "publisher": r.try_get::<Option<String>>("", "publisher").map_err(dao::db_err)?,
                        "parsed": parsed.and_then(|p| serde_json::from_str::<Value>(&p).ok()),
                        "created": r.try_get::<i64>("", "created").map_err(dao::db_err)?,
                        "updated": r.try_get::<i64>("", "updated").map_err(dao::db_err)?,
                    });
                    if built.with_xml {
                        item["xml"] = json!(r.try_get::<String>("", "data").map_err(dao::db_err)?);
                    }
                    if q.fts.is_some() {
                        item["rank"] = json!(r.try_get::<f64>("", "rank").ok());
                    }
                    out.push(item);
                }
                Ok(json!({"items": out}))
            }
            .boxed()
        },
    );
}
