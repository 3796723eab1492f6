//! `perch-actions`: every plugin action of perchd, typed — its name, its arguments and
//! its result, declared once.
//!
//! Why a crate of its own: an action has two sides, the plugin that serves it and the
//! frontends that call it (the CLI, perch-call, the Libervia bridge, the bench, the
//! tests). Spelt at each call site as a string and a hand-built JSON object, a renamed
//! parameter or a misspelt action name is only found at run time, by a user. Declared
//! here as an [`Action`] (a unit type naming the action, with serde structs for its
//! arguments and its result, and the doc and parameters `ActionList` shows), both
//! sides use the same declaration and the compiler checks every call; the plugin
//! serving an action writes none of it again (`perch_plugin_api::Serve`).
//!
//! The crate depends on serde and serde_json only, so frontends link it without the
//! plugin API, zbus or the daemon. The wire format is unchanged: field names are the
//! JSON keys of `ActionRun` (`doc/bridge.rst`), absent optional arguments are left out,
//! and JSON text exists only at the D-Bus edge (perch-client serialises, perchd's bridge
//! parses).
//!
//! Results whose shape is open (disco info, pages of items, cache status, search hits,
//! stored messages) are [`serde_json::Value`]: they are described in `doc/plugins.rst`
//! and read field by field by their callers.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub mod blocking;
pub mod blog;
pub mod cache;
pub mod calls;
pub mod disco;
pub mod encryption;
pub mod files;
pub mod identity;
pub mod messages;
pub mod muc;
pub mod pubsub;
pub mod signals;

mod params;
mod probe;

pub use params::{ParamDecl, ParamType, decl};
pub use probe::fields;
pub use signals::Signal;

/// One action: its name (as `ActionRun` and `ActionList` know it), its arguments and
/// its result.
pub trait Action {
    /// The action's name: `ping`, `pubsub_publish`, …
    const NAME: &'static str;
    /// Its arguments, serialised as the JSON object `ActionRun` takes.
    type Args: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// Its result, as `ActionRun` returns it.
    type Output: Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What `ActionList` tells frontends it does.
    const DOC: &'static str;
    /// Its parameters as `ActionList` lists them (and as calls are checked against,
    /// before the plugin's code runs): one per field of [`Self::Args`].
    const PARAMS: &'static [ParamDecl];
    /// Whether it acts for a profile, which must then be connected.
    const NEEDS_SESSION: bool = true;

    /// `(NAME, f)`, with `f` checked to take this action's arguments (and the profile)
    /// and to answer its result: what the plugin API's `typed` makes a handler of.
    fn handler<E, F, Fut>(f: F) -> (&'static str, F)
    where
        F: Fn(String, Self::Args) -> Fut,
        Fut: Future<Output = Result<Self::Output, E>>,
    {
        (Self::NAME, f)
    }
}

/// Arguments of an action that takes none: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoArgs {}

/// A result with nothing in it: `{}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Empty {}

/// The result of an action that runs as a job: `{"job": id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobStarted {
    pub job: String,
}

/// What a declared action looks like without its types: for checks that every action
/// a plugin registers is declared here, with the same parameters.
#[derive(Debug, Clone, Copy)]
pub struct ActionInfo {
    pub name: &'static str,
    /// The argument names (the JSON keys of its `Args` struct), in declaration order.
    pub args: &'static [&'static str],
    /// Its declared parameters.
    pub params: &'static [ParamDecl],
}

fn info<A: Action>() -> ActionInfo {
    ActionInfo {
        name: A::NAME,
        args: fields::<A::Args>().unwrap_or(&[]),
        params: A::PARAMS,
    }
}

/// Declares an action: a unit type implementing [`Action`], with the doc and the
/// parameters `ActionList` shows (written with [`decl`]'s `req`, `opt` and types;
/// `no_session` for an action that needs no connected profile).
macro_rules! action {
    (
        $(#[$doc:meta])* $ty:ident = $name:literal, $args:ty => $out:ty,
        $text:literal, [$($p:expr),* $(,)?] $(, $no_session:ident)? $(,)?
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $ty;

        impl $crate::Action for $ty {
            const NAME: &'static str = $name;
            type Args = $args;
            type Output = $out;
            const DOC: &'static str = $text;
            const PARAMS: &'static [$crate::ParamDecl] = {
                #[allow(unused_imports)]
                use $crate::decl::*;
                &[$($p),*]
            };
            $(const NEEDS_SESSION: bool = $crate::params::$no_session();)?
        }
    };
}
pub(crate) use action;

/// `true`, for `#[serde(default = "crate::yes")]`.
pub(crate) fn yes() -> bool {
    true
}

/// Every action declared here.
pub fn all() -> Vec<ActionInfo> {
    let mut v = vec![
        info::<disco::Ping>(),
        info::<disco::Version>(),
        info::<disco::DiscoInfo>(),
        info::<disco::DiscoItems>(),
        info::<disco::DiscoWalk>(),
        info::<disco::ExternalServices>(),
        info::<messages::MessageCorrect>(),
        info::<messages::ChatStateSend>(),
        info::<messages::MessageReact>(),
        info::<messages::MessageReply>(),
        info::<messages::MessageRetract>(),
        info::<messages::MucModerate>(),
        info::<messages::MessageRead>(),
        info::<messages::MessageUnread>(),
    ];
    v.extend(pubsub::all());
    v.extend(cache::all());
    v.extend(blog::all());
    v.extend(muc::all());
    v.extend(calls::all());
    v.extend(blocking::all());
    v.extend(identity::all());
    v.extend(files::all());
    v.extend(encryption::all());
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_unique_and_every_args_type_is_a_struct() {
        let all = all();
        let mut names: Vec<_> = all.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a name is declared twice");
        assert!(fields::<NoArgs>().is_some());
        assert!(fields::<disco::PingArgs>().is_some());
        assert_eq!(info::<disco::Ping>().args, &["jid"]);
    }

    #[test]
    fn declared_parameters_are_the_fields_of_the_args() {
        let mut wrong = Vec::new();
        for a in all() {
            let mut params: Vec<&str> = a.params.iter().map(|p| p.name).collect();
            let mut args = a.args.to_vec();
            params.sort_unstable();
            args.sort_unstable();
            if params != args {
                wrong.push(format!("{}: {params:?} vs {args:?}", a.name));
            }
            for p in a.params {
                if let Some(d) = p.default {
                    assert!(!p.required, "{}: {} has a default", a.name, p.name);
                    serde_json::from_str::<serde_json::Value>(d).expect("default is JSON");
                }
            }
        }
        assert!(wrong.is_empty(), "parameters differ: {wrong:#?}");
    }

    #[test]
    fn absent_options_are_left_out_of_the_wire_json() {
        let a = pubsub::ItemsGetArgs {
            node: "n".into(),
            max: Some(3),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&a).expect("serialises"),
            json!({"node": "n", "max": 3, "all": false, "use_cache": true})
        );
        let back: pubsub::ItemsGetArgs =
            serde_json::from_value(json!({"node": "n"})).expect("defaults");
        assert!(back.use_cache && !back.all && back.item_ids.is_empty());
        assert_eq!(serde_json::to_value(NoArgs {}).expect("ok"), json!({}));
    }
}
