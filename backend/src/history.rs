//! Message history and the outbox: the only code that touches the `message` table
//! (the outbox is its rows that still carry a stanza to send).
//!
//! What it guarantees (`doc/messaging.rst`):
//! - **Once.** A message that reaches us twice — live and as a carbon, in a room's
//!   join history and from its archive, re-sent by a sender whose acknowledgement
//!   was lost — is stored once: recognised by the id an archive gave it (XEP-0359
//!   `stanza-id`, unique per archive) or by the sender's own id (`origin-id`, within
//!   one conversation and direction).
//! - **Nothing acknowledged is lost.** A message to send is stored with its exact
//!   stanza (one statement) before anyone is told it is queued; it leaves the
//!   outbox only once the server confirmed it (see `xmpp::session::outbox`).
//! - **Corrections keep the original.** A correction (XEP-0308) from the same sender
//!   replaces the corrected message's text; the earlier texts are kept in its
//!   `extra.edits`, and the correction's own row is folded into it in listings.
//! - **Message actions change their target, in one place** ([`Apply`],
//!   `doc/messages.rst`). A reaction (XEP-0444), a retraction (XEP-0424) or a
//!   room's moderation (XEP-0425) is applied here, as corrections are, for both
//!   directions: what a frontend sends and what arrives (live, as a carbon, from an
//!   archive) is the same change to the same row. Why here and not in a plugin: the
//!   target is found, and the sender checked, against the message table, which is
//!   this module's alone, and the action's own row must be written with the same
//!   rules (once, folded) as a correction's. The action's row is kept, folded into
//!   its target like a correction's (`replaces` names the target), so an action
//!   seen again (live then from the archive) is recognised and not applied twice.
//!   One that names no message we have, or a retraction by someone else than the
//!   sender, is ignored ([`Stored::Ignored`]), logged by the caller.
//!
//! Every write is one statement, run to the end, its failure reported. Two lessons
//! of a full disk (a 6 MB tmpfs, `doc/reliability.rst`):
//! - an `INSERT … RETURNING` read with one fetch (what sea-orm's
//!   `ActiveModel::insert` does on SQLite) hands back the new row at the first
//!   step, before SQLite has committed it; the commit's `SQLITE_FULL` is lost with
//!   the dropped statement, and a message was reported stored that never landed;
//! - a multi-statement transaction whose statement fails with `SQLITE_FULL` is
//!   rolled back by SQLite itself; sqlx's explicit rollback then fails and sqlx
//!   still counts the connection as inside a transaction. The next transaction on
//!   that pooled connection becomes a savepoint of a transaction that is never
//!   committed: its writes "succeed", are acknowledged, and are never seen by
//!   anyone else (measured: receipts sent for messages not in the database).
//!
//! So no explicit transactions here: the reads that decide (is it a copy? what
//! does it correct?) run first, then one statement writes. Per profile, incoming
//! messages are stored by one task in order, so nothing comes between the two.
//! When daemons share the database, a message is stored in one transaction that
//! first checks this daemon's lease on the profile (`cluster.rs`, the fence).

use std::sync::Arc;

use perch_plugin_api::{Direction, HistoryMessage, MessageState};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::cluster::Cluster;
use crate::db::entities::message;
use crate::error::{Error, Result};

/// A history query (all filters optional).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Bare JID: every resource; full JID: that resource only (or, for a room
    /// occupant's private messages, that conversation).
    pub with: Option<String>,
    /// Exclusive bounds, microseconds.
    pub after: Option<i64>,
    pub before: Option<i64>,
    /// The newest N of the range; `None` for all.
    pub limit: Option<u64>,
}

/// A message to store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub msg_id: String,
    pub timestamp: i64,
    pub direction: Direction,
    pub peer: String,
    pub from: String,
    pub to: String,
    pub kind: String,
    pub body: String,
    pub state: MessageState,
    pub origin_id: Option<String>,
    /// The archive's id and whose archive it is.
    pub stanza_id: Option<(String, String)>,
    /// The id of the message this one corrects (XEP-0308), if it says so.
    pub replaces: Option<String>,
    /// What the message says about itself, stored as its `extra` (a reply's
    /// `reply_to`, `/me`; an encryption plugin's `encryption`).
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// What it does to another message instead of being one (a reaction, a
    /// retraction): then its body is empty and it is folded into its target.
    pub apply: Option<Apply>,
}

/// What a message does to another one, named by `id`: in a chat the target's
/// origin-id or id, in a room the room's stanza-id (or, failing that, its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Apply {
    /// The sender's reactions to message `id`: they replace the sender's earlier
    /// set (empty: all taken back).
    React { id: String, reactions: Vec<String> },
    /// The sender takes their message `id` back: its text goes.
    Retract { id: String },
    /// The room takes message `id` back on a moderator's word.
    Moderate {
        id: String,
        by: Option<String>,
        reason: Option<String>,
    },
    /// The sender was shown message `id` (XEP-0333 `displayed`).
    Displayed { id: String },
}

