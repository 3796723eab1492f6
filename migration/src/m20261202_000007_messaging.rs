//! Messaging a person can rely on: ids that recognise a message seen twice, the
//! outbox, corrections.
//!
//! - `origin_id` (the sender's XEP-0359 id) and `stanza_id` / `stanza_id_by` (the id an
//!   archive gave it, and whose archive: our account's bare JID, or a room's): the
//!   same message reaching us live, as a carbon, in a room's join history and from
//!   an archive is stored once. One archive never gives two messages the same id,
//!   hence the unique index.
//! - `state`: `received`, or where an outgoing message is on its way (`queued`,
//!   `sent`, `acked`, `cancelled`). Rows written before this migration were
//!   received or confirmed sent.
//! - `replaces`: on a correction (XEP-0308) that was applied, the id of the message
//!   it corrected; such rows are folded into that message in history listings.
//! - `stanza`: on a message still in the outbox (`queued` or `sent`), the exact
//!   stanza the send triggers produced, so a restart re-sends what would have gone
//!   out, with the same ids; cleared once the server confirmed it. The outbox is
//!   these rows in `id` order. In the message row itself, not a table of its own,
//!   so that queueing a message is one statement: a multi-statement transaction
//!   that fails on a full disk can leave its pooled connection inside a transaction
//!   that never ends (see `doc/reliability.rst`, "Full disk").

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = r#"
ALTER TABLE message ADD COLUMN origin_id TEXT;
ALTER TABLE message ADD COLUMN stanza_id TEXT;
ALTER TABLE message ADD COLUMN stanza_id_by TEXT;
ALTER TABLE message ADD COLUMN state TEXT NOT NULL DEFAULT 'received';
ALTER TABLE message ADD COLUMN replaces TEXT;
ALTER TABLE message ADD COLUMN stanza TEXT;
UPDATE message SET state = 'acked' WHERE direction = 'out';
CREATE UNIQUE INDEX ux_message_archive_id ON message (profile_id, stanza_id_by, stanza_id)
    WHERE stanza_id IS NOT NULL;
-- Where catching up starts (the newest id of an archive), at every connection:
-- read from the index's end, not by sorting the archive's rows.
CREATE INDEX ix_message_archive_ts ON message (profile_id, stanza_id_by, timestamp)
    WHERE stanza_id IS NOT NULL;
CREATE INDEX ix_message_origin_id ON message (profile_id, peer, origin_id)
    WHERE origin_id IS NOT NULL;
CREATE INDEX ix_message_msg_id ON message (profile_id, peer, msg_id);
CREATE INDEX ix_message_outbox ON message (profile_id, id) WHERE stanza IS NOT NULL;
"#;

const DOWN: &str = r#"
DROP INDEX IF EXISTS ix_message_outbox;
DROP INDEX IF EXISTS ix_message_msg_id;
DROP INDEX IF EXISTS ix_message_origin_id;
DROP INDEX IF EXISTS ix_message_archive_ts;
DROP INDEX IF EXISTS ux_message_archive_id;
ALTER TABLE message DROP COLUMN stanza;
ALTER TABLE message DROP COLUMN replaces;
ALTER TABLE message DROP COLUMN state;
ALTER TABLE message DROP COLUMN stanza_id_by;
ALTER TABLE message DROP COLUMN stanza_id;
ALTER TABLE message DROP COLUMN origin_id;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(DOWN).await?;
        Ok(())
    }
}
