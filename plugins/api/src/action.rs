//! Actions: what a plugin offers frontends to run, with declared, typed parameters.
//!
//! Why declared: the bridge can list every action with its parameters (frontends build
//! their commands and forms from that), and a call is checked against the declaration
//! before the plugin's code runs — a missing or mistyped parameter is refused naming
//! the parameter, and nothing happens.
//!
//! Why typed too: each action's name, arguments, result, doc and parameters are
//! declared once, in the `perch-actions` crate that plugins and their callers share.
//! A plugin offers one with [`Serve::serve`]: its [`ActionSpec`] is built from the
//! declaration ([`ActionSpec::of`]), and its handler takes the arguments' struct and
//! answers the result's ([`typed`]); JSON stays in the host.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::jid::Jid;

pub use perch_actions::{Action, ParamDecl, ParamType};

/// One declared parameter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Param {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: ParamType,
    pub required: bool,
    pub doc: &'static str,
    /// Used when an optional parameter is not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
}

impl From<&ParamDecl> for Param {
    /// The declared parameter, its default parsed (a default that is not JSON text is
    /// a declaration bug, which `perch-actions`' tests catch: it is dropped here).
    fn from(d: &ParamDecl) -> Self {
        Self {
            name: d.name,
            kind: d.kind,
            required: d.required,
            doc: d.doc,
            default: d.default.and_then(|t| serde_json::from_str(t).ok()),
        }
    }
}

/// An action as declared by a plugin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionSpec {
    /// Unique, stable: `ping`, `disco_info`, …
    pub name: &'static str,
    /// The import name of the plugin offering it (filled in by the host).
    pub plugin: String,
    pub doc: &'static str,
    /// Whether it acts for a profile (which must then be connected).
    pub needs_session: bool,
    pub params: Vec<Param>,
}

impl ActionSpec {
    /// The spec of action `A`, from its declaration in `perch-actions`.
    pub fn of<A: Action>() -> Self {
        Self {
            name: A::NAME,
            plugin: String::new(),
            doc: A::DOC,
            needs_session: A::NEEDS_SESSION,
            params: A::PARAMS.iter().map(Param::from).collect(),
        }
    }
}

/// Checked arguments of a call: every declared parameter that was given or has a
/// default, with the declared type.
#[derive(Debug, Clone, Default)]
pub struct Args(BTreeMap<String, Value>);