impl Apply {
    /// The id of the message it applies to.
    pub fn target(&self) -> &str {
        match self {
            Self::React { id, .. }
            | Self::Retract { id }
            | Self::Moderate { id, .. }
            | Self::Displayed { id } => id,
        }
    }
}

/// What storing a message did.
#[derive(Debug, Clone)]
pub enum Stored {
    /// A new message.
    New(HistoryMessage),
    /// Seen before: this is the stored one.
    Duplicate(HistoryMessage),
    /// A correction: stored (folded into listings), and the corrected message,
    /// as it is now.
    Corrected {
        correction: HistoryMessage,
        corrected: Box<HistoryMessage>,
    },
    /// A message action ([`Apply`]): stored (folded into listings), and its target,
    /// as it is now.
    Applied {
        action: HistoryMessage,
        target: Box<HistoryMessage>,
    },
    /// A message action that was not applied, and why (no such message; not the
    /// sender's to retract). Nothing was stored.
    Ignored(String),
}

/// One outbox entry handed to the session.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The `message` row.
    pub row: i64,
    pub msg_id: String,
    pub stanza: String,
}

#[derive(Clone)]
pub struct History {
    db: DatabaseConnection,
    /// The fence of every write when daemons share the database (`cluster.rs`).
    cluster: Option<Arc<Cluster>>,
}

fn view(m: message::Model) -> HistoryMessage {
    HistoryMessage {
        id: m.msg_id,
        timestamp: crate::time::rfc3339(m.timestamp),
        direction: if m.direction == "out" {
            Direction::Out
        } else {
            Direction::In
        },
        peer: m.peer,
        from: m.from_jid,
        to: m.to_jid,
        kind: m.kind,
        body: m.body,
        state: MessageState::parse(&m.state).unwrap_or_default(),
        origin_id: m.origin_id,
        stanza_id: m.stanza_id,
        extra: serde_json::from_str(&m.extra).unwrap_or_default(),
    }
}

/// A message's `extra` object (JSON text) with `key` set to `value`.
/// The `extra` key of a message a room refused because we were not in it.
pub const RESEND_ON_JOIN: &str = "resend_on_join";

fn with_key(extra: &str, key: &str, value: serde_json::Value) -> String {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(extra).unwrap_or_default();
    map.insert(key.to_owned(), value);
    serde_json::Value::Object(map).to_string()
}

fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}

/// The row a new message duplicates, if any.
async fn find_duplicate(
    db: &impl ConnectionTrait,
    profile_id: i32,
    m: &NewMessage,
) -> Result<Option<message::Model>> {
    if let Some((id, by)) = &m.stanza_id
        && let Some(row) = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::StanzaIdBy.eq(by.as_str()))
            .filter(message::Column::StanzaId.eq(id.as_str()))
            .one(db)
            .await?
    {
        return Ok(Some(row));
    }
    let same_sender = |mut sel: sea_orm::Select<message::Entity>| {
        sel = sel
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::Peer.eq(m.peer.as_str()))
            .filter(message::Column::Direction.eq(m.direction.as_str()));
        // In a room, every occupant picks its own ids: only the same occupant's
        // count (one must not be able to hide another's message by reusing its id).
        if m.kind == "groupchat" && m.direction == Direction::In {
            sel = sel.filter(message::Column::FromJid.eq(m.from.as_str()));
        }
        sel.order_by_desc(message::Column::Id)
    };
    if let Some(origin) = &m.origin_id
        && let Some(row) = same_sender(message::Entity::find())
            .filter(message::Column::OriginId.eq(origin.as_str()))
            .one(db)
            .await?
    {
        return Ok(Some(row));
    }
    // A sender without origin-ids, or a row stored before Perch kept them (the
    // first catch-up after an upgrade): the same stanza id and the same text from
    // the same sender is the same message. Ids Perch made up for messages that had
    // none say nothing.
    if m.msg_id.starts_with(GENERATED_ID) {
        return Ok(None);
    }
    Ok(same_sender(message::Entity::find())
        .filter(message::Column::MsgId.eq(m.msg_id.as_str()))
        .filter(message::Column::Body.eq(m.body.as_str()))
        .one(db)
        .await?)
}

/// The prefix of the ids given to incoming messages that had none.
pub const GENERATED_ID: &str = "perch-in-";

/// The message a correction corrects: same conversation, direction and sender.
async fn find_corrected(
    db: &impl ConnectionTrait,
    profile_id: i32,
    m: &NewMessage,
    target: &str,
) -> Result<Option<message::Model>> {
    let found = message::Entity::find()
        .filter(message::Column::ProfileId.eq(profile_id))
        .filter(message::Column::Peer.eq(m.peer.as_str()))
        .filter(message::Column::Direction.eq(m.direction.as_str()))
        .filter(
            Condition::any()
                .add(message::Column::MsgId.eq(target))
                .add(message::Column::OriginId.eq(target)),
        )
        .order_by_desc(message::Column::Id)
        .one(db)
        .await?;
    let Some(mut row) = found else {
        return Ok(None);
    };
    // A correction of a correction (some clients name the last version): the
    // original is what gets corrected.
    if let Some(original) = row.replaces.clone()
        && let Some(o) = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::Peer.eq(m.peer.as_str()))
            .filter(message::Column::MsgId.eq(original))
            .filter(message::Column::Replaces.is_null())
            .order_by_desc(message::Column::Id)
            .one(db)
            .await?
    {
        row = o;
    }
    let same_sender = if m.kind == "groupchat" {
        row.from_jid == m.from
    } else {
        bare(&row.from_jid) == bare(&m.from)
    };
    Ok(same_sender.then_some(row))
}

