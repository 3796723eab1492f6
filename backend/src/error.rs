//! The backend's error type.
//!
//! Each variant is something a user can act on, and maps one to one onto a stable
//! D-Bus error name (`org.perch.Perch1.Error.<Name>`, see `bridge`), so frontends can
//! tell "wrong password" from "server down" without parsing text. Messages name what
//! was wrong: the profile, the JID, the argument.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no profile named {0:?}")]
    UnknownProfile(String),
    #[error("a profile named {0:?} already exists")]
    ProfileExists(String),
    #[error("no default profile is set: name one, or set one with `perch profile default NAME`")]
    NoDefaultProfile,
    #[error("profile {0:?} is not connected")]
    NotConnected(String),
    #[error("invalid JID {jid:?}: {reason}")]
    InvalidJid { jid: String, reason: String },
    /// The profile was created without an XMPP password and none was set since.
    #[error(
        "profile {0:?} has no XMPP password: set it first (Libervia param Connection/Password)"
    )]
    NoPassword(String),
    #[error("authentication failed for {jid}: {reason}")]
    AuthenticationFailed { jid: String, reason: String },
    #[error("server unreachable for {domain}: {reason}")]
    ServerUnreachable { domain: String, reason: String },
    #[error("TLS certificate of {domain} not trusted: {reason}")]
    CertificateNotTrusted { domain: String, reason: String },
    #[error("bad argument {name:?}: {reason}")]
    BadArgument { name: String, reason: String },
    #[error("no action named {0:?} (see `perch action list`)")]
    UnknownAction(String),
    #[error("no job with id {0:?}")]
    UnknownJob(String),
    #[error("no sent message with id {0:?}")]
    UnknownMessage(String),
    #[error("{0}")]
    Cancelled(String),
    #[error("timed out: {0}")]
    Timeout(String),
    /// A message that must go encrypted could not be; nothing was sent.
    #[error("not encrypted, not sent: {0}")]
    NotEncrypted(String),
    /// Another entity answered with this stanza error; its D-Bus name is the
    /// condition (`ItemNotFound`, `Forbidden`, …).
    #[error("{0}")]
    Stanza(perch_plugin_api::StanzaError),
    #[error("{0}")]
    Xmpp(String),
    /// Another daemon sharing the database owns the profile (`doc/deployment.rst`).
    #[error("profile {profile:?} is owned by the daemon {owner:?}: ask that one")]
    OwnedElsewhere { profile: String, owner: String },
    /// A write for a profile whose lease this daemon lost; nothing was written.
    #[error(
        "this daemon no longer owns profile #{profile_id} (the daemon {owner:?} does); \
         nothing was written"
    )]
    LeaseLost { profile_id: i32, owner: String },
    #[error("database error: {0}")]
    Storage(#[from] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable name of the error (the last part of its D-Bus error name).
    pub fn name(&self) -> &'static str {
        match self {
            Self::UnknownProfile(_) => "UnknownProfile",
            Self::ProfileExists(_) => "ProfileExists",
            Self::NoDefaultProfile => "NoDefaultProfile",
            Self::NotConnected(_) => "NotConnected",
            Self::InvalidJid { .. } => "InvalidJid",
            Self::AuthenticationFailed { .. } | Self::NoPassword(_) => "AuthenticationFailed",
            Self::ServerUnreachable { .. } => "ServerUnreachable",
            Self::CertificateNotTrusted { .. } => "CertificateNotTrusted",
            Self::BadArgument { .. } => "BadArgument",
            Self::UnknownAction(_) => "UnknownAction",
            Self::UnknownJob(_) => "UnknownJob",
            Self::UnknownMessage(_) => "UnknownMessage",
            Self::Cancelled(_) => "Cancelled",
            Self::Timeout(_) => "Timeout",
            Self::NotEncrypted(_) => "NotEncrypted",
            Self::OwnedElsewhere { .. } | Self::LeaseLost { .. } => "OwnedElsewhere",
            Self::Stanza(e) => e.dbus_name(),
            Self::Xmpp(_) => "Xmpp",
            Self::Storage(_) => "Storage",
            Self::Internal(_) => "Internal",
        }
    }

    /// Logs the error if it is the daemon's own failure (the database, a bug), not
    /// something the caller did or another entity answered: called where an error
    /// leaves perchd for a frontend, so perchd's log tells what went wrong on its
    /// side even when the frontend shows nothing.
    pub fn log_if_ours(&self) {
        if matches!(self, Self::Storage(_) | Self::Internal(_)) {
            tracing::error!(error = %self, kind = self.name(), "answered a frontend with a failure of perchd's own");
        }
    }

    pub fn bad_argument(name: &str, reason: impl Into<String>) -> Self {
        Self::BadArgument {
            name: name.to_owned(),
            reason: reason.into(),
        }
    }

    pub fn invalid_jid(jid: &str, reason: impl std::fmt::Display) -> Self {
        Self::InvalidJid {
            jid: crate::validate::excerpt(jid, 100),
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<perch_plugin_api::HostError> for Error {
    fn from(e: perch_plugin_api::HostError) -> Self {
        use perch_plugin_api::HostError as H;
        match e {
            H::UnknownProfile(p) => Self::UnknownProfile(p),
            H::NotConnected(p) => Self::NotConnected(p),
            H::InvalidJid { jid, reason } => Self::InvalidJid { jid, reason },
            H::BadArgument(m) => Self::BadArgument {
                name: "argument".into(),
                reason: m,
            },
            H::Timeout(m) => Self::Timeout(m),
            H::Unreachable { host, reason } => Self::ServerUnreachable {
                domain: host,
                reason,
            },
            H::CertificateNotTrusted { host, reason } => Self::CertificateNotTrusted {
                domain: host,
                reason,
            },
            H::NotEncrypted(m) => Self::NotEncrypted(m),
            H::Stanza(e) => Self::Stanza(e),
            H::Xmpp(m) => Self::Xmpp(m),
            H::Storage(m) | H::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<Error> for perch_plugin_api::HostError {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownProfile(p) => Self::UnknownProfile(p),
            Error::NotConnected(p) => Self::NotConnected(p),
            Error::InvalidJid { jid, reason } => Self::InvalidJid { jid, reason },
            Error::BadArgument { name, reason } => Self::BadArgument(format!("{name}: {reason}")),
            Error::Timeout(m) => Self::Timeout(m),
            Error::ServerUnreachable { domain, reason } => Self::Unreachable {
                host: domain,
                reason,
            },
            Error::CertificateNotTrusted { domain, reason } => Self::CertificateNotTrusted {
                host: domain,
                reason,
            },
            Error::NotEncrypted(m) => Self::NotEncrypted(m),
            Error::Stanza(e) => Self::Stanza(e),
            Error::Xmpp(m) => Self::Xmpp(m),
            Error::Storage(e) => Self::Storage(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}
