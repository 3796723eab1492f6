//! perchd's configuration: a TOML file, environment overrides, command-line overrides.
//!
//! Why strict: a typo in a config key that is silently ignored is a setting the user
//! believes is in force. So unknown keys and bad values stop the daemon with the file,
//! the key and the reason; every key has a default, so an empty or missing default file
//! is fine. Precedence, lowest first: defaults, the file, `PERCH_*` variables, flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::paths;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{origin}: key {key}: {reason}")]
    Value {
        origin: String,
        key: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub log: LogConfig,
    pub storage: StorageConfig,
    pub database: DatabaseConfig,
    pub bridge: BridgeConfig,
    pub xmpp: XmppConfig,
    pub plugins: PluginsConfig,
    pub jobs: JobsConfig,
    pub libervia: LiberviaConfig,
    pub cluster: ClusterConfig,
}

/// Several daemons on one database (`doc/deployment.rst`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This daemon's name among those sharing the database; "" for the host name.
    /// Two live daemons cannot hold one name.
    pub node: String,
}

/// The Libervia 0.9 compatibility bridge (`doc/libervia-compat.rst`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiberviaConfig {
    /// Serve `org.libervia.Libervia` beside the native bridge (off by itself when
    /// there is no session bus, or when a Libervia backend owns the name).
    pub enabled: bool,
    /// "session" or a D-Bus bus address (`unix:path=…`), as `bridge.bus`.
    pub bus: String,
    /// The room Libervia's frontends offer to join (`mucGetDefaultService`); 0.9's
    /// `[plugin muc] default_muc`, with its default.
    pub default_muc: String,
}

impl Default for LiberviaConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            bus: "session".into(),
            default_muc: "sat@chat.jabberfr.org".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Import names of plugins not to load (`["XEP-0184"]`); what depends on them is
    /// not loaded either.
    pub disabled: Vec<String>,
    /// Settings of one plugin, by import name: `[plugins.options."XEP-0060"]`. Each
    /// plugin documents its keys (`doc/plugins.rst`) and reads them as JSON.
    pub options: std::collections::BTreeMap<String, toml::Table>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Hours a finished job (and its progress log) is kept before it is pruned.
    pub keep_hours: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { keep_hours: 168 }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Run even as root (refused by default).
    pub allow_root: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// error, warn, info, debug or trace (or a tracing filter such as `perch=debug`).
    pub level: String,
    /// The log file; "" for `$XDG_STATE_HOME/perch/perchd.log`, "none" for no file.
    pub file: String,
    /// Size at which the log file is rotated.
    pub max_bytes: u64,
    /// Rotated files kept (`perchd.log.1` … `perchd.log.N`).
    pub keep: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            file: String::new(),
            max_bytes: 10 * 1024 * 1024,
            keep: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where the database and the key live; "" for `$XDG_DATA_HOME/perch`.
    pub data_dir: String,
}

/// Which database engine holds the data (`doc/storage.rst`).
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// "" for SQLite at `storage.data_dir/perch.db`; `postgres://…` for PostgreSQL.
    pub url: String,
}

/// The URL holds a password: never printed whole, not even by `{:?}`.
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &masked_url(&self.url))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    /// "session", "none", or a D-Bus bus address (`unix:path=…`).
    pub bus: String,
    /// The peer-to-peer socket; "" for `$XDG_RUNTIME_DIR/perch/perchd.sock`, "none" for off.
    pub socket: String,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            bus: "session".into(),
            socket: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmppConfig {
    /// Resource prefix asked for at bind time (a random suffix is added).
    pub resource: String,
    /// Attempts of a first connection before the server is reported unreachable.
    pub connect_attempts: u32,
    /// Seconds one TCP + TLS + authentication attempt may take.
    pub connect_timeout: u64,
    /// Attempts to re-establish a lost connection before giving up (0: never give up).
    pub reconnect_attempts: u32,
    /// Upper bound, in seconds, of the exponential backoff between reconnections.
    pub reconnect_max_delay: u64,
    /// Seconds to wait for the answer to an IQ request.
    pub iq_timeout: u64,
    /// Deepest nesting accepted inside one stanza (the stanza itself is level 1);
    /// deeper stanzas are refused (`xmpp::limits`).
    pub max_stanza_depth: u32,
    /// Largest stanza accepted from the server, in bytes; larger ones are refused.
    pub max_stanza_bytes: u64,
    /// Client State Indication (XEP-0352): tell the server we are inactive while no
    /// frontend is listening, so it may hold back presences and chat states.
    pub csi: bool,
    /// Connection attempts (TCP, TLS, authentication) in progress at once, over all
    /// profiles.
    pub connect_concurrency: u32,
}

