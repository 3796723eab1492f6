//! The cache's types: analysers and what they decide, node states, settings.

use std::sync::{Arc, RwLock};

use perch_plugin_api::minidom::Element;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Turns an item's payload into JSON (None: nothing to say about this item).
pub type Parser = Arc<dyn Fn(&Element) -> Option<Value> + Send + Sync>;
/// Called when an analyser matches a node; may adjust the analysis (a subtype, …).
pub type MatchHook = Arc<dyn Fn(&str, &mut Analysis) + Send + Sync>;

/// Decides what a node is and whether to cache it. Registered by plugins, or declared
/// in the config file (`[[plugins.options.PUBSUB_CACHE.analysers]]`).
#[derive(Clone)]
pub struct Analyser {
    /// Unique and stable: stored with each node to find the parser again.
    pub name: String,
    /// `blog`, `event`, … (what searches filter on).
    pub kind: String,
    pub subtype: Option<String>,
    /// Matches nodes whose name starts with this.
    pub node_prefix: Option<String>,
    /// Matches nodes whose items' payload has this namespace.
    pub namespace: Option<String>,
    pub to_sync: bool,
    /// When several match, the highest wins (then the first registered).
    pub priority: i32,
    pub parser: Option<Parser>,
    pub on_match: Option<MatchHook>,
}

impl std::fmt::Debug for Analyser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analyser")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("node_prefix", &self.node_prefix)
            .field("namespace", &self.namespace)
            .field("to_sync", &self.to_sync)
            .field("priority", &self.priority)
            .finish_non_exhaustive()
    }
}

impl Analyser {
    fn matches_prefix(&self, node: &str) -> bool {
        self.node_prefix
            .as_deref()
            .is_some_and(|p| node.starts_with(p))
    }

    fn matches_namespace(&self, ns: Option<&str>) -> bool {
        self.namespace.is_some() && self.namespace.as_deref() == ns
    }

    pub fn view(&self) -> Value {
        json!({
            "name": self.name, "type": self.kind, "subtype": self.subtype,
            "node_prefix": self.node_prefix, "namespace": self.namespace,
            "to_sync": self.to_sync, "priority": self.priority,
            "parser": self.parser.is_some(),
        })
    }
}

/// What the analysis of a node decided (remembered in the database).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Analysis {
    pub analyser: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub subtype: Option<String>,
    pub to_sync: bool,
}

/// Every analyser, highest priority first.
#[derive(Debug, Default)]
pub struct Analysers(RwLock<Vec<Analyser>>);

impl Analysers {
    /// Adds an analyser; its name must be new.
    pub fn register(&self, a: Analyser) -> Result<(), String> {
        let mut list = self.0.write().unwrap_or_else(|e| e.into_inner());
        if a.name.trim().is_empty() {
            return Err("an analyser needs a name".into());
        }
        if a.node_prefix.is_none() && a.namespace.is_none() {
            return Err(format!(
                "analyser {:?} matches nothing: give node_prefix and/or namespace",
                a.name
            ));
        }
        if list.iter().any(|x| x.name == a.name) {
            return Err(format!("an analyser named {:?} already exists", a.name));
        }
        // Stable: equal priorities keep registration order.
        let at = list.partition_point(|x| x.priority >= a.priority);
        list.insert(at, a);
        Ok(())
    }

    pub fn by_name(&self, name: &str) -> Option<Analyser> {
        let list = self.0.read().unwrap_or_else(|e| e.into_inner());
        list.iter().find(|a| a.name == name).cloned()
    }

    pub fn list(&self) -> Vec<Analyser> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether knowing the items' namespace could change the outcome for `node` (then
    /// the analysis costs one request: the newest item).
    pub fn needs_namespace(&self, node: &str) -> bool {
        let list = self.0.read().unwrap_or_else(|e| e.into_inner());
        for a in list.iter() {
            if a.matches_prefix(node) {
                return false;
            }
            if a.namespace.is_some() {
                return true;
            }
        }
        false
    }

