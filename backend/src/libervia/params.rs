//! Libervia's parameter system, mapped onto Perch's profiles.
//!
//! Libervia's frontends (libervia-cli, libervia-tui) read and write a profile's
//! settings as *parameters*: (category, name) pairs whose values travel as strings,
//! described by a fixed schema (type, default, constraint, security level, label).
//! Perch answers them from its own model instead of keeping a second copy of the
//! account, so the two never disagree:
//!
//! - The parameters that *are* the profile's connection settings read and write the
//!   profile itself: `Connection/JabberID` is its JID, `Connection/Password` its sealed
//!   XMPP password (see `secret`; decrypted only for `asyncGetParamA`, never put in a
//!   signal nor in the parameters dialog), `Force server` and `Force port` its server
//!   override, `check_certificate` the negation of `insecure`, `autoconnect_backend`
//!   its `autoconnect` flag. Changing one goes through [`crate::daemon::Daemon`], which
//!   validates it and seals the password anew for the new settings.
//! - The others (XMPP priority, the frontend's autoconnect/autodisconnect, the history
//!   limit, contact-list options, the composition syntax, the profile password's hash)
//!   live in the `libervia_param` table (through [`crate::libervia_params`]), one row
//!   per value a user set; no row means the default.
//!
//! Where Libervia 0.9 silently ignores a bad value or an unknown parameter, Perch
//! answers with an error naming it; and setting works whether or not a Libervia
//! session is started. The contract and these differences are in
//! `doc/libervia-params.rst`.

use std::collections::{BTreeMap, HashMap};
use std::num::IntErrorKind;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::{SecureRandom, SystemRandom};

use super::errors::{INTERNAL, LibError, PERMISSION, VALUE};
use crate::daemon::Daemon;
use crate::db::entities::profile;
use crate::error::Error;
use crate::secret::Password;

/// The Libervia parameter store of the daemon's profiles.
pub struct Params {
    daemon: Arc<Daemon>,
    /// One `set` at a time: `Force server` and `Force port` each rewrite the one
    /// server override from the other's current value, which must not change meanwhile.
    writing: tokio::sync::Mutex<()>,
}

/// What a successful `set` changed, for the `paramUpdate` signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamChange {
    pub name: String,
    pub category: String,
    /// The value as stored (an int clamped, a bool as `true`/`false`); always `""` for
    /// a password.
    pub value: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("Requested param doesn't exist: {category}/{name}")]
    UnknownParam { category: String, name: String },
    #[error("param {category}/{name} is above the allowed security limit")]
    Permission { category: String, name: String },
    #[error("To retrieve password values, use asyncGetParamA instead of getParamA")]
    PasswordNeedsAsync,
    #[error("invalid value for param {category}/{name}: {why}")]
    Invalid {
        category: String,
        name: String,
        why: String,
    },
    #[error(transparent)]
    Perch(#[from] Error),
}

/// A parameter's type, as the schema and the XMLUI name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    String,
    Password,
    /// One of the options.
    List(&'static [&'static str]),
}

impl Kind {
    fn type_name(self) -> &'static str {
        match self {
            Kind::Bool => "bool",
            Kind::Int { .. } => "int",
            Kind::String => "string",
            Kind::Password => "password",
            Kind::List(_) => "list",
        }
    }
}

/// Where a parameter's value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    Jid,
    XmppPassword,
    ForceServer,
    ForcePort,
    CheckCertificate,
    AutoconnectBackend,
    /// The profile password's salted hash, in the `libervia_param` table.
    ProfilePassword,
    /// A row of the `libervia_param` table.
    Table,
}

#[derive(Debug)]
struct Spec {
    category: &'static str,
    name: &'static str,
    label: Option<&'static str>,
    kind: Kind,
    default: &'static str,
    /// Libervia's security level; `None` is reachable only with no limit (-1).
    security: Option<i32>,
    home: Home,
}

/// Categories in the order Libervia shows them, with their labels.
const CATEGORIES: &[(&str, &str)] = &[
    ("General", "General"),
    ("Connection", "Connection"),
    ("Composition", "Composition"),
];

/// Syntaxes offered for composition; markdown is the default.
const SYNTAXES: &[&str] = &["markdown", "xhtml"];

