//! Profiles: the accounts perchd manages (a resource: create, get, list, edit, delete).
//!
//! The only code that touches the `profile` table. Input is validated here, before
//! anything is written, and errors name the bad field. Passwords go in sealed and come
//! out only as a [`Password`] for the session that logs in.

use std::path::Path;
use std::sync::Arc;

use perch_plugin_api::jid::BareJid;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;

use crate::db::entities::profile;
use crate::error::{Error, Result};
use crate::secret::{Password, Sealer};

/// What a frontend sees of a profile (never the password).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ProfileView {
    pub name: String,
    pub jid: String,
    pub server: Option<String>,
    pub ca_file: Option<String>,
    pub insecure: bool,
    pub autoconnect: bool,
    pub default: bool,
}

impl From<&profile::Model> for ProfileView {
    fn from(m: &profile::Model) -> Self {
        Self {
            name: m.name.clone(),
            jid: m.jid.clone(),
            server: m.server.clone(),
            ca_file: m.ca_file.clone(),
            insecure: m.insecure,
            autoconnect: m.autoconnect,
            default: m.is_default,
        }
    }
}

/// A new profile, as asked for by a frontend.
#[derive(Debug, Clone)]
pub struct NewProfile {
    pub name: String,
    pub jid: String,
    pub password: Password,
    pub server: Option<String>,
    pub ca_file: Option<String>,
    pub insecure: bool,
    pub autoconnect: bool,
}

/// Everything a session needs to connect.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub profile: String,
    pub jid: BareJid,
    pub password: Password,
    /// Where to connect instead of the SRV lookups.
    pub server: Option<Endpoint>,
    pub ca_file: Option<String>,
    pub insecure: bool,
    /// The priority of the first presence (then whatever the frontend sets).
    pub priority: i8,
}

#[derive(Clone)]
pub struct Profiles {
    db: DatabaseConnection,
    sealer: Arc<Sealer>,
    /// Profiles by name: every D-Bus call names one, and only this type changes them
    /// (every write below forgets the lot), so reads need not ask SQLite each time.
    cache: Arc<std::sync::Mutex<std::collections::HashMap<String, profile::Model>>>,
}

pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(Error::bad_argument(
            "name",
            format!(
                "{:?}: a profile name is 1 to 64 letters, digits, '_', '-' or '.' (not first)",
                crate::validate::excerpt(name, 80)
            ),
        ))
    }
}

/// Parses a bare JID that must have a local part (an account).
pub fn parse_account_jid(jid: &str) -> Result<BareJid> {
    let parsed = BareJid::new(jid).map_err(|e| Error::invalid_jid(jid, e))?;
    if parsed.node().is_none() {
        return Err(Error::invalid_jid(
            jid,
            "an account JID needs a local part (user@domain)",
        ));
    }
    Ok(parsed)
}

/// Parses `host` or `host:port` (`[v6]:port` too); the port defaults to 5222.
pub fn parse_server(s: &str) -> Result<(String, u16)> {
    let bad = |why: &str| {
        Error::bad_argument(
            "server",
            format!("{:?}: {why}", crate::validate::excerpt(s, 80)),
        )
    };
    let s = s.trim();
    if s.is_empty() {
        return Err(bad("empty"));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("only an IPv6 address goes between '[' and ']'"));
        }
        match after.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if after.is_empty() => (h, None),
            None => return Err(bad("expected host[:port]")),
        }
    } else if s.matches(':').count() > 1 {
        (s, None) // a bare IPv6 address
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    if host.parse::<std::net::IpAddr>().is_err() && !is_dns_name(host) {
        return Err(bad(
            "the host must be an IP address or a DNS name (labels of letters, digits and '-', \
             at most 63 bytes each, 253 in all)",
        ));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
        None => 5222,
    };
    Ok((host.to_owned(), port))
}

/// The scheme of a server override that asks for XEP-0368 Direct TLS.
pub const DIRECT_TLS: &str = "tls://";

/// A profile's server override, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// TLS from the first byte (XEP-0368), not STARTTLS.
    pub direct_tls: bool,
}

