//! Edits, redactions, retention and read markers (docs/contract.md §2):
//!
//! - `parlor_entries` gains `target_seq` (the entry an `edit` or a
//!   `redaction` changes), `edited_at` (when a `text` entry was last
//!   edited, milliseconds since the epoch like `created_at`) and `redacted`
//!   (false for the entries stored before). A redaction's note goes in the
//!   existing `reason` column, as a `leave`'s reason does: the kind says
//!   which. On Postgres `reason` becomes `text` (a note has up to 500
//!   characters) and `kind` `varchar(16)` (`redaction` has nine).
//! - A partial index on (room_id, target_seq) of the amendments finds a
//!   message's edits and redactions; the entries that amend nothing (almost
//!   all) are not in it, so an append of texts writes no page of it.
//! - `parlor_rooms` gains `first_seq` (1: nothing was pruned yet) and the
//!   room's own retention: `own_retention` (false: the server's applies),
//!   `retention_max_entries` and `retention_max_age_ms` (NULL: no such
//!   bound). A partial index lists the rooms with a retention of their own.
//! - `parlor_read_markers` holds each (room, user)'s last-read seq, rows of
//!   stored rooms like `parlor_invites`.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ParlorRooms {
    Table,
    Id,
    FirstSeq,
    OwnRetention,
    RetentionMaxEntries,
    RetentionMaxAgeMs,
}

#[derive(DeriveIden)]
enum ParlorEntries {
    Table,
    TargetSeq,
    EditedAt,
    Redacted,
}

#[derive(DeriveIden)]
enum ParlorReadMarkers {
    Table,
    RoomId,
    UserId,
    Seq,
}

/// The amendments of each message, by (room, target).
const TARGETS_INDEX: &str = "parlor_entries_targets";
/// The rooms with a retention of their own.
const RETAINED_INDEX: &str = "parlor_rooms_own_retention";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let postgres = manager.get_database_backend() == DbBackend::Postgres;
        // SQLite alters one column per statement.
        for column in [
            big_integer_null(ParlorEntries::TargetSeq),
            big_integer_null(ParlorEntries::EditedAt),
            boolean(ParlorEntries::Redacted).default(false).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ParlorEntries::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            big_integer(ParlorRooms::FirstSeq).default(1).to_owned(),
            boolean(ParlorRooms::OwnRetention).default(false).to_owned(),
            big_integer_null(ParlorRooms::RetentionMaxEntries),
            big_integer_null(ParlorRooms::RetentionMaxAgeMs),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ParlorRooms::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        if postgres {
            // Both are binary-coercible widenings: no table rewrite.
            db.execute_unprepared(
                "ALTER TABLE parlor_entries ALTER COLUMN reason TYPE text, \
                 ALTER COLUMN kind TYPE varchar(16)",
            )
            .await?;
        }
        // Partial indexes (both databases have them); the queries that use
        // them say `target_seq = …` and `own_retention` in their WHERE.
        db.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS {TARGETS_INDEX} \
             ON parlor_entries (room_id, target_seq) WHERE target_seq IS NOT NULL"
        ))
        .await?;
        db.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS {RETAINED_INDEX} \
             ON parlor_rooms (id) WHERE own_retention"
        ))
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParlorReadMarkers::Table)
                    .if_not_exists()
                    .col(string_len(ParlorReadMarkers::RoomId, 64))
                    .col(string_len(ParlorReadMarkers::UserId, 64))
                    .col(big_integer(ParlorReadMarkers::Seq))
                    .primary_key(
                        Index::create()
                            .col(ParlorReadMarkers::RoomId)
                            .col(ParlorReadMarkers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ParlorReadMarkers::Table, ParlorReadMarkers::RoomId)
                            .to(ParlorRooms::Table, ParlorRooms::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .drop_table(Table::drop().table(ParlorReadMarkers::Table).to_owned())
            .await?;
        // SQLite drops no indexed column: the indexes go first.
        for index in [RETAINED_INDEX, TARGETS_INDEX] {
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
                .await?;
        }
        // The schema before knows no `edit` or `redaction` entry (its code
        // would refuse the rows): they go, with their notes, so that the
        // old column types hold the rest. What they did to their targets
        // (a new body, an erasure) stays.
        db.execute_unprepared(
            "DELETE FROM parlor_entries WHERE kind NOT IN ('text', 'join', 'leave', 'system')",
        )
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE parlor_entries ALTER COLUMN reason TYPE varchar(16), \
                 ALTER COLUMN kind TYPE varchar(8)",
            )
            .await?;
        }
        for column in [
            ParlorRooms::RetentionMaxAgeMs,
            ParlorRooms::RetentionMaxEntries,
            ParlorRooms::OwnRetention,
            ParlorRooms::FirstSeq,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ParlorRooms::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [
            ParlorEntries::Redacted,
            ParlorEntries::EditedAt,
            ParlorEntries::TargetSeq,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ParlorEntries::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