impl Default for XmppConfig {
    fn default() -> Self {
        Self {
            resource: "perch".into(),
            connect_attempts: 3,
            connect_timeout: 15,
            reconnect_attempts: 0,
            reconnect_max_delay: 60,
            iq_timeout: 60,
            max_stanza_depth: 64,
            max_stanza_bytes: 8 * 1024 * 1024,
            csi: false,
            connect_concurrency: 8,
        }
    }
}

/// Which database perchd opens (the storage layer opens it, and calls it `Target`).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    /// A SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database, by its `postgres://` URL (which may hold a password).
    Postgres(String),
}

impl std::fmt::Debug for DatabaseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

impl DatabaseTarget {
    /// `url` ("" for SQLite at `sqlite_path`), or why it names no engine Perch has.
    pub fn from_url(url: &str, sqlite_path: &Path) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Self::Sqlite(sqlite_path.to_path_buf()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        Err(format!(
            "{} is neither postgres://… nor sqlite://PATH (\"\" for SQLite in the data dir)",
            masked_url(url)
        ))
    }

    /// How logs and errors name it: a path, or the URL with its password masked.
    pub fn shown(&self) -> String {
        match self {
            Self::Sqlite(p) => p.display().to_string(),
            Self::Postgres(url) => masked_url(url),
        }
    }
}

/// `url` with its password (in the user part or a `password=` parameter) replaced by
/// `***`: what every log line and error shows of a database URL.
pub fn masked_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            out.replace_range(start..scheme_end + 3 + at, "***");
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

/// Overrides from the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_level: Option<String>,
    pub allow_root: bool,
    pub bus: Option<String>,
    pub socket: Option<String>,
}

const LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace"];

/// Bounds of `xmpp.max_stanza_depth`: below 16 common payloads (Atom in pubsub in a
/// message) no longer fit; the parser recurses per level, so deep trees cost stack.
const MIN_STANZA_DEPTH: u32 = 16;
const MAX_STANZA_DEPTH: u32 = 256;
/// Bounds of `xmpp.max_stanza_bytes`: below 64 KiB ordinary stanzas (a vCard with an
/// avatar, a page of pubsub items) would be refused; 256 MiB is far past any
/// legitimate stanza and already a lot of memory per profile.
const MIN_STANZA_BYTES: u64 = 64 * 1024;
const MAX_STANZA_BYTES: u64 = 256 * 1024 * 1024;

