//! Webhooks (docs/contract.md §10):
//!
//! - `parlor_webhooks (hook)`: the registered hooks, by name (their URLs).
//!   While any is registered, control changes write outbox rows and
//!   retention keeps what a hook has not delivered.
//! - `parlor_webhook_cursors (hook, room_id, seq, outbox_id, epoch)`:
//!   where each hook's delivery of each room stands (`epoch` counts the
//!   room's purges, so a delivery read before one cannot move the cursor). No foreign key: a purged room's
//!   cursors outlive it until its last outbox row is delivered.
//! - `parlor_outbox (id, event_id, room_id, after_seq, at_ms, kind,
//!   data)`: the control events that write no entry (`room.created`,
//!   `room.closed`, `room.purged`, `member.banned`). `id` is never reused
//!   (SQLite `AUTOINCREMENT`, a Postgres identity); an index on
//!   `(room_id, id)` reads one room's rows in order.
//! - `parlor_webhook_leaders (hook, node_id)`: which cluster node delivers
//!   each hook (Postgres fills it; the table exists on both, as
//!   `parlor_seats` does).

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let outbox_id = if manager.get_database_backend() == DbBackend::Postgres {
            "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
        } else {
            "id INTEGER PRIMARY KEY AUTOINCREMENT"
        };
        for sql in [
            "CREATE TABLE IF NOT EXISTS parlor_webhooks (hook TEXT PRIMARY KEY)".to_owned(),
            "CREATE TABLE IF NOT EXISTS parlor_webhook_cursors (\
               hook TEXT NOT NULL, room_id VARCHAR(64) NOT NULL, \
               seq BIGINT NOT NULL, outbox_id BIGINT NOT NULL, \
               epoch BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (hook, room_id))"
                .to_owned(),
            format!(
                "CREATE TABLE IF NOT EXISTS parlor_outbox ({outbox_id}, \
                   event_id VARCHAR(36) NOT NULL, room_id VARCHAR(64) NOT NULL, \
                   after_seq BIGINT NOT NULL, at_ms BIGINT NOT NULL, \
                   kind VARCHAR(32) NOT NULL, data TEXT NOT NULL)"
            ),
            "CREATE INDEX IF NOT EXISTS parlor_outbox_rooms ON parlor_outbox (room_id, id)"
                .to_owned(),
            "CREATE TABLE IF NOT EXISTS parlor_webhook_leaders (\
               hook TEXT PRIMARY KEY, node_id VARCHAR(64) NOT NULL)"
                .to_owned(),
        ] {
            db.execute_unprepared(&sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in [
            "parlor_webhook_leaders",
            "parlor_outbox",
            "parlor_webhook_cursors",
            "parlor_webhooks",
        ] {
            db.execute_unprepared(&format!("DROP TABLE IF EXISTS {table}"))
                .await?;
        }
        Ok(())
    }
}
