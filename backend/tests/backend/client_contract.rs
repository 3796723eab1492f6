//! perch-client is the frontends' side of the bridge's contract: its error names must
//! be exactly the bridge's. Each `BridgeError` variant is listed in an exhaustive
//! match, so a new variant does not compile until it is added here, and then this
//! test says whether `perch_client::ErrorName` knows it.

use perch_backend::bridge::BridgeError;
use perch_client::ErrorName;
use zbus::DBusError;

/// Every variant but `ZBus` (zbus's own errors keep their own names), built from its
/// short name so the exhaustive match below is the list.
fn variant(short: &str) -> BridgeError {
    let m = String::new();
    match short {
        "UnknownProfile" => BridgeError::UnknownProfile(m),
        "ProfileExists" => BridgeError::ProfileExists(m),
        "NoDefaultProfile" => BridgeError::NoDefaultProfile(m),
        "NotConnected" => BridgeError::NotConnected(m),
        "InvalidJid" => BridgeError::InvalidJid(m),
        "AuthenticationFailed" => BridgeError::AuthenticationFailed(m),
        "ServerUnreachable" => BridgeError::ServerUnreachable(m),
        "CertificateNotTrusted" => BridgeError::CertificateNotTrusted(m),
        "BadArgument" => BridgeError::BadArgument(m),
        "UnknownAction" => BridgeError::UnknownAction(m),
        "UnknownJob" => BridgeError::UnknownJob(m),
        "UnknownMessage" => BridgeError::UnknownMessage(m),
        "Cancelled" => BridgeError::Cancelled(m),
        "Timeout" => BridgeError::Timeout(m),
        "NotEncrypted" => BridgeError::NotEncrypted(m),
        "Xmpp" => BridgeError::Xmpp(m),
        "OwnedElsewhere" => BridgeError::OwnedElsewhere(m),
        "Storage" => BridgeError::Storage(m),
        "Internal" => BridgeError::Internal(m),
        "BadRequest" => BridgeError::BadRequest(m),
        "Conflict" => BridgeError::Conflict(m),
        "FeatureNotImplemented" => BridgeError::FeatureNotImplemented(m),
        "Forbidden" => BridgeError::Forbidden(m),
        "Gone" => BridgeError::Gone(m),
        "InternalServerError" => BridgeError::InternalServerError(m),
        "ItemNotFound" => BridgeError::ItemNotFound(m),
        "JidMalformed" => BridgeError::JidMalformed(m),
        "NotAcceptable" => BridgeError::NotAcceptable(m),
        "NotAllowed" => BridgeError::NotAllowed(m),
        "NotAuthorized" => BridgeError::NotAuthorized(m),
        "PolicyViolation" => BridgeError::PolicyViolation(m),
        "RecipientUnavailable" => BridgeError::RecipientUnavailable(m),
        "Redirect" => BridgeError::Redirect(m),
        "RegistrationRequired" => BridgeError::RegistrationRequired(m),
        "RemoteServerNotFound" => BridgeError::RemoteServerNotFound(m),
        "RemoteServerTimeout" => BridgeError::RemoteServerTimeout(m),
        "ResourceConstraint" => BridgeError::ResourceConstraint(m),
        "ServiceUnavailable" => BridgeError::ServiceUnavailable(m),
        "SubscriptionRequired" => BridgeError::SubscriptionRequired(m),
        "UndefinedCondition" => BridgeError::UndefinedCondition(m),
        "UnexpectedRequest" => BridgeError::UnexpectedRequest(m),
        other => panic!("no BridgeError variant named {other}"),
    }
}

