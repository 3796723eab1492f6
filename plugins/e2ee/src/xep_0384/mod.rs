//! XEP-0384: OMEMO end-to-end encryption, versions 0.3 and 2.
//!
//! What it does, and why this way:
//! - **One identity per profile, both versions.** The identity key (its seed sealed
//!   by the host, as the XMPP passwords are) and the device id serve 0.3 and 2, so
//!   a contact sees one fingerprint whichever version it speaks. Each version has
//!   its own prekeys (`perch_omemo::DeviceKeys`), 100 one-time prekeys kept.
//! - **PEP.** At each session start the device lists and bundles are published with
//!   the open access model (publish-options), and `+notify` on both device-list
//!   nodes keeps contacts' lists coming ([`pep`]).
//! - **Sending** ([`send`]): `message.send`, last of all handlers; only for
//!   conversations the user encrypted ([`store::encrypted`]). Every trusted device
//!   of the contact and of our own account gets the key; the wire stanza carries the
//!   ciphertext, a fallback body, XEP-0380 and a store hint, while history keeps the
//!   plaintext (`history_body`, `extra.encryption`). A message that can't be
//!   encrypted is refused (`NotEncrypted`) and nothing goes in clear: neither
//!   content without a body (a reaction) nor what repeats the body ([`clear`]).
//! - **Group chats** ([`room`]): a non-anonymous room's message is encrypted to
//!   every other occupant's real JID, which the group chat plugin tells through the
//!   shared `room.occupants` point; a room's message is read as from the occupant's
//!   real JID.
//! - **Receiving** ([`receive`]): `message.received` after carbons and archive
//!   results are unwrapped (priority below theirs), so every copy decrypts the same
//!   way. A message that can't be decrypted is kept, with a placeholder body and
//!   `extra.decryption_error`, and signalled; a key exchange is answered with an
//!   empty message so the peer's ratchet moves.
//! - **Trust** ([`trust`]): blind trust before verification.
//!
//! Key material and plaintext are never logged: logs name JIDs, device ids and
//! reasons only.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_omemo::{Identity, Version};
use perch_plugin_api::jid::BareJid;
use perch_plugin_api::points::{MessageReceived, MessageSend};
use perch_plugin_api::{BuildResult, Host, HostError, Plugin, PluginFactory, PluginInfo, Signals};

pub mod actions;
pub mod clear;
pub mod pep;
pub mod receive;
pub mod room;
pub mod send;
pub mod store;
pub mod trust;
pub mod wire;

pub const IMPORT_NAME: &str = "XEP-0384";

/// After carbons (1000), archive results (900) and before group chats (500) and
/// pubsub events (50) read a message (the group chat plugin's answers to
/// `room.occupants` do not depend on it having read this one).
pub const RECEIVE_PRIORITY: i32 = 800;

/// Last of every `message.send` handler: what the others add (receipts, chat
/// states, origin-id) stays outside the encryption, as other clients do.
pub const SEND_PRIORITY: i32 = -1000;

/// One-time prekeys kept in each bundle.
pub const PREKEYS: u32 = 100;

/// How old a signed prekey gets before it is replaced (seconds).
pub const SIGNED_PREKEY_LIFETIME: u64 = 7 * 24 * 3600;

/// How often the connected profiles' signed prekeys' age is checked: a connection
/// that lasts weeks rotates them too. One task for all profiles wakes once a day
/// (not a task per profile: a thousand idle profiles would keep a thousand sleeping
/// tasks, `doc/performance.rst`, "Many profiles").
pub const ROTATION_CHECK: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whether `keys`' signed prekey is older than [`SIGNED_PREKEY_LIFETIME`] at `now`
/// (seconds since the Unix epoch).
pub fn rotation_due(keys: &perch_omemo::DeviceKeys, now: u64) -> bool {
    now.saturating_sub(keys.signed_prekey_created()) > SIGNED_PREKEY_LIFETIME
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "OMEMO Encryption",
    description: "End-to-end encryption of messages (OMEMO 0.3 and 2)",
    dependencies: &[],
    recommendations: &["XEP-0045", "XEP-0115", "XEP-0280", "XEP-0313"],
    tables: &[
        "omemo_identity",
        "omemo_prekeys",
        "omemo_device",
        "omemo_trust",
        "omemo_session",
        "omemo_conversation",
    ],
    signals_as: None,
};

