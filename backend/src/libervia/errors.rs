//! Errors as Libervia's frontends decode them.
//!
//! Libervia names a D-Bus error after the Python class of the exception,
//! `org.libervia.Libervia.error.<module>.<Class>`, and sends one string: the Python
//! literal of a tuple `(message, condition)`. The frontends `ast.literal_eval` it, keep
//! both items, and branch on the class name (`NotFound`, `PasswordError`,
//! `ConflictError`…) or the condition (`item-not-found`, `not-authorized`). We always
//! send two items (JSON strings are valid Python literals), so messages come out clean.
//! Every Perch error is mapped onto those classes here, in one place.

use zbus::message::{Header, Message};
use zbus::names::ErrorName;

use crate::error::Error;

/// The prefix of every Libervia error name.
pub const ERROR_PREFIX: &str = "org.libervia.Libervia.error";

pub const PROFILE_UNKNOWN: &str = "sat.core.exceptions.ProfileUnknownError";
pub const PROFILE_NOT_SET: &str = "sat.core.exceptions.ProfileNotSetError";
pub const PROFILE_CONNECTED: &str = "sat.core.exceptions.ProfileConnected";
pub const NOT_FOUND: &str = "sat.core.exceptions.NotFound";
pub const CONFLICT: &str = "sat.core.exceptions.ConflictError";
pub const PASSWORD: &str = "sat.core.exceptions.PasswordError";
pub const PERMISSION: &str = "sat.core.exceptions.PermissionError";
pub const INTERNAL: &str = "sat.core.exceptions.InternalError";
pub const CANCEL: &str = "sat.core.exceptions.CancelError";
pub const DATA: &str = "sat.core.exceptions.DataError";
pub const VALUE: &str = "builtins.ValueError";
pub const STANZA: &str = "twisted.words.protocols.jabber.error.StanzaError";
pub const SASL: &str = "twisted.words.protocols.jabber.sasl.SASLAuthError";
pub const INVALID_JID: &str = "twisted.words.protocols.jabber.jid.InvalidFormat";
pub const CONNECT: &str = "twisted.internet.error.ConnectError";
pub const TIMEOUT: &str = "twisted.internet.error.TimeoutError";
pub const TLS: &str = "OpenSSL.SSL.Error";

/// A D-Bus error reply: its full name and its one string body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibError {
    name: String,
    body: String,
}

impl LibError {
    /// A Libervia exception `class` (module path and class name) with its message and
    /// condition (`""` when it has none).
    pub fn exc(class: &str, message: &str, condition: &str) -> Self {
        let message = crate::validate::excerpt(message, 1000);
        Self {
            name: format!("{ERROR_PREFIX}.{class}"),
            body: tuple(&message, condition),
        }
    }

    /// A method of the interface that perchd does not implement yet.
    pub fn not_registered(method: &str) -> Self {
        Self {
            name: format!("{ERROR_PREFIX}.MethodNotRegistered"),
            body: tuple(&format!("not supported yet by perchd: {method}"), ""),
        }
    }

    /// `org.freedesktop.DBus.Error.InvalidArgs`: the body does not match the signature.
    pub fn invalid_args(text: String) -> Self {
        Self {
            name: "org.freedesktop.DBus.Error.InvalidArgs".into(),
            body: text,
        }
    }

    pub fn unknown_profile(profile: &str) -> Self {
        Self::exc(PROFILE_UNKNOWN, profile, "")
    }

    pub fn value(message: &str) -> Self {
        Self::exc(VALUE, message, "")
    }

    pub fn internal(message: &str) -> Self {
        Self::exc(INTERNAL, message, "")
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn body(&self) -> &str {
        &self.body
    }
}

/// `("message", "condition")` as a Python literal.
fn tuple(message: &str, condition: &str) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    format!("({}, {})", q(message), q(condition))
}

impl zbus::DBusError for LibError {
    fn create_reply(&self, hdr: &Header<'_>) -> zbus::Result<Message> {
        Message::error(hdr, self.name.as_str()).build(&(self.body.as_str(),))
    }