/// The short name of a variant, by exhaustive match: a new variant stops the build here.
fn short(e: &BridgeError) -> Option<&'static str> {
    Some(match e {
        BridgeError::ZBus(_) => return None,
        BridgeError::UnknownProfile(_) => "UnknownProfile",
        BridgeError::ProfileExists(_) => "ProfileExists",
        BridgeError::NoDefaultProfile(_) => "NoDefaultProfile",
        BridgeError::NotConnected(_) => "NotConnected",
        BridgeError::InvalidJid(_) => "InvalidJid",
        BridgeError::AuthenticationFailed(_) => "AuthenticationFailed",
        BridgeError::ServerUnreachable(_) => "ServerUnreachable",
        BridgeError::CertificateNotTrusted(_) => "CertificateNotTrusted",
        BridgeError::BadArgument(_) => "BadArgument",
        BridgeError::UnknownAction(_) => "UnknownAction",
        BridgeError::UnknownJob(_) => "UnknownJob",
        BridgeError::UnknownMessage(_) => "UnknownMessage",
        BridgeError::Cancelled(_) => "Cancelled",
        BridgeError::Timeout(_) => "Timeout",
        BridgeError::NotEncrypted(_) => "NotEncrypted",
        BridgeError::Xmpp(_) => "Xmpp",
        BridgeError::OwnedElsewhere(_) => "OwnedElsewhere",
        BridgeError::Storage(_) => "Storage",
        BridgeError::Internal(_) => "Internal",
        BridgeError::BadRequest(_) => "BadRequest",
        BridgeError::Conflict(_) => "Conflict",
        BridgeError::FeatureNotImplemented(_) => "FeatureNotImplemented",
        BridgeError::Forbidden(_) => "Forbidden",
        BridgeError::Gone(_) => "Gone",
        BridgeError::InternalServerError(_) => "InternalServerError",
        BridgeError::ItemNotFound(_) => "ItemNotFound",
        BridgeError::JidMalformed(_) => "JidMalformed",
        BridgeError::NotAcceptable(_) => "NotAcceptable",
        BridgeError::NotAllowed(_) => "NotAllowed",
        BridgeError::NotAuthorized(_) => "NotAuthorized",
        BridgeError::PolicyViolation(_) => "PolicyViolation",
        BridgeError::RecipientUnavailable(_) => "RecipientUnavailable",
        BridgeError::Redirect(_) => "Redirect",
        BridgeError::RegistrationRequired(_) => "RegistrationRequired",
        BridgeError::RemoteServerNotFound(_) => "RemoteServerNotFound",
        BridgeError::RemoteServerTimeout(_) => "RemoteServerTimeout",
        BridgeError::ResourceConstraint(_) => "ResourceConstraint",
        BridgeError::ServiceUnavailable(_) => "ServiceUnavailable",
        BridgeError::SubscriptionRequired(_) => "SubscriptionRequired",
        BridgeError::UndefinedCondition(_) => "UndefinedCondition",
        BridgeError::UnexpectedRequest(_) => "UnexpectedRequest",
    })
}

#[test]
fn client_error_names_are_the_bridge_error_names() {
    // Both ways: every client name is a bridge variant with that D-Bus name…
    for name in ErrorName::ALL {
        let e = variant(name.as_str());
        assert_eq!(short(&e), Some(name.as_str()));
        assert_eq!(e.name().as_str(), name.dbus_name(), "D-Bus name of {name}");
    }
    // …and every bridge variant (the exhaustive match above) is a client name.
    let bridge_names = [
        "UnknownProfile",
        "ProfileExists",
        "NoDefaultProfile",
        "NotConnected",
        "InvalidJid",
        "AuthenticationFailed",
        "ServerUnreachable",
        "CertificateNotTrusted",
        "BadArgument",
        "UnknownAction",
        "UnknownJob",
        "UnknownMessage",
        "Cancelled",
        "Timeout",
        "NotEncrypted",
        "Xmpp",
        "OwnedElsewhere",
        "Storage",
        "Internal",
        "BadRequest",
        "Conflict",
        "FeatureNotImplemented",
        "Forbidden",
        "Gone",
        "InternalServerError",
        "ItemNotFound",
        "JidMalformed",
        "NotAcceptable",
        "NotAllowed",
        "NotAuthorized",
        "PolicyViolation",
        "RecipientUnavailable",
        "Redirect",
        "RegistrationRequired",
        "RemoteServerNotFound",
        "RemoteServerTimeout",
        "ResourceConstraint",
        "ServiceUnavailable",
        "SubscriptionRequired",
        "UndefinedCondition",
        "UnexpectedRequest",
    ];
    for short_name in bridge_names {
        let e = variant(short_name);
        let parsed = ErrorName::from_dbus_name(e.name().as_str());
        assert_eq!(
            parsed.map(ErrorName::as_str),
            Some(short_name),
            "perch-client has no ErrorName for the bridge's {short_name}"
        );
    }
    assert_eq!(bridge_names.len(), ErrorName::ALL.len());
}

#[test]
fn bridge_names_are_the_client_constants() {
    assert_eq!(perch_backend::bridge::INTERFACE, "org.perch.Perch1");
    assert_eq!(perch_client::ERROR_PREFIX, "org.perch.Perch1.Error");
    // The interface attribute's literal is checked through an error's name: the prefix
    // attribute is `<interface>.Error`.
    let e = BridgeError::Internal(String::new());
    assert_eq!(
        e.name().as_str(),
        format!("{}.Internal", perch_client::ERROR_PREFIX)
    );
}
