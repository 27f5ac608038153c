//! Rooms, entries and open members.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ParlorRooms {
    Table,
    Id,
    Capacity,
    Title,
    LastSeq,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ParlorEntries {
    Table,
    RoomId,
    Seq,
    Id,
    Kind,
    Sender,
    ClientId,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ParlorMembers {
    Table,
    RoomId,
    UserId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ParlorRooms::Table)
                    .if_not_exists()
                    .col(string_len(ParlorRooms::Id, 64).primary_key())
                    .col(integer(ParlorRooms::Capacity))
                    .col(string_len_null(ParlorRooms::Title, 800))
                    .col(big_integer(ParlorRooms::LastSeq).default(0))
                    .col(big_integer(ParlorRooms::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParlorEntries::Table)
                    .if_not_exists()
                    .col(string_len(ParlorEntries::RoomId, 64))
                    .col(big_integer(ParlorEntries::Seq))
                    .col(string_len(ParlorEntries::Id, 36))
                    .col(string_len(ParlorEntries::Kind, 8))
                    .col(string_len(ParlorEntries::Sender, 64))
                    .col(string_len_null(ParlorEntries::ClientId, 256))
                    .col(text_null(ParlorEntries::Body))
                    .col(big_integer(ParlorEntries::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ParlorEntries::RoomId)
                            .col(ParlorEntries::Seq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ParlorEntries::Table, ParlorEntries::RoomId)
                            .to(ParlorRooms::Table, ParlorRooms::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("parlor_entries_idempotency")
                    .table(ParlorEntries::Table)
                    .col(ParlorEntries::RoomId)
                    .col(ParlorEntries::Sender)
                    .col(ParlorEntries::ClientId)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParlorMembers::Table)
                    .if_not_exists()
                    .col(string_len(ParlorMembers::RoomId, 64))
                    .col(string_len(ParlorMembers::UserId, 64))
                    .primary_key(
                        Index::create()
                            .col(ParlorMembers::RoomId)
                            .col(ParlorMembers::UserId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ParlorMembers::Table.into_iden(),
            ParlorEntries::Table.into_iden(),
            ParlorRooms::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
