//! Loading plugins, and the registry of what they registered.
//!
//! Why a plan before any build: which plugins load is decided from their declarations
//! alone (disabled in the config, missing dependency, dependency cycle), so the reasons
//! are complete and stable, and the plugins are then built in dependency order, each
//! with a host of its own; a plugin whose build fails takes its dependants down with
//! it, each with the reason.
//!
//! The registry holds the trigger registry ([`Triggers`]), which is the core's
//! capability to fire its own points: it declares them as the core's when it is made,
//! and plugins only ever see it through a [`perch_plugin_api::PluginTriggers`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use perch_plugin_api::action::{ActionHandler, ActionSpec};
use perch_plugin_api::{Host, IqHandler, Plugin, PluginFactory, PluginInfo, Triggers};
use serde::Serialize;

use crate::events::{Event, EventSender};

/// What became of a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    Loaded,
    /// `plugins.disabled` names it.
    Disabled,
    /// A dependency is missing, disabled or failed, or it is in a cycle.
    NotLoaded,
    /// Building it failed.
    Failed,
}

/// One line of `perch plugin list`.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub import_name: String,
    pub name: String,
    pub description: String,
    pub dependencies: Vec<String>,
    pub recommendations: Vec<String>,
    pub state: PluginState,
    /// Why it is not loaded; empty when loaded.
    pub reason: String,
}

/// The load plan: the order to initialise in, and the plugins ruled out with why.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub order: Vec<&'static str>,
    pub ruled_out: BTreeMap<&'static str, (PluginState, String)>,
}

/// Every built-in plugin, from the plugin crates by domain, in no particular order
/// ([`plan`] orders them). This is the one place that links them all in.
pub fn builtin() -> Vec<PluginFactory> {
    let mut all = perch_plugins_core::builtin();
    all.extend(perch_plugins_im::builtin());
    all.extend(perch_plugins_pubsub::builtin());
    all.extend(perch_plugins_calls::builtin());
    all.extend(perch_plugins_identity::builtin());
    all.extend(perch_plugins_files::builtin());
    all.extend(perch_plugins_e2ee::builtin());
    all
}

/// Decides which plugins may load and in what order.
pub fn plan(infos: &[PluginInfo], disabled: &BTreeSet<String>) -> Plan {
    let by_name: BTreeMap<&'static str, &PluginInfo> =
        infos.iter().map(|i| (i.import_name, i)).collect();
    let mut out = Plan::default();

    // Cycles first: every plugin on a cycle is named with the cycle.
    for cycle in cycles(&by_name) {
        let text = cycle.join(" → ");
        for name in &cycle[..cycle.len() - 1] {
            out.ruled_out
                .entry(name)
                .or_insert((PluginState::NotLoaded, format!("dependency cycle: {text}")));
        }
    }
    for name in by_name.keys() {
        if disabled.contains(*name) {
            out.ruled_out.insert(
                name,
                (
                    PluginState::Disabled,
                    "disabled in the configuration (plugins.disabled)".into(),
                ),
            );
        }
    }

    // Depth-first post-order gives dependencies before dependants.
    fn visit(
        name: &'static str,
        by_name: &BTreeMap<&'static str, &PluginInfo>,
        out: &mut Plan,
        seen: &mut BTreeSet<&'static str>,
    ) {
        if !seen.insert(name) {
            return;
        }
        let Some(info) = by_name.get(name) else {
            return;
        };
        for dep in info.dependencies {
            if let Some((dep_name, _)) = by_name.get_key_value(dep) {
                visit(dep_name, by_name, out, seen);
            }
        }
        if out.ruled_out.contains_key(name) {
            return;
        }
        let mut why = None;
        for dep in info.dependencies {
            match by_name.get_key_value(dep) {
                None => why = Some(format!("needs {dep}, which is not available")),
                Some((d, _)) => {
                    if let Some((state, _)) = out.ruled_out.get(d) {
                        let what = match state {
                            PluginState::Disabled => "disabled",
                            PluginState::Failed => "failed",
                            _ => "not loaded",
                        };
                        why = Some(format!("needs {dep}, which is {what}"));
                    }
                }
            }
            if why.is_some() {
                break;
            }
        }
        match why {
            Some(w) => {
                out.ruled_out.insert(name, (PluginState::NotLoaded, w));
            }
            None => out.order.push(name),
        }
    }
    let mut seen = BTreeSet::new();
    for name in by_name.keys() {
        visit(name, &by_name, &mut out, &mut seen);
    }
    out
}