const SCHEMA: &[Spec] = &[
    Spec {
        category: "General",
        name: "Password",
        label: None,
        kind: Kind::Password,
        default: "",
        security: None,
        home: Home::ProfilePassword,
    },
    Spec {
        category: "General",
        name: "History",
        label: Some("Chat history limit"),
        kind: Kind::Int { min: 0, max: 100 },
        default: "20",
        security: Some(0),
        home: Home::Table,
    },
    Spec {
        category: "General",
        name: "Offline contacts",
        label: Some("Show offline contacts"),
        kind: Kind::Bool,
        default: "false",
        security: Some(0),
        home: Home::Table,
    },
    Spec {
        category: "General",
        name: "Empty groups",
        label: Some("Show empty groups"),
        kind: Kind::Bool,
        default: "true",
        security: Some(0),
        home: Home::Table,
    },
    Spec {
        category: "Connection",
        name: "JabberID",
        label: None,
        kind: Kind::String,
        default: "name@example.org",
        security: Some(10),
        home: Home::Jid,
    },
    Spec {
        category: "Connection",
        name: "Password",
        label: None,
        kind: Kind::Password,
        default: "",
        security: Some(10),
        home: Home::XmppPassword,
    },
    Spec {
        category: "Connection",
        name: "Priority",
        label: None,
        kind: Kind::Int {
            min: -128,
            max: 127,
        },
        default: "50",
        security: Some(10),
        home: Home::Table,
    },
    Spec {
        category: "Connection",
        name: "Force server",
        label: None,
        kind: Kind::String,
        default: "",
        security: Some(50),
        home: Home::ForceServer,
    },
    Spec {
        category: "Connection",
        name: "Force port",
        label: None,
        kind: Kind::Int { min: 1, max: 65535 },
        default: "",
        security: Some(50),
        home: Home::ForcePort,
    },
    Spec {
        category: "Connection",
        name: "autoconnect_backend",
        label: Some("Connect on backend startup"),
        kind: Kind::Bool,
        default: "false",
        security: Some(50),
        home: Home::AutoconnectBackend,
    },
    Spec {
        category: "Connection",
        name: "autoconnect",
        label: Some("Connect on frontend startup"),
        kind: Kind::Bool,
        default: "true",
        security: Some(50),
        home: Home::Table,
    },
    Spec {
        category: "Connection",
        name: "autodisconnect",
        label: Some("Disconnect on frontend closure"),
        kind: Kind::Bool,
        default: "false",
        security: Some(50),
        home: Home::Table,
    },
    Spec {
        category: "Connection",
        name: "check_certificate",
        label: Some("Check certificate (don't uncheck if unsure)"),
        kind: Kind::Bool,
        default: "true",
        security: Some(4),
        home: Home::CheckCertificate,
    },
    Spec {
        category: "Composition",
        name: "Syntax",
        label: Some("Syntax"),
        kind: Kind::List(SYNTAXES),
        default: "markdown",
        security: Some(0),
        home: Home::Table,
    },
];

/// The separator of category and name in an XMLUI control's name.
const XMLUI_SEPARATOR: &str = "_XMLUI_PARAM_";

/// PBKDF2-HMAC-SHA256 rounds for the profile password's hash.
const PBKDF2_ROUNDS: u32 = 100_000;
const HASH_PREFIX: &str = "pbkdf2-sha256";

fn spec(category: &str, name: &str) -> Result<&'static Spec, ParamError> {
    SCHEMA
        .iter()
        .find(|s| s.category == category && s.name == name)
        .ok_or_else(|| ParamError::UnknownParam {
            category: crate::validate::excerpt(category, 100),
            name: crate::validate::excerpt(name, 100),
        })
}

/// Libervia's rule: with a limit (≥ 0), only params with a security level at most
/// that limit; with none (< 0), all.
fn allowed(s: &Spec, security_limit: i32) -> bool {
    security_limit < 0 || s.security.is_some_and(|level| level <= security_limit)
}

fn check_allowed(s: &Spec, security_limit: i32) -> Result<(), ParamError> {
    if allowed(s, security_limit) {
        Ok(())
    } else {
        Err(ParamError::Permission {
            category: s.category.to_owned(),
            name: s.name.to_owned(),
        })
    }
}

