//! A room's configuration (XEP-0045 §10.2), for its owner: `muc_config` reads the
//! form, `muc_configure` changes some of its fields.
//!
//! Why a partial submit: frontends change one thing at a time (a password, members
//! only, who sees real JIDs); the room keeps the value of every field a submit does
//! not name (Prosody and ejabberd both do), so the owner never has to send back the
//! whole form, with values it may not understand.
//!
//! A password set here is ours too: the owner must give it when joining again (after
//! a reconnection, after a restart), so it goes to the room's state and to its
//! bookmark, where our rejoin finds it.

use std::sync::Arc;

use perch_actions::muc::{ConfigureArgs, RoomArgs};
use perch_codec::xep_0004;
use perch_plugin_api::HostError;
use serde_json::{Map, Value};

use super::{Muc, bad, update_bookmark, xml};

const PROTECTED: &str = "muc#roomconfig_passwordprotectedroom";
const SECRET: &str = "muc#roomconfig_roomsecret";

/// `muc_config`.
pub(super) async fn config(m: Arc<Muc>, profile: String, a: RoomArgs) -> Result<Value, HostError> {
    let room = super::actions::room(&a.room)?;
    read(&m, &profile, &room).await
}

/// `muc_configure`.
pub(super) async fn configure(
    m: Arc<Muc>,
    profile: String,
    a: ConfigureArgs,
) -> Result<Value, HostError> {
    let room = super::actions::room(&a.room)?;
    if a.values.is_empty() {
        return Err(bad("values: no field to change"));
    }
    if let Some(var) = a.values.keys().find(|k| k.is_empty() || *k == "FORM_TYPE") {
        return Err(bad(format!("values: {var:?} is not a field one may set")));
    }
    m.host
        .iq(
            &profile,
            Some(room.to_bare().into()),
            true,
            xml::config_submit(&a.values),
        )
        .await?;
    let room_s = room.to_bare().to_string();
    if let Some(password) = password_change(&a.values) {
        m.with_room(&profile, &room_s, |r| r.password = password.clone());
        if let Err(e) =
            update_bookmark(&*m.host, &profile, &room_s, |b| b.password = password).await
        {
            tracing::warn!(%profile, room = %room_s, error = %e, "keeping the room's new password in its bookmark failed");
        }
    }
    tracing::info!(%profile, room = %room_s, fields = a.values.len(), "room configured");
    read(&m, &profile, &room).await
}

/// The room's configuration form, as JSON.
async fn read(
    m: &Muc,
    profile: &str,
    room: &perch_plugin_api::jid::Jid,
) -> Result<Value, HostError> {
    let answer = m
        .host
        .iq(
            profile,
            Some(room.to_bare().into()),
            false,
            xml::config_request(),
        )
        .await?;
    let form = xml::config_form(answer.as_ref()).ok_or_else(|| {
        HostError::Xmpp(format!(
            "{} answered without a configuration form",
            room.to_bare()
        ))
    })?;
    Ok(xep_0004::to_json(form))
}

/// What a submit does to the room's password: `Some(Some(pw))` set, `Some(None)`
/// cleared, `None` untouched.
fn password_change(values: &Map<String, Value>) -> Option<Option<String>> {
    let off = matches!(values.get(PROTECTED), Some(v) if !truthy(v));
    if off {
        return Some(None);
    }
    match values.get(SECRET) {
        Some(Value::String(s)) if !s.is_empty() => Some(Some(s.clone())),
        Some(Value::String(_) | Value::Null) => Some(None),
        _ => None,
    }
}

/// A form boolean: `true`, `"true"` or `"1"`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s == "1" || s == "true",
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn what_a_submit_does_to_the_password() {
        let set = map(json!({SECRET: "pw", PROTECTED: true}));
        assert_eq!(password_change(&set), Some(Some("pw".into())));
        let off = map(json!({PROTECTED: "0"}));
        assert_eq!(password_change(&off), Some(None));
        let cleared = map(json!({SECRET: ""}));
        assert_eq!(password_change(&cleared), Some(None));
        let other = map(json!({"muc#roomconfig_membersonly": true}));
        assert_eq!(password_change(&other), None);
    }
}
