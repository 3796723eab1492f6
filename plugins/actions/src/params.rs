//! How an action's parameters are declared: name, type, required or not, default, doc.
//!
//! Why here, next to the argument structs: `ActionList` shows frontends each action's
//! parameters, and perchd checks every call against them before a plugin's code runs
//! (a missing or mistyped parameter is refused naming it). Declared with the action,
//! the plugin serving it writes them nowhere else, and a test holds them to the
//! fields of the action's `Args` struct.
//!
//! Everything is `const`: declarations are `&'static` data, and this crate keeps to
//! serde and serde_json. A default is JSON text, parsed by the plugin API.

use serde::Serialize;

/// The type of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    /// A string that must parse as a JID.
    Jid,
    /// An array of strings (item ids, …).
    List,
    /// A JSON object (form values, options, …).
    Object,
    /// A JSON array of any values (a list of objects, …).
    Array,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Jid => "jid",
            Self::List => "list of strings",
            Self::Object => "object",
            Self::Array => "array",
        }
    }
}

/// One declared parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamDecl {
    /// The JSON key: a field of the action's `Args` struct.
    pub name: &'static str,
    pub kind: ParamType,
    pub required: bool,
    pub doc: &'static str,
    /// Used when an optional parameter is not given: JSON text (`"true"`, `"10"`).
    pub default: Option<&'static str>,
}

impl ParamDecl {
    /// This optional parameter, with a default (JSON text).
    pub const fn or(mut self, json: &'static str) -> Self {
        self.default = Some(json);
        self
    }
}

/// What `action!` declarations are written with: `req`, `opt` and the types.
pub mod decl {
    pub use super::ParamType::{Array, Boolean, Integer, Jid, List, Number, Object, String};

    use super::{ParamDecl, ParamType};

    /// A required parameter.
    pub const fn req(name: &'static str, kind: ParamType, doc: &'static str) -> ParamDecl {
        ParamDecl {
            name,
            kind,
            required: true,
            doc,
            default: None,
        }
    }

    /// An optional parameter (without a default unless [`ParamDecl::or`] gives one).
    pub const fn opt(name: &'static str, kind: ParamType, doc: &'static str) -> ParamDecl {
        ParamDecl {
            name,
            kind,
            required: false,
            doc,
            default: None,
        }
    }
}

/// `no_session` in an `action!`: the action needs no connected profile.
pub(crate) const fn no_session() -> bool {
    false
}
