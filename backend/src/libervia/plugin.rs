//! The methods of `org.libervia.Libervia.plugin` that perchd implements, each mapped
//! onto a Perch plugin action (`doc/libervia-compat.rst`).

use std::collections::HashMap;

use serde_json::{Value, json};
use zbus::message::Message;

use super::Lib;
use super::dispatch::{Answer, Map, args, out, unit};
use super::errors::LibError;

pub async fn call(lib: &Lib, name: &str, msg: &Message) -> Answer {
    match name {
        "getSoftwareVersion" => {
            let (jid, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = action(lib, &p, "version", json!({"jid": jid})).await?;
            out((s(&v["name"]), s(&v["version"]), s(&v["os"])))
        }
        "ping" => {
            let (jid, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = action(lib, &p, "ping", json!({"jid": jid})).await?;
            out(v["rtt_ms"].as_f64().unwrap_or_default() / 1000.0)
        }
        "chatStateComposing" => {
            let (to, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            action(
                lib,
                &p,
                "chat_state_send",
                json!({"to": to, "state": "composing"}),
            )
            .await?;
            unit()
        }
        "mucGetRoomsJoined" => {
            let key: String = args(msg)?;
            lib.profile(&key).await?;
            type Room = (String, HashMap<String, Map>, String, String, Vec<String>);
            out(Vec::<Room>::new())
        }
        "identityGet" => {
            let (jid, _filter, _use_cache, key): (String, Vec<String>, bool, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let bare = super::core::bare(&jid);
            let from_roster = lib.daemon.roster(&p).await.ok().and_then(|r| {
                r.into_iter()
                    .find(|i| i.jid == bare)
                    .and_then(|i| i.name)
                    .filter(|n| !n.is_empty())
            });
            let nick = from_roster.unwrap_or_else(|| capitalised_local(&bare));
            out(json!({"nicknames": [nick]}).to_string())
        }
        other => Err(LibError::not_registered(other)),
    }
}

/// Runs a plugin action with JSON arguments.
pub async fn action(lib: &Lib, profile: &str, name: &str, args: Value) -> Result<Value, LibError> {
    Ok(lib
        .daemon
        .run_action(profile, name, &args.to_string())
        .await?)
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// `alice@example.org` → `Alice`: Libervia's last-resort nickname.
fn capitalised_local(bare: &str) -> String {
    let local = bare.split_once('@').map_or(bare, |(l, _)| l);
    let mut c = local.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
