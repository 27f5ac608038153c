//! The one step of a migration that exists only on SQLite (its triggers,
//! `m0004` and `m0010`): Postgres appends and prunes in transactions that
//! do the same work themselves.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// Runs `sql` on SQLite; nothing on Postgres.
pub(super) async fn run(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Sqlite {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}