impl Config {
    /// Loads the configuration: `explicit` must exist; the default file may be absent.
    pub fn load(explicit: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (paths::config_dir().join("perchd.toml"), false),
        };
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path)?,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.apply_overrides(overrides);
        config.validate(&format!(
            "configuration ({}, PERCH_* environment, command line)",
            path.display()
        ))?;
        Ok(config)
    }

    /// Parses a TOML text; errors name the file, the line and the key.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_owned(),
        })
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("PERCH_LOG_LEVEL") {
            self.log.level = v;
        }
        if let Some(v) = get("PERCH_DATA_DIR") {
            self.storage.data_dir = v;
        }
        if let Some(v) = get("PERCH_DATABASE_URL") {
            self.database.url = v;
        }
        if let Some(v) = get("PERCH_BUS") {
            self.bridge.bus = v;
        }
        if let Some(v) = get("PERCH_SOCKET") {
            self.bridge.socket = v;
        }
        if let Some(v) = get("PERCH_ALLOW_ROOT") {
            self.daemon.allow_root = match v.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" | "" => false,
                _ => {
                    return Err(ConfigError::Value {
                        origin: "environment PERCH_ALLOW_ROOT".into(),
                        key: "daemon.allow_root",
                        reason: format!("{v:?} is not a boolean (use 1/0, true/false)"),
                    });
                }
            };
        }
        Ok(())
    }

    fn apply_overrides(&mut self, o: &Overrides) {
        if let Some(d) = &o.data_dir {
            self.storage.data_dir = d.display().to_string();
        }
        if let Some(u) = &o.database_url {
            self.database.url.clone_from(u);
        }
        if let Some(l) = &o.log_level {
            self.log.level.clone_from(l);
        }
        if o.allow_root {
            self.daemon.allow_root = true;
        }
        if let Some(b) = &o.bus {
            self.bridge.bus.clone_from(b);
        }
        if let Some(s) = &o.socket {
            self.bridge.socket.clone_from(s);
        }
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key, reason: String| ConfigError::Value {
            origin: origin.to_owned(),
            key,
            reason,
        };
        let level = self.log.level.as_str();
        let is_filter =
            level.contains('=') && tracing_subscriber::EnvFilter::try_new(level).is_ok();
        if !LEVELS.contains(&level) && !is_filter {
            return Err(bad(
                "log.level",
                format!(
                    "{level:?} is not one of {LEVELS:?} nor a tracing filter such as \"info,perch_backend=debug\""
                ),
            ));
        }
        if self.log.max_bytes < 4096 {
            return Err(bad("log.max_bytes", "must be at least 4096".into()));
        }
        if let Err(reason) = DatabaseTarget::from_url(&self.database.url, Path::new("")) {
            return Err(bad("database.url", reason));
        }
        if self.xmpp.connect_attempts == 0 {
            return Err(bad("xmpp.connect_attempts", "must be at least 1".into()));
        }
        for (key, v) in [
            ("xmpp.connect_timeout", self.xmpp.connect_timeout),
            ("xmpp.reconnect_max_delay", self.xmpp.reconnect_max_delay),
            ("xmpp.iq_timeout", self.xmpp.iq_timeout),
        ] {
            if v == 0 || v > 86_400 {
                return Err(bad(key, format!("{v} is not between 1 and 86400 seconds")));
            }
        }
        if !(MIN_STANZA_DEPTH..=MAX_STANZA_DEPTH).contains(&self.xmpp.max_stanza_depth) {
            return Err(bad(
                "xmpp.max_stanza_depth",
                format!(
                    "{} is not between {MIN_STANZA_DEPTH} and {MAX_STANZA_DEPTH} (deeper stanzas can overflow the parser's stack)",
                    self.xmpp.max_stanza_depth
                ),
            ));
        }
        if !(MIN_STANZA_BYTES..=MAX_STANZA_BYTES).contains(&self.xmpp.max_stanza_bytes) {
            return Err(bad(
                "xmpp.max_stanza_bytes",
                format!(
                    "{} is not between {MIN_STANZA_BYTES} (64 KiB) and {MAX_STANZA_BYTES} (256 MiB)",
                    self.xmpp.max_stanza_bytes
                ),
            ));
        }
        if !(1..=1024).contains(&self.xmpp.connect_concurrency) {
            return Err(bad(
                "xmpp.connect_concurrency",
                format!(
                    "{} is not between 1 and 1024",
                    self.xmpp.connect_concurrency
                ),
            ));
        }
        if self.xmpp.resource.is_empty() || self.xmpp.resource.len() > 64 {
            return Err(bad("xmpp.resource", "must be 1 to 64 characters".into()));
        }
        let bus = self.bridge.bus.as_str();
        if !matches!(bus, "session" | "none") && !bus.contains(':') {
            return Err(bad(
                "bridge.bus",
                format!("{bus:?} is neither \"session\", \"none\" nor a D-Bus address"),
            ));
        }
        let bus = self.libervia.bus.as_str();
        if bus != "session" && !bus.contains(':') {
            return Err(bad(
                "libervia.bus",
                format!("{bus:?} is neither \"session\" nor a D-Bus address"),
            ));
        }
        if self.jobs.keep_hours == 0 {
            return Err(bad("jobs.keep_hours", "must be at least 1".into()));
        }
        Ok(())
    }

    /// The data directory in force.
    /// The database to open: `database.url`, or SQLite in the data dir.
    pub fn database(&self) -> DatabaseTarget {
        DatabaseTarget::from_url(&self.database.url, &self.data_dir().join("perch.db"))
            .unwrap_or_else(|_| DatabaseTarget::Sqlite(self.data_dir().join("perch.db")))
    }

    pub fn data_dir(&self) -> PathBuf {
        if self.storage.data_dir.is_empty() {
            paths::data_dir()
        } else {
            PathBuf::from(&self.storage.data_dir)
        }
    }

    /// The log file in force, if any.
    pub fn log_file(&self) -> Option<PathBuf> {
        match self.log.file.as_str() {
            "" => Some(paths::state_dir().join("perchd.log")),
            "none" => None,
            p => Some(PathBuf::from(p)),
        }
    }

    /// The peer-to-peer socket in force, if any.
    pub fn socket_path(&self) -> Option<PathBuf> {
        match self.bridge.socket.as_str() {
            "" => Some(paths::runtime_dir().join("perchd.sock")),
            "none" => None,
            p => Some(PathBuf::from(p)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let c = Config::parse(text, Path::new("test.toml"))?;
        c.validate("test.toml")?;
        Ok(c)
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.log.level, "info");
        assert_eq!(c.xmpp.connect_attempts, 3);
        assert_eq!(c.bridge.bus, "session");
        assert!(!c.daemon.allow_root);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse("[xmpp]\nconect_attempts = 2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("test.toml"), "{e}");
        assert!(e.contains("conect_attempts"), "{e}");
    }

    #[test]
    fn unknown_section_is_named() {
        let e = parse("[xmp]\n").unwrap_err().to_string();
        assert!(e.contains("xmp"), "{e}");
    }

    #[test]
    fn wrong_type_is_reported_with_line() {
        let e = parse("[xmpp]\niq_timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("iq_timeout"), "{e}");
    }

    #[test]
    fn bad_value_names_key() {
        let e = parse("[xmpp]\nconnect_attempts = 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("xmpp.connect_attempts"), "{e}");
        let e = parse("[log]\nlevel = \"loud!!\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.level"), "{e}");
        let e = parse("[bridge]\nbus = \"sesion\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bridge.bus"), "{e}");
    }

    #[test]
    fn stanza_limits_are_bounded() {
        let c = parse("").unwrap();
        assert_eq!(
            (c.xmpp.max_stanza_depth, c.xmpp.max_stanza_bytes),
            (64, 8 * 1024 * 1024)
        );
        let c = parse("[xmpp]\nmax_stanza_depth = 16\nmax_stanza_bytes = 65536\n").unwrap();
        assert_eq!(
            (c.xmpp.max_stanza_depth, c.xmpp.max_stanza_bytes),
            (16, 65536)
        );
        for (text, key) in [
            ("max_stanza_depth = 5000", "xmpp.max_stanza_depth"),
            ("max_stanza_depth = 0", "xmpp.max_stanza_depth"),
            ("max_stanza_bytes = 100", "xmpp.max_stanza_bytes"),
            ("max_stanza_bytes = 1000000000000", "xmpp.max_stanza_bytes"),
            ("connect_concurrency = 0", "xmpp.connect_concurrency"),
            ("connect_concurrency = 5000", "xmpp.connect_concurrency"),
        ] {
            let e = parse(&format!("[xmpp]\n{text}\n")).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let mut c = parse("[log]\nlevel = \"warn\"\n").unwrap();
        c.apply_env(|k| (k == "PERCH_LOG_LEVEL").then(|| "debug".to_owned()))
            .unwrap();
        assert_eq!(c.log.level, "debug");
        c.apply_overrides(&Overrides {
            log_level: Some("trace".into()),
            ..Default::default()
        });
        assert_eq!(c.log.level, "trace");
        let e = c
            .apply_env(|k| (k == "PERCH_ALLOW_ROOT").then(|| "maybe".to_owned()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PERCH_ALLOW_ROOT"), "{e}");
    }
}

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;

    /// Every key of the file, with the TOML type it takes.
    const KEYS: &[(&str, &str, &str)] = &[
        ("daemon", "allow_root", "bool"),
        ("log", "level", "string"),
        ("log", "file", "string"),
        ("log", "max_bytes", "u64"),
        ("log", "keep", "u32"),
        ("storage", "data_dir", "string"),
        ("bridge", "bus", "string"),
        ("bridge", "socket", "string"),
        ("xmpp", "resource", "string"),
        ("xmpp", "connect_attempts", "u32"),
        ("xmpp", "connect_timeout", "u64"),
        ("xmpp", "reconnect_attempts", "u32"),
        ("xmpp", "reconnect_max_delay", "u64"),
        ("xmpp", "iq_timeout", "u64"),
        ("jobs", "keep_hours", "u64"),
        ("cluster", "node", "string"),
    ];

    /// The value of a key in a loaded configuration, as TOML.
    fn get(c: &Config, section: &str, key: &str) -> toml::Value {
        let v = |n: u64| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let s = |x: &String| toml::Value::String(x.clone());
        match (section, key) {
            ("daemon", _) => toml::Value::Boolean(c.daemon.allow_root),
            ("log", "level") => s(&c.log.level),
            ("log", "file") => s(&c.log.file),
            ("log", "max_bytes") => v(c.log.max_bytes),
            ("log", _) => v(c.log.keep.into()),
            ("storage", _) => s(&c.storage.data_dir),
            ("bridge", "bus") => s(&c.bridge.bus),
            ("bridge", _) => s(&c.bridge.socket),
            ("xmpp", "resource") => s(&c.xmpp.resource),
            ("xmpp", "connect_attempts") => v(c.xmpp.connect_attempts.into()),
            ("xmpp", "connect_timeout") => v(c.xmpp.connect_timeout),
            ("xmpp", "reconnect_attempts") => v(c.xmpp.reconnect_attempts.into()),
            ("xmpp", "reconnect_max_delay") => v(c.xmpp.reconnect_max_delay),
            ("xmpp", _) => v(c.xmpp.iq_timeout),
            ("cluster", _) => s(&c.cluster.node),
            _ => v(c.jobs.keep_hours),
        }
    }

    fn value() -> impl Strategy<Value = toml::Value> {
        prop_oneof![
            any::<bool>().prop_map(toml::Value::Boolean),
            any::<i64>().prop_map(toml::Value::Integer),
            (0..100_000i64).prop_map(toml::Value::Integer),
            any::<f64>().prop_map(toml::Value::Float),
            // Levels and tracing filters, well-formed or not.
            "[a-z_=,:.\\[\\]{}\"*/ 0-9-]{0,24}".prop_map(toml::Value::String),
            select(&["info", "debug", "session", "none", "unix:path=/x"][..])
                .prop_map(|s| toml::Value::String(s.to_owned())),
            any::<String>().prop_map(toml::Value::String),
        ]
    }

    /// Does `v` fit a key of type `kind`?
    fn fits(kind: &str, v: &toml::Value) -> bool {
        match (kind, v) {
            ("bool", toml::Value::Boolean(_)) | ("string", toml::Value::String(_)) => true,
            ("u64", toml::Value::Integer(i)) => *i >= 0,
            ("u32", toml::Value::Integer(i)) => u32::try_from(*i).is_ok(),
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config())]

        /// Any text: a configuration or a typed error naming the file; never a panic.
        #[test]
        fn any_text_loads_or_is_refused(text in prop_oneof![
            any::<String>(),
            "(\\[[a-z.]{0,8}\\]\n)?([a-z_]{1,12} = [a-z0-9\"\\[\\]{}.=, -]{0,16}\n){0,4}",
        ]) {
            match Config::parse(&text, Path::new("t.toml")) {
                Ok(c) => {
                    let _ = c.validate("t.toml");
                }
                Err(ConfigError::Parse { path, message }) => {
                    prop_assert_eq!(path, Path::new("t.toml"));
                    prop_assert!(!message.is_empty());
                }
                Err(e) => prop_assert!(false, "not a parse error: {e}"),
            }
        }

        /// Keys written with values of any type: those of the key's type load as
        /// written, the others are refused naming the key; what loads is validated
        /// without a panic.
        #[test]
        fn written_keys_load_as_written(
            entries in prop::collection::btree_map(select(KEYS), value(), 0..6)
        ) {
            let mut doc = toml::Table::new();
            for ((section, key, _), v) in &entries {
                let t = doc
                    .entry((*section).to_owned())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = t {
                    t.insert((*key).to_owned(), v.clone());
                }
            }
            let text = toml::to_string(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let bad = entries.iter().find(|((_, _, kind), v)| !fits(kind, v));
            match (Config::parse(&text, Path::new("t.toml")), bad) {
                (Ok(c), None) => {
                    for ((section, key, _), v) in &entries {
                        prop_assert_eq!(&get(&c, section, key), v, "{}.{}", section, key);
                    }
                    if let Err(e) = c.validate("t.toml") {
                        prop_assert!(matches!(e, ConfigError::Value { .. }), "{e}");
                    }
                }
                (Err(ConfigError::Parse { message, .. }), Some(_)) => {
                    prop_assert!(!message.is_empty());
                }
                (got, bad) => prop_assert!(false, "{text}\nbad key {bad:?}, got {got:?}"),
            }
        }

        /// `PERCH_*` variables of any value: applied or refused naming the variable.
        #[test]
        fn any_environment_applies_or_is_refused(
            var in select(&["PERCH_LOG_LEVEL", "PERCH_DATA_DIR", "PERCH_BUS", "PERCH_SOCKET", "PERCH_ALLOW_ROOT"][..]),
            v in prop_oneof!["[a-z0-9=,:]{0,8}", any::<String>()],
        ) {
            let mut c = Config::default();
            match c.apply_env(|k| (k == var).then(|| v.clone())) {
                Ok(()) => {
                    let _ = c.validate("environment");
                }
                Err(e) => prop_assert!(e.to_string().contains(var), "{e}"),
            }
        }
    }
}