    /// The analysis of `node` whose items have namespace `ns` (when known).
    pub fn analyse(&self, node: &str, ns: Option<&str>) -> Analysis {
        let list = self.0.read().unwrap_or_else(|e| e.into_inner());
        let Some(a) = list
            .iter()
            .find(|a| a.matches_prefix(node) || a.matches_namespace(ns))
        else {
            return Analysis::default();
        };
        let mut out = Analysis {
            analyser: Some(a.name.clone()),
            kind: Some(a.kind.clone()),
            subtype: a.subtype.clone(),
            to_sync: a.to_sync,
        };
        if let Some(hook) = &a.on_match {
            hook(node, &mut out);
        }
        out
    }
}

/// An analyser declared in the config file, without code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyserConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub node_prefix: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub to_sync: bool,
    #[serde(default)]
    pub priority: i32,
    /// JSON key → path in the payload: `title`, `author/name`, `@xml:lang`,
    /// `link/@href`; a path ending in `[]` gives every match as an array; a final
    /// `|number` or `|boolean` types the values (text that does not fit is left out).
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
}

impl AnalyserConfig {
    pub fn into_analyser(self) -> Analyser {
        let fields = self.fields;
        let parser: Option<Parser> = (!fields.is_empty()).then(|| {
            Arc::new(move |payload: &Element| {
                let mut out = Map::new();
                for (key, path) in &fields {
                    if let Some(v) = extract(payload, path) {
                        out.insert(key.clone(), v);
                    }
                }
                Some(Value::Object(out))
            }) as Parser
        });
        Analyser {
            name: self.name,
            kind: self.kind,
            subtype: self.subtype,
            node_prefix: self.node_prefix,
            namespace: self.namespace,
            to_sync: self.to_sync,
            priority: self.priority,
            parser,
            on_match: None,
        }
    }
}

/// Follows `a/b/@c` (local names, any namespace) from `root`.
pub fn extract(root: &Element, path: &str) -> Option<Value> {
    let (path, kind) = match path.rsplit_once('|') {
        Some((p, k)) => (p, Some(k)),
        None => (path, None),
    };
    let typed = |v: Value| -> Option<Value> {
        let s = v.as_str()?.trim().to_owned();
        match kind {
            Some("number") => s.parse::<i64>().map(Value::from).ok().or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            }),
            Some("boolean") => match s.as_str() {
                "true" | "1" => Some(Value::Bool(true)),
                "false" | "0" => Some(Value::Bool(false)),
                _ => None,
            },
            _ => Some(v),
        }
    };
    let (path, all) = match path.strip_suffix("[]") {
        Some(p) => (p, true),
        None => (path, false),
    };
    let mut steps: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let attr = steps
        .last()
        .and_then(|s| s.strip_prefix('@'))
        .map(str::to_owned);
    if attr.is_some() {
        steps.pop();
    }
    let mut nodes = vec![root];
    for step in steps {
        nodes = nodes
            .into_iter()
            .flat_map(|n| n.children().filter(move |c| c.name() == step))
            .collect();
    }
    let values: Vec<Value> = nodes
        .into_iter()
        .filter_map(|n| match &attr {
            Some(a) => n.attr(a.as_str()).map(|v| Value::String(v.to_owned())),
            None => Some(Value::String(n.text())),
        })
        .filter_map(typed)
        .collect();
    if all {
        Some(Value::Array(values))
    } else {
        values.into_iter().next()
    }
}

/// Character data of an element tree, space-separated: what full-text search indexes
/// (never tag or attribute names).
pub fn text_of(e: &Element, out: &mut String) {
    for n in e.nodes() {
        match n {
            perch_plugin_api::minidom::Node::Text(t) => {
                let t = t.trim();
                if !t.is_empty() {
                    out.push_str(t);
                    out.push(' ');
                }
            }
            perch_plugin_api::minidom::Node::Element(c) => text_of(c, out),
        }
    }
}

