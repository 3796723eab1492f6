//! Message history: the only code that touches the `message` table.
//!
//! Every write runs its statement to the end and reports its failure. An `INSERT …
//! RETURNING` read with one fetch (what sea-orm's `ActiveModel::insert` does on
//! SQLite) hands back the new row at the first step, before SQLite has committed it;
//! when the commit then fails (a full disk: `SQLITE_FULL`), the error is lost with
//! the dropped statement, and a message was reported stored that never landed
//! (measured on a full tmpfs). So writes here use plain statements and build the
//! answer from what was written.

use perch_plugin_api::{Direction, HistoryMessage};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use crate::db::entities::message;
use crate::error::Result;

/// A history query (all filters optional).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Bare JID: every resource; full JID: that resource only.
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
        extra: serde_json::from_str(&m.extra).unwrap_or_default(),
    }
}

impl History {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub async fn store(&self, profile_id: i32, m: NewMessage) -> Result<HistoryMessage> {
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
            ..Default::default()
        };
        message::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await?;
        Ok(HistoryMessage {
            id: m.msg_id,
            timestamp: crate::time::rfc3339(m.timestamp),
            direction: m.direction,
            peer: m.peer,
            from: m.from,
            to: m.to,
            kind: m.kind,
            body: m.body,
            extra: Default::default(),
        })
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
        message::Entity::update_many()
            .col_expr(
                message::Column::Extra,
                sea_orm::sea_query::Expr::value(row.extra.clone()),
            )
            .filter(message::Column::Id.eq(row.id))
            .exec(&self.db)
            .await?;
        Ok(Some(view(row)))
    }

    /// Messages matching `q`, oldest first.
    pub async fn query(&self, profile_id: i32, q: &Query) -> Result<Vec<HistoryMessage>> {
        let mut sel = message::Entity::find().filter(message::Column::ProfileId.eq(profile_id));
        if let Some(with) = &q.with {
            match with.split_once('/') {
                Some((bare, _)) => {
                    sel = sel.filter(message::Column::Peer.eq(bare)).filter(
                        Condition::any()
                            .add(message::Column::FromJid.eq(with.as_str()))
                            .add(message::Column::ToJid.eq(with.as_str())),
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
