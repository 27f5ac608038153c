//! The idempotency index keyed (client_id, sender, room_id), replacing
//! (room_id, client_id, sender): the same uniqueness, cheaper to write.
//!
//! Why: an index page is written once per commit that touches it. Led by
//! the room, a commit wrote a leaf in every room it touched, as the
//! (room_id, seq) key does. Led by the client id, the ids that grow with
//! time — UUIDv7, the web chat's ids, timestamps with a counter — of every
//! room and sender land on the index's newest leaves together, and ids that
//! count per sender on a few neighbouring ones (docs/benchmarks.md,
//! step 16). Random ids cost what they cost before: a leaf each.

use sea_orm_migration::prelude::*;

use super::idempotency_index::{ParlorEntries, index, replace};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const OLD: &str = "parlor_entries_client_ids";
const NEW: &str = "parlor_entries_client_id_first";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ParlorEntries::*;
        replace(manager, index(NEW, [ClientId, Sender, RoomId]), OLD).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ParlorEntries::*;
        replace(manager, index(OLD, [RoomId, ClientId, Sender]), NEW).await
    }
}