fn invalid(s: &Spec, why: impl Into<String>) -> ParamError {
    ParamError::Invalid {
        category: s.category.to_owned(),
        name: s.name.to_owned(),
        why: why.into(),
    }
}

/// A Perch error about the value itself becomes `Invalid`; anything else stays.
fn value_error(s: &Spec, e: Error) -> ParamError {
    match e {
        Error::BadArgument { .. } | Error::InvalidJid { .. } => invalid(s, e.to_string()),
        other => ParamError::Perch(other),
    }
}

/// A schema attribute other than the value (`""` when the param has none).
fn attribute(s: &Spec, attr: &str) -> String {
    match attr {
        "name" => s.name.to_owned(),
        "type" => s.kind.type_name().to_owned(),
        "label" => s.label.unwrap_or("").to_owned(),
        "security" => s.security.map(|l| l.to_string()).unwrap_or_default(),
        "constraint" => match s.kind {
            Kind::Int { min, max } => format!("{min};{max}"),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// The value as Libervia stores it: an int clamped to its constraint (empty: the
/// default), a bool as `true`/`false`, a list value one of its options.
fn normalise(s: &Spec, value: &str) -> Result<String, ParamError> {
    let limit = match s.kind {
        Kind::Password => 1024,
        _ => crate::validate::MAX_TEXT,
    };
    crate::validate::text(s.name, value, limit).map_err(|e| value_error(s, e))?;
    match s.kind {
        Kind::Int { min, max } => {
            let v = value.trim();
            if v.is_empty() {
                return Ok(s.default.to_owned());
            }
            let n = match v.parse::<i64>() {
                Ok(n) => n,
                Err(e) if *e.kind() == IntErrorKind::PosOverflow => i64::MAX,
                Err(e) if *e.kind() == IntErrorKind::NegOverflow => i64::MIN,
                Err(_) => {
                    return Err(invalid(
                        s,
                        format!(
                            "{:?} is not an integer (expected {min} to {max})",
                            crate::validate::excerpt(v, 40)
                        ),
                    ));
                }
            };
            Ok(n.clamp(min, max).to_string())
        }
        Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok("true".into()),
            "false" | "0" | "no" | "off" => Ok("false".into()),
            _ => Err(invalid(
                s,
                format!(
                    "{:?} is not a boolean (expected true or false)",
                    crate::validate::excerpt(value, 40)
                ),
            )),
        },
        Kind::List(options) => {
            if options.contains(&value) {
                Ok(value.to_owned())
            } else {
                Err(invalid(
                    s,
                    format!(
                        "{:?} is not one of {}",
                        crate::validate::excerpt(value, 40),
                        options.join(", ")
                    ),
                ))
            }
        }
        Kind::String | Kind::Password => Ok(value.to_owned()),
    }
}

/// The domain of a bare account JID as stored in a profile.
fn jid_domain(jid: &str) -> &str {
    jid.rsplit_once('@').map_or(jid, |(_, d)| d)
}

/// `Force server` and `Force port` as read from the profile's server override: no
/// override is ("", ""); an override to the JID's domain shows as an empty server
/// with its port (Libervia's "port alone"), and port 5222 with an explicit host as an
/// empty port. Each pair reads back as a server that connects to the same place.
fn force_pair(m: &profile::Model) -> (String, String) {
    let Some(server) = m.server.as_deref() else {
        return (String::new(), String::new());
    };
    let Ok((host, port)) = crate::profiles::parse_server(server) else {
        return (String::new(), String::new());
    };
    if host.eq_ignore_ascii_case(jid_domain(&m.jid)) {
        (String::new(), port.to_string())
    } else if port == 5222 {
        (host, String::new())
    } else {
        (host, port.to_string())
    }
}

/// The server override for a `Force server` / `Force port` pair.
fn compose_server(m: &profile::Model, host: &str, port: &str) -> Option<String> {
    match (host.is_empty(), port.is_empty()) {
        (true, true) => None,
        (true, false) => Some(format!("{}:{port}", jid_domain(&m.jid))),
        (false, true) => Some(host.to_owned()),
        (false, false) => Some(crate::profiles::format_server(host, port.parse().ok()?)),
    }
}

fn hash_profile_password(password: &str) -> Result<String, ParamError> {
    if password.is_empty() {
        return Ok(String::new());
    }
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| Error::Internal("the system random generator failed".into()))?;
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(PBKDF2_ROUNDS).expect("non-zero"),
        &salt,
        password.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "{HASH_PREFIX}${PBKDF2_ROUNDS}${}${}",
        B64.encode(salt),
        B64.encode(out)
    ))
}

