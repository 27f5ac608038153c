//! Messages with data, closed rooms, moderators and bans: `parlor_entries`
//! gains `data` (a message's JSON object, as text) and `reason` (why a
//! `leave` took a seat away), both NULL for the entries stored before;
//! `parlor_rooms` gains `closed` (false for them); `parlor_moderators` and
//! `parlor_bans` hold (room, user) pairs of stored rooms, like
//! `parlor_invites`; `parlor_seats` gains `taken_ms`, when a cluster seat's
//! row was taken (presence's `since` for seats other nodes hold).
//!
//! On Postgres, an index on `id COLLATE "C"` of the open rooms serves the
//! room listing, which pages in byte order whatever the database's
//! collation is (the primary key's index follows that collation, so it
//! cannot serve it).

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ParlorRooms {
    Table,
    Id,
    Closed,
}

#[derive(DeriveIden)]
enum ParlorEntries {
    Table,
    Data,
    Reason,
}

#[derive(DeriveIden)]
enum ParlorSeats {
    Table,
    TakenMs,
}

#[derive(DeriveIden)]
enum ParlorModerators {
    Table,
    RoomId,
    UserId,
}

#[derive(DeriveIden)]
enum ParlorBans {
    Table,
    RoomId,
    UserId,
    UntilMs,
    Reason,
}

/// The Postgres index of the room listing.
const LISTING_INDEX: &str = "parlor_rooms_listing";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            text_null(ParlorEntries::Data),
            string_len_null(ParlorEntries::Reason, 16),
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
        manager
            .alter_table(
                Table::alter()
                    .table(ParlorRooms::Table)
                    .add_column(boolean(ParlorRooms::Closed).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParlorModerators::Table)
                    .if_not_exists()
                    .col(string_len(ParlorModerators::RoomId, 64))
                    .col(string_len(ParlorModerators::UserId, 64))
                    .primary_key(
                        Index::create()
                            .col(ParlorModerators::RoomId)
                            .col(ParlorModerators::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ParlorModerators::Table, ParlorModerators::RoomId)
                            .to(ParlorRooms::Table, ParlorRooms::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParlorBans::Table)
                    .if_not_exists()
                    .col(string_len(ParlorBans::RoomId, 64))
                    .col(string_len(ParlorBans::UserId, 64))
                    .col(big_integer_null(ParlorBans::UntilMs))
                    .col(text_null(ParlorBans::Reason))
                    .primary_key(
                        Index::create()
                            .col(ParlorBans::RoomId)
                            .col(ParlorBans::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ParlorBans::Table, ParlorBans::RoomId)
                            .to(ParlorRooms::Table, ParlorRooms::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ParlorSeats::Table)
                    .add_column(big_integer(ParlorSeats::TakenMs).default(0))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            // The listing's WHERE says `NOT closed` in the same words, so
            // the planner can use this partial index.
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "CREATE INDEX IF NOT EXISTS {LISTING_INDEX} \
                     ON parlor_rooms (id COLLATE \"C\") WHERE NOT closed"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS {LISTING_INDEX}"))
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ParlorSeats::Table)
                    .drop_column(ParlorSeats::TakenMs)
                    .to_owned(),
            )
            .await?;
        for table in [
            ParlorBans::Table.into_iden(),
            ParlorModerators::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(ParlorRooms::Table)
                    .drop_column(ParlorRooms::Closed)
                    .to_owned(),
            )
            .await?;
        for column in [ParlorEntries::Reason, ParlorEntries::Data] {
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