/// The message as stored by [`insert`], without reading it back.
fn view_new(m: &NewMessage) -> HistoryMessage {
    HistoryMessage {
        id: m.msg_id.clone(),
        timestamp: crate::time::rfc3339(m.timestamp),
        direction: m.direction,
        peer: m.peer.clone(),
        from: m.from.clone(),
        to: m.to.clone(),
        kind: m.kind.clone(),
        body: m.body.clone(),
        state: m.state,
        origin_id: m.origin_id.clone(),
        stanza_id: m.stanza_id.as_ref().map(|(id, _)| id.clone()),
        extra: m.extra.clone(),
    }
}

/// Inserts a row: one statement, run to the end.
async fn insert(
    db: &impl ConnectionTrait,
    profile_id: i32,
    m: &NewMessage,
    replaces: Option<String>,
    stanza: Option<String>,
) -> Result<()> {
    let (stanza_id, stanza_id_by) = match &m.stanza_id {
        Some((id, by)) => (Some(id.clone()), Some(by.clone())),
        None => (None, None),
    };
    let row = message::ActiveModel {
        profile_id: Set(profile_id),
        msg_id: Set(m.msg_id.clone()),
        timestamp: Set(m.timestamp),
        direction: Set(m.direction.as_str().to_owned()),
        peer: Set(m.peer.clone()),
        from_jid: Set(m.from.clone()),
        to_jid: Set(m.to.clone()),
        kind: Set(m.kind.clone()),
        body: Set(m.body.clone()),
        extra: Set(serde_json::Value::Object(m.extra.clone()).to_string()),
        origin_id: Set(m.origin_id.clone()),
        stanza_id: Set(stanza_id),
        stanza_id_by: Set(stanza_id_by),
        state: Set(m.state.as_str().to_owned()),
        replaces: Set(replaces),
        stanza: Set(stanza),
        ..Default::default()
    };
    let written = message::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    if written == 0 {
        return Err(Error::Internal("a message insert wrote no row".into()));
    }
    Ok(())
}

async fn row(db: &impl ConnectionTrait, id: i64) -> Result<message::Model> {
    message::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal(format!("message row {id} is gone")))
}

/// Sets columns of rows matching `filter`; returns how many changed.
async fn update(
    db: &impl ConnectionTrait,
    filter: Condition,
    cols: Vec<(message::Column, sea_orm::Value)>,
) -> Result<u64> {
    let mut upd = message::Entity::update_many().filter(filter);
    for (c, v) in cols {
        upd = upd.col_expr(c, Expr::value(v));
    }
    Ok(upd.exec(db).await?.rows_affected)
}

fn by_id(id: i64) -> Condition {
    Condition::all().add(message::Column::Id.eq(id))
}

/// The message an action names ([`Apply`]): in this conversation, not itself an
/// action or a correction. In a room, the room's stanza-id first, as the XEPs
/// name room messages; then (a room's message whose stanza-id we have not learnt
/// yet, a chat) its origin-id or id.
async fn find_target(
    db: &impl ConnectionTrait,
    profile_id: i32,
    m: &NewMessage,
    id: &str,
) -> Result<Option<message::Model>> {
    let base = message::Entity::find()
        .filter(message::Column::ProfileId.eq(profile_id))
        .filter(message::Column::Peer.eq(m.peer.as_str()))
        .filter(message::Column::Replaces.is_null())
        .order_by_desc(message::Column::Id);
    if m.kind == "groupchat"
        && let Some(row) = base
            .clone()
            .filter(message::Column::StanzaIdBy.eq(m.peer.as_str()))
            .filter(message::Column::StanzaId.eq(id))
            .one(db)
            .await?
    {
        return Ok(Some(row));
    }
    Ok(base
        .filter(
            Condition::any()
                .add(message::Column::MsgId.eq(id))
                .add(message::Column::OriginId.eq(id)),
        )
        .one(db)
        .await?)
}

/// Who reacted, as reactions are filed: our own account for ours (from any
/// device, or a room's echo), a room's occupant JID, a contact's bare JID.
fn reactor(m: &NewMessage) -> String {
    if m.direction == Direction::In && m.kind == "groupchat" {
        m.from.clone()
    } else {
        bare(&m.from).to_owned()
    }
}