fn verify_profile_password(stored: &str, password: &str) -> bool {
    if stored.is_empty() {
        return password.is_empty();
    }
    let mut parts = stored.split('$');
    let (Some(HASH_PREFIX), Some(rounds), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(rounds), Ok(salt), Ok(hash)) = (
        rounds
            .parse::<u32>()
            .ok()
            // Bounded: a database edited to ask for billions of rounds cannot stall
            // perchd at the next password check.
            .filter(|r| *r <= 10 * PBKDF2_ROUNDS)
            .and_then(std::num::NonZeroU32::new),
        B64.decode(salt),
        B64.decode(hash),
    ) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// Escapes text content as Python's minidom writes it.
fn esc_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Escapes an attribute value as Python's minidom writes it.
fn esc_attr(s: &str) -> String {
    esc_text(s).replace('"', "&quot;")
}

/// `extra_json`'s `{"ignore": [[category, name], …]}`.
fn parse_ignore(extra_json: &str) -> Result<Vec<(String, String)>, ParamError> {
    let bad = |why: String| ParamError::Invalid {
        category: String::new(),
        name: "extra".into(),
        why,
    };
    if extra_json.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_str(extra_json).map_err(|e| {
        bad(format!(
            "not JSON ({e}): expected {{\"ignore\": [[category, name], …]}}"
        ))
    })?;
    let Some(obj) = v.as_object() else {
        return Err(bad("expected a JSON object".into()));
    };
    let Some(ignore) = obj.get("ignore") else {
        return Ok(Vec::new());
    };
    let Some(list) = ignore.as_array() else {
        return Err(bad(
            "\"ignore\" must be a list of [category, name] pairs".into()
        ));
    };
    list.iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([serde_json::Value::String(c), serde_json::Value::String(n)]) => {
                Ok((c.clone(), n.clone()))
            }
            _ => Err(bad(
                "\"ignore\" must be a list of [category, name] pairs of strings".into(),
            )),
        })
        .collect()
}

