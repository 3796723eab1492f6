//! A host for plugins' unit tests: bound to a name, with a trigger registry of its
//! own, and no session, no database: every call that would reach the network or the
//! database fails (`NotConnected`, `Storage`). Tests of a plugin's pure logic build
//! the plugin with it instead of a daemon.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde_json::Value;
use tokio_xmpp::minidom::Element;

use crate::action::{ActionHandler, ActionSpec};
use crate::jid::Jid;
use crate::{Host, HostError, IqHandler, JobHandle, PluginStore, PluginTriggers, Triggers};

/// See the module documentation.
pub struct OfflineHost {
    plugin: &'static str,
    triggers: PluginTriggers,
    store: PluginStore,
}

impl std::fmt::Debug for OfflineHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OfflineHost")
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl OfflineHost {
    pub fn new(plugin: &'static str) -> Arc<Self> {
        Arc::new(Self {
            plugin,
            triggers: PluginTriggers::new(Arc::new(Triggers::new()), plugin),
            store: PluginStore::offline(plugin),
        })
    }
}

fn offline<T: Send + 'static>(profile: &str) -> BoxFuture<'static, Result<T, HostError>> {
    let p = profile.to_owned();
    async move { Err(HostError::NotConnected(p)) }.boxed()
}

impl Host for OfflineHost {
    fn plugin(&self) -> &'static str {
        self.plugin
    }
    fn triggers(&self) -> &PluginTriggers {
        &self.triggers
    }
    fn send(&self, profile: &str, _: Element) -> BoxFuture<'_, Result<(), HostError>> {
        offline(profile)
    }
    fn iq(
        &self,
        profile: &str,
        _: Option<Jid>,
        _: bool,
        _: Element,
    ) -> BoxFuture<'_, Result<Option<Element>, HostError>> {
        offline(profile)
    }
    fn profile_id(&self, profile: &str) -> BoxFuture<'_, Result<i32, HostError>> {
        offline(profile)
    }
    fn profile_name(&self, _: i32) -> BoxFuture<'_, Option<String>> {
        async { None }.boxed()
    }
    fn bound_jid(&self, _: &str) -> BoxFuture<'_, Option<Jid>> {
        async { None }.boxed()
    }
    fn add_iq_handler(&self, _: bool, _: &str, _: &str, _: IqHandler) {}
    fn add_feature(&self, _: &str) {}
    fn features(&self) -> Vec<String> {
        Vec::new()
    }
    fn add_action(&self, _: ActionSpec, _: ActionHandler) {}
    fn declare_signal(&self, _: &'static str, _: &'static str) {}
    fn emit(&self, _: &str, _: &str, _: Value) {}
    fn options(&self) -> Value {
        Value::Object(Default::default())
    }
    fn store(&self) -> &PluginStore {
        &self.store
    }
    fn set_message_extra(
        &self,
        profile: &str,
        _: &str,
        _: &str,
        _: Value,
    ) -> BoxFuture<'_, Result<bool, HostError>> {
        offline(profile)
    }
    fn send_message(
        &self,
        profile: &str,
        _: tokio_xmpp::parsers::message::Message,
    ) -> BoxFuture<'_, Result<crate::HistoryMessage, HostError>> {
        offline(profile)
    }
    fn last_archive_id(
        &self,
        profile: &str,
        _: &str,
    ) -> BoxFuture<'_, Result<Option<String>, HostError>> {
        offline(profile)
    }
    fn start_job(
        &self,
        profile: &str,
        _: &str,
        _: &str,
    ) -> BoxFuture<'_, Result<JobHandle, HostError>> {
        offline(profile)
    }
}