/// The plugin: its host, the versions it speaks, and the locks that serialise
/// every change of a profile's keys and sessions (a ratchet must never be advanced
/// twice from the same stored state).
pub struct Omemo {
    pub(crate) host: Arc<dyn Host>,
    pub(crate) versions: Vec<Version>,
    /// One per profile: profiles have keys and sessions of their own, so one
    /// profile's message never waits for another's keys.
    locks: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// profile → the task publishing its keys at session start, stopped when the
    /// session ends (a profile deleted meanwhile must not be written for); its keys
    /// are the profiles whose signed prekeys the daily check looks at.
    publishing: perch_plugin_api::tasks::SessionTasks,
    /// Publishing at session start, one profile at a time: a first start makes a
    /// profile's keys (hundreds of prekeys, CPU work), and a thousand profiles
    /// connecting at once made them all side by side, slowing the connections
    /// themselves and raising the memory high-water mark (`doc/performance.rst`,
    /// "Many profiles").
    publish_turn: tokio::sync::Semaphore,
}

/// Our side, for one profile: its database id, bare JID, device id and identity.
pub(crate) struct Me {
    pub pid: i32,
    pub jid: BareJid,
    pub device: u32,
    pub identity: Identity,
}

/// The versions to speak: option `versions` (`["0.3", "2"]`, the default).
pub fn versions_option(options: &serde_json::Value) -> Result<Vec<Version>, String> {
    let Some(list) = options.get("versions") else {
        return Ok(vec![Version::V2, Version::V03]);
    };
    let list = list
        .as_array()
        .ok_or("versions: a list of \"0.3\" and \"2\"")?;
    let mut out = Vec::new();
    for v in list {
        match v.as_str() {
            Some("2") => out.push(Version::V2),
            Some("0.3") => out.push(Version::V03),
            _ => return Err(format!("versions: {v} is neither \"0.3\" nor \"2\"")),
        }
    }
    if out.is_empty() {
        return Err("versions: empty".into());
    }
    out.sort_by_key(|v| *v != Version::V2);
    out.dedup();
    Ok(out)
}

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let versions = versions_option(&host.options()).map_err(perch_plugin_api::PluginError)?;
    for v in &versions {
        host.add_feature(&format!("{}+notify", wire::devicelist_node(*v)));
    }
    host.declare(perch_actions::encryption::NewKeySeen);
    host.declare(perch_actions::encryption::DecryptionFailed);
    let me = Arc::new(Omemo {
        host: host.clone(),
        versions,
        locks: std::sync::Mutex::default(),
        publishing: perch_plugin_api::tasks::SessionTasks::default(),
        publish_turn: tokio::sync::Semaphore::new(1),
    });
    let t = host.triggers();
    t.add_with::<MessageReceived, _>(RECEIVE_PRIORITY, me.clone(), receive::on_received)?;
    t.add_with::<MessageSend, _>(SEND_PRIORITY, me.clone(), send::on_send)?;
    actions::register(&me);
    tokio::spawn(rotation_checks(Arc::downgrade(&me)));
    Ok(me)
}

/// Once a day ([`ROTATION_CHECK`]), the signed prekeys of the profiles with a
/// session are rotated when due; ends with the plugin.
async fn rotation_checks(plugin: std::sync::Weak<Omemo>) {
    loop {
        tokio::time::sleep(ROTATION_CHECK).await;
        let Some(me) = plugin.upgrade() else {
            return;
        };
        for p in me.publishing.profiles() {
            if let Err(e) = me.rotate_due(&p).await {
                tracing::warn!(profile = %p, error = %e, "rotating the signed prekey failed");
            }
        }
    }
}