/// Every dependency cycle, each as a path that ends where it starts.
fn cycles(by_name: &BTreeMap<&'static str, &PluginInfo>) -> Vec<Vec<&'static str>> {
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    fn walk(
        name: &'static str,
        by_name: &BTreeMap<&'static str, &PluginInfo>,
        stack: &mut Vec<&'static str>,
        done: &mut BTreeSet<&'static str>,
        found: &mut Vec<Vec<&'static str>>,
    ) {
        if let Some(pos) = stack.iter().position(|n| *n == name) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(name);
            found.push(cycle);
            return;
        }
        if done.contains(name) {
            return;
        }
        stack.push(name);
        if let Some(info) = by_name.get(name) {
            for dep in info.dependencies {
                if let Some((d, _)) = by_name.get_key_value(dep) {
                    walk(d, by_name, stack, done, found);
                }
            }
        }
        stack.pop();
        done.insert(name);
    }
    for name in by_name.keys() {
        walk(name, by_name, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// (set?, element name, namespace) of a claimed IQ payload.
type IqKey = (bool, String, String);

/// A built plugin and its declaration.
#[derive(Clone)]
pub struct LoadedPlugin {
    info: PluginInfo,
    plugin: Arc<dyn Plugin>,
}

impl LoadedPlugin {
    pub fn info(&self) -> PluginInfo {
        self.info.clone()
    }

    pub fn session_started(self, profile: String) -> futures::future::BoxFuture<'static, ()> {
        self.plugin.session_started(profile)
    }

    pub fn session_ended(self, profile: String) -> futures::future::BoxFuture<'static, ()> {
        self.plugin.session_ended(profile)
    }
}

/// What plugins registered with the host.
pub struct Registry {
    /// The core's points, declared as the core's, and every plugin's.
    pub triggers: Arc<Triggers>,
    /// (set?, element name, namespace) → (plugin, handler)
    iq: RwLock<HashMap<IqKey, (String, IqHandler)>>,
    features: RwLock<BTreeSet<String>>,
    actions: RwLock<BTreeMap<String, (ActionSpec, ActionHandler)>>,
    /// (plugin, signal) → doc
    signals: RwLock<BTreeMap<(String, String), String>>,
    statuses: RwLock<Vec<PluginStatus>>,
    loaded: RwLock<Vec<LoadedPlugin>>,
}

impl Default for Registry {
    /// A registry whose trigger registry knows the core's points as the core's.
    fn default() -> Self {
        let triggers = Triggers::new();
        if let Err(e) = perch_plugin_api::points::declare_core(&triggers) {
            // Only two core points of one name could do this: a bug caught by any test.
            panic!("the core's trigger points: {e}");
        }
        Self {
            triggers: Arc::new(triggers),
            iq: RwLock::default(),
            features: RwLock::default(),
            actions: RwLock::default(),
            signals: RwLock::default(),
            statuses: RwLock::default(),
            loaded: RwLock::default(),
        }
    }
}

fn r<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn w<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Registry {
    pub fn add_iq_handler(&self, plugin: &str, set: bool, name: &str, ns: &str, h: IqHandler) {
        let key = (set, name.to_owned(), ns.to_owned());
        if let Some((other, _)) = w(&self.iq).insert(key, (plugin.to_owned(), h)) {
            tracing::warn!(
                plugin,
                other,
                name,
                ns,
                "IQ handler replaced another plugin's"
            );
        }
    }

    pub fn iq_handler(&self, set: bool, name: &str, ns: &str) -> Option<IqHandler> {
        r(&self.iq)
            .get(&(set, name.to_owned(), ns.to_owned()))
            .map(|(_, h)| h.clone())
    }

    pub fn add_feature(&self, ns: &str) {
        w(&self.features).insert(ns.to_owned());
    }

    pub fn features(&self) -> Vec<String> {
        r(&self.features).iter().cloned().collect()
    }

    pub fn add_action(&self, plugin: &str, mut spec: ActionSpec, h: ActionHandler) {
        spec.plugin = plugin.to_owned();
        let name = spec.name.to_owned();
        if w(&self.actions).insert(name.clone(), (spec, h)).is_some() {
            tracing::warn!(plugin, action = %name, "action replaced one of the same name");
        }
    }

    pub fn action(&self, name: &str) -> Option<(ActionSpec, ActionHandler)> {
        r(&self.actions).get(name).cloned()
    }

    pub fn actions(&self) -> Vec<ActionSpec> {
        r(&self.actions).values().map(|(s, _)| s.clone()).collect()
    }

    pub fn declare_signal(&self, plugin: &str, name: &str, doc: &str) {
        w(&self.signals).insert((plugin.to_owned(), name.to_owned()), doc.to_owned());
    }

    pub fn signal_declared(&self, plugin: &str, name: &str) -> bool {
        r(&self.signals).contains_key(&(plugin.to_owned(), name.to_owned()))
    }

    /// The loaded plugins, in build order.
    pub fn loaded(&self) -> Vec<LoadedPlugin> {
        r(&self.loaded).clone()
    }

    pub fn statuses(&self) -> Vec<PluginStatus> {
        r(&self.statuses).clone()
    }

    /// Plans and builds `plugins`, each with the host `host_for` makes for it;
    /// returns how many loaded.
    pub async fn load(
        &self,
        plugins: Vec<PluginFactory>,
        disabled: &[String],
        host_for: impl Fn(&PluginInfo) -> Arc<dyn Host>,
    ) -> usize {
        let infos: Vec<PluginInfo> = plugins.iter().map(|p| p.info.clone()).collect();
        let disabled: BTreeSet<String> = disabled.iter().cloned().collect();
        for name in &disabled {
            if !infos.iter().any(|i| i.import_name == name) {
                tracing::warn!(plugin = %name, "plugins.disabled names a plugin perchd does not have");
            }
        }
        let plan = plan(&infos, &disabled);
        let mut states: BTreeMap<&'static str, (PluginState, String)> = plan.ruled_out.clone();
        let mut factories: BTreeMap<&'static str, PluginFactory> = plugins
            .into_iter()
            .map(|f| (f.info.import_name, f))
            .collect();
        let mut loaded = Vec::new();
        for name in &plan.order {
            let Some(factory) = factories.remove(name) else {
                continue;
            };
            if let Some(plugin) = build(factory, &plan, &mut states, &host_for).await {
                loaded.push(plugin);
            }
        }
        for (name, (state, reason)) in &states {
            if *state != PluginState::Loaded {
                tracing::warn!(plugin = name, ?state, %reason, "plugin not loaded");
            }
        }
        *w(&self.statuses) = statuses(&infos, &states);
        let count = loaded.len();
        *w(&self.loaded) = loaded;
        count
    }
}

/// Builds one planned plugin (unless a dependency failed), recording its state.
async fn build(
    factory: PluginFactory,
    plan: &Plan,
    states: &mut BTreeMap<&'static str, (PluginState, String)>,
    host_for: &impl Fn(&PluginInfo) -> Arc<dyn Host>,
) -> Option<LoadedPlugin> {
    let info = factory.info.clone();
    let name = info.import_name;
    // A dependency that failed to build takes this one down too.
    if let Some(dep) = info.dependencies.iter().find(|d| {
        states
            .get(*d)
            .is_some_and(|(s, _)| *s != PluginState::Loaded)
    }) {
        states.insert(
            name,
            (PluginState::NotLoaded, format!("needs {dep}, which failed")),
        );
        return None;
    }
    for rec in info.recommendations {
        if !plan.order.contains(rec) {
            tracing::info!(
                plugin = name,
                recommends = rec,
                "a recommended plugin is not loaded"
            );
        }
    }
    match (factory.build)(host_for(&info)).await {
        Ok(plugin) => {
            tracing::info!(plugin = name, "plugin loaded");
            states.insert(name, (PluginState::Loaded, String::new()));
            Some(LoadedPlugin { info, plugin })
        }
        Err(e) => {
            tracing::error!(plugin = name, error = %e, "plugin failed to initialise");
            states.insert(name, (PluginState::Failed, format!("init failed: {e}")));
            None
        }
    }
}

/// `perch plugin list`'s lines, by import name.
fn statuses(
    infos: &[PluginInfo],
    states: &BTreeMap<&'static str, (PluginState, String)>,
) -> Vec<PluginStatus> {
    let mut statuses: Vec<PluginStatus> = infos
        .iter()
        .map(|i| {
            let (state, reason) = states
                .get(i.import_name)
                .cloned()
                .unwrap_or((PluginState::NotLoaded, "not planned".into()));
            PluginStatus {
                import_name: i.import_name.to_owned(),
                name: i.name.to_owned(),
                description: i.description.to_owned(),
                dependencies: i.dependencies.iter().map(|s| (*s).to_owned()).collect(),
                recommendations: i.recommendations.iter().map(|s| (*s).to_owned()).collect(),
                state,
                reason,
            }
        })
        .collect();
    statuses.sort_by(|a, b| a.import_name.cmp(&b.import_name));
    statuses
}

/// A plugin's handler panicked: logged, and signalled to frontends as
/// `PluginSignal("perch", "handler_fault", "", {plugin, point, what})`. Here, beside
/// the registry, so that every layer that runs plugin code (the receive pipeline,
/// the daemon's actions, the trigger points' sink) reports the same way.
pub fn report_fault(events: &EventSender, f: perch_plugin_api::HandlerFault) {
    tracing::error!(plugin = %f.plugin, point = %f.point, what = %f.what, "a plugin handler panicked; the flow went on without it");
    let _ = events.send(Event::Plugin {
        plugin: "perch".into(),
        name: "handler_fault".into(),
        profile: String::new(),
        data: serde_json::to_value(&f).unwrap_or_default(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &'static str, deps: &'static [&'static str]) -> PluginInfo {
        PluginInfo {
            import_name: name,
            name,
            description: "",
            dependencies: deps,
            recommendations: &[],
            tables: &[],
            signals_as: None,
        }
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn dependencies_come_first() {
        let p = plan(
            &[info("C", &["B"]), info("B", &["A"]), info("A", &[])],
            &set(&[]),
        );
        assert_eq!(p.order, ["A", "B", "C"]);
        assert!(p.ruled_out.is_empty());
    }

    #[test]
    fn missing_dependency_is_named_and_spreads() {
        let p = plan(
            &[info("B", &["NOPE"]), info("C", &["B"]), info("A", &[])],
            &set(&[]),
        );
        assert_eq!(p.order, ["A"]);
        assert_eq!(
            p.ruled_out["B"],
            (
                PluginState::NotLoaded,
                "needs NOPE, which is not available".into()
            )
        );
        assert_eq!(
            p.ruled_out["C"],
            (
                PluginState::NotLoaded,
                "needs B, which is not loaded".into()
            )
        );
    }

    #[test]
    fn disabled_plugin_and_its_dependants() {
        let p = plan(
            &[info("A", &[]), info("B", &["A"]), info("C", &[])],
            &set(&["A"]),
        );
        assert_eq!(p.order, ["C"]);
        assert_eq!(p.ruled_out["A"].0, PluginState::Disabled);
        assert_eq!(
            p.ruled_out["B"],
            (PluginState::NotLoaded, "needs A, which is disabled".into())
        );
    }

    #[test]
    fn cycles_are_reported_by_name() {
        let p = plan(
            &[
                info("A", &["B"]),
                info("B", &["A"]),
                info("C", &["A"]),
                info("D", &[]),
            ],
            &set(&[]),
        );
        assert_eq!(p.order, ["D"]);
        assert_eq!(
            p.ruled_out["A"],
            (PluginState::NotLoaded, "dependency cycle: A → B → A".into())
        );
        assert_eq!(p.ruled_out["B"].1, "dependency cycle: A → B → A");
        assert_eq!(p.ruled_out["C"].1, "needs A, which is not loaded");
        let p = plan(&[info("S", &["S"])], &set(&[]));
        assert_eq!(p.ruled_out["S"].1, "dependency cycle: S → S");
    }
}
