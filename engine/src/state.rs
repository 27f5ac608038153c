//! [`EngineState`]: everything one engine shares between its requests and
//! tasks, and the questions the join and append paths ask about a room
//! ("is it in memory, else in storage?", "what is its stored head?", "is
//! this user seated through another node?").
//!
//! It sits below both paths: `join.rs` and `append.rs` take an
//! `&Arc<EngineState>`, and nothing here calls back up into them.

use std::sync::Arc;

use tokio::{runtime::Handle, sync::watch};

use crate::{
    config::EngineConfig,
    error::{ErrorKind, Result},
    hooks::Hook,
    ids::{RoomId, UserId},
    limits::UserLimits,
    live_room::LiveRoom,
    ports::{Bus, Cluster, RoomPolicy, Store},
    reservations::Reservations,
    room::StoredRoom,
    room_directory::RoomDirectory,
    stats::Counters,
    store_writer::StoreWriter,
    ticket::TicketMint,
};

/// One engine's shared state (`Engine` is an `Arc` of it).
pub(crate) struct EngineState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) config: EngineConfig,
    /// Who may do what (asked through `authorization::authorize`).
    pub(crate) policy: Arc<dyn RoomPolicy>,
    /// The rooms in memory.
    pub(crate) directory: RoomDirectory,
    /// Unused tickets; a ticket leaving it frees its seat.
    pub(crate) reservations: Reservations,
    pub(crate) tickets: TicketMint,
    /// Per-user rates of sends, reservations and room creations.
    pub(crate) limits: UserLimits,
    pub(crate) counters: Arc<Counters>,
    /// Every room's appends go through it: one transaction at a time.
    pub(crate) writer: StoreWriter,
    /// Set when this engine is one node of a cluster.
    pub(crate) cluster: Option<Cluster>,
    /// The webhooks this engine delivers to.
    pub(crate) hooks: Vec<Arc<Hook>>,
    /// Ticks when something a webhook hears was stored (an append, a
    /// control change): it wakes the hooks' tasks.
    pub(crate) changes: Arc<watch::Sender<()>>,
    /// Where work started outside a task (a guard's drop, a cache eviction)
    /// is spawned.
    pub(crate) runtime: Handle,
}

impl EngineState {
    /// Wakes the webhooks' tasks: something was stored.
    pub(crate) fn stored_a_change(&self) {
        self.changes.send_replace(());
    }

    /// The stored room in memory, loading it if needed; `None` when storage
    /// has no such room (a pending room in memory is returned as it is).
    pub(crate) async fn stored_room(&self, id: &RoomId) -> Result<Option<Arc<LiveRoom>>> {
        if let Some(room) = self.directory.get(id) {
            return Ok(Some(room));
        }
        let queue = self.config.append_queue;
        Ok(self
            .directory
            .load(id, || self.store.room(id))
            .await?
            .map(|stored| {
                let room = Arc::new(LiveRoom::from_stored(stored, queue));
                self.directory.insert_if_absent(room)
            }))
    }

    /// Learns from the room's row where its log starts (the pruner tells a
    /// loaded room, but a room loaded while it pruned read the row before).
    pub(crate) async fn refresh_first_seq(&self, room: &LiveRoom) -> Result<()> {
        if let Some(stored) = self.store.room(&room.id).await? {
            room.pruned_below(stored.first_seq);
        }
        Ok(())
    }

    /// In a cluster other nodes append too: learn the stored head. (A single
    /// node appends everything itself and knows its head already.)
    pub(crate) async fn refresh_last_seq(&self, room: &LiveRoom) -> Result<()> {
        if self.cluster.is_some()
            && let Some(stored) = self.store.room(&room.id).await?
        {
            room.log.observe(stored.last_seq);
            room.pruned_below(stored.first_seq);
        }
        Ok(())
    }

    /// In a cluster another node may have changed the room (its capacity,
    /// title, a close) or purged it: read its row afresh and take it in.
    /// A single node changes rooms only itself and knows them already.
    ///
    /// Errors: `ROOM_CLOSED`, `ROOM_NOT_FOUND` (purged), storage errors.
    pub(crate) async fn refresh_facts(&self, room: &LiveRoom) -> Result<()> {
        // A pending room is not stored yet: nothing to refresh.
        if self.cluster.is_none() || room.stored.get().is_none() {
            return Ok(());
        }
        let stored = self
            .store
            .room(&room.id)
            .await?
            .ok_or(ErrorKind::RoomNotFound)?;
        room.log.observe(stored.last_seq);
        room.adopt_stored(&stored);
        if stored.closed {
            return Err(ErrorKind::RoomClosed.into());
        }
        Ok(())
    }

    /// In a cluster, a user seated through another node may send and read
    /// history here (an HTTP request lands on any node): the room, if so.
    ///
    /// Errors: `NOT_A_MEMBER` on a single node, or when no node seats
    /// `user`; storage errors as they come.
    pub(crate) async fn seated_elsewhere(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<Arc<LiveRoom>> {
        let Some(cluster) = &self.cluster else {
            return Err(ErrorKind::NotAMember.into());
        };
        if !cluster.leases.is_seated(room_id, user).await? {
            return Err(ErrorKind::NotAMember.into());
        }
        self.stored_room(room_id)
            .await?
            .ok_or_else(|| ErrorKind::NotAMember.into())
    }

    /// The room's facts: from memory when it is loaded (a pending room is
    /// not stored: `None`), else from storage. In a cluster always from
    /// storage, since another node may have changed or closed the room.
    pub(crate) async fn stored_facts(&self, id: &RoomId) -> Result<Option<StoredRoom>> {
        if let Some(room) = self.directory.get(id) {
            let ledger = room.ledger();
            if !ledger.is_retired() {
                let pending = ledger.is_pending();
                drop(ledger);
                if pending {
                    return Ok(None);
                }
                if self.cluster.is_none() {
                    return Ok(Some(room.as_stored()));
                }
            }
        }
        self.store.room(id).await
    }
}