    fn name(&self) -> ErrorName<'_> {
        ErrorName::try_from(self.name.as_str())
            .unwrap_or_else(|_| ErrorName::from_static_str_unchecked("org.libervia.Libervia.error"))
    }

    fn description(&self) -> Option<&str> {
        Some(&self.body)
    }
}

impl From<Error> for LibError {
    fn from(e: Error) -> Self {
        e.log_if_ours();
        let m = e.to_string();
        match &e {
            Error::UnknownProfile(p) => Self::exc(PROFILE_UNKNOWN, p, ""),
            Error::ProfileExists(_) => Self::exc(CONFLICT, &m, ""),
            Error::NoDefaultProfile => Self::exc(PROFILE_NOT_SET, &m, ""),
            Error::NotConnected(p) => Self::exc(NOT_FOUND, p, ""),
            Error::InvalidJid { .. } => Self::exc(INVALID_JID, &m, ""),
            // 0.9 tries an empty password and the server refuses it: the frontends
            // (the TUI's password dialog) expect not-authorized then.
            Error::AuthenticationFailed { .. } | Error::NoPassword(_) => Self::exc(
                SASL,
                &format!("SASLAuthError with condition 'not-authorized': {m}"),
                "not-authorized",
            ),
            Error::ServerUnreachable { .. } => Self::exc(CONNECT, &m, ""),
            Error::CertificateNotTrusted { .. } => Self::exc(TLS, &m, ""),
            Error::BadArgument { .. } => Self::exc(VALUE, &m, ""),
            Error::UnknownAction(_) | Error::UnknownJob(_) | Error::UnknownMessage(_) => {
                Self::exc(NOT_FOUND, &m, "")
            }
            Error::Cancelled(_) | Error::NotEncrypted(_) => Self::exc(CANCEL, &m, ""),
            // 0.9 has one backend; a profile another daemon serves is not here.
            Error::OwnedElsewhere { .. } | Error::LeaseLost { .. } => Self::exc(NOT_FOUND, &m, ""),
            Error::Timeout(_) => Self::exc(TIMEOUT, &m, ""),
            Error::Stanza(s) => {
                let mut text = format!("StanzaError with condition '{}'", s.condition);
                if let Some(t) = &s.text {
                    text.push_str(": ");
                    text.push_str(t);
                }
                Self::exc(STANZA, &text, &s.condition)
            }
            Error::Xmpp(_) | Error::Storage(_) | Error::Internal(_) => Self::exc(INTERNAL, &m, ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_a_python_two_tuple() {
        let e = LibError::unknown_profile("nosuch\"profile");
        assert_eq!(
            e.name(),
            "org.libervia.Libervia.error.sat.core.exceptions.ProfileUnknownError"
        );
        assert_eq!(e.body(), r#"("nosuch\"profile", "")"#);
    }

    #[test]
    fn stanza_errors_carry_their_condition() {
        let e: LibError =
            Error::Stanza(perch_plugin_api::StanzaError::new("item-not-found", None)).into();
        assert_eq!(
            e.name(),
            "org.libervia.Libervia.error.twisted.words.protocols.jabber.error.StanzaError"
        );
        assert_eq!(
            e.body(),
            r#"("StanzaError with condition 'item-not-found'", "item-not-found")"#
        );
    }

    #[test]
    fn wrong_password_is_sasl_not_authorized() {
        let e: LibError = Error::AuthenticationFailed {
            jid: "a@b".into(),
            reason: "x".into(),
        }
        .into();
        assert!(e.name().ends_with("jabber.sasl.SASLAuthError"));
        assert!(e.body().ends_with(", \"not-authorized\")"), "{}", e.body());
    }

    #[test]
    fn unimplemented_methods_are_method_not_registered() {
        let e = LibError::not_registered("tarotGameCreate");
        assert_eq!(e.name(), "org.libervia.Libervia.error.MethodNotRegistered");
        assert_eq!(
            e.body(),
            r#"("not supported yet by perchd: tarotGameCreate", "")"#
        );
    }
}