/// `extra` with `who`'s reactions replaced by `reactions` (XEP-0444: a sender's
/// new set replaces the old), as `extra.reactions` = {emoji: [who, …]}.
fn react(extra: &str, who: &str, reactions: &[String]) -> String {
    use serde_json::Value;
    let mut map: serde_json::Map<String, Value> = serde_json::from_str(extra).unwrap_or_default();
    let mut table = match map.remove("reactions") {
        Some(Value::Object(t)) => t,
        _ => serde_json::Map::new(),
    };
    for list in table.values_mut() {
        if let Value::Array(l) = list {
            l.retain(|w| w.as_str() != Some(who));
        }
    }
    for r in reactions {
        if let Value::Array(l) = table
            .entry(r.clone())
            .or_insert_with(|| Value::Array(vec![]))
        {
            l.push(who.into());
        }
    }
    table.retain(|_, l| l.as_array().is_some_and(|l| !l.is_empty()));
    if !table.is_empty() {
        map.insert("reactions".into(), Value::Object(table));
    }
    Value::Object(map).to_string()
}

/// `extra` with `who` among those who were shown it: `extra.displayed` =
/// {by: [who, …]} (XEP-0333).
fn displayed(extra: &str, who: &str) -> String {
    use serde_json::Value;
    let mut map: serde_json::Map<String, Value> = serde_json::from_str(extra).unwrap_or_default();
    let mut by = match map.remove("displayed") {
        Some(Value::Object(mut d)) => match d.remove("by") {
            Some(Value::Array(l)) => l,
            _ => vec![],
        },
        _ => vec![],
    };
    if !by.iter().any(|w| w.as_str() == Some(who)) {
        by.push(who.into());
    }
    map.insert("displayed".into(), serde_json::json!({ "by": by }));
    Value::Object(map).to_string()
}

/// `extra` with the text's traces gone (the earlier texts) and `key` = `value`.
fn take_back(extra: &str, key: &str, value: serde_json::Value) -> String {
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(extra).unwrap_or_default();
    map.remove("edits");
    map.insert(key.to_owned(), value);
    serde_json::Value::Object(map).to_string()
}

/// What applying `apply` makes of `target`: its new `extra`, and whether its text
/// goes; `Err`: why it is not applied.
fn applied(
    target: &message::Model,
    m: &NewMessage,
    apply: &Apply,
) -> std::result::Result<(String, bool), String> {
    let when = crate::time::rfc3339(m.timestamp);
    match apply {
        Apply::React { reactions, .. } => Ok((react(&target.extra, &reactor(m), reactions), false)),
        Apply::Displayed { .. } => Ok((displayed(&target.extra, &reactor(m)), false)),
        Apply::Retract { .. } => {
            let same_sender = if m.kind == "groupchat" {
                target.from_jid == m.from
                    || (m.direction == Direction::Out && target.direction == "out")
            } else {
                bare(&target.from_jid) == bare(&m.from)
            };
            if !same_sender {
                return Err(format!(
                    "{} may not retract a message of {}",
                    m.from, target.from_jid
                ));
            }
            let by = serde_json::json!({"timestamp": when, "by": reactor(m)});
            Ok((take_back(&target.extra, "retracted", by), true))
        }
        Apply::Moderate { by, reason, .. } => {
            // Only the room itself (its bare JID) speaks for its moderators.
            if m.kind != "groupchat" || m.from != target.peer || m.from.contains('/') {
                return Err(format!(
                    "{} is not the room of message {} and may not moderate it",
                    m.from, target.msg_id
                ));
            }
            let said = serde_json::json!({"by": by, "reason": reason, "timestamp": when});
            Ok((take_back(&target.extra, "moderated", said), true))
        }
    }
}

/// Applies a message action to its target: the action's row first (folded into
/// the target, as a correction's), then the target's change. Should the change
/// fail, the action is not acknowledged and comes again, recognised by its row;
/// so the target's change is idempotent (a reactions set, a retraction).
async fn apply_action(
    db: &impl ConnectionTrait,
    profile_id: i32,
    m: &NewMessage,
    apply: &Apply,
    stanza: Option<String>,
) -> Result<Stored> {
    let Some(target) = find_target(db, profile_id, m, apply.target()).await? else {
        return Ok(Stored::Ignored(format!(
            "no message {:?} in the conversation with {}",
            apply.target(),
            m.peer
        )));
    };
    let (extra, text_goes) = match applied(&target, m, apply) {
        Ok(change) => change,
        Err(why) => return Ok(Stored::Ignored(why)),
    };
    insert(db, profile_id, m, Some(target.msg_id.clone()), stanza).await?;
    let mut cols = vec![(message::Column::Extra, extra.into())];
    if text_goes {
        cols.push((message::Column::Body, String::new().into()));
        // The corrections folded into it carry its earlier texts: they go too.
        update(
            db,
            Condition::all()
                .add(message::Column::ProfileId.eq(profile_id))
                .add(message::Column::Peer.eq(target.peer.as_str()))
                .add(message::Column::Replaces.eq(target.msg_id.as_str())),
            vec![(message::Column::Body, String::new().into())],
        )
        .await?;
    }
    update(db, by_id(target.id), cols).await?;
    Ok(Stored::Applied {
        action: view_new(m),
        target: Box::new(view(row(db, target.id).await?)),
    })
}

