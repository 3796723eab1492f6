//! Jobs: long operations with an id and a progress log, kept in the database.
//!
//! Why stored, not just signalled: a frontend that starts late, or restarts, must still
//! be able to ask how a job went (Libervia's `progress_*` signals are lost when nobody
//! listens). Each record is written before its signal goes out. Jobs still `running`
//! when perchd starts were cut off by a stop: they become `interrupted`. Finished jobs
//! are pruned after `jobs.keep_hours`.

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::{JobHandle, JobSink};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::db::entities::{job, job_progress};
use crate::error::{Error, Result};
use crate::events::{Event, EventSender, JobPhase};

/// A job as frontends see it (`JobGet`, `JobList`).
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    pub id: String,
    pub profile: String,
    pub plugin: String,
    pub kind: String,
    pub description: String,
    /// running, finished, error, interrupted
    pub state: String,
    pub status: String,
    pub percent: Option<f64>,
    pub created: String,
    pub updated: String,
    pub result: Option<Value>,
    pub error: Option<String>,
}

/// One progress record (`JobLog`).
#[derive(Debug, Clone, Serialize)]
pub struct ProgressRecord {
    pub at: String,
    pub status: String,
    pub percent: Option<f64>,
    pub data: Value,
}

#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    events: EventSender,
    keep: Duration,
    /// Profile names by id, for views and signals (jobs store the id).
    names: std::sync::Mutex<std::collections::HashMap<i32, String>>,
}

fn new_id() -> String {
    perch_plugin_api::ids::random_hex(8)
}

