//! The idempotency index keyed (room_id, client_id, sender), replacing
//! (room_id, sender, client_id): the same uniqueness, cheaper to write.
//!
//! Why: an index page is written once per commit that touches it. Ordered
//! by sender, every sender of a batch lands on a leaf of its own, so a commit
//! wrote about one index page per message. Ordered by client id, the senders
//! of a room whose ids grow together — counters, time-ordered ids such as
//! UUIDv7 — share the room's newest leaves (docs/benchmarks.md, step 14).
//! Random ids cost what they cost before.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ParlorEntries {
    Table,
    RoomId,
    Sender,
    ClientId,
}

const OLD: &str = "parlor_entries_idempotency";
const NEW: &str = "parlor_entries_client_ids";

fn index(name: &str, columns: [ParlorEntries; 3]) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(name)
        .table(ParlorEntries::Table)
        .unique()
        .if_not_exists();
    for column in columns {
        index.col(column);
    }
    index.to_owned()
}

/// Builds `create`, then drops `drop`: sends stay unique at every step.
async fn replace(
    manager: &SchemaManager<'_>,
    create: IndexCreateStatement,
    drop: &str,
) -> Result<(), DbErr> {
    manager.create_index(create).await?;
    manager
        .drop_index(
            Index::drop()
                .name(drop)
                .table(ParlorEntries::Table)
                .to_owned(),
        )
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ParlorEntries::*;
        replace(manager, index(NEW, [RoomId, ClientId, Sender]), OLD).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ParlorEntries::*;
        replace(manager, index(OLD, [RoomId, Sender, ClientId]), NEW).await
    }
}
