//! The group chat actions (`muc_*`), what frontends and `perch muc` call.

use std::sync::Arc;

use perch_actions::{self as actions, Action as _};
use perch_plugin_api::action::{ActionResult, ActionSpec, Call, Param, ParamType};
use perch_plugin_api::jid::Jid;
use perch_plugin_api::parsers::message::{Message, MessageType};
use perch_plugin_api::{HostError, action_fn};
use serde_json::{Value, json};

use super::{Muc, bad, bookmarks, default_nick, lock, xml};

fn room_param() -> Param {
    Param::required("room", ParamType::Jid, "the room's bare JID (room@service)")
}

/// Offers action `name`, run by `f` with the plugin.
fn add<F, Fut>(muc: &Arc<Muc>, name: &'static str, doc: &'static str, params: Vec<Param>, f: F)
where
    F: Fn(Arc<Muc>, Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ActionResult> + Send + 'static,
{
    let spec = ActionSpec {
        name,
        plugin: String::new(),
        doc,
        needs_session: true,
        params,
    };
    muc.host.add_action(spec, action_fn(muc.clone(), f));
}

fn nick_param(doc: &'static str) -> Param {
    Param::required("nick", ParamType::String, doc)
}

fn reason_param() -> Param {
    Param::optional("reason", ParamType::String, "why")
}

pub(super) fn register(m: &Arc<Muc>) {
    add(
        m,
        actions::muc::Join::NAME,
        "Joins a room (created as an instant room when it does not exist) and bookmarks it \
         with autojoin",
        vec![
            room_param(),
            Param::optional(
                "nick",
                ParamType::String,
                "our nick (default: the account's local part)",
            ),
            Param::optional("password", ParamType::String, "the room's password"),
        ],
        join,
    );
    add(
        m,
        actions::muc::Leave::NAME,
        "Leaves a room; its bookmark stays, without autojoin",
        vec![room_param()],
        |m, c| async move { m.leave(&c.profile, &room(&c)?).await },
    );
    add(
        m,
        actions::muc::List::NAME,
        "The rooms of the profile: {room, nick, joined, archived, subject, occupants}",
        vec![],
        list,
    );
    add(
        m,
        actions::muc::Occupants::NAME,
        "A joined room's occupants: {room, nick, subject, occupants: [{nick, jid, role, \
         affiliation, show, status}], codes (the status codes of our own presence when \
         the room let us in)}",
        vec![room_param()],
        occupants,
    );
    let text_param = || Param::required("text", ParamType::String, "the message");
    add(
        m,
        actions::muc::Say::NAME,
        "Sends a message to a room (through the outbox); answers it as stored",
        vec![room_param(), text_param()],
        say,
    );
    add(
        m,
        actions::muc::Pm::NAME,
        "Sends a private message to an occupant (filed under room/nick)",
        vec![
            room_param(),
            nick_param("the occupant's nick"),
            text_param(),
        ],
        pm,
    );
    register_moderation(m);
    add(
        m,
        actions::muc::Bookmarks::NAME,
        "The account's bookmarked rooms (XEP-0402): [{room, name, autojoin, nick}]",
        vec![],
        bookmarked,
    );
}

/// Subject, nick, kick, ban, destroy.
fn register_moderation(m: &Arc<Muc>) {
    add(
        m,
        actions::muc::Subject::NAME,
        "Sets a room's subject",
        vec![
            room_param(),
            Param::required("subject", ParamType::String, "the new subject"),
        ],
        subject,
    );
    add(
        m,
        actions::muc::Nick::NAME,
        "Changes our nick in a room; waits until the room accepts it",
        vec![room_param(), nick_param("the new nick")],
        |m, c| async move {
            let nick = c.args.str("nick").unwrap_or_default().to_owned();
            m.change_nick(&c.profile, &room(&c)?, &nick).await
        },
    );
    add(
        m,
        actions::muc::Kick::NAME,
        "Kicks an occupant (we must be a moderator)",
        vec![
            room_param(),
            nick_param("the occupant's nick"),
            reason_param(),
        ],
        kick,
    );
    add(
        m,
        actions::muc::Ban::NAME,
        "Bans an account from the room (we must be an admin or owner)",
        vec![
            room_param(),
            Param::required("jid", ParamType::Jid, "the account to ban (bare JID)"),
            reason_param(),
        ],
        ban,
    );
    add(
        m,
        actions::muc::Destroy::NAME,
        "Destroys the room (we must be its owner); its occupants are told",
        vec![room_param(), reason_param()],
        destroy,
    );
}

/// `muc_list`.
async fn list(m: Arc<Muc>, c: Call) -> ActionResult {
    let all = lock(&m.rooms);
    let list: Vec<Value> = all
        .get(&c.profile)
        .map(|rooms| rooms.iter().map(|(k, r)| r.summary(k)).collect())
        .unwrap_or_default();
    Ok(Value::Array(list))
}

/// `muc_occupants`.
async fn occupants(m: Arc<Muc>, c: Call) -> ActionResult {
    let room = room(&c)?.to_bare().to_string();
    m.with_room(&c.profile, &room, |r| {
        json!({"room": room, "nick": r.nick, "joined": r.joined, "subject": r.subject,
               "occupants": r.occupants.values().collect::<Vec<_>>(), "codes": r.codes})
    })
    .ok_or_else(|| bad(format!("not in room {room}")))
}

/// `muc_say`.
async fn say(m: Arc<Muc>, c: Call) -> ActionResult {
    let room = joined_room(&m, &c)?;
    let mut msg = Message::new(Some(room.to_bare().into()));
    msg.type_ = MessageType::Groupchat;
    msg.bodies.insert(Default::default(), text(&c, "text")?);
    to_value(m.host.send_message(&c.profile, msg).await?)
}

/// `muc_pm`.
async fn pm(m: Arc<Muc>, c: Call) -> ActionResult {
    let room = joined_room(&m, &c)?;
    let to = xml::occupant(&room, c.args.str("nick").unwrap_or_default()).map_err(bad)?;
    let mut msg = Message::new(Some(to));
    msg.type_ = MessageType::Chat;
    msg.bodies.insert(Default::default(), text(&c, "text")?);
    to_value(m.host.send_message(&c.profile, msg).await?)
}

/// `muc_subject`.
async fn subject(m: Arc<Muc>, c: Call) -> ActionResult {
    let room = joined_room(&m, &c)?;
    let subject = c.args.str("subject").unwrap_or_default().to_owned();
    m.host
        .send(&c.profile, xml::subject(&room, &subject))
        .await?;
    Ok(json!({"room": room.to_bare().to_string(), "subject": subject}))
}

/// `muc_kick`.
async fn kick(m: Arc<Muc>, c: Call) -> ActionResult {
    let room = joined_room(&m, &c)?;
    let nick = c.args.str("nick").unwrap_or_default();
    m.host
        .iq(
            &c.profile,
            Some(room.to_bare().into()),
            true,
            xml::kick(nick, c.args.str("reason")),
        )
        .await?;
    Ok(json!({"room": room.to_bare().to_string(), "nick": nick}))
}

/// `muc_ban`.
async fn ban(m: Arc<Muc>, c: Call) -> ActionResult {
    let room = joined_room(&m, &c)?;
    let jid = c
        .args
        .jid("jid")
        .ok_or_else(|| HostError::BadArgument("jid".into()))?
        .to_bare()
        .to_string();
    m.host
        .iq(
            &c.profile,
            Some(room.to_bare().into()),
            true,
            xml::ban(&jid, c.args.str("reason")),
        )
        .await?;
    Ok(json!({"room": room.to_bare().to_string(), "jid": jid}))
}

/// `muc_destroy`.
async fn destroy(m: Arc<Muc>, c: Call) -> ActionResult {
    let room = joined_room(&m, &c)?;
    m.host
        .iq(
            &c.profile,
            Some(room.to_bare().into()),
            true,
            xml::destroy(c.args.str("reason")),
        )
        .await?;
    Ok(json!({"room": room.to_bare().to_string()}))
}

/// `muc_bookmarks`.
async fn bookmarked(m: Arc<Muc>, c: Call) -> ActionResult {
    let list = match m
        .host
        .iq(&c.profile, None, false, bookmarks::request())
        .await
    {
        Ok(reply) => bookmarks::read(reply.as_ref()),
        Err(HostError::Stanza(e)) if e.condition == "item-not-found" => Vec::new(),
        Err(e) => return Err(e),
    };
    to_value(list)
}

fn to_value(v: impl serde::Serialize) -> ActionResult {
    serde_json::to_value(v).map_err(|e| HostError::Internal(e.to_string()))
}

fn room(c: &Call) -> Result<Jid, HostError> {
    let j = c.args.jid("room").ok_or_else(|| bad("room: missing"))?;
    if j.node().is_none() || j.resource().is_some() {
        return Err(bad(format!(
            "room: {j} is not a room's bare JID (room@service)"
        )));
    }
    Ok(j)
}

/// The room of the call, which we must be in.
fn joined_room(m: &Muc, c: &Call) -> Result<Jid, HostError> {
    let j = room(c)?;
    let bare = j.to_bare().to_string();
    match m.with_room(&c.profile, &bare, |r| r.joined) {
        Some(true) => Ok(j),
        Some(false) => Err(bad(format!("not in room {bare} yet (joining)"))),
        None => Err(bad(format!("not in room {bare} (join it first)"))),
    }
}

fn text(c: &Call, name: &str) -> Result<String, HostError> {
    c.args
        .str(name)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| bad(format!("{name}: empty")))
}

/// `muc_join`.
async fn join(m: Arc<Muc>, c: Call) -> ActionResult {
    let room = room(&c)?;
    let nick = match c.args.str("nick").filter(|n| !n.is_empty()) {
        Some(n) => n.to_owned(),
        None => default_nick(&*m.host, &c.profile).await,
    };
    let password = c.args.str("password").map(str::to_owned);
    m.join_patiently(&c.profile, &room, &nick, password, true)
        .await
}
