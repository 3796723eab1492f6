//! Whether any frontend is listening: what Client State Indication tells the server.
//!
//! Why this definition: D-Bus does not tell a service who listens to its signals (match
//! rules live in the bus daemon), so a frontend counts from its first call until it
//! leaves. On the peer-to-peer socket, a client is its own connection: it counts while
//! connected. On a bus, a peer counts from its first method call to one of perchd's
//! interfaces until its unique name goes away (`NameOwnerChanged`). A frontend that
//! only listens makes one call first (`perch monitor` asks for the version; Libervia's
//! frontends call `getReady`).
//!
//! The answer goes absent only after [`GRACE`] without any frontend: a one-shot
//! `perch message send` between two others must not flip the server's view each time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use zbus::Connection;
use zbus::message::Type as MessageType;

/// How long no frontend must be there before the daemon counts as unwatched.
pub const GRACE: Duration = Duration::from_secs(3);

/// The frontends the daemon knows of, and the debounced answer.
pub struct Frontends {
    inner: Mutex<Known>,
    /// Raw count changes, for the debouncing task.
    raw: watch::Sender<usize>,
    /// Whether a frontend is listening, debounced.
    present: watch::Sender<bool>,
}

#[derive(Default)]
struct Known {
    /// Unique names of bus peers that called us.
    bus_peers: HashSet<String>,
    /// Connected peer-to-peer clients.
    p2p: usize,
}

impl Known {
    fn count(&self) -> usize {
        self.bus_peers.len() + self.p2p
    }
}

impl Frontends {
    /// A tracker with nobody yet; its debouncing task runs until the tracker is gone.
    pub fn new() -> Arc<Self> {
        let (raw, raw_rx) = watch::channel(0);
        let (present, _) = watch::channel(false);
        let me = Arc::new(Self {
            inner: Mutex::default(),
            raw,
            present,
        });
        tokio::spawn(debounce(raw_rx, Arc::downgrade(&me)));
        me
    }

    /// Told `true` while a frontend is listening.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.present.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut Known)) {
        let mut k = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut k);
        self.raw.send_replace(k.count());
    }

    /// A peer-to-peer client connected; it counts until the guard is dropped.
    pub fn p2p_client(self: &Arc<Self>) -> P2pGuard {
        self.update(|k| k.p2p += 1);
        P2pGuard(self.clone())
    }

    /// Follows the method calls made to us on the bus connection `conn`, and the
    /// callers leaving the bus. Returns once both watches run.
    pub async fn watch_bus(self: &Arc<Self>, conn: &Connection) -> zbus::Result<()> {
        let dbus = zbus::fdo::DBusProxy::new(conn).await?;
        let mut gone = dbus.receive_name_owner_changed().await?;
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(change) = gone.next().await {
                let Ok(args) = change.args() else { continue };
                let Some(me) = me.upgrade() else { return };
                if args.new_owner().is_none() {
                    let name = args.name().to_string();
                    me.update(|k| {
                        k.bus_peers.remove(&name);
                    });
                }
            }
        });
        let mut calls = zbus::MessageStream::from(conn);
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = calls.next().await {
                let Some(me) = me.upgrade() else { return };
                if msg.message_type() != MessageType::MethodCall {
                    continue;
                }
                let header = msg.header();
                let Some(sender) = header.sender().map(|s| s.to_string()) else {
                    continue;
                };
                if me.knows(&sender) {
                    continue;
                }
                me.update(|k| {
                    k.bus_peers.insert(sender.clone());
                });
                // It may have left before we saw its call: then no NameOwnerChanged
                // will ever remove it.
                tokio::spawn(forget_if_gone(dbus.clone(), me.clone(), sender));
            }
        });
        Ok(())
    }

    fn knows(&self, name: &str) -> bool {
        let k = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        k.bus_peers.contains(name)
    }
}

async fn forget_if_gone(dbus: zbus::fdo::DBusProxy<'static>, me: Arc<Frontends>, name: String) {
    let Ok(bus_name) = zbus::names::BusName::try_from(name.as_str()) else {
        return;
    };
    if let Ok(false) = dbus.name_has_owner(bus_name).await {
        me.update(|k| {
            k.bus_peers.remove(&name);
        });
    }
}

/// A connected peer-to-peer client (see [`Frontends::p2p_client`]).
pub struct P2pGuard(Arc<Frontends>);

impl Drop for P2pGuard {
    fn drop(&mut self) {
        self.0.update(|k| k.p2p = k.p2p.saturating_sub(1));
    }
}

/// Publishes `present`: at once when a frontend comes, after [`GRACE`] without any
/// when the last one leaves.
async fn debounce(mut raw: watch::Receiver<usize>, me: std::sync::Weak<Frontends>) {
    loop {
        let count = *raw.borrow_and_update();
        let present = {
            let Some(f) = me.upgrade() else { return };
            if count > 0 {
                f.present.send_if_modified(|p| !std::mem::replace(p, true));
            }
            *f.present.borrow()
        };
        if count == 0 && present {
            match tokio::time::timeout(GRACE, raw.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return,
                Err(_) => {
                    let Some(f) = me.upgrade() else { return };
                    if *raw.borrow() == 0 {
                        f.present.send_replace(false);
                    }
                    continue;
                }
            }
        }
        if raw.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn present_at_once_absent_after_the_grace() {
        let f = Frontends::new();
        let mut rx = f.subscribe();
        assert!(!*rx.borrow());
        let guard = f.p2p_client();
        rx.changed().await.unwrap();
        assert!(*rx.borrow());
        drop(guard);
        let left = tokio::time::Instant::now();
        rx.changed().await.unwrap();
        assert!(!*rx.borrow());
        assert!(left.elapsed() >= GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frontend_back_within_the_grace_keeps_it_present() {
        let f = Frontends::new();
        let mut rx = f.subscribe();
        let first = f.p2p_client();
        rx.changed().await.unwrap();
        drop(first);
        tokio::time::sleep(GRACE / 2).await;
        let _second = f.p2p_client();
        tokio::time::sleep(GRACE * 2).await;
        assert!(*rx.borrow(), "never went absent");
        assert!(!rx.has_changed().unwrap());
    }
}