/// Stores `m` (with `stanza`: into the outbox): a copy is recognised, a correction
/// applied; else one insert.
async fn store_one(
    db: &impl ConnectionTrait,
    profile_id: i32,
    m: &NewMessage,
    stanza: Option<String>,
) -> Result<Stored> {
    if let Some(dup) = find_duplicate(db, profile_id, m).await? {
        // The archive's id, learnt late (our own message echoed by a room, a live
        // message seen again in the archive): kept, so the archive is recognised.
        if dup.stanza_id.is_none()
            && let Some((id, by)) = &m.stanza_id
        {
            update(
                db,
                by_id(dup.id),
                vec![
                    (message::Column::StanzaId, id.clone().into()),
                    (message::Column::StanzaIdBy, by.clone().into()),
                ],
            )
            .await?;
            return Ok(Stored::Duplicate(view(row(db, dup.id).await?)));
        }
        return Ok(Stored::Duplicate(view(dup)));
    }
    if let Some(apply) = &m.apply {
        return apply_action(db, profile_id, m, apply, stanza).await;
    }
    if let Some(target) = &m.replaces
        && let Some(old) = find_corrected(db, profile_id, m, target).await?
    {
        // The correction's row first: should the update then fail, the message
        // is not acknowledged and comes again, and is recognised by that row.
        insert(db, profile_id, m, Some(old.msg_id.clone()), stanza).await?;
        let mut extra: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&old.extra).unwrap_or_default();
        let edits = extra
            .entry("edits")
            .or_insert_with(|| serde_json::Value::Array(vec![]));
        if let serde_json::Value::Array(list) = edits {
            list.push(serde_json::json!({
                "body": old.body,
                "timestamp": crate::time::rfc3339(old.timestamp),
            }));
        }
        extra.insert("corrected".into(), crate::time::rfc3339(m.timestamp).into());
        update(
            db,
            by_id(old.id),
            vec![
                (message::Column::Body, m.body.clone().into()),
                (
                    message::Column::Extra,
                    serde_json::Value::Object(extra).to_string().into(),
                ),
            ],
        )
        .await?;
        return Ok(Stored::Corrected {
            correction: view_new(m),
            corrected: Box::new(view(row(db, old.id).await?)),
        });
    }
    insert(db, profile_id, m, None, stanza).await?;
    Ok(Stored::New(view_new(m)))
}

