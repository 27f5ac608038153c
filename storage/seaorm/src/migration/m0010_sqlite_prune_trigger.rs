//! SQLite: a trigger that deletes a room's entries below its `first_seq`
//! when `first_seq` moves up, and erases the kept edits of the messages
//! that went (docs/contract.md §2, "Retention").
//!
//! Why: SQLite has one writer, and an append that arrives while a prune
//! holds it waits. A prune that is one `UPDATE parlor_rooms SET first_seq`
//! in autocommit, its deletes done by this trigger inside the same
//! statement, holds the writer for one call to SQLite's worker thread
//! instead of four (BEGIN, the rooms' heads, the DELETEs, COMMIT: each
//! about half a millisecond of thread wake-ups on a busy two-core machine),
//! and the rows and `first_seq` can never disagree: moving `first_seq` is
//! what prunes (docs/benchmarks.md, step 30). Postgres prunes in
//! transactions of its own (`retention::prune`), which take no single
//! writer's lock.
//!
//! A later migration that rebuilds `parlor_rooms` (create, copy, drop,
//! rename) drops this trigger with the old table, and then `first_seq`
//! would move with nothing deleted: such a migration creates it again
//! (`tests/migrations.rs` checks the schema's triggers at the end).

use sea_orm_migration::prelude::*;

use super::sqlite_only;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sqlite_only::run(
            manager,
            "CREATE TRIGGER IF NOT EXISTS parlor_rooms_prune \
             AFTER UPDATE OF first_seq ON parlor_rooms \
             WHEN NEW.first_seq > OLD.first_seq BEGIN \
             DELETE FROM parlor_entries \
             WHERE room_id = NEW.id AND seq < NEW.first_seq; \
             UPDATE parlor_entries SET body = NULL, data = NULL, redacted = 1 \
             WHERE room_id = NEW.id AND target_seq < NEW.first_seq \
             AND kind = 'edit' AND NOT redacted; \
             END",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sqlite_only::run(manager, "DROP TRIGGER IF EXISTS parlor_rooms_prune").await
    }
}
