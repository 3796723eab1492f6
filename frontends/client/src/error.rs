//! Errors a frontend sees: perchd's stable error names, typed, and the client's own.
//!
//! Why typed names: scripts and frontends branch on them (`doc/bridge.rst` lists them),
//! so they must come from one list rather than from strings spelt at each call site.
//! Every error prints as one line `<Name>: <message>`, the form the CLI shows.

use std::path::PathBuf;

use crate::ERROR_PREFIX;

/// The result of a call to perchd.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! error_names {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// perchd's D-Bus error names, `org.perch.Perch1.Error.<Name>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorName {
            $($(#[$doc])* $name,)*
        }

        impl ErrorName {
            /// Every name, in the order of `doc/bridge.rst`.
            pub const ALL: &'static [ErrorName] = &[$(ErrorName::$name,)*];

            /// The short name, e.g. `UnknownProfile`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorName::$name => stringify!($name),)*
                }
            }

            /// The name from its short form.
            pub fn from_short(short: &str) -> Option<Self> {
                match short {
                    $(stringify!($name) => Some(ErrorName::$name),)*
                    _ => None,
                }
            }
        }
    };
}

error_names! {
    UnknownProfile,
    ProfileExists,
    NoDefaultProfile,
    NotConnected,
    InvalidJid,
    AuthenticationFailed,
    ServerUnreachable,
    CertificateNotTrusted,
    BadArgument,
    UnknownAction,
    UnknownJob,
    UnknownMessage,
    Cancelled,
    Timeout,
    NotEncrypted,
    Xmpp,
    /// Another daemon sharing the database owns the profile.
    OwnedElsewhere,
    Storage,
    Internal,
    // Stanza errors from other entities, one name per RFC 6120 condition.
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
}

impl ErrorName {
    /// The full D-Bus error name, e.g. `org.perch.Perch1.Error.UnknownProfile`.
    pub fn dbus_name(self) -> String {
        format!("{ERROR_PREFIX}.{}", self.as_str())
    }

    /// The name from a full D-Bus error name.
    pub fn from_dbus_name(name: &str) -> Option<Self> {
        name.strip_prefix(ERROR_PREFIX)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(Self::from_short)
    }
}

impl std::fmt::Display for ErrorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a socket (or its directory, or the bus name's owner) is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsafe {
    #[error("is owned by uid {owner}, not by this user (uid {me})")]
    NotOwned { owner: u32, me: u32 },
    #[error("is a symbolic link")]
    Symlink,
    #[error("is not a directory")]
    NotADirectory,
    #[error("is not a socket")]
    NotASocket,
    #[error("is open to other users (mode {mode:04o}; it must be {wanted})")]
    OpenToOthers { mode: u32, wanted: &'static str },
    #[error("is served by a process of uid {peer}, not of this user (uid {me})")]
    PeerNotOwned { peer: u32, me: u32 },
    #[error("runs as uid {peer}, not as this user (uid {me})")]
    RunsAs { peer: u32, me: u32 },
}

/// A failure of a call to perchd, or of finding it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// perchd answered with one of its error names.
    #[error("{name}: {message}")]
    Daemon { name: ErrorName, message: String },
    /// perchd answered with an error name of its prefix this client does not know (a
    /// newer perchd).
    #[error("{name}: {message}")]
    UnknownDaemonError { name: String, message: String },
    /// perchd is not there (not on the bus, no socket, connection lost).
    #[error("NoDaemon: {0}")]
    NoDaemon(String),
    /// The socket (or its directory, or the process behind it) belongs to someone else:
    /// nothing was sent to it.
    #[error("UnsafeSocket: {} {reason}; refusing to send anything to it", path.display())]
    UnsafeSocket { path: PathBuf, reason: Unsafe },
    /// The owner of perchd's name on the bus runs as another user: nothing was called.
    #[error("UnsafeBus: {owner}, the owner of {bus_name} on the bus, {reason}; refusing to call it", bus_name = crate::BUS_NAME)]
    UnsafeBus { owner: String, reason: Unsafe },
    /// perchd did not answer within the method timeout.
    #[error("Timeout: {0}")]
    Timeout(String),
    /// Any other D-Bus failure (a foreign error name, an undecodable reply).
    #[error("DBus: {0}")]
    DBus(String),
}

impl Error {
    /// The short name frontends show and scripts match on.
    pub fn name(&self) -> &str {
        match self {
            Error::Daemon { name, .. } => name.as_str(),
            Error::UnknownDaemonError { name, .. } => name,
            Error::NoDaemon(_) => "NoDaemon",
            Error::UnsafeSocket { .. } => "UnsafeSocket",
            Error::UnsafeBus { .. } => "UnsafeBus",
            Error::Timeout(_) => "Timeout",
            Error::DBus(_) => "DBus",
        }
    }

    /// The message, without the name.
    pub fn message(&self) -> String {
        let text = self.to_string();
        match text.split_once(": ") {
            Some((_, m)) => m.to_owned(),
            None => text,
        }
    }

    /// The daemon's error name, when the daemon answered with one.
    pub fn daemon_name(&self) -> Option<ErrorName> {
        match self {
            Error::Daemon { name, .. } => Some(*name),
            _ => None,
        }
    }
}

impl From<zbus::Error> for Error {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, message, _) => {
                let message = message.unwrap_or_default();
                let full = name.as_str();
                if let Some(name) = ErrorName::from_dbus_name(full) {
                    return Error::Daemon { name, message };
                }
                if let Some(short) = full
                    .strip_prefix(ERROR_PREFIX)
                    .and_then(|r| r.strip_prefix('.'))
                {
                    return Error::UnknownDaemonError {
                        name: short.to_owned(),
                        message,
                    };
                }
                match full {
                    "org.freedesktop.DBus.Error.ServiceUnknown"
                    | "org.freedesktop.DBus.Error.NameHasNoOwner" => {
                        Error::NoDaemon(format!("perchd is not running on the bus ({message})"))
                    }
                    "org.freedesktop.DBus.Error.NoReply" | "org.freedesktop.DBus.Error.Timeout" => {
                        Error::Timeout(format!("perchd did not answer in time ({message})"))
                    }
                    _ => Error::DBus(format!("{full}: {message}")),
                }
            }
            zbus::Error::InputOutput(io) => {
                Error::NoDaemon(format!("lost the connection to perchd: {io}"))
            }
            e @ (zbus::Error::SignatureMismatch(..) | zbus::Error::IncorrectType) => Error::DBus(
                format!("unexpected reply (is perchd the same version?): {e}"),
            ),
            other => Error::DBus(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ErrorName::ALL {
            assert_eq!(ErrorName::from_dbus_name(&name.dbus_name()), Some(*name));
        }
        assert_eq!(ErrorName::from_dbus_name("org.perch.Perch1.ErrorX"), None);
        assert_eq!(ErrorName::from_short("NoSuchName"), None);
    }

    #[test]
    fn errors_are_one_line_name_then_message() {
        let e = Error::UnsafeSocket {
            path: "/tmp/perch-0/perchd.sock".into(),
            reason: Unsafe::NotOwned {
                owner: 65534,
                me: 0,
            },
        };
        assert_eq!(e.name(), "UnsafeSocket");
        assert_eq!(
            e.to_string(),
            "UnsafeSocket: /tmp/perch-0/perchd.sock is owned by uid 65534, not by this user \
             (uid 0); refusing to send anything to it"
        );
        assert!(e.message().starts_with("/tmp/perch-0/perchd.sock is owned"));
    }
}