impl Params {
    pub fn new(daemon: Arc<Daemon>) -> Self {
        Self {
            daemon,
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// `getParamsCategories`: the categories of the schema, in order.
    pub fn categories() -> Vec<&'static str> {
        CATEGORIES.iter().map(|(c, _)| *c).collect()
    }

    async fn profile(&self, profile: &str) -> Result<profile::Model, ParamError> {
        Ok(self.daemon.resolve_profile(profile).await?)
    }

    /// `setParam`: validates, stores (changing the profile where the param is one of
    /// its settings) and answers what to signal.
    pub async fn set(
        &self,
        profile: &str,
        category: &str,
        name: &str,
        value: &str,
        security_limit: i32,
    ) -> Result<ParamChange, ParamError> {
        let s = spec(category, name)?;
        check_allowed(s, security_limit)?;
        let value = normalise(s, value)?;
        let _writing = self.writing.lock().await;
        let m = self.profile(profile).await?;
        let d = &self.daemon;
        let perch = |e| value_error(s, e);
        match s.home {
            Home::Jid => d.set_profile_jid(&m.name, &value).await.map_err(perch)?,
            Home::XmppPassword => {
                if value.is_empty() {
                    return Err(invalid(s, "the XMPP password cannot be empty"));
                }
                d.set_profile_password(&m.name, &Password::new(value.clone()))
                    .await
                    .map_err(perch)?
            }
            Home::ForceServer => {
                let host = if value.trim().is_empty() {
                    String::new()
                } else {
                    crate::profiles::parse_host(&value).map_err(perch)?
                };
                let (_, port) = force_pair(&m);
                d.set_profile_server(&m.name, compose_server(&m, &host, &port).as_deref())
                    .await
                    .map_err(perch)?
            }
            Home::ForcePort => {
                let (host, _) = force_pair(&m);
                d.set_profile_server(&m.name, compose_server(&m, &host, &value).as_deref())
                    .await
                    .map_err(perch)?
            }
            Home::CheckCertificate => d
                .set_profile_insecure(&m.name, value != "true")
                .await
                .map_err(perch)?,
            Home::AutoconnectBackend => d
                .set_profile_autoconnect(&m.name, value == "true")
                .await
                .map_err(perch)?,
            Home::ProfilePassword => {
                let clear = value.clone();
                let hash = tokio::task::spawn_blocking(move || hash_profile_password(&clear))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))??;
                self.store(m.id, s, &hash).await?;
            }
            Home::Table => self.store(m.id, s, &value).await?,
        }
        tracing::info!(profile = %m.name, category = s.category, name = s.name, "Libervia param set");
        // What a read gives from now on (a JID normalised, a server override as shown).
        let value = match s.home {
            Home::Table | Home::ProfilePassword | Home::XmppPassword => value,
            _ => {
                let m = self.profile(&m.name).await?;
                self.value_of(&m, &HashMap::new(), s, false)?
            }
        };
        Ok(ParamChange {
            name: s.name.to_owned(),
            category: s.category.to_owned(),
            value: if s.kind == Kind::Password {
                String::new()
            } else {
                value
            },
        })
    }

    async fn store(&self, profile_id: i32, s: &Spec, value: &str) -> Result<(), ParamError> {
        let db = self.daemon.database();
        crate::libervia_params::set(db, profile_id, s.category, s.name, value).await?;
        Ok(())
    }

    /// The stored (set) params of a profile, by (category, name).
    async fn stored(
        &self,
        profile_id: i32,
    ) -> Result<HashMap<(String, String), String>, ParamError> {
        Ok(crate::libervia_params::all(self.daemon.database(), profile_id).await?)
    }

    /// A param's value as a string. The XMPP password only with `reveal`; the profile
    /// password never (only its hash is kept, and that is not handed out).
    fn value_of(
        &self,
        m: &profile::Model,
        stored: &HashMap<(String, String), String>,
        s: &Spec,
        reveal: bool,
    ) -> Result<String, ParamError> {
        Ok(match s.home {
            Home::Jid => m.jid.clone(),
            // None set yet (a profile made by profileCreate): reads back empty.
            Home::XmppPassword if reveal && !crate::profiles::has_password(m) => String::new(),
            Home::XmppPassword if reveal => {
                self.daemon.credentials(m)?.password.expose().to_owned()
            }
            Home::XmppPassword | Home::ProfilePassword => String::new(),
            Home::ForceServer => force_pair(m).0,
            Home::ForcePort => force_pair(m).1,
            Home::CheckCertificate => (!m.insecure).to_string(),
            Home::AutoconnectBackend => m.autoconnect.to_string(),
            Home::Table => stored
                .get(&(s.category.to_owned(), s.name.to_owned()))
                .cloned()
                .unwrap_or_else(|| s.default.to_owned()),
        })
    }

    /// `asyncGetParamA`: the value (the XMPP password in clear) or a schema attribute.
    pub async fn get(
        &self,
        profile: &str,
        category: &str,
        name: &str,
        attribute_name: &str,
        security_limit: i32,
    ) -> Result<String, ParamError> {
        let s = spec(category, name)?;
        check_allowed(s, security_limit)?;
        let m = self.profile(profile).await?;
        if attribute_name != "value" {
            return Ok(attribute(s, attribute_name));
        }
        let stored = self.stored(m.id).await?;
        self.value_of(&m, &stored, s, true)
    }

    /// `getParamA`: as [`Params::get`] with no security limit, but a password's value
    /// is refused.
    pub async fn get_sync(
        &self,
        profile: &str,
        category: &str,
        name: &str,
        attribute_name: &str,
    ) -> Result<String, ParamError> {
        let s = spec(category, name)?;
        if attribute_name == "value" && s.kind == Kind::Password {
            return Err(ParamError::PasswordNeedsAsync);
        }
        self.get(profile, category, name, attribute_name, -1).await
    }

    /// `asyncGetParamsValuesFromCategory`: every param of `category` the limit allows,
    /// by name. Passwords are `""`. `app` filters params tagged for one frontend; none
    /// of the built-in ones is, so it keeps them all.
    pub async fn category_values(
        &self,
        profile: &str,
        category: &str,
        security_limit: i32,
        app: &str,
    ) -> Result<BTreeMap<String, String>, ParamError> {
        let _ = app;
        if !CATEGORIES.iter().any(|(c, _)| *c == category) {
            return Err(ParamError::UnknownParam {
                category: crate::validate::excerpt(category, 100),
                name: String::new(),
            });
        }
        let m = self.profile(profile).await?;
        let stored = self.stored(m.id).await?;
        SCHEMA
            .iter()
            .filter(|s| s.category == category && allowed(s, security_limit))
            .map(|s| Ok((s.name.to_owned(), self.value_of(&m, &stored, s, false)?)))
            .collect()
    }

    /// `getParamsUI`: the parameters dialog as one line of XMLUI, the shape
    /// Libervia's frontends read (passwords always shown empty).
    pub async fn ui_xml(
        &self,
        profile: &str,
        security_limit: i32,
        app: &str,
        extra_json: &str,
    ) -> Result<String, ParamError> {
        let _ = app; // no built-in param is tagged for one frontend
        let ignore = parse_ignore(extra_json)?;
        let m = self.profile(profile).await?;
        let stored = self.stored(m.id).await?;
        let mut xml = String::from(
            "<?xml version=\"1.0\" ?><sat_xmlui type=\"param\"><container type=\"tabs\">",
        );
        for (category, label) in CATEGORIES {
            let params: Vec<&Spec> = SCHEMA
                .iter()
                .filter(|s| {
                    s.category == *category
                        && allowed(s, security_limit)
                        && !ignore.iter().any(|(c, n)| c == s.category && n == s.name)
                })
                .collect();
            if params.is_empty() {
                continue;
            }
            xml.push_str(&format!(
                "<tab name=\"{}\" label=\"{}\"><container type=\"label\">",
                esc_attr(category),
                esc_attr(label)
            ));
            for s in params {
                let value = self.value_of(&m, &stored, s, false)?;
                xml.push_str(&format!(
                    "<widget type=\"label\" value=\"{}\"/>",
                    esc_attr(s.label.unwrap_or(s.name))
                ));
                let control = esc_attr(&format!("{}{XMLUI_SEPARATOR}{}", s.category, s.name));
                let type_name = s.kind.type_name();
                match s.kind {
                    Kind::Bool => xml.push_str(&format!(
                        "<widget name=\"{control}\" type=\"bool\" value=\"{value}\"/>"
                    )),
                    Kind::List(options) => {
                        xml.push_str(&format!(
                            "<widget name=\"{control}\" type=\"list\" extensible=\"yes\">"
                        ));
                        for o in options {
                            let o = esc_attr(o);
                            let selected = if *o == value {
                                " selected=\"true\""
                            } else {
                                ""
                            };
                            xml.push_str(&format!(
                                "<option value=\"{o}\" label=\"{o}\"{selected}/>"
                            ));
                        }
                        xml.push_str("</widget>");
                    }
                    Kind::Int { .. } | Kind::String | Kind::Password if !value.is_empty() => {
                        xml.push_str(&format!(
                            "<widget name=\"{control}\" type=\"{type_name}\"><value>{}</value></widget>",
                            esc_text(&value)
                        ))
                    }
                    Kind::Int { .. } | Kind::String | Kind::Password => xml.push_str(&format!(
                        "<widget name=\"{control}\" type=\"{type_name}\"/>"
                    )),
                }
            }
            xml.push_str("</container></tab>");
        }
        xml.push_str("</container></sat_xmlui>");
        Ok(xml)
    }

    /// Whether `password` is the profile password (`General/Password`); with none
    /// set, only `""` is.
    pub async fn profile_password_ok(
        &self,
        profile: &str,
        password: &str,
    ) -> Result<bool, ParamError> {
        let m = self.profile(profile).await?;
        let stored = self
            .stored(m.id)
            .await?
            .remove(&("General".to_owned(), "Password".to_owned()))
            .unwrap_or_default();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || verify_profile_password(&stored, &password))
            .await
            .map_err(|e| ParamError::Perch(Error::Internal(e.to_string())))
    }

    /// `General/History`: how many messages a history request with no limit gets.
    pub async fn history_limit(&self, profile: &str) -> Result<u32, ParamError> {
        let v = self.get(profile, "General", "History", "value", -1).await?;
        v.parse()
            .map_err(|_| ParamError::Perch(Error::Internal(format!("stored History {v:?}"))))
    }

    /// `Connection/Priority`: the priority of the profile's presence.
    pub async fn priority(&self, profile: &str) -> Result<i8, ParamError> {
        let v = self
            .get(profile, "Connection", "Priority", "value", -1)
            .await?;
        v.parse()
            .map_err(|_| ParamError::Perch(Error::Internal(format!("stored Priority {v:?}"))))
    }
}

