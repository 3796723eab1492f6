//! The methods of `org.libervia.Libervia.core` that perchd implements.
//!
//! Each arm reads the arguments in Libervia's order, resolves the profile key, calls
//! the daemon (or the params store, or a plugin action) and shapes the answer the way
//! Libervia 0.9 does (`doc/libervia-compat.rst` lists them). Everything else in the
//! table answers `MethodNotRegistered`.

use std::collections::HashMap;

use serde_json::{Value, json};
use zbus::message::Message;

use super::dispatch::{Answer, Map, args, out, unit};
use super::errors::{self, LibError};
use super::signals::{self, HistoryRow};
use super::{CORE_INTERFACE, Lib};
use crate::error::Error;
use perch_plugin_api::Show;

/// The version frontends are told. They only show it, except the TUI, which turns
/// its debug mode on when it contains a `D`: so none here.
pub fn version() -> String {
    format!("0.9.0a0 (perchd {})", env!("CARGO_PKG_VERSION"))
}

/// The launchAction id the TUI uses to start a profile's session.
pub const AUTHENTICATE_PROFILE_ID: &str = "b03bbfa8-a4ae-4734-a248-06ce6c7cf562";
/// The form field carrying the profile password in the answer to our password form.
const PASSWORD_FIELD: &str = "profile_password";

type Contact = (String, Map, Vec<String>);
type Identity = (String, String, String);
type Field = (Map, Vec<String>);
type DiscoInfos = (Vec<String>, Vec<Identity>, HashMap<String, Vec<Field>>);
type Statuses = HashMap<String, HashMap<String, (String, i32, Map)>>;

