//! `perch-client`: the one typed client of perchd's D-Bus interface, `org.perch.Perch1`.
//!
//! Why a crate of its own: every frontend (the `perch` CLI, the e2e tests, later a TUI
//! and Libervia's frontends) must find perchd the same way, refuse the same unsafe
//! sockets, call the same methods with the same signatures and read the same error
//! names. Written once here, a frontend cannot call a method by a misspelt string, nor
//! forget the owner check that keeps another local user from posing as perchd
//! (`doc/security.rst`, "Who can talk to the daemon").
//!
//! - [`BUS_NAME`], [`PATH`], [`INTERFACE`], [`ERROR_PREFIX`]: the names, in one place
//!   (perchd itself uses them too);
//! - [`Perch1Proxy`]: every method and signal of the interface (`doc/bridge.rst`);
//! - [`ErrorName`] and [`Error`]: the daemon's stable error names, typed;
//! - [`socket`]: where the peer-to-peer socket is, and the ownership checks both sides
//!   make;
//! - [`Client`]: finding perchd (bus or socket) and connecting, checks included;
//! - [`Signal`]: perchd's signals, decoded;
//! - [`Client::action`] (and [`action::run`] on any proxy): a plugin action run with
//!   the typed arguments and result `perch-actions` declares (re-exported as
//!   [`actions`]).
//!
//! This crate must never depend on `perch-backend`: frontends link it alone.

pub mod action;
mod client;
mod error;
mod proxy;
mod signal;
pub mod socket;

pub use client::{Client, Target};
pub use error::{Error, ErrorName, Result};
pub use perch_actions as actions;
pub use perch_actions::Action;
pub use proxy::*;
pub use signal::{Signal, SignalStream};

/// perchd's well-known name on a bus.
pub const BUS_NAME: &str = "org.perch.Perch";
/// The object path of perchd's one object.
pub const PATH: &str = "/org/perch/Perch";
/// The interface perchd serves (`doc/bridge.rst`).
pub const INTERFACE: &str = "org.perch.Perch1";
/// perchd's D-Bus error names are `<ERROR_PREFIX>.<Name>` (see [`ErrorName`]).
pub const ERROR_PREFIX: &str = "org.perch.Perch1.Error";

#[cfg(test)]
mod tests {
    use zbus::proxy::Defaults;

    use super::*;

    /// The proxy macro needs literals: they must agree with the constants.
    #[test]
    fn proxy_defaults_are_the_constants() {
        assert_eq!(
            Perch1Proxy::INTERFACE.as_ref().map(|i| i.as_str()),
            Some(INTERFACE)
        );
        assert_eq!(
            Perch1Proxy::DESTINATION.as_ref().map(|d| d.as_str()),
            Some(BUS_NAME)
        );
        assert_eq!(Perch1Proxy::PATH.as_ref().map(|p| p.as_str()), Some(PATH));
        assert!(ERROR_PREFIX.starts_with(INTERFACE));
    }
}
