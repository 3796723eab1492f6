//! Starting and stopping the daemon: the order things come up and go down in.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::bridge::Bridge;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::daemon::Daemon;
use crate::profiles::Profiles;
use crate::secret::Sealer;

/// Runs perchd until SIGTERM or SIGINT; returns once everything is closed.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Signals first: a SIGTERM during start-up still ends in a clean shutdown.
    let signals = Signals::install()?;
    perch_plugin_api::ids::check().context("checking the random number generator")?;
    let data_dir: PathBuf = config.data_dir();
    create_private_dir(&data_dir)?;
    let sealer = Sealer::load_or_create(&data_dir.join("secret.key"))?;
    let target = config.database();
    let db = crate::db::open(&target).await?;
    tracing::info!(database = %target.shown(), "database ready");

    let cluster = Cluster::join(db.clone(), &config.cluster.node)
        .await
        .context("joining the daemons of this database")?;
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    let daemon = Daemon::in_cluster(config, db, profiles, Arc::new(cluster));
    daemon
        .start_plugins(crate::plugins::builtin(), |info| {
            crate::host::DaemonHost::new(&daemon, info)
        })
        .await
        .context("starting plugins")?;
    let pruner = daemon.spawn_job_pruner();
    let trimmer = crate::memory::spawn_trimmer();
    let bridge = Bridge::start(daemon.clone())
        .await
        .context("starting the D-Bus bridge")?;
    // After the native bridge: a Libervia backend owning the name, or no bus, only
    // turns this one off.
    let _libervia = match crate::libervia::start(daemon.clone()).await {
        Ok((_, lib)) => lib,
        Err(e) => {
            tracing::warn!(error = %e, "the Libervia bridge could not start; serving the native bridge only");
            None
        }
    };
    daemon.autoconnect().await?;
    let balancer = daemon.spawn_balancer();
    tracing::info!(version = env!("CARGO_PKG_VERSION"), "perchd ready");

    signals.wait().await;
    tracing::info!("shutting down");
    bridge.stop();
    pruner.abort();
    trimmer.abort();
    if let Some(b) = balancer {
        b.abort();
    }
    daemon.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to its owner", dir.display()))?;
    }
    if !dir.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    Ok(())
}

/// SIGTERM and SIGINT end the daemon cleanly; SIGHUP is logged and ignored (there is
/// no configuration reload yet, and a hang-up must not kill the sessions).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn wait(mut self) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return tracing::info!("SIGTERM received"),
                _ = self.int.recv() => return tracing::info!("SIGINT received"),
                _ = self.hup.recv() => tracing::info!("SIGHUP ignored: perchd has no configuration reload"),
            }
        }
    }
}
