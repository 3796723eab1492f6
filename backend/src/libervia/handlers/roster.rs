//! The roster, subscriptions and presence.

use std::collections::HashMap;

use perch_plugin_api::Show;

use crate::libervia::context::{CORE_INTERFACE, Lib};
use crate::libervia::errors::{self, LibError};
use crate::libervia::reply::{Answer, Map, out, unit};
use crate::libervia::shapes::{self, Contact, bare, contact};

type Statuses = HashMap<String, HashMap<String, (String, i32, Map)>>;

/// `getContacts`: the whole roster.
pub async fn contacts(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    let roster = lib.daemon.roster(&p).await?;
    out(roster.iter().map(contact).collect::<Vec<Contact>>())
}

/// `contactGet`: one roster item's attributes and groups.
pub async fn contact_get(lib: &Lib, (jid, key): (String, String)) -> Answer {
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

/// `getContactsFromGroup`.
pub async fn from_group(lib: &Lib, (group, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let roster = lib.daemon.roster(&p).await?;
    out(roster
        .into_iter()
        .filter(|i| i.groups.contains(&group))
        .map(|i| i.jid)
        .collect::<Vec<String>>())
}

/// `addContact`: a roster add with a subscription request.
pub async fn add(lib: &Lib, (jid, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    lib.daemon.roster_add(&p, &jid, "", Vec::new()).await?;
    unit()
}

/// `updateContact(jid, name, groups, profile_key)`.
pub async fn update(
    lib: &Lib,
    (jid, name, groups, key): (String, String, Vec<String>, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    update_contact(lib, &p, &jid, &name, groups).await?;
    unit()
}

/// `rosterResync`: the roster is kept in sync by pushes; resending it announces it
/// again.
pub async fn resync(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
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

/// `delContact`.
pub async fn delete(lib: &Lib, (jid, key): (String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    lib.daemon.roster_remove(&p, &jid).await?;
    unit()
}

/// `subscription(kind, jid, profile_key)`: an answer to a request, or a request.
pub async fn subscription(lib: &Lib, (kind, jid, key): (String, String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    lib.daemon.subscription(&p, &kind, &jid).await?;
    lib.sub_answered(&p, &bare(&jid));
    unit()
}

/// `getWaitingSub`: the subscription requests not answered yet.
pub async fn waiting(lib: &Lib, key: String) -> Answer {
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

/// `getPresenceStatuses`: available resources only, as Libervia keeps them.
pub async fn statuses(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    let mut all = Statuses::new();
    let presences = lib.daemon.presences(&p).await?;
    for pr in presences
        .into_iter()
        .filter(|pr| pr.show != Show::Unavailable)
    {
        let (bare, res) = pr.jid.split_once('/').unwrap_or((&pr.jid, ""));
        all.entry(bare.to_owned()).or_default().insert(
            res.to_owned(),
            (
                shapes::show(pr.show).to_owned(),
                i32::from(pr.priority),
                shapes::statuses(pr.status.as_deref()),
            ),
        );
    }
    out(all)
}

/// `setPresence(to, show, statuses, profile_key)`, with the profile's
/// `Connection/Priority`.
pub async fn set_presence(
    lib: &Lib,
    (_to, show, statuses, key): (String, String, Map, String),
) -> Answer {
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

/// `getMainResource`: the contact's resource of highest priority.
pub async fn main_resource(lib: &Lib, (jid, key): (String, String)) -> Answer {
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