impl Jobs {
    pub fn new(db: DatabaseConnection, events: EventSender, keep: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                events,
                keep,
                names: Default::default(),
            }),
        }
    }

    /// At start: jobs left running by a previous perchd are interrupted; old ones go.
    pub async fn recover(&self) -> Result<u64> {
        let now = crate::time::now_micros();
        let res = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value("interrupted"))
            .col_expr(
                job::Column::Error,
                Expr::value("perchd stopped while the job was running"),
            )
            .col_expr(job::Column::Updated, Expr::value(now))
            .filter(job::Column::State.eq("running"))
            .exec(&self.inner.db)
            .await?;
        self.prune().await?;
        Ok(res.rows_affected)
    }

    /// Deletes jobs that ended longer ago than `jobs.keep_hours` (with their logs).
    pub async fn prune(&self) -> Result<u64> {
        let keep = i64::try_from(self.inner.keep.as_micros()).unwrap_or(i64::MAX);
        let cutoff = crate::time::now_micros().saturating_sub(keep);
        let res = job::Entity::delete_many()
            .filter(job::Column::State.ne("running"))
            .filter(job::Column::Updated.lt(cutoff))
            .exec(&self.inner.db)
            .await?;
        if res.rows_affected > 0 {
            tracing::info!(pruned = res.rows_affected, "old jobs pruned");
        }
        Ok(res.rows_affected)
    }

    /// Prunes every hour until the daemon stops.
    pub fn spawn_pruner(&self) -> tokio::task::JoinHandle<()> {
        let jobs = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(3600));
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = jobs.prune().await {
                    tracing::warn!(error = %e, "pruning jobs failed");
                }
            }
        })
    }

    pub async fn start(
        &self,
        profile_id: i32,
        profile: &str,
        plugin: &str,
        kind: &str,
        description: &str,
    ) -> Result<JobHandle> {
        let id = new_id();
        let now = crate::time::now_micros();
        job::ActiveModel {
            id: Set(id.clone()),
            profile_id: Set(profile_id),
            plugin: Set(plugin.to_owned()),
            kind: Set(kind.to_owned()),
            description: Set(description.to_owned()),
            state: Set("running".into()),
            status: Set("started".into()),
            percent: Set(None),
            created: Set(now),
            updated: Set(now),
            result: Set(None),
            error: Set(None),
        }
        .insert(&self.inner.db)
        .await?;
        self.inner
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(profile_id, profile.to_owned());
        tracing::info!(profile, job = %id, plugin, kind, "job started");
        let _ = self.inner.events.send(Event::Job {
            phase: JobPhase::Started,
            id: id.clone(),
            profile: profile.to_owned(),
            data: json!({"plugin": plugin, "kind": kind, "description": description}),
        });
        Ok(JobHandle::new(id, Arc::new(self.clone())))
    }

    fn profile_name(&self, profile_id: i32) -> String {
        self.inner
            .names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&profile_id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn view(&self, m: job::Model, profile: String) -> JobView {
        JobView {
            id: m.id,
            profile,
            plugin: m.plugin,
            kind: m.kind,
            description: m.description,
            state: m.state,
            status: m.status,
            percent: m.percent,
            created: crate::time::rfc3339(m.created),
            updated: crate::time::rfc3339(m.updated),
            result: m.result.and_then(|r| serde_json::from_str(&r).ok()),
            error: m.error,
        }
    }

    pub async fn get(&self, id: &str) -> Result<job::Model> {
        job::Entity::find_by_id(id.to_owned())
            .one(&self.inner.db)
            .await?
            .ok_or_else(|| Error::UnknownJob(id.to_owned()))
    }

    pub async fn log(&self, id: &str) -> Result<Vec<ProgressRecord>> {
        self.get(id).await?;
        let rows = job_progress::Entity::find()
            .filter(job_progress::Column::JobId.eq(id))
            .order_by_asc(job_progress::Column::Id)
            .all(&self.inner.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| ProgressRecord {
                at: crate::time::rfc3339(r.at),
                status: r.status,
                percent: r.percent,
                data: serde_json::from_str(&r.data).unwrap_or(Value::Null),
            })
            .collect())
    }

    /// A profile's jobs, newest first.
    pub async fn list(&self, profile_id: i32) -> Result<Vec<job::Model>> {
        Ok(job::Entity::find()
            .filter(job::Column::ProfileId.eq(profile_id))
            .order_by_desc(job::Column::Created)
            .all(&self.inner.db)
            .await?)
    }

    async fn record(
        &self,
        id: &str,
        status: &str,
        percent: Option<f64>,
        data: Value,
    ) -> Result<()> {
        let Some(row) = job::Entity::find_by_id(id.to_owned())
            .one(&self.inner.db)
            .await?
        else {
            return Err(Error::UnknownJob(id.to_owned()));
        };
        let now = crate::time::now_micros();
        job_progress::ActiveModel {
            job_id: Set(id.to_owned()),
            at: Set(now),
            status: Set(status.to_owned()),
            percent: Set(percent),
            data: Set(data.to_string()),
            ..Default::default()
        }
        .insert(&self.inner.db)
        .await?;
        let profile = self.profile_name(row.profile_id);
        let mut active: job::ActiveModel = row.into();
        active.status = Set(status.to_owned());
        if percent.is_some() {
            active.percent = Set(percent);
        }
        active.updated = Set(now);
        active.update(&self.inner.db).await?;
        let _ = self.inner.events.send(Event::Job {
            phase: JobPhase::Progress,
            id: id.to_owned(),
            profile,
            data: json!({"status": status, "percent": percent, "data": data}),
        });
        Ok(())
    }

    async fn end(&self, id: &str, outcome: std::result::Result<Value, String>) -> Result<()> {
        let Some(row) = job::Entity::find_by_id(id.to_owned())
            .one(&self.inner.db)
            .await?
        else {
            return Err(Error::UnknownJob(id.to_owned()));
        };
        if row.state != "running" {
            return Ok(());
        }
        let profile = self.profile_name(row.profile_id);
        let mut active: job::ActiveModel = row.into();
        active.updated = Set(crate::time::now_micros());
        let (phase, data) = match &outcome {
            Ok(result) => {
                active.state = Set("finished".into());
                active.status = Set("finished".into());
                active.percent = Set(Some(100.0));
                active.result = Set(Some(result.to_string()));
                (JobPhase::Finished, result.clone())
            }
            Err(e) => {
                active.state = Set("error".into());
                active.status = Set("failed".into());
                active.error = Set(Some(e.clone()));
                (JobPhase::Error, json!({ "error": e }))
            }
        };
        active.update(&self.inner.db).await?;
        tracing::info!(%profile, job = %id, ok = outcome.is_ok(), "job ended");
        let _ = self.inner.events.send(Event::Job {
            phase,
            id: id.to_owned(),
            profile,
            data,
        });
        Ok(())
    }
}

impl JobSink for Jobs {
    fn progress(
        &self,
        id: &str,
        status: &str,
        percent: Option<f64>,
        data: Value,
    ) -> BoxFuture<'_, ()> {
        let (id, status) = (id.to_owned(), status.to_owned());
        async move {
            if let Err(e) = self.record(&id, &status, percent, data).await {
                tracing::warn!(job = %id, error = %e, "recording job progress failed");
            }
        }
        .boxed()
    }

    fn finish(&self, id: &str, result: Value) -> BoxFuture<'_, ()> {
        let id = id.to_owned();
        async move {
            if let Err(e) = self.end(&id, Ok(result)).await {
                tracing::warn!(job = %id, error = %e, "recording a job's end failed");
            }
        }
        .boxed()
    }

    fn fail(&self, id: &str, error: &str) -> BoxFuture<'_, ()> {
        let (id, error) = (id.to_owned(), error.to_owned());
        async move {
            if let Err(e) = self.end(&id, Err(error)).await {
                tracing::warn!(job = %id, error = %e, "recording a job's failure failed");
            }
        }
        .boxed()
    }
}
