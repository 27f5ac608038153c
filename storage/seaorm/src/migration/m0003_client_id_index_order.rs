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

use super::idempotency_index::{ParlorEntries, index, replace};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const OLD: &str = "parlor_entries_idempotency";
const NEW: &str = "parlor_entries_client_ids";

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
