//! Cluster seats: nodes with a lease, the seats each node holds, and the
//! tickets already used (so a ticket is single-use across nodes).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ParlorNodes {
    Table,
    Id,
    ExpiresMs,
}

#[derive(DeriveIden)]
enum ParlorSeats {
    Table,
    RoomId,
    UserId,
    NodeId,
    Seat,
}

#[derive(DeriveIden)]
enum ParlorUsedTickets {
    Table,
    Key,
    ExpiresMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ParlorNodes::Table)
                    .if_not_exists()
                    .col(string_len(ParlorNodes::Id, 64).primary_key())
                    .col(big_integer(ParlorNodes::ExpiresMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParlorSeats::Table)
                    .if_not_exists()
                    .col(string_len(ParlorSeats::RoomId, 64))
                    .col(string_len(ParlorSeats::UserId, 64))
                    .col(string_len(ParlorSeats::NodeId, 64))
                    .col(big_integer(ParlorSeats::Seat))
                    .primary_key(
                        Index::create()
                            .col(ParlorSeats::RoomId)
                            .col(ParlorSeats::UserId)
                            .col(ParlorSeats::NodeId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("parlor_seats_node")
                    .table(ParlorSeats::Table)
                    .col(ParlorSeats::NodeId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ParlorUsedTickets::Table)
                    .if_not_exists()
                    .col(string_len(ParlorUsedTickets::Key, 32).primary_key())
                    .col(big_integer(ParlorUsedTickets::ExpiresMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ParlorUsedTickets::Table.into_iden(),
            ParlorSeats::Table.into_iden(),
            ParlorNodes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
