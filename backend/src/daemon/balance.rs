//! Spreading the autoconnect profiles over the daemons that share the database, and
//! taking over those of a daemon that died (`cluster.rs` holds the leases).
//!
//! Why a periodic pass and not events: daemons on several machines share nothing but
//! the database, and a daemon killed with SIGKILL says nothing; its heartbeat just
//! stops. Every beat ([`Cluster::beat_every`]) each daemon refreshes its heartbeat,
//! stops the sessions whose lease it lost, then takes its share of the autoconnect
//! profiles no live daemon owns (their outbox goes on from the database, their
//! archive catch-up runs at the session's start, as after any restart), or gives up
//! what it holds past its share when another daemon joined. Alone, a daemon skips
//! the pass after its first: nothing can be free then.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cluster::Cluster;
use crate::db::entities::profile;
use crate::error::Result;

use super::Daemon;

impl Daemon {
    /// Runs [`Daemon::balance`] every beat until the daemon ends; `None` without a
    /// cluster.
    pub fn spawn_balancer(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        self.cluster.as_ref()?;
        let me = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Cluster::beat_every()).await;
                let Some(daemon) = me.upgrade() else { return };
                if let Err(e) = daemon.balance().await {
                    tracing::warn!(error = %e, "the daemons' heartbeat and balance failed; trying again at the next beat");
                }
            }
        }))
    }

    /// One beat: the heartbeat, lost leases stopped, this daemon's share taken or
    /// given back (see the module doc).
    pub async fn balance(self: &Arc<Self>) -> Result<()> {
        let Some(c) = self.cluster.clone() else {
            return Ok(());
        };
        for id in c.beat().await? {
            self.stop_lost(id).await;
        }
        let live = c.live_count().await?;
        if live == 1 && self.balanced_alone.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        if live > 1 {
            self.balanced_alone.store(false, Ordering::Relaxed);
        }
        let owners = c.owners().await?;
        let auto: Vec<profile::Model> = self
            .profiles
            .list()
            .await?
            .into_iter()
            .filter(|m| m.autoconnect)
            .collect();
        let share = auto.len().div_ceil(live);
        let mine: Vec<&profile::Model> = auto
            .iter()
            .filter(|m| owners.get(&m.id).map(String::as_str) == Some(c.name()))
            .collect();
        if mine.len() > share {
            for m in mine.iter().rev().take(mine.len() - share) {
                self.give_up(&c, m).await;
            }
            return Ok(());
        }
        let free = auto.iter().filter(|m| !owners.contains_key(&m.id));
        for m in free.take(share - mine.len()) {
            let (me, name, jid) = (self.clone(), m.name.clone(), m.jid.clone());
            tokio::spawn(async move {
                if let Err(e) = me.connect(&name).await {
                    tracing::warn!(profile = %name, %jid, error = %e, "autoconnect failed");
                }
            });
        }
        Ok(())
    }

    /// Stops the session of a profile whose lease another daemon took.
    async fn stop_lost(&self, profile_id: i32) {
        let found = {
            let mut sessions = self.sessions.lock().await;
            let name = sessions
                .iter()
                .find(|(_, s)| s.profile_id == profile_id)
                .map(|(n, _)| n.clone());
            name.and_then(|n| sessions.remove(&n).map(|s| (n, s)))
        };
        if let Some((name, s)) = found {
            tracing::warn!(profile = %name, "another daemon took this profile over; its session here stops");
            s.disconnect().await;
        }
    }

    /// Disconnects a profile held past this daemon's share and gives its lease up,
    /// for a daemon with fewer to take.
    async fn give_up(&self, c: &Cluster, m: &profile::Model) {
        tracing::info!(profile = %m.name, jid = %m.jid, "handing the profile to another daemon");
        let _ = self.disconnect(&m.name).await;
        if let Err(e) = c.release(m.id).await {
            tracing::warn!(profile = %m.name, error = %e, "giving the profile's lease up");
        }
    }
}
