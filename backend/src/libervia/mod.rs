//! Libervia 0.9's D-Bus bridge, served by perchd beside its native one, so that
//! Libervia's own frontends (`libervia-cli`, `libervia-tui`) run on Perch unchanged.
//!
//! Why a second bridge rather than a shim process: the frontends find their backend by
//! bus name, call it with Libervia's names and shapes, and decode Libervia's errors, so
//! whoever owns `org.libervia.Libervia` must speak all of that exactly. This module
//! only translates at the edge (`doc/libervia-compat.rst`): profile keys
//! (`@DEFAULT@`), `a{ss}` booleans, JSON-in-string fields, `-1` for "no limit", result
//! shapes. Every call lands on the same [`Daemon`] services, plugin actions and pubsub
//! cache as the native bridge; nothing is implemented twice.
//!
//! - [`table`]: every method and signal of the two interfaces (introspection data).
//! - [`dispatch`]: the two hand-written `zbus` interfaces, table-driven.
//! - [`core`] and [`plugin`]: the methods with real behaviour.
//! - [`signals`]: daemon events as Libervia signals.
//! - [`errors`]: Perch errors as Libervia exceptions.
//! - [`params`]: Libervia's parameters on Perch profiles.

pub mod actions;
pub mod core;
pub mod dispatch;
pub mod errors;
pub mod params;
pub mod plugin;
pub mod signals;
pub mod syntax;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use zbus::Connection;
use zbus::fdo::{RequestNameFlags, RequestNameReply};

use crate::daemon::Daemon;
use errors::LibError;
use params::Params;

pub const BUS_NAME: &str = "org.libervia.Libervia";
pub const PATH: &str = "/org/libervia/Libervia/bridge";
pub const CORE_INTERFACE: &str = "org.libervia.Libervia.core";
pub const PLUGIN_INTERFACE: &str = "org.libervia.Libervia.plugin";

/// What the bridge keeps beside the daemon: Libervia's notion of a started "session"
/// (the profile password was given), pending subscription requests, and which
/// profiles were announced as connected (so `connected` goes out once, before the
/// reply to `connect`).
pub struct Lib {
    pub daemon: Arc<Daemon>,
    pub params: Params,
    sessions: Mutex<HashMap<String, i64>>,
    waiting_sub: Mutex<HashMap<String, HashMap<String, String>>>,
    announced: Mutex<HashSet<String>>,
    /// Dialogs sent with `actionNew` and not answered yet (`actionsGet`).
    actions: Mutex<actions::Table>,
    /// Woken each time a profile is announced as connected.
    announced_changed: tokio::sync::Notify,
    conn: OnceLock<Connection>,
}

/// How the start-up went; the daemon runs on in every case.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    Serving,
    Disabled,
    NameTaken,
}

impl Lib {
    pub fn new(daemon: Arc<Daemon>) -> Arc<Self> {
        Arc::new(Self {
            params: Params::new(daemon.clone()),
            daemon,
            sessions: Mutex::default(),
            waiting_sub: Mutex::default(),
            announced: Mutex::default(),
            actions: Mutex::default(),
            announced_changed: tokio::sync::Notify::new(),
            conn: OnceLock::new(),
        })
    }

    /// Resolves a Libervia profile key to a profile name: `@DEFAULT@` (or `""`) is the
    /// default profile, `@NONE@` is `ProfileNotSetError`, anything else must exist.
    pub async fn profile(&self, key: &str) -> Result<String, LibError> {
        match key {
            "@NONE@" => Err(LibError::exc(
                errors::PROFILE_NOT_SET,
                "no profile given (@NONE@)",
                "",
            )),
            "@DEFAULT@" | "" => match self.daemon.resolve_profile("").await {
                Ok(m) => Ok(m.name),
                Err(crate::error::Error::NoDefaultProfile) => {
                    // Libervia picks the first profile, and remembers it.
                    let first = self.daemon.profile_list().await?.into_iter().next();
                    match first {
                        Some(m) => {
                            self.daemon.set_default_profile(&m.name).await?;
                            Ok(m.name)
                        }
                        None => Err(LibError::exc(
                            errors::PROFILE_NOT_SET,
                            "there is no profile yet",
                            "",
                        )),
                    }
                }
                Err(e) => Err(e.into()),
            },
            name => Ok(self.daemon.profile(name).await?.name),
        }
    }

    /// Starts the Libervia session of `profile`; true when it was started already.
    fn start_session(&self, profile: &str) -> bool {
        let mut s = lock(&self.sessions);
        if s.contains_key(profile) {
            return true;
        }
        s.insert(profile.to_owned(), crate::time::now_micros() / 1_000_000);
        false
    }

    fn session_started(&self, profile: &str) -> Option<i64> {
        lock(&self.sessions).get(profile).copied()
    }

    fn end_session(&self, profile: &str) {
        lock(&self.sessions).remove(profile);
    }