impl History {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db, cluster: None }
    }

    /// A history whose writes check this daemon's lease on their profile first, in
    /// their transaction: a daemon that lost a profile writes nothing for it.
    pub fn fenced(db: DatabaseConnection, cluster: Option<Arc<Cluster>>) -> Self {
        Self { db, cluster }
    }

    /// Stores a message (see [`History::store`]) after the fence, in one
    /// transaction when there is a fence.
    async fn store_fenced(
        &self,
        profile_id: i32,
        m: &NewMessage,
        stanza: Option<String>,
    ) -> Result<Stored> {
        let Some(cluster) = &self.cluster else {
            return store_one(&self.db, profile_id, m, stanza).await;
        };
        let txn = crate::db::begin_write(&self.db, "storing a message", "").await?;
        cluster.check(&txn, profile_id).await?;
        let stored = store_one(&txn, profile_id, m, stanza).await?;
        txn.commit().await?;
        Ok(stored)
    }

    /// The fence alone, for the outbox's writes: each is one statement, and a lease
    /// is only ever taken from a daemon whose heartbeat stopped a lease ago.
    async fn fence(&self, profile_id: i32) -> Result<()> {
        match &self.cluster {
            Some(c) => c.check(&self.db, profile_id).await,
            None => Ok(()),
        }
    }

    /// Stores a message, unless it is one seen before; a correction also updates the
    /// message it corrects.
    pub async fn store(&self, profile_id: i32, m: NewMessage) -> Result<Stored> {
        self.store_fenced(profile_id, &m, None).await
    }

    /// [`History::store`], waiting while the database server cannot be reached (a
    /// PostgreSQL restart: `db::is_unreachable`) for up to `patience`, asking again
    /// after 0.25 s, then twice as long each time up to 4 s. Other failures are
    /// returned at once.
    pub async fn store_waiting(
        &self,
        profile_id: i32,
        m: NewMessage,
        patience: std::time::Duration,
    ) -> Result<Stored> {
        let start = tokio::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(250);
        loop {
            match self.store_fenced(profile_id, &m, None).await {
                Err(Error::Storage(e))
                    if crate::db::is_unreachable(&e) && start.elapsed() + pause < patience =>
                {
                    tracing::warn!(profile_id, error = %e, ?pause, "the database cannot be reached; waiting for it to store a message");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(4));
                }
                other => return other,
            }
        }
    }

    /// Stores a message to send with its stanza: it is in the outbox. Returns it,
    /// and the message it corrects as it is now, if it is a correction we applied.
    pub async fn enqueue(
        &self,
        profile_id: i32,
        m: NewMessage,
        stanza: String,
    ) -> Result<(HistoryMessage, Option<HistoryMessage>)> {
        match self.store_fenced(profile_id, &m, Some(stanza)).await? {
            Stored::New(message) => Ok((message, None)),
            Stored::Corrected {
                correction,
                corrected,
            } => Ok((correction, Some(*corrected))),
            Stored::Applied { action, target } => Ok((action, Some(*target))),
            Stored::Ignored(why) => Err(Error::bad_argument("id", why)),
            Stored::Duplicate(_) => Err(Error::bad_argument(
                "id",
                format!("a message with id {:?} is stored already", m.msg_id),
            )),
        }
    }

    /// The outbox's rows of this profile, oldest first.
    fn outbox_rows(profile_id: i32) -> sea_orm::Select<message::Entity> {
        message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::Stanza.is_not_null())
            .order_by_asc(message::Column::Id)
    }

    /// The next outbox entries (oldest first), marked `sent`: the caller writes them
    /// to the stream now. Entries sent before and not confirmed come again; one
    /// cancelled meanwhile does not.
    pub async fn claim_outbox(&self, profile_id: i32, limit: u64) -> Result<Vec<Outgoing>> {
        self.fence(profile_id).await?;
        let candidates: Vec<i64> = Self::outbox_rows(profile_id)
            .select_only()
            .column(message::Column::Id)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if candidates.is_empty() {
            return Ok(vec![]);
        }
        update(
            &self.db,
            Condition::all()
                .add(message::Column::Id.is_in(candidates.clone()))
                .add(message::Column::Stanza.is_not_null()),
            vec![(message::Column::State, MessageState::Sent.as_str().into())],
        )
        .await?;
        // What is `sent` with a stanza now is ours to send: a row cancelled between
        // the two statements lost its stanza and is not.
        let rows: Vec<(i64, String, Option<String>)> = message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .column(message::Column::MsgId)
            .column(message::Column::Stanza)
            .filter(message::Column::Id.is_in(candidates))
            .filter(message::Column::State.eq(MessageState::Sent.as_str()))
            .filter(message::Column::Stanza.is_not_null())
            .order_by_asc(message::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(row, msg_id, stanza)| Outgoing {
                row,
                msg_id,
                stanza: stanza.unwrap_or_default(),
            })
            .collect())
    }

    /// The server confirmed these: out of the outbox, `acked`. Returns them as they
    /// are now.
    pub async fn confirm_sent(&self, rows: &[i64]) -> Result<Vec<HistoryMessage>> {
        update(
            &self.db,
            Condition::all()
                .add(message::Column::Id.is_in(rows.to_vec()))
                .add(message::Column::State.eq(MessageState::Sent.as_str())),
            vec![
                (message::Column::State, MessageState::Acked.as_str().into()),
                (message::Column::Stanza, Option::<String>::None.into()),
            ],
        )
        .await?;
        let done = message::Entity::find()
            .filter(message::Column::Id.is_in(rows.to_vec()))
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await?;
        Ok(done.into_iter().map(view).collect())
    }

    /// The outbox, oldest first.
    pub async fn outbox(&self, profile_id: i32) -> Result<Vec<HistoryMessage>> {
        let rows = Self::outbox_rows(profile_id).all(&self.db).await?;
        Ok(rows.into_iter().map(view).collect())
    }

    /// Takes a message out of the outbox before it goes out. Refused once it has
    /// been written to the stream (it may be at the server already).
    pub async fn cancel(&self, profile_id: i32, msg_id: &str) -> Result<HistoryMessage> {
        let found = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::MsgId.eq(msg_id))
            .filter(message::Column::Direction.eq(Direction::Out.as_str()))
            .order_by_desc(message::Column::Id)
            .one(&self.db)
            .await?;
        let Some(m) = found else {
            return Err(Error::UnknownMessage(msg_id.to_owned()));
        };
        // Only while still queued: the check and the change are one statement.
        let changed = update(
            &self.db,
            by_id(m.id).add(message::Column::State.eq(MessageState::Queued.as_str())),
            vec![
                (
                    message::Column::State,
                    MessageState::Cancelled.as_str().into(),
                ),
                (message::Column::Stanza, Option::<String>::None.into()),
            ],
        )
        .await?;
        let now = row(&self.db, m.id).await?;
        if changed == 0 && now.state != MessageState::Cancelled.as_str() {
            return Err(Error::bad_argument(
                "id",
                format!(
                    "message {msg_id:?} is {} already: it may have reached the server, \
                     it can't be taken back",
                    now.state
                ),
            ));
        }
        Ok(view(now))
    }

    /// The timestamp of the newest message of a conversation.
    pub async fn latest(
        &self,
        profile_id: i32,
        peer: &str,
        within: std::ops::Range<i64>,
    ) -> Result<Option<i64>> {
        Ok(message::Entity::find()
            .select_only()
            .column(message::Column::Timestamp)
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::Peer.eq(peer))
            .filter(message::Column::Timestamp.gte(within.start))
            .filter(message::Column::Timestamp.lt(within.end))
            .order_by_desc(message::Column::Timestamp)
            .into_tuple::<i64>()
            .one(&self.db)
            .await?)
    }

    /// Marks our message `msg_id` to one of `peers` as sent back with `error`;
    /// returns it as it is now, `None` when we have no such message.
    pub async fn mark_failed(
        &self,
        profile_id: i32,
        peers: &[String],
        msg_id: &str,
        error: &perch_plugin_api::StanzaError,
    ) -> Result<Option<HistoryMessage>> {
        let Some(m) = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::Peer.is_in(peers.to_vec()))
            .filter(message::Column::MsgId.eq(msg_id))
            .filter(message::Column::Direction.eq(Direction::Out.as_str()))
            .order_by_desc(message::Column::Id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let mut extra = with_key(
            &m.extra,
            "error",
            serde_json::json!({"condition": error.condition, "text": error.text}),
        );
        // A room refusing a message because we are not in it (yet): it goes again
        // once we are (`held_for_room`, `requeue`).
        if m.kind == "groupchat" && error.condition == "not-acceptable" {
            extra = with_key(&extra, RESEND_ON_JOIN, true.into());
        }
        update(
            &self.db,
            by_id(m.id),
            vec![
                (message::Column::State, MessageState::Failed.as_str().into()),
                (message::Column::Stanza, Option::<String>::None.into()),
                (message::Column::Extra, extra.into()),
            ],
        )
        .await?;
        Ok(Some(view(row(&self.db, m.id).await?)))
    }

    /// Our messages to `room` that it refused because we were not in it, oldest
    /// first: to send again now that we are.
    pub async fn held_for_room(&self, profile_id: i32, room: &str) -> Result<Vec<HistoryMessage>> {
        let rows = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::Peer.eq(room))
            .filter(message::Column::Direction.eq(Direction::Out.as_str()))
            .filter(message::Column::State.eq(MessageState::Failed.as_str()))
            .filter(message::Column::Extra.contains(RESEND_ON_JOIN))
            .order_by_asc(message::Column::Id)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(view)
            .filter(|m| m.extra.get(RESEND_ON_JOIN) == Some(&serde_json::Value::Bool(true)))
            .collect())
    }

    /// Puts a held message back in the outbox with `stanza`, its error gone.
    pub async fn requeue(
        &self,
        profile_id: i32,
        msg_id: &str,
        stanza: String,
    ) -> Result<Option<HistoryMessage>> {
        let Some(m) = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::MsgId.eq(msg_id))
            .filter(message::Column::Direction.eq(Direction::Out.as_str()))
            .filter(message::Column::State.eq(MessageState::Failed.as_str()))
            .order_by_desc(message::Column::Id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let mut extra: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&m.extra).unwrap_or_default();
        extra.remove("error");
        extra.remove(RESEND_ON_JOIN);
        update(
            &self.db,
            by_id(m.id),
            vec![
                (message::Column::State, MessageState::Queued.as_str().into()),
                (message::Column::Stanza, Some(stanza).into()),
                (
                    message::Column::Extra,
                    serde_json::Value::Object(extra).to_string().into(),
                ),
            ],
        )
        .await?;
        Ok(Some(view(row(&self.db, m.id).await?)))
    }

    /// The newest message of the conversation with `peer` whose id, origin-id or
    /// stanza-id is `id`, not itself folded into another (a correction, an action).
    pub async fn find(
        &self,
        profile_id: i32,
        peer: &str,
        id: &str,
    ) -> Result<Option<HistoryMessage>> {
        let found = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::Peer.eq(peer))
            .filter(message::Column::Replaces.is_null())
            .filter(
                Condition::any()
                    .add(message::Column::MsgId.eq(id))
                    .add(message::Column::OriginId.eq(id))
                    .add(message::Column::StanzaId.eq(id)),
            )
            .order_by_desc(message::Column::Id)
            .one(&self.db)
            .await?;
        Ok(found.map(view))
    }

    /// Unread counts, for conversation `with` or every one of the profile: the
    /// incoming listed messages newer (by timestamp: a message caught up from an
    /// archive later still sorts where it belongs) than both the message `read`
    /// names for the conversation and our own newest message (writing in a
    /// conversation reads it).
    pub async fn unread(
        &self,
        profile_id: i32,
        with: Option<&str>,
        read: &std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<perch_plugin_api::ConversationCount>> {
        let peers: Vec<String> = match with {
            Some(w) => vec![w.to_owned()],
            None => {
                message::Entity::find()
                    .select_only()
                    .column(message::Column::Peer)
                    .distinct()
                    .filter(message::Column::ProfileId.eq(profile_id))
                    .order_by_asc(message::Column::Peer)
                    .into_tuple::<String>()
                    .all(&self.db)
                    .await?
            }
        };
        let mut out = Vec::with_capacity(peers.len());
        for peer in peers {
            let count = self
                .count_unread(profile_id, &peer, read.get(&peer))
                .await?;
            out.push(count);
        }
        Ok(out)
    }

    async fn count_unread(
        &self,
        profile_id: i32,
        peer: &str,
        read: Option<&String>,
    ) -> Result<perch_plugin_api::ConversationCount> {
        use sea_orm::PaginatorTrait;
        let listed = || {
            message::Entity::find()
                .filter(message::Column::ProfileId.eq(profile_id))
                .filter(message::Column::Peer.eq(peer))
                .filter(message::Column::Replaces.is_null())
        };
        let ours = listed()
            .filter(message::Column::Direction.eq(Direction::Out.as_str()))
            .select_only()
            .column(message::Column::Timestamp)
            .order_by_desc(message::Column::Timestamp)
            .into_tuple::<i64>()
            .one(&self.db)
            .await?;
        let mut since = ours.unwrap_or(i64::MIN);
        if let Some(id) = read
            && let Some(r) = listed()
                .filter(
                    Condition::any()
                        .add(message::Column::MsgId.eq(id.as_str()))
                        .add(message::Column::OriginId.eq(id.as_str()))
                        .add(message::Column::StanzaId.eq(id.as_str())),
                )
                .order_by_desc(message::Column::Id)
                .one(&self.db)
                .await?
        {
            since = since.max(r.timestamp);
        }
        let unread = listed()
            .filter(message::Column::Direction.eq(Direction::In.as_str()))
            .filter(message::Column::Timestamp.gt(since))
            .count(&self.db)
            .await?;
        let newest = listed()
            .order_by_desc(message::Column::Timestamp)
            .order_by_desc(message::Column::Id)
            .one(&self.db)
            .await?
            .map(view);
        Ok(perch_plugin_api::ConversationCount {
            with: peer.to_owned(),
            unread,
            newest,
        })
    }

    /// The newest listed message (not folded into another) with history id `id`.
    pub async fn by_id(&self, profile_id: i32, id: &str) -> Result<Option<HistoryMessage>> {
        let found = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::MsgId.eq(id))
            .filter(message::Column::Replaces.is_null())
            .order_by_desc(message::Column::Id)
            .one(&self.db)
            .await?;
        Ok(found.map(view))
    }

    /// The newest id that archive `by` gave a message we stored (where catching up
    /// with that archive starts).
    pub async fn last_archive_id(&self, profile_id: i32, by: &str) -> Result<Option<String>> {
        Ok(message::Entity::find()
            .select_only()
            .column(message::Column::StanzaId)
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::StanzaIdBy.eq(by))
            .filter(message::Column::StanzaId.is_not_null())
            .order_by_desc(message::Column::Timestamp)
            .order_by_desc(message::Column::Id)
            .into_tuple::<Option<String>>()
            .one(&self.db)
            .await?
            .flatten())
    }

    /// Sets `extra[key]` of the newest stored message of this profile with stanza id
    /// `msg_id`; `None` when there is none.
    pub async fn set_extra(
        &self,
        profile_id: i32,
        msg_id: &str,
        key: &str,
        value: serde_json::Value,
    ) -> Result<Option<HistoryMessage>> {
        let Some(row) = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::MsgId.eq(msg_id))
            .order_by_desc(message::Column::Id)
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let mut row = row;
        row.extra = with_key(&row.extra, key, value);
        update(
            &self.db,
            by_id(row.id),
            vec![(message::Column::Extra, row.extra.clone().into())],
        )
        .await?;
        Ok(Some(view(row)))
    }

    /// Messages matching `q`, oldest first; applied corrections are folded into the
    /// message they corrected (not listed on their own).
    pub async fn query(&self, profile_id: i32, q: &Query) -> Result<Vec<HistoryMessage>> {
        let mut sel = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::Replaces.is_null());
        if let Some(with) = &q.with {
            match with.split_once('/') {
                Some((bare, _)) => {
                    sel = sel.filter(
                        Condition::any()
                            // A room occupant's private conversation is filed
                            // under the occupant's full JID.
                            .add(message::Column::Peer.eq(with.as_str()))
                            .add(
                                Condition::all().add(message::Column::Peer.eq(bare)).add(
                                    Condition::any()
                                        .add(message::Column::FromJid.eq(with.as_str()))
                                        .add(message::Column::ToJid.eq(with.as_str())),
                                ),
                            ),
                    );
                }
                None => sel = sel.filter(message::Column::Peer.eq(with.as_str())),
            }
        }
        if let Some(a) = q.after {
            sel = sel.filter(message::Column::Timestamp.gt(a));
        }
        if let Some(b) = q.before {
            sel = sel.filter(message::Column::Timestamp.lt(b));
        }
        sel = sel
            .order_by_desc(message::Column::Timestamp)
            .order_by_desc(message::Column::Id);
        if let Some(l) = q.limit {
            sel = sel.limit(l);
        }
        let mut rows = sel.all(&self.db).await?;
        rows.reverse();
        Ok(rows.into_iter().map(view).collect())
    }
}