impl From<ParamError> for LibError {
    fn from(e: ParamError) -> Self {
        let m = e.to_string();
        match e {
            ParamError::UnknownParam { .. } => {
                Self::exc(VALUE, "Requested param doesn't exist", "")
            }
            ParamError::Permission { .. } => Self::exc(PERMISSION, &m, ""),
            ParamError::PasswordNeedsAsync => Self::exc(
                INTERNAL,
                "To retrieve password values, use asyncGetParamA instead of getParamA",
                "",
            ),
            ParamError::Invalid { .. } => Self::exc(VALUE, &m, ""),
            ParamError::Perch(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(c: &str, n: &str) -> &'static Spec {
        spec(c, n).unwrap()
    }

    #[test]
    fn ints_are_clamped_and_empty_is_the_default() {
        let port = s("Connection", "Force port");
        assert_eq!(normalise(port, "99999").unwrap(), "65535");
        assert_eq!(normalise(port, "0").unwrap(), "1");
        assert_eq!(normalise(port, "").unwrap(), "");
        assert_eq!(normalise(port, "99999999999999999999999").unwrap(), "65535");
        let prio = s("Connection", "Priority");
        assert_eq!(normalise(prio, "-500").unwrap(), "-128");
        assert_eq!(normalise(prio, " 7 ").unwrap(), "7");
        assert_eq!(normalise(prio, "").unwrap(), "50");
        assert!(matches!(
            normalise(prio, "high"),
            Err(ParamError::Invalid { .. })
        ));
    }

    #[test]
    fn bools_and_lists() {
        let b = s("General", "Offline contacts");
        assert_eq!(normalise(b, "TRUE").unwrap(), "true");
        assert_eq!(normalise(b, "0").unwrap(), "false");
        assert!(normalise(b, "maybe").is_err());
        let l = s("Composition", "Syntax");
        assert_eq!(normalise(l, "xhtml").unwrap(), "xhtml");
        assert!(normalise(l, "rst").is_err());
    }

    #[test]
    fn security_levels() {
        let jid = s("Connection", "JabberID");
        assert!(allowed(jid, -1));
        assert!(allowed(jid, 10));
        assert!(!allowed(jid, 9));
        let pw = s("General", "Password");
        assert!(allowed(pw, -1));
        assert!(!allowed(pw, 1000));
    }

    #[test]
    fn profile_password_hash() {
        let h = hash_profile_password("hunter2").unwrap();
        assert!(h.starts_with("pbkdf2-sha256$100000$") && !h.contains("hunter2"));
        assert!(verify_profile_password(&h, "hunter2"));
        assert!(!verify_profile_password(&h, "hunter3"));
        assert!(!verify_profile_password(&h, ""));
        assert_ne!(h, hash_profile_password("hunter2").unwrap(), "salted");
        assert_eq!(hash_profile_password("").unwrap(), "");
        assert!(verify_profile_password("", ""));
        assert!(!verify_profile_password("", "x"));
        assert!(!verify_profile_password("garbage", "x"));
        let greedy = h.replacen("$100000$", "$4000000000$", 1);
        assert!(!verify_profile_password(&greedy, "hunter2"));
    }

    #[test]
    fn extra_ignore() {
        assert!(parse_ignore("").unwrap().is_empty());
        assert_eq!(
            parse_ignore(r#"{"ignore": [["General", "History"]]}"#).unwrap(),
            [("General".to_owned(), "History".to_owned())]
        );
        for bad in ["[", "[]", r#"{"ignore": 3}"#, r#"{"ignore": [["a"]]}"#] {
            assert!(parse_ignore(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn escaping_matches_minidom() {
        assert_eq!(esc_attr(r#"a&b<c>"d'"#), "a&amp;b&lt;c&gt;&quot;d'");
        assert_eq!(esc_text(r#"a&b<c>"d"#), "a&amp;b&lt;c&gt;\"d");
    }
}
