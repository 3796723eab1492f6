//! Message history and the outbox: the only code that touches the `message` and
//! `outbox` tables.
//!
//! What it guarantees (`doc/messaging.rst`):
//! - **Once.** A message that reaches us twice — live and as a carbon, in a room's
//!   join history and from its archive, re-sent by a sender whose acknowledgement
//!   was lost — is stored once: recognised by the id an archive gave it (XEP-0359
//!   `stanza-id`, unique per archive) or by the sender's own id (`origin-id`, within
//!   one conversation and direction).
//! - **Nothing acknowledged is lost.** A message to send is stored with its exact
//!   stanza in the outbox, in one transaction, before anyone is told it is queued;
//!   it leaves the outbox only once the server confirmed it (see `xmpp::outbox`).
//! - **Corrections keep the original.** A correction (XEP-0308) from the same sender
//!   replaces the corrected message's text; the earlier texts are kept in its
//!   `extra.edits`, and the correction's own row is folded into it in listings.
//!
//! Every write runs its statement to the end and reports its failure. An `INSERT …
//! RETURNING` read with one fetch (what sea-orm's `ActiveModel::insert` does on
//! SQLite) hands back the new row at the first step, before SQLite has committed it;
//! when the commit then fails (a full disk: `SQLITE_FULL`), the error is lost with
//! the dropped statement, and a message was reported stored that never landed
//! (measured on a full tmpfs). So writes here use plain statements and read back what
//! was written.

use perch_plugin_api::{Direction, HistoryMessage, MessageState};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use crate::db::entities::{message, outbox};
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
        corrected: HistoryMessage,
    },
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

/// Whether a write failed only because another connection was writing.
///
/// Why it matters: storing an incoming message reads (is it a duplicate?), then
/// writes, in one deferred transaction. In WAL mode such a transaction whose snapshot
/// went stale (another connection committed in between: the outbox confirming, another
/// profile's message) cannot become a writer and fails at once with SQLITE_BUSY
/// (`database is locked`, codes 5 and 517), without waiting for `busy_timeout`. Group
/// chats hit this on our own messages: the room's echo is stored while the outbox
/// confirms the original. Such a failure is worth trying again; any other is not.
fn is_busy(e: &Error) -> bool {
    matches!(e, Error::Storage(db) if db.to_string().contains("database is locked"))
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
    let Some(origin) = &m.origin_id else {
        return Ok(None);
    };
    let mut sel = message::Entity::find()
        .filter(message::Column::ProfileId.eq(profile_id))
        .filter(message::Column::Peer.eq(m.peer.as_str()))
        .filter(message::Column::OriginId.eq(origin.as_str()))
        .filter(message::Column::Direction.eq(m.direction.as_str()));
    // In a room, every occupant picks its own ids: only the same occupant's count
    // (one occupant must not be able to hide another's message by reusing its id).
    if m.kind == "groupchat" && m.direction == Direction::In {
        sel = sel.filter(message::Column::FromJid.eq(m.from.as_str()));
    }
    Ok(sel.order_by_desc(message::Column::Id).one(db).await?)
}

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

/// Inserts a row; returns its id.
async fn insert(
    db: &impl ConnectionTrait,
    profile_id: i32,
    m: &NewMessage,
    replaces: Option<String>,
) -> Result<i64> {
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
        extra: Set("{}".to_owned()),
        origin_id: Set(m.origin_id.clone()),
        stanza_id: Set(stanza_id),
        stanza_id_by: Set(stanza_id_by),
        state: Set(m.state.as_str().to_owned()),
        replaces: Set(replaces),
        ..Default::default()
    };
    let res = message::Entity::insert(row).exec_without_returning(db).await?;
    if res == 0 {
        return Err(Error::Internal("a message insert wrote no row".into()));
    }
    last_row(db, profile_id).await
}

/// The id of this profile's newest row (just inserted, inside the same transaction).
async fn last_row(db: &impl ConnectionTrait, profile_id: i32) -> Result<i64> {
    message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::ProfileId.eq(profile_id))
        .order_by_desc(message::Column::Id)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal("a stored message is not there".into()))
}

