//! Actions perchd starts towards Libervia's frontends (`actionNew` with an XMLUI) and
//! the ones they can fetch later (`actionsGet`). The forms a frontend answers through
//! `launchAction` (profile password, XMPP password) are handlers
//! (`handlers::profiles`).
//!
//! Why kept here: a dialog is Libervia's way to tell the user something the daemon
//! found on its own (a connection without certificate checks); Perch's native
//! frontends see the same facts as profile settings. Every action perchd emits stays
//! pending, for a frontend started later, until a `launchAction` names it or the
//! profile disconnects (0.9 keeps only the actions waiting for an answer; see
//! `doc/libervia-compat.rst`).

use super::context::{CORE_INTERFACE, Lib, Pending, lock};
use super::reply::{Map, xml_escape};

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

/// Tells the user of an error in a dialog (`actionNew`), as 0.9 does when a group
/// chat cannot be joined.
pub async fn error_note(lib: &Lib, profile: &str, title: &str, message: &str) {
    let mut data = Map::new();
    data.insert("xmlui".into(), note(title, "error", message));
    emit(lib, profile, data).await;
}

/// An XMLUI note dialog.
pub fn note(title: &str, level: &str, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" ?><sat_xmlui title=\"{}\" type=\"dialog\">\
         <dialog level=\"{level}\" type=\"note\"><message>{}</message></dialog></sat_xmlui>",
        xml_escape(title),
        xml_escape(message)
    )
}

/// A random UUID (version 4), as 0.9 makes ids.
pub fn uuid4() -> String {
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