impl Args {
    /// The checked arguments as one JSON object (defaults filled in).
    pub fn to_value(&self) -> Value {
        Value::Object(self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// The checked arguments as `T`, the typed arguments of `action`.
    pub fn parse<T: DeserializeOwned>(&self, action: &str) -> Result<T, crate::HostError> {
        serde_json::from_value(self.to_value())
            .map_err(|e| crate::HostError::BadArgument(format!("action {action}: {e}")))
    }
}

/// Why a call was refused before the action ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error("action {action}: missing parameter {param:?} ({kind})")]
    Missing {
        action: String,
        param: String,
        kind: &'static str,
    },
    #[error("action {action}: parameter {param:?} must be {kind}, got {got}")]
    WrongType {
        action: String,
        param: String,
        kind: &'static str,
        got: String,
    },
    #[error("action {action}: unknown parameter {param:?} (known: {known})")]
    Unknown {
        action: String,
        param: String,
        known: String,
    },
    #[error("action {action}: the arguments must be a JSON object, got {got}")]
    NotAnObject { action: String, got: String },
}

fn describe(v: &Value) -> String {
    let text = v.to_string();
    let short: String = text.chars().take(60).collect();
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    format!("{kind} {short}")
}

impl ActionSpec {
    /// Checks `args` (a JSON object) against the declaration.
    pub fn check(&self, args: &Value) -> Result<Args, ArgError> {
        let Some(given) = args.as_object() else {
            return Err(ArgError::NotAnObject {
                action: self.name.to_owned(),
                got: describe(args),
            });
        };
        for key in given.keys() {
            if !self.params.iter().any(|p| p.name == key) {
                return Err(ArgError::Unknown {
                    action: self.name.to_owned(),
                    param: key.clone(),
                    known: self
                        .params
                        .iter()
                        .map(|p| p.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let mut out = BTreeMap::new();
        for p in &self.params {
            let value = match given.get(p.name) {
                Some(v) if !v.is_null() => v.clone(),
                _ => match (&p.default, p.required) {
                    (Some(d), _) => d.clone(),
                    (None, true) => {
                        return Err(ArgError::Missing {
                            action: self.name.to_owned(),
                            param: p.name.to_owned(),
                            kind: p.kind.as_str(),
                        });
                    }
                    (None, false) => continue,
                },
            };
            let ok = match p.kind {
                ParamType::String => value.is_string(),
                ParamType::Integer => value.is_i64() || value.is_u64(),
                ParamType::Number => value.is_number(),
                ParamType::Boolean => value.is_boolean(),
                ParamType::Jid => value.as_str().is_some_and(|s| Jid::new(s).is_ok()),
                ParamType::List => value
                    .as_array()
                    .is_some_and(|a| a.iter().all(Value::is_string)),
                ParamType::Object => value.is_object(),
                ParamType::Array => value.is_array(),
            };
            if !ok {
                return Err(ArgError::WrongType {
                    action: self.name.to_owned(),
                    param: p.name.to_owned(),
                    kind: p.kind.as_str(),
                    got: describe(&value),
                });
            }
            out.insert(p.name.to_owned(), value);
        }
        Ok(Args(out))
    }
}

/// One run of an action.
#[derive(Debug, Clone)]
pub struct Call {
    /// The profile it runs for (resolved: never empty when the action needs a session).
    pub profile: String,
    pub args: Args,
}

/// What an action's code returns: a JSON result, or an error for the caller.
pub type ActionResult = Result<Value, crate::HostError>;

/// An action's code.
pub type ActionHandler = Arc<dyn Fn(Call) -> BoxFuture<'static, ActionResult> + Send + Sync>;

/// Offering typed actions: `host.serve(actions::disco::Ping, state, handler)`.
///
/// The action's spec (doc, parameters) comes from its declaration in `perch-actions`;
/// `f` gets `state`, the profile and the checked arguments as `A::Args`, and answers
/// `A::Output`. A call is checked against the declared parameters before `f` runs
/// (refused naming the parameter), so a `jid` field holds a valid JID, a required
/// field is there, and an optional one is absent or of its type.
pub trait Serve {
    fn serve<A, S, F, Fut>(&self, action: A, state: S, f: F)
    where
        A: Action,
        S: Clone + Send + Sync + 'static,
        F: Fn(S, String, A::Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, crate::HostError>> + Send + 'static;
}

impl<H: crate::Host + ?Sized> Serve for H {
    fn serve<A, S, F, Fut>(&self, _action: A, state: S, f: F)
    where
        A: Action,
        S: Clone + Send + Sync + 'static,
        F: Fn(S, String, A::Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<A::Output, crate::HostError>> + Send + 'static,
    {
        let handler = typed(A::handler(move |profile, args| {
            f(state.clone(), profile, args)
        }));
        self.add_action(ActionSpec::of::<A>(), handler);
    }
}

/// A `jid` argument as a JID. The call was checked against the declaration, so this
/// fails only for an argument that was not declared a `jid`.
pub fn jid_arg(name: &str, value: &str) -> Result<Jid, crate::HostError> {
    Jid::new(value).map_err(|e| crate::HostError::BadArgument(format!("{name}: {e}")))
}

/// An optional `jid` argument as a JID.
pub fn opt_jid_arg(name: &str, value: Option<&str>) -> Result<Option<Jid>, crate::HostError> {
    value.map(|v| jid_arg(name, v)).transpose()
}

/// The code of a typed action, from `(name, f)` (as `perch_actions::Action::handler`
/// gives it): `f` gets the profile and the checked arguments as its struct, and
/// answers the result's; JSON stays in the host.
pub fn typed<In, Out, F, Fut>((name, f): (&'static str, F)) -> ActionHandler
where
    In: DeserializeOwned,
    Out: Serialize,
    F: Fn(String, In) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Out, crate::HostError>> + Send + 'static,
{
    Arc::new(move |call: Call| match call.args.parse::<In>(name) {
        Ok(args) => {
            let run = f(call.profile, args);
            async move {
                let out = run.await?;
                serde_json::to_value(out)
                    .map_err(|e| crate::HostError::Internal(format!("action {name}: result: {e}")))
            }
            .boxed()
        }
        Err(e) => futures::future::ready(Err(e)).boxed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_actions::decl::{opt, req};
    use serde_json::json;

    fn spec() -> ActionSpec {
        ActionSpec {
            name: "ping",
            plugin: "XEP-0199".into(),
            doc: "",
            needs_session: true,
            params: [
                req("jid", ParamType::Jid, "who"),
                opt("count", ParamType::Integer, "how many").or("1"),
                opt("verbose", ParamType::Boolean, "talk"),
            ]
            .iter()
            .map(Param::from)
            .collect(),
        }
    }

    #[test]
    fn valid_calls_get_defaults() {
        let a = spec().check(&json!({"jid": "a@b"})).expect("valid");
        assert_eq!(a.to_value(), json!({"jid": "a@b", "count": 1}));
        let a = spec()
            .check(&json!({"jid": "a@b/c", "count": 3, "verbose": true}))
            .expect("valid");
        assert_eq!(
            a.to_value(),
            json!({"jid": "a@b/c", "count": 3, "verbose": true})
        );
    }

    #[test]
    fn specs_come_from_the_declarations() {
        let s = ActionSpec::of::<perch_actions::disco::DiscoInfo>();
        assert_eq!(s.name, "disco_info");
        assert!(s.needs_session);
        assert_eq!(
            serde_json::to_value(&s.params).expect("serialises"),
            json!([
                {"name": "jid", "type": "jid", "required": true, "doc": "the entity to ask"},
                {"name": "node", "type": "string", "required": false,
                 "doc": "a node of that entity"},
                {"name": "use_cache", "type": "boolean", "required": false,
                 "doc": "answer from this session's cache when possible", "default": true},
            ])
        );
        assert!(!ActionSpec::of::<perch_actions::cache::Reset>().needs_session);
        // A call gets its struct with the defaults filled in.
        let args = s.check(&json!({"jid": "a@b"})).expect("valid");
        let parsed: perch_actions::disco::DiscoArgs = args.parse(s.name).expect("parses");
        assert!(parsed.use_cache && parsed.node.is_none());
    }

    #[test]
    fn typed_handlers_get_their_struct_and_answer_theirs() {
        #[derive(serde::Deserialize)]
        struct PingArgs {
            jid: String,
            count: i64,
        }
        #[derive(Serialize)]
        struct Pong {
            jid: String,
            rtt_ms: f64,
        }
        let h = typed(("ping", |profile: String, a: PingArgs| async move {
            Ok(Pong {
                jid: format!("{profile}:{}", a.jid),
                rtt_ms: a.count as f64,
            })
        }));
        let args = spec().check(&json!({"jid": "a@b"})).expect("valid");
        let out = futures::executor::block_on(h(Call {
            profile: "p".into(),
            args,
        }))
        .expect("runs");
        assert_eq!(out, json!({"jid": "p:a@b", "rtt_ms": 1.0}));
    }

    #[test]
    fn bad_calls_name_the_parameter() {
        let e = spec().check(&json!({})).unwrap_err();
        assert!(
            matches!(&e, ArgError::Missing { param, .. } if param == "jid"),
            "{e}"
        );
        assert!(e.to_string().contains("\"jid\""), "{e}");

        let e = spec()
            .check(&json!({"jid": "a@b", "count": "3"}))
            .unwrap_err();
        assert!(
            matches!(&e, ArgError::WrongType { param, .. } if param == "count"),
            "{e}"
        );
        assert!(
            e.to_string().contains("must be integer, got a string"),
            "{e}"
        );

        let e = spec()
            .check(&json!({"jid": "a@b", "count": 1.5}))
            .unwrap_err();
        assert!(
            matches!(&e, ArgError::WrongType { param, .. } if param == "count"),
            "{e}"
        );

        let e = spec().check(&json!({"jid": "not@a@jid"})).unwrap_err();
        assert!(
            matches!(&e, ArgError::WrongType { param, .. } if param == "jid"),
            "{e}"
        );

        let e = spec()
            .check(&json!({"jid": "a@b", "colour": "red"}))
            .unwrap_err();
        assert!(
            matches!(&e, ArgError::Unknown { param, .. } if param == "colour"),
            "{e}"
        );

        let e = spec().check(&json!(["a@b"])).unwrap_err();
        assert!(matches!(e, ArgError::NotAnObject { .. }), "{e}");
    }
}
