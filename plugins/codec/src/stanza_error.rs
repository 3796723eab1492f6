//! Stanza errors from other entities, kept typed up to the frontends.
//!
//! Why not a string: a frontend must tell "no such item" from "not allowed" without
//! parsing English (issue 5 asks every pubsub error to carry its condition), and
//! pubsub adds its own conditions beside the RFC 6120 one (`precondition-not-met`,
//! `invalid-jid`, …) which must survive too. The bridge turns the defined condition
//! into a D-Bus error name (`org.perch.Perch1.Error.ItemNotFound`, see
//! [`StanzaError::dbus_name`]) and the rest into the message.

use serde::Serialize;
use xmpp_parsers::stanza_error::StanzaError as Parsed;

use crate::minidom::Element;

/// The defined conditions of RFC 6120 §8.3.3, with their D-Bus error names.
pub const CONDITIONS: &[(&str, &str)] = &[
    ("bad-request", "BadRequest"),
    ("conflict", "Conflict"),
    ("feature-not-implemented", "FeatureNotImplemented"),
    ("forbidden", "Forbidden"),
    ("gone", "Gone"),
    ("internal-server-error", "InternalServerError"),
    ("item-not-found", "ItemNotFound"),
    ("jid-malformed", "JidMalformed"),
    ("not-acceptable", "NotAcceptable"),
    ("not-allowed", "NotAllowed"),
    ("not-authorized", "NotAuthorized"),
    ("policy-violation", "PolicyViolation"),
    ("recipient-unavailable", "RecipientUnavailable"),
    ("redirect", "Redirect"),
    ("registration-required", "RegistrationRequired"),
    ("remote-server-not-found", "RemoteServerNotFound"),
    ("remote-server-timeout", "RemoteServerTimeout"),
    ("resource-constraint", "ResourceConstraint"),
    ("service-unavailable", "ServiceUnavailable"),
    ("subscription-required", "SubscriptionRequired"),
    ("undefined-condition", "UndefinedCondition"),
    ("unexpected-request", "UnexpectedRequest"),
];

const STANZAS_NS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

/// An error another entity answered with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StanzaError {
    /// The defined condition (`item-not-found`, …); `undefined-condition` when the
    /// entity gave none we know.
    pub condition: String,
    /// An application-specific condition (`precondition-not-met`, …), by element name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specific: Option<String>,
    /// The namespace of `specific` (`http://jabber.org/protocol/pubsub#errors`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub specific_ns: Option<String>,
    /// The entity's explanation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// cancel, continue, modify, auth or wait.
    pub kind: String,
}

impl StanzaError {
    pub fn new(condition: &str, text: Option<String>) -> Self {
        Self {
            condition: condition.to_owned(),
            specific: None,
            specific_ns: None,
            text,
            kind: "cancel".into(),
        }
    }

    /// The last part of the D-Bus error name: the condition in CamelCase.
    pub fn dbus_name(&self) -> &'static str {
        CONDITIONS
            .iter()
            .find(|(c, _)| *c == self.condition)
            .map_or("UndefinedCondition", |(_, n)| n)
    }

    /// Reads an `<error/>` element (the child of an error stanza).
    pub fn from_element(error: &Element) -> Self {
        let mut condition = None;
        let mut text = None;
        let mut specific = None;
        for c in error.children() {
            if c.ns() == STANZAS_NS {
                if c.name() == "text" {
                    text = Some(c.text()).filter(|t| !t.is_empty());
                } else if condition.is_none() {
                    condition = Some(c.name().to_owned());
                }
            } else if specific.is_none() {
                specific = Some((c.name().to_owned(), c.ns()));
            }
        }
        let condition = condition
            .filter(|c| CONDITIONS.iter().any(|(k, _)| k == c))
            .unwrap_or_else(|| "undefined-condition".into());
        Self {
            condition,
            specific_ns: specific.as_ref().map(|(_, ns)| ns.clone()),
            specific: specific.map(|(n, _)| n),
            text,
            kind: error.attr("type").unwrap_or("cancel").to_owned(),
        }
    }
}

impl From<&Parsed> for StanzaError {
    fn from(e: &Parsed) -> Self {
        Self::from_element(&Element::from(e.clone()))
    }
}

impl std::fmt::Display for StanzaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.condition)?;
        if let Some(s) = &self.specific {
            write!(f, " ({s})")?;
        }
        if let Some(t) = &self.text {
            write!(f, ": {t}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubsub_precondition_keeps_both_conditions_and_text() {
        let e: Element = "<error xmlns='jabber:client' type='cancel'>\
            <conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>\
            <precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'/>\
            <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Field does not match: access_model</text>\
            </error>"
            .parse()
            .unwrap();
        let s = StanzaError::from_element(&e);
        assert_eq!(s.condition, "conflict");
        assert_eq!(s.specific.as_deref(), Some("precondition-not-met"));
        assert_eq!(s.dbus_name(), "Conflict");
        assert_eq!(
            s.to_string(),
            "conflict (precondition-not-met): Field does not match: access_model"
        );
    }

    #[test]
    fn parsed_error_converts_and_unknown_condition_is_undefined() {
        let e: Element = "<error xmlns='jabber:client' type='cancel'>\
            <item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
            .parse()
            .unwrap();
        let parsed = Parsed::try_from(e).unwrap();
        let s = StanzaError::from(&parsed);
        assert_eq!(
            (s.condition.as_str(), s.dbus_name()),
            ("item-not-found", "ItemNotFound")
        );
        assert_eq!(s.to_string(), "item-not-found");
        let odd: Element = "<error xmlns='jabber:client' type='wait'>\
            <made-up xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
            .parse()
            .unwrap();
        let s = StanzaError::from_element(&odd);
        assert_eq!(
            (s.condition.as_str(), s.kind.as_str()),
            ("undefined-condition", "wait")
        );
    }
}