    /// Emits a signal on one of the two interfaces; logged when it cannot be sent.
    pub async fn emit<B>(&self, interface: &str, name: &str, body: &B)
    where
        B: serde::Serialize + zbus::DynamicType,
    {
        let Some(conn) = self.conn.get() else { return };
        if let Err(e) = conn
            .emit_signal(None::<&str>, PATH, interface, name, body)
            .await
        {
            tracing::warn!(signal = name, error = %e, "a Libervia signal could not be sent");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why the Libervia bridge could not start (the daemon goes on without it).
#[derive(Debug, thiserror::Error)]
pub enum LiberviaStartError {
    #[error("D-Bus bus {bus} for the Libervia bridge: {source}")]
    Bus { bus: String, source: zbus::Error },
}

/// Serves the two interfaces, then asks for the name: only once every method is
/// registered, so the first introspection is complete and `getReady` answers at once.
/// The name is asked for without replacing an owner and without queueing: a running
/// Libervia backend keeps it, and perchd says so and serves its native bridge only.
pub async fn start(daemon: Arc<Daemon>) -> Result<(Started, Option<Arc<Lib>>), LiberviaStartError> {
    let cfg = daemon.config().libervia.clone();
    if !cfg.enabled {
        tracing::info!("Libervia bridge disabled in the configuration");
        return Ok((Started::Disabled, None));
    }
    if cfg.bus == "session" && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        tracing::info!("no session bus (DBUS_SESSION_BUS_ADDRESS unset): Libervia bridge off");
        return Ok((Started::Disabled, None));
    }
    let lib = Lib::new(daemon.clone());
    let builder = if cfg.bus == "session" {
        zbus::connection::Builder::session()
    } else {
        zbus::connection::Builder::address(cfg.bus.as_str())
    };
    let bus_err = |source| LiberviaStartError::Bus {
        bus: cfg.bus.clone(),
        source,
    };
    let conn = builder
        .serve_at(PATH, dispatch::CoreIface(lib.clone()))
        .serve_at(PATH, dispatch::PluginIface(lib.clone()))
        .build()
        .await
        .map_err(bus_err)?;
    let _ = lib.conn.set(conn.clone());
    tokio::spawn(signals::forward(lib.clone(), daemon.subscribe()));
    let flags = RequestNameFlags::DO_NOT_QUEUE;
    match conn.request_name_with_flags(BUS_NAME, flags).await {
        Ok(RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner) => {
            tracing::info!(bus = %cfg.bus, name = BUS_NAME, "serving the Libervia bridge");
            Ok((Started::Serving, Some(lib)))
        }
        Ok(_) | Err(zbus::Error::NameTaken) => {
            tracing::warn!(
                name = BUS_NAME,
                "another program (a running Libervia backend?) owns the Libervia bus name; \
                 perchd leaves it alone and serves only its native bridge"
            );
            let _ = conn.close().await;
            Ok((Started::NameTaken, None))
        }
        Err(e) => Err(bus_err(e)),
    }
}

/// The D-Bus activation file that makes a Libervia frontend start perchd when nothing
/// owns the name: `~/.local/share/dbus-1/services/org.libervia.Libervia.service`
/// (per-user service files come before the system's, so Debian's own file for
/// `libervia-backend` is not in the way).
pub fn service_file(exec: &std::path::Path, config: Option<&std::path::Path>) -> String {
    let mut line = exec.display().to_string();
    if let Some(c) = config {
        line.push_str(" --config ");
        line.push_str(&c.display().to_string());
    }
    format!("[D-BUS Service]\nName={BUS_NAME}\nExec={line}\n")
}

/// Where the activation file goes: `$XDG_DATA_HOME/dbus-1/services` (default
/// `~/.local/share/dbus-1/services`).
pub fn service_path() -> Option<std::path::PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
    };
    Some(
        base.join("dbus-1/services")
            .join(format!("{BUS_NAME}.service")),
    )
}

/// Writes the activation file for this perchd; returns its path.
pub fn install_service(config: Option<&std::path::Path>) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;
    let exe = std::env::current_exe().context("finding perchd's own path")?;
    let path = service_path().context("HOME is not set: cannot find the D-Bus services dir")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let config = config.map(std::path::absolute).transpose()?;
    std::fs::write(&path, service_file(&exe, config.as_deref()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_file_names_the_bus_name_and_this_perchd() {
        let f = service_file(
            std::path::Path::new("/opt/perch/perchd"),
            Some(std::path::Path::new("/home/u/perchd.toml")),
        );
        assert_eq!(
            f,
            "[D-BUS Service]\nName=org.libervia.Libervia\n\
             Exec=/opt/perch/perchd --config /home/u/perchd.toml\n"
        );
        let f = service_file(std::path::Path::new("/usr/bin/perchd"), None);
        assert!(f.ends_with("Exec=/usr/bin/perchd\n"), "{f}");
    }
}
