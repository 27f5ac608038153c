//! SQLite: a trigger that keeps a room's `last_seq` at its newest entry.
//!
//! Why: an append whose heads the store already knows is one INSERT in
//! autocommit (`append_sqlite::KnownHeads`), with no UPDATE of its own; the
//! trigger moves `last_seq` in the same statement, so the two can never
//! disagree. The transactional append advances `last_seq` before it inserts,
//! so there the trigger finds nothing to do. Postgres appends always move
//! `last_seq` themselves (the row lock is what orders writers across nodes).

use sea_orm_migration::prelude::*;

use super::sqlite_only;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sqlite_only::run(
            manager,
            "CREATE TRIGGER IF NOT EXISTS parlor_entries_advance_head \
             AFTER INSERT ON parlor_entries BEGIN \
             UPDATE parlor_rooms SET last_seq = NEW.seq \
             WHERE id = NEW.room_id AND last_seq < NEW.seq; \
             END",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sqlite_only::run(
            manager,
            "DROP TRIGGER IF EXISTS parlor_entries_advance_head",
        )
        .await
    }
}
