//! Several daemons on one database: each profile owned by exactly one at a time.
//!
//! Why leases in the database, not a coordinator: the database is the one thing every
//! daemon of an installation already shares, and it must be reachable for a daemon to
//! do anything useful; nothing else (no election service, no D-Bus, which is per
//! machine) is needed. A desktop's single perchd runs the same code with one node.
//!
//! - **Nodes.** A daemon holds a name (`[cluster] node`, the host name by default) in
//!   `daemon_node` and keeps its heartbeat fresh every [`Cluster::beat_every`]. A
//!   second daemon with a live name is refused at start; the row of a daemon that
//!   died (its heartbeat older than the lease, or, on the same host, its pid gone)
//!   is taken over.
//! - **Leases.** `profile_lease` names each profile's owner. Acquiring one raises its
//!   fencing token; it is granted when the profile has no owner, when we own it, or
//!   when its owner's heartbeat is older than the lease (that daemon is gone). A lease
//!   is not renewed one by one: it lives as long as its owner's heartbeat, so a
//!   thousand profiles cost one write per beat.
//! - **Fencing.** Every history and outbox write for a profile runs [`Cluster::check`]
//!   in its transaction: the write is refused unless we hold the profile's current
//!   token, or nobody live holds it. A daemon paused past its lease (and taken over)
//!   cannot write a message twice when it wakes; it finds its leases gone at its next
//!   beat and stops those sessions.
//!
//! Clocks: heartbeats are wall-clock milliseconds of each daemon; daemons on several
//! machines need their clocks in step (NTP) to well under the lease (10 s).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect,
};

use crate::db::entities::{daemon_node, profile_lease};
use crate::error::{Error, Result};

/// How long a daemon's leases outlive its last heartbeat.
pub const LEASE: Duration = Duration::from_secs(10);

/// Who this daemon is.
#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub host: String,
    pub pid: i64,
    pub started_at: i64,
}

/// Why a daemon could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(
        "the node name {name:?} is held by a running daemon (pid {pid} on {host}, heartbeat \
         {ago_ms} ms ago): give this daemon another `[cluster] node` name, or wait {lease} s \
         if that daemon is gone"
    )]
    NameTaken {
        name: String,
        host: String,
        pid: i64,
        ago_ms: i64,
        lease: u64,
    },
    #[error("registering the daemon's node: {0}")]
    Storage(#[from] DbErr),
}

/// This daemon's place among the daemons sharing the database.
pub struct Cluster {
    db: DatabaseConnection,
    node: Node,
    lease_ms: i64,
    /// The fencing token of each profile we hold a lease on.
    tokens: Mutex<HashMap<i32, i64>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The machine's host name (Linux), for telling daemons apart in `perch status`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether a process with this pid runs on this machine.
fn pid_alive(pid: i64) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether the daemon of a `daemon_node` row still runs: its heartbeat is younger
/// than the lease and, when it ran on this machine, its process is there (a clean
/// stop zeroes the heartbeat). Also what `perch-admin` asks before it moves a
/// database.
pub fn node_is_live(host: &str, pid: i64, heartbeat_at: i64) -> bool {
    let fresh = now_ms() - heartbeat_at <= i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX);
    fresh && (host != host_name() || pid_alive(pid))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Cluster {
    /// Registers this daemon as `name` (the host name when empty), refusing a name a
    /// live daemon holds.
    pub async fn join(db: DatabaseConnection, name: &str) -> Result<Self, JoinError> {
        let host = host_name();
        let node = Node {
            name: if name.is_empty() {
                host.clone()
            } else {
                name.to_owned()
            },
            host,
            pid: i64::from(std::process::id()),
            started_at: now_ms(),
        };
        let me = Self {
            db,
            node,
            lease_ms: i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX),
            tokens: Mutex::default(),
        };
        me.claim_node().await?;
        tracing::info!(node = %me.node.name, "joined the daemons of this database");
        Ok(me)
    }