impl Omemo {
    /// Holds `profile`'s lock: its keys and sessions change under it only.
    pub(crate) async fn lock(&self, profile: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(profile.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    /// Our identity and device for `profile`, made (and the seed sealed) on first
    /// use.
    pub(crate) async fn me(&self, profile: &str) -> Result<Me, HostError> {
        let pid = self.host.profile_id(profile).await?;
        let jid = self
            .host
            .bound_jid(profile)
            .await
            .map(|j| j.to_bare())
            .ok_or_else(|| HostError::NotConnected(profile.to_owned()))?;
        let db = self.host.store();
        let (device, identity) = match store::identity(db, pid).await? {
            Some((device, sealed)) => {
                let seed = self.host.unseal(profile, &sealed).await?;
                let seed: [u8; 32] = seed
                    .try_into()
                    .map_err(|_| HostError::Storage("the identity seed is not 32 bytes".into()))?;
                (device, Identity::from_seed(seed))
            }
            None => {
                let identity = Identity::generate();
                let sealed = self.host.seal(profile, identity.seed()).await?;
                // Two first uses at once: the first stored wins, both read it back.
                if store::save_identity(db, pid, random_device_id(), &sealed).await? {
                    tracing::info!(%profile, "OMEMO identity created");
                }
                let (device, sealed) = store::identity(db, pid)
                    .await?
                    .ok_or_else(|| HostError::Storage("the identity was not stored".into()))?;
                let seed = self.host.unseal(profile, &sealed).await?;
                let seed: [u8; 32] = seed
                    .try_into()
                    .map_err(|_| HostError::Storage("the identity seed is not 32 bytes".into()))?;
                (device, Identity::from_seed(seed))
            }
        };
        Ok(Me {
            pid,
            jid,
            device,
            identity,
        })
    }

    /// Our prekeys for `v`, made on first use, refilled to [`PREKEYS`], the signed
    /// prekey rotated when older than [`SIGNED_PREKEY_LIFETIME`]; stored when
    /// changed.
    pub(crate) async fn device_keys(
        &self,
        me: &Me,
        v: Version,
    ) -> Result<perch_omemo::DeviceKeys, HostError> {
        let db = self.host.store();
        let Some(mut keys) = store::keys(db, me.pid, v).await? else {
            let k = perch_omemo::DeviceKeys::generate(v, &me.identity, PREKEYS);
            store::save_keys(db, me.pid, &k).await?;
            return Ok(k);
        };
        let mut changed = false;
        if rotation_due(&keys, now_secs()) {
            keys.rotate_signed_prekey(&me.identity);
            tracing::info!(pid = me.pid, version = ?v, "signed prekey rotated");
            changed = true;
        }
        if keys.prekey_count() < PREKEYS as usize {
            keys.refill_prekeys(PREKEYS as usize);
            changed = true;
        }
        if changed {
            store::save_keys(db, me.pid, &keys).await?;
        }
        Ok(keys)
    }
}

impl Omemo {
    /// Rotates each version's signed prekey that is due and publishes the bundle
    /// with the new one (the previous one still opens key exchanges in flight).
    pub(crate) async fn rotate_due(&self, profile: &str) -> Result<(), HostError> {
        let _g = self.lock(profile).await;
        let me = self.me(profile).await?;
        for v in self.versions.clone() {
            let Some(keys) = store::keys(self.host.store(), me.pid, v).await? else {
                continue;
            };
            if rotation_due(&keys, now_secs()) {
                let keys = self.device_keys(&me, v).await?;
                self.publish_bundle(profile, &me, &keys.bundle(&me.identity))
                    .await?;
            }
        }
        Ok(())
    }
}

/// A device id: random in 1..2^31 (what every client picks from).
fn random_device_id() -> u32 {
    use rand_core::RngCore;
    (rand_core::OsRng.next_u32() & 0x7fff_ffff).max(1)
}

impl Plugin for Omemo {
    fn session_started(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            // Off the inbox path: the publishing IQs come back through this session.
            let me = self.clone();
            let p = profile.clone();
            self.publishing.start(&profile, async move {
                let Ok(_turn) = me.publish_turn.acquire().await else {
                    return;
                };
                if let Err(e) = me.publish_own(&p).await {
                    tracing::warn!(profile = %p, error = %e, "publishing OMEMO keys failed");
                }
            });
        }
        .boxed()
    }

    fn session_ended(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            self.publishing.stop(&profile);
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_default_to_both_and_2_comes_first() {
        let v = versions_option(&serde_json::json!({})).unwrap();
        assert_eq!(v, [Version::V2, Version::V03]);
        let v = versions_option(&serde_json::json!({"versions": ["0.3"]})).unwrap();
        assert_eq!(v, [Version::V03]);
        let v = versions_option(&serde_json::json!({"versions": ["0.3", "2"]})).unwrap();
        assert_eq!(v, [Version::V2, Version::V03]);
        assert!(versions_option(&serde_json::json!({"versions": ["1"]})).is_err());
        assert!(versions_option(&serde_json::json!({"versions": []})).is_err());
    }
}
