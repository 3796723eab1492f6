//! Entities: ping (XEP-0199), software version (XEP-0092), service discovery
//! (XEP-0030) and external services (XEP-0215).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{JobStarted, NoArgs, action};

/// `{jid}`: the entity to ask.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingArgs {
    pub jid: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pong {
    pub jid: String,
    /// The round trip, in milliseconds.
    pub rtt_ms: f64,
}

action!(
    /// Pings an entity and reports the round trip.
    Ping = "ping", PingArgs => Pong
);

/// An entity's software.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareVersion {
    pub jid: String,
    pub name: String,
    pub version: String,
    /// `null` when the entity does not tell.
    pub os: Option<String>,
}

action!(
    /// Asks an entity which software it runs.
    Version = "version", PingArgs => SoftwareVersion
);

/// The entity (and node) to ask about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoArgs {
    pub jid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Answer from this session's cache when possible (default).
    #[serde(default = "crate::yes")]
    pub use_cache: bool,
}

impl Default for DiscoArgs {
    fn default() -> Self {
        Self {
            jid: String::new(),
            node: None,
            use_cache: true,
        }
    }
}

action!(
    /// Identities, features and extensions of an entity: `{jid, node, identities,
    /// features, extensions}`.
    DiscoInfo = "disco_info", DiscoArgs => Value
);

action!(
    /// Items of an entity: `{jid, node, items: [{jid, node, name}]}`.
    DiscoItems = "disco_items", DiscoArgs => Value
);

action!(
    /// Lists an entity's items and asks each for its info, as a job.
    DiscoWalk = "disco_walk", PingArgs => JobStarted
);

action!(
    /// The STUN/TURN services of our server: `[{type, host, port, transport?,
    /// username?, password?}]`, `[]` when none.
    ExternalServices = "external_services", NoArgs => Vec<Value>
);
