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
//! The modules, from the top down; each uses only modules below it (checked by
//! the `layers` test: a change that makes an import go up, or a circle, fails it):
//!
//! 1. this module: starts the bridge (the two interfaces, then the signal forwarder).
//! 2. [`dispatch`]: the two hand-written `zbus` interfaces; a call's row, its
//!    signature check, its handler, the reply.
//! 3. [`table`]: every method and signal of the two interfaces, each method with
//!    its handler if perchd implements it.
//! 4. [`handlers`]: the handlers, one named function per method, by domain
//!    (profiles, params, roster, messages, muc, pubsub, cache, blog, misc); then
//!    the helpers in `handlers` itself.
//! 5. [`signals`]: daemon events as Libervia signals; then [`room_events`], the
//!    group chat plugin's signals and a room's messages, and [`room_commands`], the
//!    text commands of a room (`/kick`…); then [`actions`], the dialogs perchd
//!    sends; then [`trust_ui`], the OMEMO trust form.
//! 6. [`context`]: [`Lib`], the bridge's state beside the daemon; then [`rooms`],
//!    the group chats announced to the frontends and their shapes.
//! 7. [`params`]: Libervia's parameters on Perch profiles; [`shapes`] and
//!    [`pubsub_json`]: Perch's records in Libervia's shapes.
//! 8. [`reply`]: answers and argument decoding; [`syntax`]: composition syntaxes.
//! 9. [`errors`]: Perch errors as Libervia exceptions.

pub mod actions;
pub mod context;
pub mod dispatch;
pub mod encryption;
pub mod encryption_menu;
pub mod errors;
pub mod handlers;
pub mod params;
pub mod pubsub_json;
pub mod reply;
pub mod room_commands;
pub mod room_config;
pub mod room_events;
pub mod rooms;
pub mod shapes;
pub mod signals;
pub mod syntax;
pub mod table;
pub mod trust_ui;

#[cfg(test)]
mod layers;

use std::sync::Arc;

use zbus::fdo::{RequestNameFlags, RequestNameReply};

pub use context::{BUS_NAME, CORE_INTERFACE, Lib, PATH, PLUGIN_INTERFACE};

use crate::daemon::Daemon;

/// How the start-up went; the daemon runs on in every case.
#[derive(Debug, PartialEq, Eq)]
pub enum Started {
    Serving,
    Disabled,
    NameTaken,
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
            if let Err(e) = daemon.frontends().watch_bus(&conn).await {
                tracing::warn!(error = %e, "cannot follow Libervia's frontends on the bus; they count as absent");
            }
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
