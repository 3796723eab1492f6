//! Profiles and their Libervia sessions: listing, creating, deleting, the profile
//! password ("starting a session"), connecting, and the two forms answered through
//! `launchAction` (the profile password, the XMPP password after a `not-authorized`).

use crate::error::Error;
use crate::libervia::actions;
use crate::libervia::context::{CORE_INTERFACE, Lib};
use crate::libervia::errors::{self, LibError};
use crate::libervia::params::ParamChange;
use crate::libervia::reply::{Answer, Map, out, unit, xml_escape};
use crate::libervia::signals;
use crate::libervia::trust_ui;

/// The launchAction id the TUI uses to start a profile's session.
pub const AUTHENTICATE_PROFILE_ID: &str = "b03bbfa8-a4ae-4734-a248-06ce6c7cf562";
/// The form field carrying the profile password in the answer to our password form.
const PASSWORD_FIELD: &str = "profile_password";
/// The fixed callback id of the XMPP password change form.
pub const CHANGE_XMPP_PASSWD_ID: &str = "878b9387-de2b-413b-950f-e424a147bcd0";
/// The form field carrying the new XMPP password.
const XMPP_PASSWORD_FIELD: &str = "xmpp_password";

/// `profileNameGet`. Unknown: "" (which both frontends report cleanly), where 0.9
/// raised an error the CLI hung on.
pub async fn name_get(lib: &Lib, key: String) -> Answer {
    out(lib.profile(&key).await.unwrap_or_default())
}

/// `profilesListGet`: the profile names (no component profiles in Perch).
pub async fn list_get(lib: &Lib, (clients, _components): (bool, bool)) -> Answer {
    let names: Vec<String> = if clients {
        lib.daemon
            .profile_list()
            .await?
            .into_iter()
            .map(|m| m.name)
            .collect()
    } else {
        Vec::new()
    };
    out(names)
}

/// `profileCreate`.
pub async fn create(lib: &Lib, (name, password, component): (String, String, String)) -> Answer {
    profile_create(lib, &name, &password, &component).await?;
    unit()
}

/// `asyncDeleteProfile`: refused while connected.
pub async fn delete(lib: &Lib, name: String) -> Answer {
    let p = lib.daemon.profile(&name).await?.name;
    if lib.daemon.session(&p).await.is_ok() {
        return Err(LibError::exc(
            errors::PROFILE_CONNECTED,
            &format!("profile {p:?} is connected: disconnect it first"),
            "",
        ));
    }
    lib.daemon.delete_profile(&p).await?;
    lib.end_session(&p);
    unit()
}

/// `profileSetDefault`.
pub async fn set_default(lib: &Lib, name: String) -> Answer {
    lib.daemon.set_default_profile(&name).await?;
    unit()
}

