//! Room owners, private rooms and invitations: `parlor_rooms` gains
//! `owner_id` (the creator; NULL for the rooms stored before this migration)
//! and `private` (false for them), and `parlor_invites` holds the
//! (room, user) pairs a moderator invited.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ParlorRooms {
    Table,
    Id,
    OwnerId,
    Private,
}

#[derive(DeriveIden)]
enum ParlorInvites {
    Table,
    RoomId,
    UserId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(ParlorRooms::Table)
                    .add_column(string_len_null(ParlorRooms::OwnerId, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ParlorRooms::Table)
                    .add_column(boolean(ParlorRooms::Private).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParlorInvites::Table)
                    .if_not_exists()
                    .col(string_len(ParlorInvites::RoomId, 64))
                    .col(string_len(ParlorInvites::UserId, 64))
                    .primary_key(
                        Index::create()
                            .col(ParlorInvites::RoomId)
                            .col(ParlorInvites::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ParlorInvites::Table, ParlorInvites::RoomId)
                            .to(ParlorRooms::Table, ParlorRooms::Id),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ParlorInvites::Table).to_owned())
            .await?;
        for column in [ParlorRooms::Private, ParlorRooms::OwnerId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(ParlorRooms::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