pub async fn call(lib: &Lib, name: &str, msg: &Message) -> Answer {
    match name {
        "getReady" => unit(),
        "getVersion" => out(version()),
        "profileNameGet" => {
            let key: String = args(msg)?;
            // Unknown: "" (which both frontends report cleanly), where 0.9 raised an
            // error the CLI hung on.
            out(lib.profile(&key).await.unwrap_or_default())
        }
        "profilesListGet" => {
            let (clients, _components): (bool, bool) = args(msg)?;
            let names: Vec<String> = if clients {
                lib.daemon
                    .profiles
                    .list()
                    .await?
                    .into_iter()
                    .map(|m| m.name)
                    .collect()
            } else {
                Vec::new()
            };
            out(names)
        }
        "profileCreate" => {
            let (name, password, component): (String, String, String) = args(msg)?;
            profile_create(lib, &name, &password, &component).await?;
            unit()
        }
        "asyncDeleteProfile" => {
            let name: String = args(msg)?;
            let p = lib.daemon.profiles.get(&name).await?.name;
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
        "profileSetDefault" => {
            let name: String = args(msg)?;
            lib.daemon.profiles.set_default(&name).await?;
            unit()
        }
        "profileStartSession" => {
            let (password, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            out(start_session(lib, &p, &password).await?)
        }
        "profileIsSessionStarted" => {
            let key: String = args(msg)?;
            let p = lib.profile(&key).await?;
            out(lib.session_started(&p).is_some())
        }
        "isConnected" => {
            let key: String = args(msg)?;
            let p = lib.profile(&key).await?;
            out(lib.daemon.session(&p).await.is_ok())
        }
        "connect" => {
            let (key, password, _options): (String, String, Map) = args(msg)?;
            let p = lib.profile(&key).await?;
            start_session(lib, &p, &password).await?;
            if lib.daemon.session(&p).await.is_ok() {
                return out(true);
            }
            connect_profile(lib, &p).await?;
            out(false)
        }
        "disconnect" => {
            let key: String = args(msg)?;
            let p = lib.profile(&key).await?;
            match lib.daemon.disconnect(&p).await {
                Ok(()) | Err(Error::NotConnected(_)) => {}
                Err(e) => return Err(e.into()),
            }
            signals::announce_disconnected(lib, &p).await;
            lib.end_session(&p);
            unit()
        }
        "sessionInfosGet" => {
            let key: String = args(msg)?;
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
        "getContacts" => {
            let key: String = args(msg)?;
            let p = lib.profile(&key).await?;
            let roster = lib.daemon.roster(&p).await?;
            out(roster.iter().map(contact).collect::<Vec<Contact>>())
        }
        "contactGet" => {
            let (jid, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let bare = bare(&jid);
            let roster = lib.daemon.roster(&p).await?;
            let item = roster
                .iter()
                .find(|i| i.jid == bare)
                .ok_or_else(|| LibError::exc(errors::NOT_FOUND, &jid, ""))?;
            let (_, attrs, groups) = contact(item);
            out((attrs, groups))
        }
        "getContactsFromGroup" => {
            let (group, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let roster = lib.daemon.roster(&p).await?;
            out(roster
                .into_iter()
                .filter(|i| i.groups.contains(&group))
                .map(|i| i.jid)
                .collect::<Vec<String>>())
        }
        "addContact" => {
            let (jid, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            lib.daemon.roster_add(&p, &jid, "", Vec::new()).await?;
            unit()
        }
        "updateContact" => {
            let (jid, name, groups, key): (String, String, Vec<String>, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            update_contact(lib, &p, &jid, &name, groups).await?;
            unit()
        }
        "rosterResync" => {
            let key: String = args(msg)?;
            let p = lib.profile(&key).await?;
            // The roster is kept in sync by pushes; resending it announces it again.
            for item in lib.daemon.roster(&p).await? {
                let (jid, attrs, groups) = contact(&item);
                lib.emit(
                    CORE_INTERFACE,
                    "newContact",
                    &(jid, attrs, groups, p.clone()),
                )
                .await;
            }
            unit()
        }
        "delContact" => {
            let (jid, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            lib.daemon.roster_remove(&p, &jid).await?;
            unit()
        }
        "subscription" => {
            let (kind, jid, key): (String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            lib.daemon.subscription(&p, &kind, &jid).await?;
            lib.sub_answered(&p, &bare(&jid));
            unit()
        }
        "getWaitingSub" => {
            let key: String = args(msg)?;
            let p = lib.profile(&key).await?;
            let mut waiting = lib.waiting_subs(&p);
            // Answered meanwhile (by another frontend, or the native bridge): the
            // roster says they see our presence now.
            if let Ok(roster) = lib.daemon.roster(&p).await {
                for i in roster {
                    if matches!(i.subscription.as_str(), "from" | "both") {
                        waiting.remove(&i.jid);
                        lib.sub_answered(&p, &i.jid);
                    }
                }
            }
            out(waiting)
        }
        "getPresenceStatuses" => {
            let key: String = args(msg)?;
            let p = lib.profile(&key).await?;
            let mut all = Statuses::new();
            // Available resources only, as Libervia keeps them.
            let presences = lib.daemon.presences(&p).await?;
            for pr in presences
                .into_iter()
                .filter(|pr| pr.show != Show::Unavailable)
            {
                let (bare, res) = pr.jid.split_once('/').unwrap_or((&pr.jid, ""));
                all.entry(bare.to_owned()).or_default().insert(
                    res.to_owned(),
                    (
                        signals::show(pr.show).to_owned(),
                        i32::from(pr.priority),
                        signals::statuses(pr.status.as_deref()),
                    ),
                );
            }
            out(all)
        }
        "setPresence" => {
            let (_to, show, statuses, key): (String, String, Map, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let status = statuses
                .get("default")
                .or_else(|| statuses.values().next())
                .cloned()
                .unwrap_or_default();
            let priority = lib
                .params
                .get_sync(&p, "Connection", "Priority", "value")
                .await
                .ok()
                .and_then(|v| v.parse::<i32>().ok())
                .unwrap_or(0);
            lib.daemon
                .set_presence(&p, &show, &status, priority)
                .await?;
            unit()
        }
        "messageSend" => {
            let (to, message, _subject, kind, extra, key): (
                String,
                Map,
                Map,
                String,
                String,
                String,
            ) = args(msg)?;
            let p = lib.profile(&key).await?;
            if !extra.trim().is_empty() {
                serde_json::from_str::<Value>(&extra)
                    .map_err(|e| LibError::value(&format!("extra is not JSON: {e}")))?;
            }
            let body = message
                .get("")
                .or_else(|| message.values().next())
                .cloned()
                .unwrap_or_default();
            let kind = match kind.as_str() {
                "auto" | "" => "chat",
                k => k,
            };
            lib.daemon.send_message(&p, &to, &body, kind).await?;
            unit()
        }
        "historyGet" => {
            let (from, to, limit, _between, filters, key): (
                String,
                String,
                i32,
                bool,
                Map,
                String,
            ) = args(msg)?;
            let p = lib.profile(&key).await?;
            out(history(lib, &p, &from, &to, limit, &filters).await?)
        }
        "messageEncryptionGet" => {
            let (_to, key): (String, String) = args(msg)?;
            lib.profile(&key).await?;
            out(String::new())
        }
        "encryptionPluginsGet" => out("[]".to_owned()),
        "getMainResource" => {
            let (jid, key): (String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let bare = bare(&jid);
            let best = lib
                .daemon
                .presences(&p)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|pr| pr.jid.starts_with(&format!("{bare}/")))
                .max_by_key(|pr| pr.priority)
                .and_then(|pr| pr.jid.split_once('/').map(|(_, r)| r.to_owned()))
                .unwrap_or_default();
            out(best)
        }
        "getFeatures" => {
            let key: String = args(msg)?;
            lib.profile(&key).await?;
            let mut features: HashMap<String, Map> = HashMap::new();
            for s in lib.daemon.registry.statuses() {
                if s.reason.is_empty() {
                    features.insert(s.import_name, Map::new());
                }
            }
            out(features)
        }
        "getEntitiesData" => {
            let (jids, keys, key): (Vec<String>, Vec<String>, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            // Nicknames of roster contacts that have a name; no avatars yet.
            // Empty `jids`: every known entity.
            let mut data = HashMap::<String, Map>::new();
            if keys.iter().any(|k| k == "nicknames")
                && let Ok(roster) = lib.daemon.roster(&p).await
            {
                for i in roster {
                    if !jids.is_empty() && !jids.contains(&i.jid) {
                        continue;
                    }
                    // Only names the user gave: the fallback comes with identityGet,
                    // as 0.9's cache only holds what was asked for.
                    let Some(nick) = i.name.filter(|n| !n.is_empty()) else {
                        continue;
                    };
                    let mut m = Map::new();
                    m.insert("nicknames".into(), json!([nick]).to_string());
                    data.insert(i.jid, m);
                }
            }
            out(data)
        }
        "getEntityData" => {
            let (_jid, _keys, key): (String, Vec<String>, String) = args(msg)?;
            lib.profile(&key).await?;
            out(Map::new())
        }
        "menusGet" => {
            let (_lang, _security): (String, i32) = args(msg)?;
            out(Vec::<(String, String, Vec<String>, Vec<String>, Map)>::new())
        }
        "actionsGet" => {
            let key: String = args(msg)?;
            let p = lib.profile(&key).await?;
            out(super::actions::pending(lib, &p))
        }
        "getConfig" => {
            let (_section, _name): (String, String) = args(msg)?;
            out(String::new())
        }
        "namespacesGet" => {
            let mut m = Map::new();
            for (k, v) in [
                ("pubsub", "http://jabber.org/protocol/pubsub"),
                ("microblog", "urn:xmpp:microblog:0"),
                ("pps", "urn:xmpp:pps:0"),
            ] {
                m.insert(k.into(), v.into());
            }
            out(m)
        }
        "launchAction" => {
            let (id, data, key): (String, Map, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            launch_action(lib, &p, &id, &data).await
        }
        "discoInfos" => {
            let (jid, node, use_cache, key): (String, String, bool, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = lib
                .daemon
                .run_action(
                    &p,
                    "disco_info",
                    json!({"jid": jid, "node": opt(&node), "use_cache": use_cache}),
                )
                .await?;
            out(disco_infos(&v))
        }
        "discoItems" => {
            let (jid, node, use_cache, key): (String, String, bool, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            let v = lib
                .daemon
                .run_action(
                    &p,
                    "disco_items",
                    json!({"jid": jid, "node": opt(&node), "use_cache": use_cache}),
                )
                .await?;
            let items: Vec<Identity> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| (text(&i["jid"]), text(&i["node"]), text(&i["name"])))
                .collect();
            out(items)
        }
        // Parameters (backend/src/libervia/params.rs).
        "getParamsCategories" => out(super::params::Params::categories()
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<String>>()),
        "setParam" => {
            let (name, value, category, security, key): (String, String, String, i32, String) =
                args(msg)?;
            let p = lib.profile(&key).await?;
            let change = lib
                .params
                .set(&p, &category, &name, &value, security)
                .await?;
            lib.emit(
                CORE_INTERFACE,
                "paramUpdate",
                &(change.name, change.value, change.category, p),
            )
            .await;
            unit()
        }
        "asyncGetParamA" => {
            let (name, category, attribute, security, key): (String, String, String, i32, String) =
                args(msg)?;
            let p = lib.profile(&key).await?;
            out(lib
                .params
                .get(&p, &category, &name, &attribute, security)
                .await?)
        }
        "getParamA" => {
            let (name, category, attribute, key): (String, String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            out(lib
                .params
                .get_sync(&p, &category, &name, &attribute)
                .await?)
        }
        "asyncGetParamsValuesFromCategory" => {
            let (category, security, app, _extra, key): (String, i32, String, String, String) =
                args(msg)?;
            let p = lib.profile(&key).await?;
            let values = lib
                .params
                .category_values(&p, &category, security, &app)
                .await?;
            out(values.into_iter().collect::<Map>())
        }
        "getParamsUI" => {
            let (security, app, extra, key): (i32, String, String, String) = args(msg)?;
            let p = lib.profile(&key).await?;
            out(lib.params.ui_xml(&p, security, &app, &extra).await?)
        }
        other => Err(LibError::not_registered(other)),
    }
}

fn opt(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_owned())
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

pub fn bare(jid: &str) -> String {
    jid.split('/').next().unwrap_or_default().to_owned()
}

/// A roster item as `getContacts` gives it: (jid, {to, from, ask, name?}, groups).
pub fn contact(i: &perch_plugin_api::RosterItem) -> Contact {
    let b = |v: bool| if v { "True" } else { "False" }.to_owned();
    let sub = i.subscription.as_str();
    let mut attrs = Map::new();
    attrs.insert("to".into(), b(matches!(sub, "to" | "both")));
    attrs.insert("from".into(), b(matches!(sub, "from" | "both")));
    attrs.insert("ask".into(), b(i.ask));
    if let Some(n) = &i.name {
        attrs.insert("name".into(), n.clone());
    }
    (i.jid.clone(), attrs, i.groups.clone())
}

/// `updateContact`: a roster set of the name and groups only (no subscription
/// request, unlike `addContact`).
async fn update_contact(
    lib: &Lib,
    profile: &str,
    jid: &str,
    name: &str,
    groups: Vec<String>,
) -> Result<(), LibError> {
    use tokio_xmpp::parsers::roster::{Ask, Group, Item, Roster, Subscription};
    crate::validate::text("name", name, crate::validate::MAX_TEXT)?;
    for g in &groups {
        crate::validate::text("groups", g, crate::validate::MAX_TEXT)?;
    }
    let jid = crate::daemon::parse_jid(jid)?.to_bare();
    let session = lib.daemon.session(profile).await?;
    let item = Item {
        jid,
        name: (!name.is_empty()).then(|| name.to_owned()),
        subscription: Subscription::None,
        ask: Ask::None,
        groups: groups.into_iter().map(Group).collect(),
        approved: None,
    };
    let query: tokio_xmpp::minidom::Element = Roster {
        ver: None,
        items: vec![item],
    }
    .into();
    session.iq(None, true, query).await?;
    Ok(())
}

/// Connects a profile and returns once `connected` went out (before the reply, as
/// in 0.9).
pub async fn connect_profile(lib: &Lib, p: &str) -> Result<(), Error> {
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
    if lib.daemon.profiles.get(name).await.is_ok() {
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
        super::params::ParamChange {
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

/// `launchAction`: only the session start of the TUI's profile manager is known.
async fn launch_action(lib: &Lib, profile: &str, id: &str, data: &Map) -> Answer {
    if id == super::actions::CHANGE_XMPP_PASSWD_ID {
        return super::actions::change_xmpp_password(lib, profile, data).await;
    }
    // A dialog perchd sent (a note): answered, so no longer pending.
    if super::actions::take(lib, profile, id) {
        return out(Map::new());
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

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `discoInfos`: (features, identities (category, type, name), extensions
/// {FORM_TYPE: [({var}, values)]}) from the `disco_info` action's JSON.
fn disco_infos(v: &Value) -> DiscoInfos {
    let features = v["features"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| match f {
            Value::String(s) => s.clone(),
            other => text(&other["var"]),
        })
        .collect();
    let identities = v["identities"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (text(&i["category"]), text(&i["type"]), text(&i["name"])))
        .collect();
    let mut extensions = HashMap::new();
    for x in v["extensions"].as_array().into_iter().flatten() {
        let fields = x["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["var"].as_str() != Some("FORM_TYPE"))
            .map(|f| {
                let mut attrs = Map::new();
                attrs.insert("var".into(), text(&f["var"]));
                let values = f["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(text)
                    .collect();
                (attrs, values)
            })
            .collect();
        extensions.insert(text(&x["type"]), fields);
    }
    (features, identities, extensions)
}

/// `historyGet`: the conversation between our account and the other JID, oldest
/// first. `limit` -1 is the profile's History param (default 20), -2 no limit.
async fn history(
    lib: &Lib,
    profile: &str,
    from: &str,
    to: &str,
    limit: i32,
    filters: &Map,
) -> Result<Vec<HistoryRow>, LibError> {
    let m = lib.daemon.profiles.get(profile).await?;
    let own = bare(&m.jid);
    let peer = if bare(from) == own || from.is_empty() {
        to
    } else {
        from
    };
    let limit = match limit {
        0 => return Ok(Vec::new()),
        -1 => Some(u64::from(lib.params.history_limit(profile).await?)),
        n if n < 0 => None,
        n => u64::try_from(n).ok(),
    };
    let after = match filters.get("timestamp_start") {
        Some(t) => Some(
            crate::time::parse(t)
                .ok_or_else(|| LibError::value(&format!("timestamp_start {t:?} is not a time")))?,
        ),
        None => None,
    };
    let q = crate::history::Query {
        with: (!peer.is_empty()).then(|| bare(peer)),
        after,
        before: None,
        limit,
    };
    let rows = lib.daemon.history.query(m.id, &q).await?;
    let types = filters
        .get("types")
        .map(|t| t.split_whitespace().collect::<Vec<_>>());
    let not_types = filters
        .get("not_types")
        .map(|t| t.split_whitespace().collect::<Vec<_>>());
    Ok(rows
        .iter()
        .filter(|r| types.as_ref().is_none_or(|t| t.contains(&r.kind.as_str())))
        .filter(|r| {
            not_types
                .as_ref()
                .is_none_or(|t| !t.contains(&r.kind.as_str()))
        })
        .filter(|r| {
            filters
                .get("body")
                .is_none_or(|b| r.body.contains(b.as_str()))
        })
        .map(signals::history_row)
        .collect())
}

impl Lib {
    fn sub_answered(&self, profile: &str, jid: &str) {
        if let Some(m) = super::lock(&self.waiting_sub).get_mut(profile) {
            m.remove(jid);
        }
    }

    fn waiting_subs(&self, profile: &str) -> Map {
        super::lock(&self.waiting_sub)
            .get(profile)
            .cloned()
            .unwrap_or_default()
    }

    pub(super) fn sub_requested(&self, profile: &str, jid: &str, kind: &str) {
        let mut w = super::lock(&self.waiting_sub);
        let m = w.entry(profile.to_owned()).or_default();
        if kind == "subscribe" {
            m.insert(jid.to_owned(), kind.to_owned());
        } else if kind == "unsubscribe" {
            m.remove(jid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roster_items_carry_libervia_attributes() {
        let item = perch_plugin_api::RosterItem {
            jid: "bob@example.org".into(),
            name: Some("Bob".into()),
            subscription: "to".into(),
            ask: false,
            groups: vec!["Friends".into()],
        };
        let (jid, attrs, groups) = contact(&item);
        assert_eq!(jid, "bob@example.org");
        assert_eq!(attrs["to"], "True");
        assert_eq!(attrs["from"], "False");
        assert_eq!(attrs["ask"], "False");
        assert_eq!(attrs["name"], "Bob");
        assert_eq!(groups, ["Friends"]);
    }

    #[test]
    fn disco_info_becomes_libervia_tuple() {
        let v = json!({
            "features": ["urn:xmpp:ping"],
            "identities": [{"category": "server", "type": "im", "name": "Prosody"}],
            "extensions": [{"type": "urn:x", "fields": [
                {"var": "FORM_TYPE", "values": ["urn:x"]},
                {"var": "a", "values": ["1", "2"]}]}],
        });
        let (features, identities, ext) = disco_infos(&v);
        assert_eq!(features, ["urn:xmpp:ping"]);
        assert_eq!(
            identities,
            [("server".into(), "im".into(), "Prosody".into())]
        );
        let fields = &ext["urn:x"];
        assert_eq!(fields.len(), 1);
        assert_eq!(fields[0].0["var"], "a");
        assert_eq!(fields[0].1, ["1", "2"]);
    }

    #[test]
    fn password_form_is_escaped_and_submits_to_the_session_id() {
        let f = password_form("a<b");
        assert!(f.contains("title=\"Profile password for a&lt;b\""), "{f}");
        assert!(f.contains(&format!("submit=\"{AUTHENTICATE_PROFILE_ID}\"")));
        assert!(f.contains("name=\"profile_password\" type=\"password\""));
    }
}
