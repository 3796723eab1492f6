//! Actions perchd starts towards Libervia's frontends (`actionNew` with an XMLUI), the
//! ones they can fetch later (`actionsGet`), and the XMPP password change
//! (`launchAction` with `CHANGE_XMPP_PASSWD_ID`), which the TUI opens after a
//! `not-authorized` connection error.
//!
//! Why kept here: a dialog is Libervia's way to tell the user something the daemon
//! found on its own (a connection without certificate checks); Perch's native
//! frontends see the same facts as profile settings. Every action perchd emits stays
//! pending, for a frontend started later, until a `launchAction` names it or the
//! profile disconnects (0.9 keeps only the actions waiting for an answer; see
//! `doc/libervia-compat.rst`).

use std::collections::HashMap;

use super::dispatch::{Answer, Map, out};
use super::{CORE_INTERFACE, Lib, lock};

/// The fixed callback id of the XMPP password change form.
pub const CHANGE_XMPP_PASSWD_ID: &str = "878b9387-de2b-413b-950f-e424a147bcd0";

/// The form field carrying the new XMPP password.
const XMPP_PASSWORD_FIELD: &str = "xmpp_password";

/// One pending action: its data, id and security limit (`actionsGet`'s `(a{ss}si)`).
pub type Pending = (Map, String, i32);

/// Pending actions by profile.
pub type Table = HashMap<String, Vec<Pending>>;

/// Emits `actionNew(data, id, -1, profile)` and keeps it pending.
pub async fn emit(lib: &Lib, profile: &str, data: Map) {
    let id = uuid4();
    lock(&lib.actions)
        .entry(profile.to_owned())
        .or_default()
        .push((data.clone(), id.clone(), -1));
    lib.emit(
        CORE_INTERFACE,
        "actionNew",
        &(data, id, -1i32, profile.to_owned()),
    )
    .await;
}

/// `actionsGet`: the profile's pending actions, oldest first.
pub fn pending(lib: &Lib, profile: &str) -> Vec<Pending> {
    lock(&lib.actions).get(profile).cloned().unwrap_or_default()
}

/// Drops a pending action named by `launchAction`; true if it was one.
pub fn take(lib: &Lib, profile: &str, id: &str) -> bool {
    let mut all = lock(&lib.actions);
    let Some(list) = all.get_mut(profile) else {
        return false;
    };
    let before = list.len();
    list.retain(|(_, i, _)| i != id);
    before != list.len()
}

/// A disconnected profile's dialogs are moot (they are sent again on the next
/// connection if still true).
pub fn forget(lib: &Lib, profile: &str) {
    lock(&lib.actions).remove(profile);
}

/// After a profile connected: the security notice when it does not check the
/// server's certificate (0.9 shows one at every such connection).
pub async fn on_connected(lib: &Lib, profile: &str) {
    let insecure = match lib.daemon.profile(profile).await {
        Ok(m) => m.insecure,
        Err(e) => {
            tracing::debug!(profile, error = %e, "no security notice: profile gone");
            return;
        }
    };
    if insecure {
        let mut data = Map::new();
        data.insert("xmlui".into(), security_notice());
        emit(lib, profile, data).await;
    }
}

/// The note telling certificate checks are off.
pub fn security_notice() -> String {
    note(
        "Security notice",
        "warning",
        "Certificate validation is turned off for this profile: the server's identity is \
         not checked and someone on the way could read or change your traffic. Unless you \
         have a good reason, turn \"check_certificate\" back on in the \"Connection\" \
         settings.",
    )
}

fn note(title: &str, level: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" ?><sat_xmlui title=\"{}\" type=\"dialog\">\
         <dialog level=\"{level}\" type=\"note\"><message>{}</message></dialog></sat_xmlui>",
        xml_escape(title),
        xml_escape(message)
    )
}

/// `launchAction(CHANGE_XMPP_PASSWD_ID, data, profile)`: without the password field,
/// the form asking for it (submitted to the same id); with it, sets
/// `Connection/Password` and connects. A refused password or connection gives the
/// form again, saying why.
pub async fn change_xmpp_password(lib: &Lib, profile: &str, data: &Map) -> Answer {
    let mut answer = Map::new();
    if data.get("cancelled").is_some_and(|c| c == "true") {
        return out(answer);
    }
    let given = data
        .iter()
        .find(|(k, _)| k.ends_with(XMPP_PASSWORD_FIELD))
        .map(|(_, v)| v.clone());
    let Some(password) = given else {
        answer.insert("xmlui".into(), password_form(lib, profile, None).await);
        return out(answer);
    };
    let why = match lib
        .params
        .set(profile, "Connection", "Password", &password, -1)
        .await
    {
        Err(e) => Some(e.to_string()),
        Ok(change) => {
            lib.emit(
                CORE_INTERFACE,
                "paramUpdate",
                &(
                    change.name,
                    change.value,
                    change.category,
                    profile.to_owned(),
                ),
            )
            .await;
            match super::core::connect_profile(lib, profile).await {
                Ok(()) => None,
                Err(e) => Some(e.to_string()),
            }
        }
    };
    if let Some(why) = why.as_deref() {
        tracing::info!(
            profile,
            "XMPP password from the Libervia form did not connect"
        );
        answer.insert("xmlui".into(), password_form(lib, profile, Some(why)).await);
    }
    out(answer)
}

async fn password_form(lib: &Lib, profile: &str, why: Option<&str>) -> String {
    let server = lib
        .daemon
        .profile(profile)
        .await
        .map(|m| {
            m.server.clone().unwrap_or_else(|| {
                m.jid
                    .split_once('@')
                    .map_or(m.jid.clone(), |(_, d)| d.to_owned())
            })
        })
        .unwrap_or_default();
    let mut text = format!(
        "Can't connect to {server}. Check the connection settings or give the XMPP password."
    );
    if let Some(w) = why {
        text.push_str(&format!(" ({w})"));
    }
    format!(
        "<?xml version=\"1.0\" ?><sat_xmlui submit=\"{CHANGE_XMPP_PASSWD_ID}\" \
         title=\"{}\" type=\"form\"><container type=\"vertical\">\
         <widget type=\"text\"><value>{}</value></widget>\
         <widget name=\"{XMPP_PASSWORD_FIELD}\" type=\"password\" value=\"\"/>\
         </container></sat_xmlui>",
        xml_escape(&format!("XMPP password for {profile}")),
        xml_escape(&text)
    )
}

fn uuid4() -> String {
    let h = perch_plugin_api::ids::random_hex(16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_notice_is_a_warning_note_dialog() {
        let x = security_notice();
        assert!(
            x.starts_with(
                "<?xml version=\"1.0\" ?><sat_xmlui title=\"Security notice\" type=\"dialog\">\
                 <dialog level=\"warning\" type=\"note\"><message>Certificate validation"
            ),
            "{x}"
        );
        assert!(x.contains("&quot;check_certificate&quot;"));
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
    }
}
