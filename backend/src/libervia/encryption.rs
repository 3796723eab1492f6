//! OMEMO as Libervia 0.9's encryption plugins (`TWOMEMO`, `OLDMEMO`): the session
//! rules of 0.9's `EncryptionHandler` (start with a namespace or the best one,
//! nothing to do when already started that way, replace or `ConflictError`, stop
//! only what is started) over the `XEP-0384` plugin's actions, and its
//! `encryption_started`/`stopped` signals as `messageEncryptionStarted`/`Stopped`.
//!
//! Why below the handlers: the bridge methods (`handlers::messages`), the chat
//! window's menu (`encryption_menu`) and the signal forwarder all need the same
//! rules and shapes.

use perch_actions::{Action, Signal, encryption};
use serde_json::{Value, json};

use super::context::{CORE_INTERFACE, Lib};
use super::errors::{CONFLICT, LibError, NOT_FOUND};
use super::shapes::bare;

/// OMEMO's two versions as Libervia 0.9 registers them: name, namespace,
/// priority; best first. Perch's one plugin (`XEP-0384`) speaks both, picking the
/// best version each contact publishes unless one is asked for.
const OMEMO: [(&str, &str, i64); 2] = [
    ("TWOMEMO", "urn:xmpp:omemo:2", 101),
    ("OLDMEMO", "eu.siacs.conversations.axolotl", 100),
];

/// OMEMO's versions as 0.9's encryption plugins, by ascending priority (as 0.9
/// lists them): name, namespace.
pub fn plugins() -> impl Iterator<Item = (&'static str, &'static str)> {
    OMEMO.iter().rev().map(|(name, ns, _)| (*name, *ns))
}

/// Whether the OMEMO plugin is loaded (its actions are served).
pub fn loaded(lib: &Lib) -> bool {
    lib.daemon.action_exists(encryption::Start::NAME).is_ok()
}

/// `{name, namespace}` of an encryption session, as 0.9 serialises it.
fn session_data(namespace: &str) -> Value {
    json!({"name": plugin_name(namespace), "namespace": namespace})
}

/// The 0.9 plugin name of an OMEMO namespace.
fn plugin_name(namespace: &str) -> &'static str {
    OMEMO
        .iter()
        .find(|(_, ns, _)| *ns == namespace)
        .map_or("OMEMO", |(n, _, _)| n)
}

async fn status(
    lib: &Lib,
    profile: &str,
    to: &str,
) -> Result<encryption::EncryptionState, LibError> {
    let args = encryption::ConversationArgs { to: bare(to) };
    Ok(lib
        .daemon
        .action::<encryption::Status>(profile, &args)
        .await?)
}

/// `messageEncryptionGet`: `{name, namespace}` (JSON) when the conversation is
/// encrypted, else `""`.
pub async fn get(lib: &Lib, profile: &str, to: &str) -> Result<String, LibError> {
    if !loaded(lib) {
        return Ok(String::new());
    }
    let st = status(lib, profile, to).await?;
    Ok(match (st.encrypted, st.namespace) {
        (true, Some(ns)) => session_data(&ns).to_string(),
        (true, None) => session_data(OMEMO[0].1).to_string(),
        _ => String::new(),
    })
}

/// `encryptionPluginsGet`: OMEMO's two versions when the plugin is loaded, by
/// ascending priority as 0.9 lists its plugins.
pub fn plugins_json(lib: &Lib) -> String {
    if !loaded(lib) {
        return "[]".to_owned();
    }
    let list: Vec<Value> = OMEMO
        .iter()
        .rev()
        .map(|(name, ns, priority)| {
            json!({"name": name, "namespace": ns, "priority": priority, "directed": false})
        })
        .collect();
    Value::Array(list).to_string()
}

/// `encryptionNamespaceGet(name)`: as 0.9, by plugin name (case insensitive);
/// `omemo` too, for the best version (what `message send -e omemo` asks).
pub fn namespace(lib: &Lib, name: &str) -> Result<String, LibError> {
    let wanted = name.to_lowercase();
    let found = OMEMO
        .iter()
        .find(|(n, _, _)| n.to_lowercase() == wanted || (wanted == "omemo" && *n == OMEMO[0].0));
    match found {
        Some((_, ns, _)) if loaded(lib) => Ok((*ns).to_owned()),
        _ => Err(LibError::exc(
            NOT_FOUND,
            &format!("Can't find a plugin with the name \"{name}\"."),
            "",
        )),
    }
}