/// Parses a server override: `host[:port]` (STARTTLS; 5222 by default) or
/// `tls://host[:port]` (XEP-0368 Direct TLS; 5223 by default).
pub fn parse_endpoint(s: &str) -> Result<Endpoint> {
    let s = s.trim();
    match s.get(..DIRECT_TLS.len()) {
        Some(scheme) if scheme.eq_ignore_ascii_case(DIRECT_TLS) => {
            let rest = &s[DIRECT_TLS.len()..];
            let explicit_port = rest.rsplit_once(':').is_some_and(|(h, p)| {
                (!h.contains(':') || h.ends_with(']')) && p.bytes().all(|b| b.is_ascii_digit())
            });
            let (host, port) = parse_server(rest)?;
            Ok(Endpoint {
                host,
                port: if explicit_port { port } else { 5223 },
                direct_tls: true,
            })
        }
        _ => parse_server(s).map(|(host, port)| Endpoint {
            host,
            port,
            direct_tls: false,
        }),
    }
}

/// A server override as [`parse_endpoint`] reads it back.
pub fn format_endpoint(e: &Endpoint) -> String {
    let hostport = format_server(&e.host, e.port);
    if e.direct_tls {
        format!("{DIRECT_TLS}{hostport}")
    } else {
        hostport
    }
}

/// A host alone (a DNS name or an IP address, no port), as `parse_server` accepts it.
pub fn parse_host(s: &str) -> Result<String> {
    let s = s.trim();
    if s.parse::<std::net::Ipv6Addr>().is_err() && s.contains(':') {
        return Err(Error::bad_argument(
            "server",
            format!(
                "{:?}: a host name or address without a port",
                crate::validate::excerpt(s, 80)
            ),
        ));
    }
    Ok(parse_server(s)?.0)
}

