//! Schema migrations (sea-orm-migration). [`Migrator`] runs them; the server
//! runs it at start, so a new database needs no manual step.

use sea_orm_migration::prelude::*;

mod idempotency_index;
mod m0001_rooms_and_entries;
mod m0002_cluster_seats;
mod m0003_client_id_index_order;
mod m0004_sqlite_head_trigger;
mod m0005_client_id_first;
mod m0006_owners_privacy_invites;
mod m0007_data_closing_moderation;
mod m0008_amendments_retention_read_markers;
mod m0009_webhooks;
mod m0010_sqlite_prune_trigger;
mod sqlite_only;

/// Parlor's migrations, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_rooms_and_entries::Migration),
            Box::new(m0002_cluster_seats::Migration),
            Box::new(m0003_client_id_index_order::Migration),
            Box::new(m0004_sqlite_head_trigger::Migration),
            Box::new(m0005_client_id_first::Migration),
            Box::new(m0006_owners_privacy_invites::Migration),
            Box::new(m0007_data_closing_moderation::Migration),
            Box::new(m0008_amendments_retention_read_markers::Migration),
            Box::new(m0009_webhooks::Migration),
            Box::new(m0010_sqlite_prune_trigger::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "parlor_migrations".into_iden()
    }
}