/// String and number values of parsed JSON, for full-text search.
pub fn values_of(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push(' ');
        }
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push(' ');
        }
        Value::Array(a) => a.iter().for_each(|x| values_of(x, out)),
        Value::Object(o) => o.values().for_each(|x| values_of(x, out)),
        _ => {}
    }
}

/// A node's sync state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    None,
    InProgress,
    Completed,
    Error,
    NoSync,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Error => "error",
            Self::NoSync => "no_sync",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "error" => Self::Error,
            "no_sync" => Self::NoSync,
            _ => Self::None,
        }
    }
}

/// The cache's settings (`[plugins.options.PUBSUB_CACHE]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// false: the cache never answers (it still keeps what it has).
    pub enabled: bool,
    /// The most items cached per node.
    pub max_items: usize,
    /// RSM page size of a sync.
    pub page_size: usize,
    /// How long the first read of a node to sync may wait for the sync (ms).
    pub first_read_wait_ms: u64,
    /// First retry delay of a node in error (s); doubles each time, up to retry_max_s.
    pub retry_s: u64,
    pub retry_max_s: u64,
    /// The most bytes of node rows and read answers kept in memory to answer reads
    /// without SQL (least recently used out first; 0: none).
    pub memory_budget: usize,
    pub analysers: Vec<AnalyserConfig>,
}

/// The default `memory_budget`: 1 MiB, several dozen answers of 20 items; answers
/// over an eighth of it are not kept. Larger budgets showed in perchd's RSS
/// (doc/performance.rst, "Design figures"; doc/reliability.rst, "Memory").
pub const MEMORY_BUDGET: usize = 1 << 20;

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_items: 50_000,
            page_size: 250,
            first_read_wait_ms: 3000,
            retry_s: 30,
            retry_max_s: 3600,
            memory_budget: MEMORY_BUDGET,
            analysers: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn analyser(name: &str, prefix: Option<&str>, ns: Option<&str>, priority: i32) -> Analyser {
        Analyser {
            name: name.into(),
            kind: name.into(),
            subtype: None,
            node_prefix: prefix.map(Into::into),
            namespace: ns.map(Into::into),
            to_sync: true,
            priority,
            parser: None,
            on_match: None,
        }
    }

    #[test]
    fn priority_decides_and_names_are_unique() {
        let a = Analysers::default();
        a.register(analyser("low", Some("urn:a"), None, 0)).unwrap();
        a.register(analyser("high", None, Some("urn:ns"), 10))
            .unwrap();
        assert!(a.register(analyser("low", Some("x"), None, 0)).is_err());
        assert!(a.register(analyser("none", None, None, 0)).is_err());
        assert_eq!(a.analyse("urn:a:1", None).analyser.as_deref(), Some("low"));
        assert_eq!(
            a.analyse("urn:a:1", Some("urn:ns")).analyser.as_deref(),
            Some("high")
        );
        // The namespace analyser outranks the prefix one: the namespace is needed.
        assert!(a.needs_namespace("urn:a:1"));
        assert_eq!(a.analyse("other", None), Analysis::default());
    }

    #[test]
    fn config_fields_extract_text_and_attributes() {
        let e: Element = "<event xmlns='urn:ev' xml:lang='fr'><title>Fête</title>\
            <place><name>Lyon</name></place><link href='a'/><link href='b'/><seats>12</seats></event>"
            .parse()
            .unwrap();
        let cfg: AnalyserConfig = toml::from_str(
            "name='ev'\ntype='event'\nnamespace='urn:ev'\n[fields]\ntitle='title'\ncity='place/name'\nlinks='link/@href[]'\nseats='seats|number'\n",
        )
        .unwrap();
        let a = cfg.into_analyser();
        let parsed = (a.parser.unwrap())(&e).unwrap();
        assert_eq!(
            parsed,
            json!({"title": "Fête", "city": "Lyon", "links": ["a", "b"], "seats": 12})
        );
        let mut t = String::new();
        text_of(&e, &mut t);
        assert_eq!(t.trim(), "Fête Lyon 12");
    }
}
