//! The daemon's side of the plugin contract: [`DaemonHost`] implements
//! [`perch_plugin_api::Host`] on top of [`Daemon`].
//!
//! One host per plugin, bound to its import name: whatever the plugin registers is
//! filed under the name the daemon read from its declaration, never one the plugin
//! passes, and its store reaches only the tables it declared.
//!
//! It holds the daemon weakly: plugins keep their host handle for as long as they
//! live, and the daemon keeps its plugins, so a strong reference would be a cycle.
//!
//! It sits above the daemon (`tests/backend/layers.rs`) and goes through its
//! methods only: the daemon never names it, `run.rs` hands it to
//! [`Daemon::start_plugins`].

use std::sync::{Arc, Weak};

use futures::FutureExt;
use futures::future::BoxFuture;
use perch_plugin_api::action::{ActionHandler, ActionSpec};
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::{
    Host, HostError, IqHandler, JobHandle, PluginInfo, PluginStore, PluginTriggers,
};
use serde_json::Value;
use tokio_xmpp::Stanza;

use crate::daemon::Daemon;
use crate::events::Event;
use crate::plugins::Registry;

pub struct DaemonHost {
    daemon: Weak<Daemon>,
    registry: Arc<Registry>,
    plugin: &'static str,
    /// The name its signals carry (`PluginInfo::signals_as`).
    signals_as: &'static str,
    triggers: PluginTriggers,
    store: PluginStore,
    /// Its files directory, once made (`Host::files_dir`).
    files_dir: std::sync::OnceLock<std::path::PathBuf>,
}

impl DaemonHost {
    /// The host of the plugin `info` declares.
    pub fn new(daemon: &Arc<Daemon>, info: &PluginInfo) -> Arc<Self> {
        Arc::new(Self {
            daemon: Arc::downgrade(daemon),
            store: PluginStore::new(daemon.database().clone(), info.import_name, info.tables),
            triggers: PluginTriggers::new(daemon.registry().triggers.clone(), info.import_name),
            registry: daemon.registry().clone(),
            plugin: info.import_name,
            signals_as: info.signals_as.unwrap_or(info.import_name),
            files_dir: std::sync::OnceLock::new(),
        })
    }

    fn daemon(&self) -> Result<Arc<Daemon>, HostError> {
        self.daemon
            .upgrade()
            .ok_or_else(|| HostError::Internal("perchd is stopping".into()))
    }
}