    async fn claim_node(&self) -> Result<(), JoinError> {
        let n = &self.node;
        if let Some(row) = daemon_node::Entity::find_by_id(n.name.clone())
            .one(&self.db)
            .await?
        {
            let ago_ms = now_ms() - row.heartbeat_at;
            if node_is_live(&row.host, row.pid, row.heartbeat_at) {
                return Err(JoinError::NameTaken {
                    name: row.name,
                    host: row.host,
                    pid: row.pid,
                    ago_ms,
                    lease: LEASE.as_secs(),
                });
            }
            tracing::info!(node = %n.name, pid = row.pid, host = %row.host, "taking over the node of a daemon that is gone");
        }
        let row = daemon_node::ActiveModel {
            name: Set(n.name.clone()),
            host: Set(n.host.clone()),
            pid: Set(n.pid),
            started_at: Set(n.started_at),
            heartbeat_at: Set(now_ms()),
        };
        daemon_node::Entity::insert(row)
            .on_conflict(
                OnConflict::column(daemon_node::Column::Name)
                    .update_columns([
                        daemon_node::Column::Host,
                        daemon_node::Column::Pid,
                        daemon_node::Column::StartedAt,
                        daemon_node::Column::HeartbeatAt,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await?;
        // What a previous daemon of this name held (it is gone) is free again: this
        // one holds no session yet, and takes its share afresh.
        profile_lease::Entity::update_many()
            .col_expr(profile_lease::Column::Owner, Expr::value(""))
            .filter(profile_lease::Column::Owner.eq(n.name.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// This daemon's name.
    pub fn name(&self) -> &str {
        &self.node.name
    }

    /// How often [`Cluster::beat`] runs: a fifth of the lease.
    pub fn beat_every() -> Duration {
        LEASE / 5
    }

    /// The names of the daemons whose heartbeat is fresh.
    async fn live_nodes(&self, db: &impl ConnectionTrait) -> Result<HashSet<String>> {
        let since = now_ms() - self.lease_ms;
        Ok(daemon_node::Entity::find()
            .filter(daemon_node::Column::HeartbeatAt.gte(since))
            .all(db)
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect())
    }

    /// How many daemons are live (at least this one).
    pub async fn live_count(&self) -> Result<usize> {
        Ok(self.live_nodes(&self.db).await?.len().max(1))
    }

    /// Each profile's live owner (profiles without one are left out).
    pub async fn owners(&self) -> Result<HashMap<i32, String>> {
        let live = self.live_nodes(&self.db).await?;
        Ok(profile_lease::Entity::find()
            .all(&self.db)
            .await?
            .into_iter()
            .filter(|l| live.contains(&l.owner))
            .map(|l| (l.profile_id, l.owner))
            .collect())
    }

    /// The live daemon other than this one that owns the profile, if any.
    pub async fn owned_elsewhere(&self, profile_id: i32) -> Result<Option<String>> {
        let Some(lease) = profile_lease::Entity::find_by_id(profile_id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if lease.owner == self.node.name {
            return Ok(None);
        }
        let live = self.live_nodes(&self.db).await?;
        Ok(live.contains(&lease.owner).then_some(lease.owner))
    }

    /// Takes the profile's lease (raising its token), or names its live owner.
    pub async fn acquire(&self, profile: &str, profile_id: i32) -> Result<i64> {
        let txn = crate::db::begin_write(&self.db, "taking a profile's lease", profile).await?;
        // The row first (unowned, token 0, unless it exists), then read it locked:
        // on PostgreSQL two daemons taking a new profile at once wait for each other
        // there (SQLite's BEGIN IMMEDIATE already has them one at a time).
        profile_lease::Entity::insert(profile_lease::ActiveModel {
            profile_id: Set(profile_id),
            owner: Set(String::new()),
            token: Set(0),
        })
        .on_conflict_do_nothing()
        .exec(&txn)
        .await?;
        let current = profile_lease::Entity::find_by_id(profile_id)
            .lock_exclusive()
            .one(&txn)
            .await?
            .ok_or_else(|| Error::Internal(format!("no lease row for profile #{profile_id}")))?;
        if current.owner != self.node.name
            && !current.owner.is_empty()
            && self.live_nodes(&txn).await?.contains(&current.owner)
        {
            return Err(Error::OwnedElsewhere {
                profile: profile.to_owned(),
                owner: current.owner,
            });
        }
        let token = current.token + 1;
        profile_lease::Entity::update_many()
            .col_expr(
                profile_lease::Column::Owner,
                Expr::value(self.node.name.as_str()),
            )
            .col_expr(profile_lease::Column::Token, Expr::value(token))
            .filter(profile_lease::Column::ProfileId.eq(profile_id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        lock(&self.tokens).insert(profile_id, token);
        tracing::debug!(%profile, token, "lease acquired");
        Ok(token)
    }

    /// Gives the profile's lease up (its owner emptied, its token kept, so tokens
    /// only ever rise): another daemon may take it at once.
    pub async fn release(&self, profile_id: i32) -> Result<()> {
        profile_lease::Entity::update_many()
            .col_expr(profile_lease::Column::Owner, Expr::value(""))
            .filter(profile_lease::Column::ProfileId.eq(profile_id))
            .filter(profile_lease::Column::Owner.eq(self.node.name.as_str()))
            .exec(&self.db)
            .await?;
        lock(&self.tokens).remove(&profile_id);
        Ok(())
    }

    /// Gives every lease we hold up, and our heartbeat (a clean stop): other
    /// daemons take the profiles at their next beat.
    pub async fn release_all(&self) -> Result<()> {
        profile_lease::Entity::update_many()
            .col_expr(profile_lease::Column::Owner, Expr::value(""))
            .filter(profile_lease::Column::Owner.eq(self.node.name.as_str()))
            .exec(&self.db)
            .await?;
        daemon_node::Entity::update_many()
            .col_expr(daemon_node::Column::HeartbeatAt, Expr::value(0))
            .filter(daemon_node::Column::Name.eq(self.node.name.as_str()))
            .filter(daemon_node::Column::Pid.eq(self.node.pid))
            .exec(&self.db)
            .await?;
        lock(&self.tokens).clear();
        Ok(())
    }

    /// Refreshes our heartbeat; returns the profiles whose lease we lost (another
    /// daemon took them while we were away), which the caller must stop.
    pub async fn beat(&self) -> Result<Vec<i32>> {
        let n = &self.node;
        let renewed = daemon_node::Entity::update_many()
            .col_expr(daemon_node::Column::HeartbeatAt, Expr::value(now_ms()))
            .filter(daemon_node::Column::Name.eq(n.name.as_str()))
            .filter(daemon_node::Column::Pid.eq(n.pid))
            .filter(daemon_node::Column::StartedAt.eq(n.started_at))
            .exec(&self.db)
            .await?;
        if renewed.rows_affected == 0 {
            tracing::error!(node = %n.name, "another daemon took this daemon's node name");
        } else if self.held_count().await? == lock(&self.tokens).len() as u64 {
            // Nothing taken from us (only a daemon of another name takes a lease,
            // and it changes the owner): a count, not a thousand rows, each beat.
            return Ok(vec![]);
        }
        let held: HashMap<i32, i64> = profile_lease::Entity::find()
            .filter(profile_lease::Column::Owner.eq(n.name.as_str()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|l| (l.profile_id, l.token))
            .collect();
        let mut tokens = lock(&self.tokens);
        let lost: Vec<i32> = tokens
            .iter()
            .filter(|(p, t)| renewed.rows_affected == 0 || held.get(p) != Some(t))
            .map(|(p, _)| *p)
            .collect();
        for p in &lost {
            tokens.remove(p);
        }
        Ok(lost)
    }

    /// How many leases name this daemon.
    async fn held_count(&self) -> Result<u64> {
        Ok(profile_lease::Entity::find()
            .filter(profile_lease::Column::Owner.eq(self.node.name.as_str()))
            .count(&self.db)
            .await?)
    }

    /// The fence of every history and outbox write for `profile_id`, run in the
    /// write's transaction: refused unless we hold the profile's current token, or no
    /// live daemon holds the profile.
    pub async fn check(&self, db: &impl ConnectionTrait, profile_id: i32) -> Result<()> {
        let held = lock(&self.tokens).get(&profile_id).copied();
        // Locked for share on PostgreSQL: a daemon taking the lease over waits for
        // this write's transaction to end (SQLite: the write lock is held already).
        let lease = profile_lease::Entity::find_by_id(profile_id)
            .lock_shared()
            .one(db)
            .await?;
        match (lease, held) {
            (None, _) => Ok(()),
            (Some(l), _) if l.owner.is_empty() => Ok(()),
            (Some(l), Some(t)) if l.owner == self.node.name && l.token == t => Ok(()),
            (Some(l), None) if l.owner == self.node.name => Ok(()),
            (Some(l), _) => {
                if l.owner != self.node.name && !self.live_nodes(db).await?.contains(&l.owner) {
                    return Ok(());
                }
                Err(Error::LeaseLost {
                    profile_id,
                    owner: l.owner,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests;
