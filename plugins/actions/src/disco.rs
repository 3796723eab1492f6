//! Entities: ping (XEP-0199), software version (XEP-0092), service discovery
//! (XEP-0030) and external services (XEP-0215).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decl::{opt, req};
use crate::{JobStarted, NoArgs, ParamDecl, ParamType, action};

/// `jid`, `node` and `use_cache`, for disco#info and disco#items.
const JID_AND_NODE: [ParamDecl; 3] = [
    req("jid", ParamType::Jid, "the entity to ask"),
    opt("node", ParamType::String, "a node of that entity"),
    opt(
        "use_cache",
        ParamType::Boolean,
        "answer from this session's cache when possible",
    )
    .or("true"),
];

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
    Ping = "ping", PingArgs => Pong,
    "Pings an entity (a server, a contact's full JID) and reports the round trip",
    [req("jid", Jid, "the entity to ping")]
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
    Version = "version", PingArgs => SoftwareVersion,
    "Asks an entity which software it runs (name, version, OS when told)",
    [req("jid", Jid, "the entity to ask")]
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
    DiscoInfo = "disco_info", DiscoArgs => Value,
    "Identities and features of an entity (XEP-0030 disco#info)",
    [JID_AND_NODE[0], JID_AND_NODE[1], JID_AND_NODE[2]]
);

action!(
    /// Items of an entity: `{jid, node, items: [{jid, node, name}]}`.
    DiscoItems = "disco_items", DiscoArgs => Value,
    "Items of an entity (XEP-0030 disco#items)",
    [JID_AND_NODE[0], JID_AND_NODE[1], JID_AND_NODE[2]]
);

action!(
    /// Lists an entity's items and asks each for its info, as a job.
    DiscoWalk = "disco_walk", PingArgs => JobStarted,
    "Lists an entity's items and asks each for its info, as a job (returns {\"job\": id})",
    [req("jid", Jid, "the entity to walk")]
);

action!(
    /// The STUN/TURN services of our server: `[{type, host, port, transport?,
    /// username?, password?}]`, `[]` when none.
    ExternalServices = "external_services", NoArgs => Vec<Value>,
    "The STUN/TURN services of our server (XEP-0215): [{type, host, port, transport?, username?, password?}]; [] when none",
    []
);