/// `profileStartSession`: true when it was started already.
pub async fn session_start(lib: &Lib, (password, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    out(start_session(lib, &p, &password).await?)
}

/// `profileIsSessionStarted`.
pub async fn is_session_started(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    out(lib.session_started(&p).is_some())
}

/// `isConnected`.
pub async fn is_connected(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    out(lib.daemon.session(&p).await.is_ok())
}

/// `connect`: starts the session (checking the profile password), then connects;
/// true when it was connected already.
pub async fn connect(lib: &Lib, (key, password, _options): (String, String, Map)) -> Answer {
    let p = lib.profile(&key).await?;
    start_session(lib, &p, &password).await?;
    if lib.daemon.session(&p).await.is_ok() {
        return out(true);
    }
    connect_profile(lib, &p).await?;
    out(false)
}

/// `disconnect`: also ends the Libervia session.
pub async fn disconnect(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    match lib.daemon.disconnect(&p).await {
        Ok(()) | Err(Error::NotConnected(_)) => {}
        Err(e) => return Err(e.into()),
    }
    signals::announce_disconnected(lib, &p).await;
    lib.end_session(&p);
    unit()
}

/// `sessionInfosGet`: the bound JID and when the session started.
pub async fn session_infos_get(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    let s = lib.daemon.session(&p).await?;
    let mut m = Map::new();
    m.insert(
        "jid".into(),
        s.bound_jid().map(|j| j.to_string()).unwrap_or_default(),
    );
    m.insert(
        "started".into(),
        lib.session_started(&p).unwrap_or_default().to_string(),
    );
    out(m)
}

/// `actionsGet`: the dialogs sent and not answered yet.
pub async fn actions_get(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    out(actions::pending(lib, &p))
}

/// `launchAction`.
pub async fn launch(lib: &Lib, (id, data, key): (String, Map, String)) -> Answer {
    let p = lib.profile(&key).await?;
    launch_action(lib, &p, &id, &data).await
}

/// Connects a profile and returns once `connected` went out (before the reply, as
/// in 0.9).
async fn connect_profile(lib: &Lib, p: &str) -> Result<(), Error> {
    lib.daemon.connect(p).await?;
    if let Ok(s) = lib.daemon.session(p).await {
        let jid = s.bound_jid().map(|j| j.to_string()).unwrap_or_default();
        signals::wait_connected(lib, p, &jid, std::time::Duration::from_secs(5)).await;
    }
    Ok(())
}

/// Validates a Libervia profile name, creates the profile, and sets its profile
/// password. Libervia creates a profile before its JID and XMPP password are known
/// (`setParam` gives them next). The JID starts as Libervia's own default
/// (`NAME@example.org`); the XMPP password starts unset, so `Connection/Password`
/// reads back `""` and `connect` is refused (not-authorized, naming the param) until
/// it is set.
async fn profile_create(
    lib: &Lib,
    name: &str,
    password: &str,
    component: &str,
) -> Result<(), LibError> {
    if name.is_empty() || name.starts_with('@') || name.contains('\n') {
        return Err(LibError::value(&format!("invalid profile name: {name:?}")));
    }
    if !component.is_empty() {
        return Err(LibError::exc(
            errors::VALUE,
            "component profiles are not supported by perchd",
            "",
        ));
    }
    crate::profiles::validate_name(name).map_err(|e| LibError::value(&e.to_string()))?;
    if lib.daemon.profile(name).await.is_ok() {
        return Err(LibError::exc(
            errors::CONFLICT,
            &format!("a profile named {name:?} already exists"),
            "",
        ));
    }
    lib.daemon
        .create_profile_without_password(crate::profiles::NewProfile {
            name: name.to_owned(),
            jid: format!("{}@example.org", name.to_lowercase()),
            password: crate::secret::Password::new(String::new()),
            server: None,
            ca_file: None,
            insecure: false,
            autoconnect: false,
        })
        .await?;
    // Announced even when empty, as 0.9 does; a password's value is never sent.
    let change = if password.is_empty() {
        ParamChange {
            name: "Password".into(),
            category: "General".into(),
            value: String::new(),
        }
    } else {
        lib.params
            .set(name, "General", "Password", password, -1)
            .await?
    };
    lib.emit(
        CORE_INTERFACE,
        "paramUpdate",
        &(change.name, change.value, change.category, name.to_owned()),
    )
    .await;
    Ok(())
}

/// Checks the profile password and starts the Libervia session; true when it was
/// started already.
async fn start_session(lib: &Lib, profile: &str, password: &str) -> Result<bool, LibError> {
    if lib.session_started(profile).is_some() {
        return Ok(true);
    }
    if !lib.params.profile_password_ok(profile, password).await? {
        return Err(LibError::exc(
            errors::PASSWORD,
            &format!("wrong profile password for {profile:?}"),
            "",
        ));
    }
    Ok(lib.start_session(profile))
}

/// `launchAction`: the session start of the TUI's profile manager, the XMPP password
/// form, the dialogs perchd sent and the OMEMO trust forms.
async fn launch_action(lib: &Lib, profile: &str, id: &str, data: &Map) -> Answer {
    if id == CHANGE_XMPP_PASSWD_ID {
        return change_xmpp_password(lib, profile, data).await;
    }
    // A dialog perchd sent (a note): answered, so no longer pending.
    if actions::take(lib, profile, id) {
        return out(Map::new());
    }
    // An OMEMO trust form (`encryptionTrustUIGet`), submitted.
    if let Some(form) = crate::libervia::room_config::take(lib, profile, id) {
        return out(crate::libervia::room_config::submit(lib, &form, data).await?);
    }
    if let Some(form) = trust_ui::take(lib, profile, id) {
        return out(trust_ui::submit(lib, &form, data).await?);
    }
    // An entry of the chat window's "Encryption" menu.
    if let Some(answer) = crate::libervia::encryption_menu::launch(lib, profile, id, data).await {
        return out(answer?);
    }
    if id != AUTHENTICATE_PROFILE_ID {
        return Err(LibError::exc(
            errors::NOT_FOUND,
            &format!("no action with id {id:?} in perchd"),
            "",
        ));
    }
    let mut answer = Map::new();
    if data.get("cancelled").is_some_and(|c| c == "true") {
        return out(answer);
    }
    let given = data
        .iter()
        .find(|(k, _)| k.ends_with(PASSWORD_FIELD))
        .map(|(_, v)| v.as_str());
    match start_session(lib, profile, given.unwrap_or("")).await {
        Ok(_) => {
            answer.insert("validated".into(), "true".into());
        }
        Err(e) if e.name().ends_with(".PasswordError") && given.is_none() => {
            answer.insert("xmlui".into(), password_form(profile));
        }
        Err(e) if e.name().ends_with(".PasswordError") => {
            answer.insert("xmlui".into(), wrong_password_popup());
            answer.insert("validated".into(), "false".into());
        }
        Err(e) => return Err(e),
    }
    out(answer)
}

/// The form asking for a profile password (answered through `launchAction` again).
fn password_form(profile: &str) -> String {
    let title = xml_escape(&format!("Profile password for {profile}"));
    format!(
        "<?xml version=\"1.0\" ?><sat_xmlui submit=\"{AUTHENTICATE_PROFILE_ID}\" \
         title=\"{title}\" type=\"form\"><container type=\"pairs\">\
         <widget type=\"label\" value=\"Profile password\"/>\
         <widget name=\"{PASSWORD_FIELD}\" type=\"password\"/></container></sat_xmlui>"
    )
}

/// The popup telling the password given in our form was wrong.
fn wrong_password_popup() -> String {
    "<?xml version=\"1.0\" ?><sat_xmlui title=\"Connection error\" type=\"popup\">\
     <container type=\"vertical\"><widget type=\"text\" \
     value=\"The provided profile password doesn't match.\"/></container></sat_xmlui>"
        .to_owned()
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
        answer.insert("xmlui".into(), xmpp_password_form(lib, profile, None).await);
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
            match connect_profile(lib, profile).await {
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
        answer.insert(
            "xmlui".into(),
            xmpp_password_form(lib, profile, Some(why)).await,
        );
    }
    out(answer)
}

async fn xmpp_password_form(lib: &Lib, profile: &str, why: Option<&str>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_form_is_escaped_and_submits_to_the_session_id() {
        let f = password_form("a<b");
        assert!(f.contains("title=\"Profile password for a&lt;b\""), "{f}");
        assert!(f.contains(&format!("submit=\"{AUTHENTICATE_PROFILE_ID}\"")));
        assert!(f.contains("name=\"profile_password\" type=\"password\""));
    }
}