impl Host for DaemonHost {
    fn plugin(&self) -> &'static str {
        self.plugin
    }

    fn triggers(&self) -> &PluginTriggers {
        &self.triggers
    }

    fn send(&self, profile: &str, stanza: Element) -> BoxFuture<'_, Result<(), HostError>> {
        let profile = profile.to_owned();
        async move {
            let stanza = Stanza::try_from(stanza)
                .map_err(|e| HostError::BadArgument(format!("not a sendable stanza: {e}")))?;
            let session = self.daemon()?.session(&profile).await?;
            Ok(session.send_stanza(stanza).await?)
        }
        .boxed()
    }

    fn iq(
        &self,
        profile: &str,
        to: Option<Jid>,
        set: bool,
        payload: Element,
    ) -> BoxFuture<'_, Result<Option<Element>, HostError>> {
        let profile = profile.to_owned();
        async move {
            let session = self.daemon()?.session(&profile).await?;
            Ok(session.iq(to, set, payload).await?)
        }
        .boxed()
    }

    fn profile_id(&self, profile: &str) -> BoxFuture<'_, Result<i32, HostError>> {
        let profile = profile.to_owned();
        async move { Ok(self.daemon()?.profile(&profile).await?.id) }.boxed()
    }

    fn seal(&self, profile: &str, secret: &[u8]) -> BoxFuture<'_, Result<String, HostError>> {
        let (profile, secret) = (profile.to_owned(), secret.to_vec());
        async move {
            let d = self.daemon()?;
            Ok(d.seal_secret(self.plugin, &profile, &secret).await?)
        }
        .boxed()
    }

    fn unseal(&self, profile: &str, sealed: &str) -> BoxFuture<'_, Result<Vec<u8>, HostError>> {
        let (profile, sealed) = (profile.to_owned(), sealed.to_owned());
        async move {
            let d = self.daemon()?;
            Ok(d.open_secret(self.plugin, &profile, &sealed).await?)
        }
        .boxed()
    }

    fn profile_name(&self, id: i32) -> BoxFuture<'_, Option<String>> {
        async move { self.daemon.upgrade()?.profile_name_of(id).await }.boxed()
    }

    fn bound_jid(&self, profile: &str) -> BoxFuture<'_, Option<Jid>> {
        let profile = profile.to_owned();
        async move {
            self.daemon
                .upgrade()?
                .session(&profile)
                .await
                .ok()?
                .bound_jid()
        }
        .boxed()
    }

    fn add_iq_handler(&self, set: bool, name: &str, ns: &str, handler: IqHandler) {
        self.registry
            .add_iq_handler(self.plugin, set, name, ns, handler);
    }

    fn add_feature(&self, namespace: &str) {
        self.registry.add_feature(namespace);
    }

    fn features(&self) -> Vec<String> {
        self.registry.features()
    }

    fn add_action(&self, spec: ActionSpec, handler: ActionHandler) {
        self.registry.add_action(self.plugin, spec, handler);
    }

    fn declare_signal(&self, name: &'static str, doc: &'static str) {
        self.registry.declare_signal(self.signals_as, name, doc);
    }

    fn emit(&self, name: &str, profile: &str, data: Value) {
        let plugin = self.signals_as;
        if !self.registry.signal_declared(plugin, name) {
            tracing::error!(plugin, signal = name, "undeclared plugin signal not sent");
            return;
        }
        if let Some(d) = self.daemon.upgrade() {
            d.emit(Event::Plugin {
                plugin: plugin.to_owned(),
                name: name.to_owned(),
                profile: profile.to_owned(),
                data,
            });
        }
    }

    fn options(&self) -> Value {
        let table = self
            .daemon
            .upgrade()
            .and_then(|d| d.config().plugins.options.get(self.plugin).cloned())
            .unwrap_or_default();
        serde_json::to_value(table).unwrap_or_else(|_| Value::Object(Default::default()))
    }

    fn store(&self) -> &PluginStore {
        &self.store
    }

    fn set_message_extra(
        &self,
        profile: &str,
        message_id: &str,
        key: &str,
        value: Value,
    ) -> BoxFuture<'_, Result<bool, HostError>> {
        let (profile, message_id, key) =
            (profile.to_owned(), message_id.to_owned(), key.to_owned());
        async move {
            Ok(self
                .daemon()?
                .set_message_extra(&profile, &message_id, &key, value)
                .await?)
        }
        .boxed()
    }

    fn send_message(
        &self,
        profile: &str,
        message: tokio_xmpp::parsers::message::Message,
    ) -> BoxFuture<'_, Result<perch_plugin_api::HistoryMessage, HostError>> {
        let profile = profile.to_owned();
        async move { Ok(self.daemon()?.queue_message(&profile, message).await?) }.boxed()
    }

    fn message(
        &self,
        profile: &str,
        with: &str,
        id: &str,
    ) -> BoxFuture<'_, Result<Option<perch_plugin_api::HistoryMessage>, HostError>> {
        let (profile, with, id) = (profile.to_owned(), with.to_owned(), id.to_owned());
        async move { Ok(self.daemon()?.find_message(&profile, &with, &id).await?) }.boxed()
    }

    fn unread(
        &self,
        profile: &str,
        with: Option<&str>,
        read: std::collections::BTreeMap<String, String>,
    ) -> BoxFuture<'_, Result<Vec<perch_plugin_api::ConversationCount>, HostError>> {
        let (profile, with) = (profile.to_owned(), with.map(str::to_owned));
        async move {
            let d = self.daemon()?;
            Ok(d.unread(&profile, with.as_deref(), &read).await?)
        }
        .boxed()
    }

    fn last_archive_id(
        &self,
        profile: &str,
        archive: &str,
    ) -> BoxFuture<'_, Result<Option<String>, HostError>> {
        let (profile, archive) = (profile.to_owned(), archive.to_owned());
        async move { Ok(self.daemon()?.last_archive_id(&profile, &archive).await?) }.boxed()
    }

    fn resend_held(&self, profile: &str, room: &str) -> BoxFuture<'_, Result<usize, HostError>> {
        let (profile, room) = (profile.to_owned(), room.to_owned());
        async move { Ok(self.daemon()?.resend_held(&profile, &room).await?) }.boxed()
    }

    fn files_dir(&self) -> Option<std::path::PathBuf> {
        if let Some(dir) = self.files_dir.get() {
            return Some(dir.clone());
        }
        let dir = self
            .daemon
            .upgrade()?
            .config()
            .data_dir()
            .join("plugins")
            .join(self.plugin);
        match std::fs::create_dir_all(&dir) {
            Ok(()) => Some(self.files_dir.get_or_init(|| dir).clone()),
            Err(e) => {
                tracing::error!(plugin = self.plugin, dir = %dir.display(), error = %e, "creating a plugin's files directory failed");
                None
            }
        }
    }

    fn start_job(
        &self,
        profile: &str,
        kind: &str,
        description: &str,
    ) -> BoxFuture<'_, Result<JobHandle, HostError>> {
        let plugin = self.plugin;
        let (profile, kind, description) =
            (profile.to_owned(), kind.to_owned(), description.to_owned());
        async move {
            Ok(self
                .daemon()?
                .start_job(&profile, plugin, &kind, &description)
                .await?)
        }
        .boxed()
    }

    fn tls_config(
        &self,
        profile: &str,
    ) -> BoxFuture<'_, Result<Arc<rustls::ClientConfig>, HostError>> {
        let profile = profile.to_owned();
        async move {
            let m = self.daemon()?.profile(&profile).await?;
            crate::xmpp::connect::tls_config(m.ca_file.as_deref(), m.insecure)
                .map_err(HostError::BadArgument)
        }
        .boxed()
    }
}