/// `messageEncryptionStart`, as 0.9's `EncryptionHandler.start`: the version
/// `namespace` names (`""`: the best the contact publishes). Already encrypted with
/// that namespace: nothing to do; with another (or none asked): replaced when
/// `replace`, else `ConflictError`. The plugin signals `encryption_started`.
pub async fn start(
    lib: &Lib,
    profile: &str,
    to: &str,
    namespace: &str,
    replace: bool,
) -> Result<(), LibError> {
    let wanted = (!namespace.is_empty()).then(|| namespace.to_owned());
    if let Some(ns) = &wanted
        && (!OMEMO.iter().any(|(_, n, _)| n == ns) || !loaded(lib))
    {
        return Err(LibError::exc(
            NOT_FOUND,
            &format!("Can't find requested encryption plugin: {ns}"),
            "",
        ));
    }
    if !loaded(lib) {
        return Err(LibError::exc(
            NOT_FOUND,
            "No encryption plugin is registered, an encryption session can't be started",
            "",
        ));
    }
    let st = status(lib, profile, to).await?;
    if st.encrypted {
        if wanted.is_some() && wanted == st.namespace {
            return Ok(());
        }
        if !replace {
            let name = plugin_name(wanted.as_deref().unwrap_or(OMEMO[0].1));
            return Err(LibError::exc(
                CONFLICT,
                &format!(
                    "Session with {} is already encrypted with {name}. Please stop \
                     encryption session before changing algorithm.",
                    bare(to)
                ),
                "",
            ));
        }
    }
    let args = encryption::StartArgs {
        to: bare(to),
        namespace: wanted,
    };
    lib.daemon
        .action::<encryption::Start>(profile, &args)
        .await?;
    Ok(())
}

/// `messageEncryptionStop`; `NotFound` when the conversation is not encrypted, as
/// in 0.9. The plugin signals `encryption_stopped`.
pub async fn stop(lib: &Lib, profile: &str, to: &str) -> Result<(), LibError> {
    if !loaded(lib) || !status(lib, profile, to).await?.encrypted {
        return Err(LibError::exc(
            NOT_FOUND,
            "There is no encryption session with this entity.",
            "",
        ));
    }
    let args = encryption::ConversationArgs { to: bare(to) };
    lib.daemon
        .action::<encryption::Stop>(profile, &args)
        .await?;
    Ok(())
}

/// The OMEMO plugin's `encryption_started` / `encryption_stopped` as 0.9's
/// `messageEncryptionStarted(to, data s, profile)` (data: `{name, namespace}` as
/// JSON) and `messageEncryptionStopped(to, data a{ss}, profile)`; other signals are
/// left alone.
pub async fn on_signal(lib: &Lib, name: &str, profile: &str, data: &Value) {
    let started = name == <encryption::Started as Signal>::NAME;
    let stopped = name == <encryption::Stopped as Signal>::NAME;
    if !started && !stopped {
        return;
    }
    let Ok(st) = serde_json::from_value::<encryption::EncryptionState>(data.clone()) else {
        tracing::warn!(signal = name, "an OMEMO signal without its state");
        return;
    };
    let ns = st.namespace.unwrap_or_else(|| OMEMO[0].1.to_owned());
    let (to, profile) = (st.to, profile.to_owned());
    if started {
        let data = session_data(&ns).to_string();
        lib.emit(
            CORE_INTERFACE,
            "messageEncryptionStarted",
            &(to, data, profile),
        )
        .await;
    } else {
        let data = std::collections::HashMap::from([
            ("name".to_owned(), plugin_name(&ns).to_owned()),
            ("namespace".to_owned(), ns),
        ]);
        lib.emit(
            CORE_INTERFACE,
            "messageEncryptionStopped",
            &(to, data, profile),
        )
        .await;
    }
}