/// `host:port` as `parse_server` reads it back (`[v6]:port` for an IPv6 address).
pub fn format_server(host: &str, port: u16) -> String {
    if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A host name as DNS carries it (RFC 1123 labels; a trailing dot allowed).
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn check_ca_file(path: &str) -> Result<()> {
    let bad = |why: String| Error::bad_argument("ca_file", format!("{path}: {why}"));
    if !Path::new(path).is_absolute() {
        return Err(bad("must be an absolute path".into()));
    }
    let data = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let n = crate::certs::count_pem_certs(&data).map_err(bad)?;
    if n == 0 {
        return Err(bad("contains no PEM certificate".into()));
    }
    Ok(())
}

/// What a sealed password is bound to (see `secret`).
fn binding(
    name: &str,
    jid: &str,
    server: Option<&str>,
    ca_file: Option<&str>,
    insecure: bool,
) -> String {
    format!(
        "{name}\0{jid}\0{}\0{}\0{insecure}",
        server.unwrap_or(""),
        ca_file.unwrap_or("")
    )
}

/// What the password column holds for a profile whose XMPP password is not set yet
/// (created by a Libervia frontend, which gives it later). A sealed password always
/// starts with the sealing scheme's version prefix, so the two never collide.
pub const NO_PASSWORD: &str = "";

/// Whether the profile has an XMPP password (sealed) at all.
pub fn has_password(m: &profile::Model) -> bool {
    m.password != NO_PASSWORD
}

fn model_binding(m: &profile::Model) -> String {
    binding(
        &m.name,
        &m.jid,
        m.server.as_deref(),
        m.ca_file.as_deref(),
        m.insecure,
    )
}

impl Profiles {
    /// Seals a plugin's secret for profile `m` (bound to the plugin and the
    /// profile's id: it opens for no other).
    pub fn seal_secret(&self, plugin: &str, m: &profile::Model, secret: &[u8]) -> Result<String> {
        self.sealer
            .seal_secret(&format!("{plugin}\0{}", m.id), secret)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Opens what [`Profiles::seal_secret`] gave.
    pub fn open_secret(&self, plugin: &str, m: &profile::Model, sealed: &str) -> Result<Vec<u8>> {
        self.sealer
            .open_secret(&m.name, &format!("{plugin}\0{}", m.id), sealed)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    pub fn new(db: DatabaseConnection, sealer: Arc<Sealer>) -> Self {
        Self {
            db,
            sealer,
            cache: Arc::default(),
        }
    }

    fn cached(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, profile::Model>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After any write: the next reads go to the database.
    fn forget(&self) {
        self.cached().clear();
    }

    pub async fn create(&self, p: NewProfile) -> Result<ProfileView> {
        let out = self.create_uncached(p, false).await;
        self.forget();
        out
    }

    /// Creates a profile whose XMPP password is not known yet (`p.password` must be
    /// empty): Libervia's frontends create a profile first and set its password later.
    /// Nothing is sealed ([`NO_PASSWORD`] is stored); connecting it is
    /// [`Error::NoPassword`] until [`Profiles::set_password`] gives one.
    pub async fn create_without_password(&self, p: NewProfile) -> Result<ProfileView> {
        if !p.password.expose().is_empty() {
            return Err(Error::bad_argument(
                "password",
                "a profile created without a password is given none",
            ));
        }
        let out = self.create_uncached(p, true).await;
        self.forget();
        out
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        let out = self.delete_uncached(name).await;
        self.forget();
        out
    }

    pub async fn set_default(&self, name: &str) -> Result<()> {
        let out = self.set_default_uncached(name).await;
        self.forget();
        out
    }

    pub async fn set_autoconnect(&self, name: &str, on: bool) -> Result<()> {
        let out = self.set_autoconnect_uncached(name, on).await;
        self.forget();
        out
    }

    pub async fn set_password(&self, name: &str, password: &Password) -> Result<()> {
        let out = self.set_password_uncached(name, password).await;
        self.forget();
        out
    }

    /// Changes the account JID (a bare JID with a local part); the password is sealed
    /// anew for it.
    pub async fn set_jid(&self, name: &str, jid: &str) -> Result<()> {
        let jid = parse_account_jid(jid)?.to_string();
        let out = self
            .reseal_with(name, move |m| {
                m.jid = jid;
                Ok(())
            })
            .await;
        self.forget();
        out
    }

    /// Sets (`host`, `host:port`, `[v6]:port`, each optionally after `tls://`) or
    /// clears (`None`) the server to connect to instead of the SRV lookups; the
    /// password is sealed anew for it.
    pub async fn set_server(&self, name: &str, server: Option<&str>) -> Result<()> {
        let server = match server {
            Some(s) => Some(format_endpoint(&parse_endpoint(s)?)),
            None => None,
        };
        let out = self
            .reseal_with(name, move |m| {
                m.server = server;
                Ok(())
            })
            .await;
        self.forget();
        out
    }

    /// Turns certificate checks off (`true`) or on; the password is sealed anew.
    /// Refused while the profile names a CA file (the two exclude each other).
    pub async fn set_insecure(&self, name: &str, insecure: bool) -> Result<()> {
        let out = self
            .reseal_with(name, move |m| {
                if insecure && m.ca_file.is_some() {
                    return Err(Error::bad_argument(
                        "insecure",
                        "ca_file and insecure exclude each other: clear the profile's CA file first",
                    ));
                }
                m.insecure = insecure;
                Ok(())
            })
            .await;
        self.forget();
        out
    }

    /// Changes connection settings the sealed password is bound to: opens the
    /// password under the old settings and seals it under the new ones, in one update.
    async fn reseal_with(
        &self,
        name: &str,
        change: impl FnOnce(&mut profile::Model) -> Result<()>,
    ) -> Result<()> {
        let old = self.get(name).await?;
        let mut new = old.clone();
        change(&mut new)?;
        if new == old {
            return Ok(());
        }
        // A profile with no password yet has nothing to re-seal.
        let sealed = if has_password(&old) {
            let password = self
                .sealer
                .open(&old.name, &model_binding(&old), &old.password)
                .map_err(|e| Error::Internal(e.to_string()))?;
            self.sealer
                .seal(&model_binding(&new), &password)
                .map_err(|e| Error::Internal(e.to_string()))?
        } else {
            NO_PASSWORD.to_owned()
        };
        profile::ActiveModel {
            id: Set(old.id),
            jid: Set(new.jid.clone()),
            server: Set(new.server.clone()),
            insecure: Set(new.insecure),
            password: Set(sealed),
            ..Default::default()
        }
        .update(&self.db)
        .await?;
        tracing::info!(
            profile = %name,
            jid = %new.jid,
            server = ?new.server,
            insecure = new.insecure,
            "connection settings changed"
        );
        Ok(())
    }

    async fn create_uncached(&self, p: NewProfile, no_password: bool) -> Result<ProfileView> {
        validate_name(&p.name)?;
        let jid = parse_account_jid(&p.jid)?;
        if !no_password && p.password.expose().is_empty() {
            return Err(Error::bad_argument("password", "empty"));
        }
        if let Some(s) = &p.server {
            parse_endpoint(s)?;
        }
        if p.insecure && p.ca_file.is_some() {
            return Err(Error::bad_argument(
                "insecure",
                "ca_file and insecure exclude each other",
            ));
        }
        if let Some(ca) = &p.ca_file {
            check_ca_file(ca)?;
        }
        let jid_s = jid.to_string();
        let sealed = if no_password {
            NO_PASSWORD.to_owned()
        } else {
            self.sealer
                .seal(
                    &binding(
                        &p.name,
                        &jid_s,
                        p.server.as_deref(),
                        p.ca_file.as_deref(),
                        p.insecure,
                    ),
                    &p.password,
                )
                .map_err(|e| Error::Internal(e.to_string()))?
        };
        let txn = crate::db::begin_write(&self.db, "profile create", &p.name).await?;
        // Creations one at a time on PostgreSQL too (SQLite's BEGIN IMMEDIATE
        // already has them so): of two of one name the second sees the first and is
        // told it exists; of two first profiles one only is the default. Readers do
        // not wait.
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            txn.execute_unprepared("LOCK TABLE profile IN SHARE ROW EXCLUSIVE MODE")
                .await?;
        }
        if profile::Entity::find()
            .filter(profile::Column::Name.eq(&p.name))
            .one(&txn)
            .await?
            .is_some()
        {
            return Err(Error::ProfileExists(p.name));
        }
        let has_default = profile::Entity::find()
            .filter(profile::Column::IsDefault.eq(true))
            .one(&txn)
            .await?
            .is_some();
        let model = profile::ActiveModel {
            name: Set(p.name.clone()),
            jid: Set(jid_s),
            password: Set(sealed),
            server: Set(p.server),
            ca_file: Set(p.ca_file),
            insecure: Set(p.insecure),
            autoconnect: Set(p.autoconnect),
            is_default: Set(!has_default),
            created_at: Set(crate::time::now_micros()),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        tracing::info!(profile = %model.name, jid = %model.jid, "profile created");
        Ok(ProfileView::from(&model))
    }

    pub async fn list(&self) -> Result<Vec<profile::Model>> {
        Ok(profile::Entity::find()
            .order_by_asc(profile::Column::Name)
            .all(&self.db)
            .await?)
    }

    /// The name of the profile `id`; `None` when there is none.
    pub async fn name_of(&self, id: i32) -> Result<Option<String>> {
        Ok(profile::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|m| m.name))
    }

    pub async fn get(&self, name: &str) -> Result<profile::Model> {
        if let Some(m) = self.cached().get(name) {
            return Ok(m.clone());
        }
        let m = profile::Entity::find()
            .filter(profile::Column::Name.eq(name))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::UnknownProfile(crate::validate::excerpt(name, 100)))?;
        self.cached().insert(name.to_owned(), m.clone());
        Ok(m)
    }

    /// A profile by name, or the default one for `""`.
    pub async fn resolve(&self, name: &str) -> Result<profile::Model> {
        if !name.is_empty() {
            return self.get(name).await;
        }
        profile::Entity::find()
            .filter(profile::Column::IsDefault.eq(true))
            .one(&self.db)
            .await?
            .ok_or(Error::NoDefaultProfile)
    }

    async fn delete_uncached(&self, name: &str) -> Result<()> {
        let m = self.get(name).await?;
        profile::Entity::delete_by_id(m.id).exec(&self.db).await?;
        tracing::info!(profile = %name, "profile deleted");
        Ok(())
    }

    async fn set_default_uncached(&self, name: &str) -> Result<()> {
        let m = self.get(name).await?;
        let txn = crate::db::begin_write(&self.db, "profile set default", name).await?;
        profile::Entity::update_many()
            .col_expr(profile::Column::IsDefault, false.into())
            .exec(&txn)
            .await?;
        profile::ActiveModel {
            id: Set(m.id),
            is_default: Set(true),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    async fn set_autoconnect_uncached(&self, name: &str, on: bool) -> Result<()> {
        let m = self.get(name).await?;
        profile::ActiveModel {
            id: Set(m.id),
            autoconnect: Set(on),
            ..Default::default()
        }
        .update(&self.db)
        .await?;
        Ok(())
    }

    /// Replaces the stored password (sealed anew).
    async fn set_password_uncached(&self, name: &str, password: &Password) -> Result<()> {
        if password.expose().is_empty() {
            return Err(Error::bad_argument("password", "empty"));
        }
        let m = self.get(name).await?;
        let sealed = self
            .sealer
            .seal(&model_binding(&m), password)
            .map_err(|e| Error::Internal(e.to_string()))?;
        profile::ActiveModel {
            id: Set(m.id),
            password: Set(sealed),
            ..Default::default()
        }
        .update(&self.db)
        .await?;
        tracing::info!(profile = %name, "password changed");
        Ok(())
    }

    /// Unseals what a session needs to log in.
    /// A profile created without a password is [`Error::NoPassword`].
    pub fn credentials(&self, m: &profile::Model) -> Result<Credentials> {
        if !has_password(m) {
            return Err(Error::NoPassword(m.name.clone()));
        }
        let password = self
            .sealer
            .open(&m.name, &model_binding(m), &m.password)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Credentials {
            profile: m.name.clone(),
            jid: parse_account_jid(&m.jid)?,
            password,
            server: m.server.as_deref().map(parse_endpoint).transpose()?,
            ca_file: m.ca_file.clone(),
            insecure: m.insecure,
            priority: 0,
        })
    }

    /// The priority a session announces first: the `Connection/Priority` a Libervia
    /// frontend set for the profile (`libervia_param`), else 0.
    pub async fn initial_priority(&self, profile_id: i32) -> Result<i8> {
        use sea_orm::ConnectionTrait;
        let row = self
            .db
            .query_one_raw(perch_plugin_api::db::statement(
                self.db.get_database_backend(),
                "SELECT value FROM libervia_param \
                 WHERE profile_id = ? AND category = 'Connection' AND name = 'Priority'",
                [profile_id.into()],
            ))
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<String>("", "value")?.parse().unwrap_or(0),
            None => 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_forms() {
        assert_eq!(
            parse_server("localhost").unwrap(),
            ("localhost".into(), 5222)
        );
        assert_eq!(
            parse_server("127.0.0.1:25222").unwrap(),
            ("127.0.0.1".into(), 25222)
        );
        assert_eq!(parse_server("[::1]:5223").unwrap(), ("::1".into(), 5223));
        assert_eq!(parse_server("::1").unwrap(), ("::1".into(), 5222));
        assert_eq!(
            parse_server("xmpp-1.example.org.:5223").unwrap(),
            ("xmpp-1.example.org.".into(), 5223)
        );
        let long = "a".repeat(10_000_000);
        for bad in [
            "",
            "host:0",
            "host:99999",
            "host:x",
            "[::1",
            ":5222",
            "a b",
            "bell\u{7}.example",
            "under_score.example",
            "-lead.example",
            "a..b",
            "host/path",
            "[not-an-ip]:5222",
            long.as_str(),
        ] {
            let e = parse_server(bad).unwrap_err();
            assert_eq!(e.name(), "BadArgument", "{bad:.40}");
            assert!(e.to_string().len() < 400, "the error echoes the argument");
        }
    }

    #[test]
    fn direct_tls_endpoints() {
        let e = parse_endpoint("tls://localhost").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.direct_tls),
            ("localhost", 5223, true)
        );
        let e = parse_endpoint("TLS://[::1]:443").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.direct_tls), ("::1", 443, true));
        let e = parse_endpoint("tls://::1").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 5223));
        let e = parse_endpoint("example.org:5000").unwrap();
        assert_eq!((e.port, e.direct_tls), (5000, false));
        assert_eq!(
            format_endpoint(&parse_endpoint("tls://h:5").unwrap()),
            "tls://h:5"
        );
        assert!(parse_endpoint("tls://").is_err());
        assert!(parse_endpoint("tls://h:0").is_err());
    }

    #[test]
    fn hosts_alone_and_server_strings() {
        assert_eq!(parse_host("xmpp.example.org").unwrap(), "xmpp.example.org");
        assert_eq!(parse_host(" 127.0.0.1 ").unwrap(), "127.0.0.1");
        assert_eq!(parse_host("::1").unwrap(), "::1");
        for bad in ["", "host:5222", "[::1]:5222", "a b", "-x.example"] {
            assert_eq!(parse_host(bad).unwrap_err().name(), "BadArgument", "{bad}");
        }
        for (host, port) in [("example.org", 5223), ("10.0.0.1", 1), ("::1", 65535)] {
            assert_eq!(
                parse_server(&format_server(host, port)).unwrap(),
                (host.to_owned(), port)
            );
        }
    }

    #[test]
    fn names_and_jids() {
        assert!(validate_name("alice-2.work").is_ok());
        for bad in ["", ".hidden", "a b", "a/b", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert!(parse_account_jid("alice@example.org").is_ok());
        assert_eq!(
            parse_account_jid("example.org").unwrap_err().name(),
            "InvalidJid"
        );
        assert_eq!(parse_account_jid("a@b@c").unwrap_err().name(), "InvalidJid");
    }
}
