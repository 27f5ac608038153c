//! Building blocks for the migrations that reorder the idempotency index:
//! the uniqueness of (room_id, sender, client_id) stays the same; only the
//! order of its columns, which decides how many pages a commit writes,
//! changes (docs/benchmarks.md, steps 14 and 16).

use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
pub(super) enum ParlorEntries {
    Table,
    RoomId,
    Sender,
    ClientId,
}

/// The unique index `name` over `columns`, in that order.
pub(super) fn index(name: &str, columns: [ParlorEntries; 3]) -> IndexCreateStatement {
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
pub(super) async fn replace(
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