async fn row(db: &impl ConnectionTrait, id: i64) -> Result<message::Model> {
    message::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::Internal(format!("message row {id} is gone")))
}

async fn set_columns(
    db: &impl ConnectionTrait,
    id: i64,
    cols: Vec<(message::Column, sea_orm::Value)>,
) -> Result<()> {
    let mut upd = message::Entity::update_many().filter(message::Column::Id.eq(id));
    for (c, v) in cols {
        upd = upd.col_expr(c, Expr::value(v));
    }
    upd.exec(db).await?;
    Ok(())
}

/// Stores `m` (dedupe, correction, insert) inside `db` (a transaction).
async fn store_in(db: &impl ConnectionTrait, profile_id: i32, m: &NewMessage) -> Result<Stored> {
    if let Some(dup) = find_duplicate(db, profile_id, m).await? {
        // The archive's id, learnt late (our own message echoed by a room, a live
        // message seen again in the archive): kept, so the archive is recognised.
        if dup.stanza_id.is_none()
            && let Some((id, by)) = &m.stanza_id
        {
            set_columns(
                db,
                dup.id,
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
    if let Some(target) = &m.replaces
        && let Some(old) = find_corrected(db, profile_id, m, target).await?
    {
        let id = insert(db, profile_id, m, Some(old.msg_id.clone())).await?;
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
        extra.insert(
            "corrected".into(),
            crate::time::rfc3339(m.timestamp).into(),
        );
        set_columns(
            db,
            old.id,
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
            correction: view(row(db, id).await?),
            corrected: view(row(db, old.id).await?),
        });
    }
    let id = insert(db, profile_id, m, None).await?;
    Ok(Stored::New(view(row(db, id).await?)))
}

impl History {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Stores a message, unless it is one seen before; a correction also updates the
    /// message it corrects.
    pub async fn store(&self, profile_id: i32, m: NewMessage) -> Result<Stored> {
        let mut attempt = 0;
        loop {
            match self.store_once(profile_id, &m).await {
                Err(e) if is_busy(&e) && attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn store_once(&self, profile_id: i32, m: &NewMessage) -> Result<Stored> {
        let tx = self.db.begin().await?;
        let stored = store_in(&tx, profile_id, m).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Stores a message to send and puts its stanza in the outbox, in one
    /// transaction.
    pub async fn enqueue(&self, profile_id: i32, m: NewMessage, stanza: String) -> Result<Stored> {
        let tx = self.db.begin().await?;
        let stored = store_in(&tx, profile_id, &m).await?;
        if let Stored::Duplicate(_) = stored {
            {
                return Err(Error::bad_argument(
                    "id",
                    format!("a message with id {:?} is stored already", m.msg_id),
                ));
            }
        };
        let message_id = last_row(&tx, profile_id).await?;
        outbox::Entity::insert(outbox::ActiveModel {
            profile_id: Set(profile_id),
            message_id: Set(message_id),
            stanza: Set(stanza),
            ..Default::default()
        })
        .exec_without_returning(&tx)
        .await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// The next outbox entries (oldest first), marked `sent`: the caller writes them
    /// to the stream now. Entries sent before and not confirmed come again.
    pub async fn claim_outbox(&self, profile_id: i32, limit: u64) -> Result<Vec<Outgoing>> {
        let tx = self.db.begin().await?;
        let entries = outbox::Entity::find()
            .filter(outbox::Column::ProfileId.eq(profile_id))
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(&tx)
            .await?;
        if entries.is_empty() {
            return Ok(vec![]);
        }
        let rows: Vec<i64> = entries.iter().map(|e| e.message_id).collect();
        let ids: Vec<(i64, String)> = message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .column(message::Column::MsgId)
            .filter(message::Column::Id.is_in(rows.clone()))
            .into_tuple()
            .all(&tx)
            .await?;
        message::Entity::update_many()
            .col_expr(
                message::Column::State,
                Expr::value(MessageState::Sent.as_str()),
            )
            .filter(message::Column::Id.is_in(rows))
            .exec(&tx)
            .await?;
        tx.commit().await?;
        let ids: std::collections::HashMap<i64, String> = ids.into_iter().collect();
        Ok(entries
            .into_iter()
            .map(|e| Outgoing {
                msg_id: ids.get(&e.message_id).cloned().unwrap_or_default(),
                row: e.message_id,
                stanza: e.stanza,
            })
            .collect())
    }

    /// The server confirmed these: out of the outbox, `acked`. Returns them as they
    /// are now.
    pub async fn confirm_sent(&self, rows: &[i64]) -> Result<Vec<HistoryMessage>> {
        let tx = self.db.begin().await?;
        outbox::Entity::delete_many()
            .filter(outbox::Column::MessageId.is_in(rows.to_vec()))
            .exec(&tx)
            .await?;
        message::Entity::update_many()
            .col_expr(
                message::Column::State,
                Expr::value(MessageState::Acked.as_str()),
            )
            .filter(message::Column::Id.is_in(rows.to_vec()))
            .filter(message::Column::State.eq(MessageState::Sent.as_str()))
            .exec(&tx)
            .await?;
        let done = message::Entity::find()
            .filter(message::Column::Id.is_in(rows.to_vec()))
            .order_by_asc(message::Column::Id)
            .all(&tx)
            .await?;
        tx.commit().await?;
        Ok(done.into_iter().map(view).collect())
    }

    /// Whether this profile has anything in its outbox.
    pub async fn outbox_pending(&self, profile_id: i32) -> Result<bool> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::ProfileId.eq(profile_id))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// The outbox, oldest first.
    pub async fn outbox(&self, profile_id: i32) -> Result<Vec<HistoryMessage>> {
        let rows: Vec<i64> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::MessageId)
            .filter(outbox::Column::ProfileId.eq(profile_id))
            .order_by_asc(outbox::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut found = message::Entity::find()
            .filter(message::Column::Id.is_in(rows.clone()))
            .all(&self.db)
            .await?;
        found.sort_by_key(|m| rows.iter().position(|r| *r == m.id));
        Ok(found.into_iter().map(view).collect())
    }

    /// Takes a message out of the outbox before it goes out. Refused once it has
    /// been written to the stream (it may be at the server already).
    pub async fn cancel(&self, profile_id: i32, msg_id: &str) -> Result<HistoryMessage> {
        let tx = self.db.begin().await?;
        let found = message::Entity::find()
            .filter(message::Column::ProfileId.eq(profile_id))
            .filter(message::Column::MsgId.eq(msg_id))
            .filter(message::Column::Direction.eq(Direction::Out.as_str()))
            .order_by_desc(message::Column::Id)
            .one(&tx)
            .await?;
        let Some(m) = found else {
            return Err(Error::UnknownMessage(msg_id.to_owned()));
        };
        match MessageState::parse(&m.state) {
            Some(MessageState::Queued) => {}
            Some(MessageState::Cancelled) => return Ok(view(m)),
            _ => {
                return Err(Error::bad_argument(
                    "id",
                    format!(
                        "message {msg_id:?} is {} already: it may have reached the server, \
                         it can't be taken back",
                        m.state
                    ),
                ));
            }
        }
        outbox::Entity::delete_many()
            .filter(outbox::Column::MessageId.eq(m.id))
            .exec(&tx)
            .await?;
        set_columns(
            &tx,
            m.id,
            vec![(
                message::Column::State,
                MessageState::Cancelled.as_str().into(),
            )],
        )
        .await?;
        let now = row(&tx, m.id).await?;
        tx.commit().await?;
        Ok(view(now))
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
        let mut extra: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.extra).unwrap_or_default();
        extra.insert(key.to_owned(), value);
        let mut row = row;
        row.extra = serde_json::Value::Object(extra).to_string();
        set_columns(
            &self.db,
            row.id,
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
                                Condition::all()
                                    .add(message::Column::Peer.eq(bare))
                                    .add(
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
