//! [`ChatEngine`], the one trait transports hold, and [`Engine`], its
//! implementation over a [`Store`] and a [`Bus`].

use std::{
    collections::BTreeMap,
    sync::{Arc, Weak},
    time::Duration,
};

use async_trait::async_trait;
use tokio::{runtime::Handle, sync::oneshot, time::Instant};

use crate::{
    config::EngineConfig,
    entry::{Entry, EntryKind, MAX_HISTORY_LIMIT, NewEntry, Seq, SeqRange, Timestamp, check_seq},
    entry_stream::EntryStream,
    error::{Error, ErrorKind, Result},
    ids::{RoomId, UserId},
    lease_keeper,
    live_room::LiveRoom,
    membership::{Joined, Membership, SeatGuard},
    pending_send::PendingSend,
    ports::{Bus, Cluster, CreateOutcome, InProcessBus, Store},
    reservations::{Hold, Reservations},
    room::{RoomInfo, RoomSpec},
    room_directory::RoomDirectory,
    room_log::{self, AppendRequest, Stored},
    seat_ledger::{Claim, Letting, Released, SeatCounts, SeatLedger},
    stats::{Counters, EngineStats, HistogramSnapshot},
    store_writer::StoreWriter,
    ticket::{TicketKey, TicketMint},
};

/// A reserved seat's ticket (phase 1 of the join).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Opaque, single-use; commit it within the ttl.
    pub ticket: String,
    /// The room.
    pub room_id: RoomId,
    /// When the reservation lapses (server wall clock).
    pub expires_at: Timestamp,
}

/// The chat engine as transports see it: object-safe, held as
/// `Arc<dyn ChatEngine>`. Every method keeps docs/contract.md §2–§3.
#[async_trait]
pub trait ChatEngine: Send + Sync + 'static {
    /// Phase 1: reserve a seat in `room` (creating it, pending, if absent and
    /// `create` is given) and get a ticket for it.
    async fn reserve(
        &self,
        user: &UserId,
        room: &RoomId,
        create: Option<RoomSpec>,
    ) -> Result<Reservation>;

    /// Phase 2: use `ticket` as `user`'s live connection. The returned
    /// [`Membership`] streams entries after `after_seq` (or after the room's
    /// last seq) and holds the seat until it is left or dropped.
    async fn commit(
        &self,
        user: &UserId,
        ticket: &str,
        after_seq: Option<Seq>,
    ) -> Result<Membership>;

    /// Queues a text entry behind every send queued before it in the room,
    /// and returns as soon as it is queued; the [`PendingSend`] resolves once
    /// it is durable. A transport that submits a connection's sends one after
    /// another, without waiting for each to be stored, keeps their order and
    /// lets them share a commit. Waits only while the room's queue is full.
    async fn submit(
        &self,
        user: &UserId,
        room: &RoomId,
        client_id: &str,
        body: &str,
    ) -> Result<PendingSend>;

    /// Appends a text entry; returns once it is durable. Idempotent by
    /// (room, user, `client_id`).
    async fn send(
        &self,
        user: &UserId,
        room: &RoomId,
        client_id: &str,
        body: &str,
    ) -> Result<Arc<Entry>> {
        self.submit(user, room, client_id, body).await?.await
    }

    /// Leaves `room` from every connection of `user` at once: the seat is
    /// freed, a `leave` appended, unused tickets invalidated, and every entry
    /// stream of that seat ends. False when the user held no seat there.
    async fn leave(&self, user: &UserId, room: &RoomId) -> Result<bool>;

    /// A page of the room log; needs a seat in the room.
    async fn history(&self, user: &UserId, room: &RoomId, range: SeqRange) -> Result<Vec<Entry>>;

    /// The room, if it is stored (a pending room is not).
    async fn room(&self, room: &RoomId) -> Result<Option<RoomInfo>>;

    /// Counters, for tests and metrics.
    fn stats(&self) -> EngineStats;
}

/// The engine: seats, tickets and room logs over a [`Store`] and a [`Bus`].
/// Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) bus: Arc<dyn Bus>,
    pub(crate) config: EngineConfig,
    pub(crate) directory: RoomDirectory,
    pub(crate) reservations: Reservations,
    pub(crate) counters: Arc<Counters>,
    /// Every room's appends go through it: one transaction at a time.
    pub(crate) writer: StoreWriter,
    /// Set when this engine is one node of a cluster.
    pub(crate) cluster: Option<Cluster>,
    tickets: TicketMint,
    /// Where guards dropped outside a task spawn their follow-up work.
    runtime: Handle,
}

impl Engine {
    /// Starts an engine on `store` with the in-process bus.
    ///
    /// Closes the memberships a previous stop left open (appends their
    /// `leave` entries) before it takes any request. Needs a tokio runtime.
    pub async fn start(store: Arc<dyn Store>, config: EngineConfig) -> Result<Engine> {
        let bus = Arc::new(InProcessBus::new(config.live_buffer));
        Engine::start_with_bus(store, bus, config).await
    }

    /// Starts an engine on `store`, fanning out through `bus`.
    pub async fn start_with_bus(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        config: EngineConfig,
    ) -> Result<Engine> {
        close_open_members(store.as_ref()).await?;
        Ok(Engine::launch(store, bus, config, None))
    }

    /// Starts an engine as one node of a cluster: seats are rows in the
    /// shared database (`cluster.leases`), pending rooms are claimed through
    /// `cluster.claims`, entries reach other nodes through `bus`. Every node
    /// needs the same [`EngineConfig::ticket_secret`].
    ///
    /// Instead of closing every open membership at start (other nodes hold
    /// some of them), it forgets its own old seats; any node frees seats
    /// whose node stopped renewing its lease, with one `leave` each.
    pub async fn start_clustered(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        cluster: Cluster,
        config: EngineConfig,
    ) -> Result<Engine> {
        cluster.leases.reset_node(&cluster.node_id).await?;
        cluster
            .leases
            .renew_node(&cluster.node_id, cluster.lease_ttl)
            .await?;
        let engine = Engine::launch(store, bus, config, Some(cluster));
        tokio::spawn(lease_keeper::run(Arc::downgrade(&engine.inner)));
        Ok(engine)
    }

    fn launch(
        store: Arc<dyn Store>,
        bus: Arc<dyn Bus>,
        config: EngineConfig,
        cluster: Option<Cluster>,
    ) -> Engine {
        let counters = Arc::new(Counters::default());
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let weak = weak.clone();
            Inner {
                reservations: Reservations::new(move |hold| {
                    if let Some(inner) = weak.upgrade() {
                        inner.ticket_gone(&hold.room, &hold.user, &hold.key);
                    }
                }),
                tickets: TicketMint::new(config.ticket_secret.as_deref()),
                writer: StoreWriter::start(
                    Arc::clone(&store),
                    config.append_batch_max,
                    config.append_queue,
                    Arc::clone(&counters),
                ),
                store,
                bus,
                config,
                cluster,
                directory: RoomDirectory::default(),
                counters,
                runtime: Handle::current(),
            }
        });
        tokio::spawn(sweep_until_dropped(Arc::downgrade(&inner)));
        Engine { inner }
    }

    /// Expires due reservations now instead of at the next sweep tick.
    pub async fn run_maintenance(&self) {
        self.inner.reservations.sweep().await;
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Sizes of the append transactions so far (entries per commit).
    pub fn append_batch_sizes(&self) -> HistogramSnapshot {
        self.inner.counters.batch_sizes.snapshot()
    }

    /// Waits until no append is in flight (every queued entry is stored or
    /// failed), or `timeout` passes; true when everything settled. For a
    /// graceful shutdown: call it after the transports stopped taking sends.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.inner.counters.room_tasks.get() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

async fn sweep_until_dropped(engine: Weak<Inner>) {
    let Some(period) = engine.upgrade().map(|e| e.config.sweep_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = engine.upgrade() else {
            return;
        };
        inner.reservations.sweep().await;
    }
}

/// Appends a `leave` for every membership the last stop left open, so every
/// `join` in a log is matched once its seat is gone.
async fn close_open_members(store: &dyn Store) -> Result<()> {
    let mut by_room: BTreeMap<RoomId, Vec<NewEntry>> = BTreeMap::new();
    for (room, user) in store.open_members().await? {
        by_room
            .entry(room.clone())
            .or_default()
            .push(NewEntry::membership(room, user, EntryKind::Leave));
    }
    let mut closed = 0;
    for batch in by_room.values() {
        store.append(batch).await?;
        closed += batch.len();
    }
    if closed > 0 {
        tracing::info!(
            closed,
            rooms = by_room.len(),
            "closed memberships left open by the last stop"
        );
    }
    Ok(())
}

impl Inner {
    /// Queues `request` on `room`'s log, starting its task if idle.
    fn append(self: &Arc<Self>, room: &Arc<LiveRoom>, request: AppendRequest) {
        if room.log.push(request) {
            // Counted from the spawn, not from the task's first poll, so
            // `flush` never mistakes queued work for none.
            let task = self.counters.room_tasks.enter();
            self.runtime
                .spawn(room_log::run(Arc::clone(self), Arc::clone(room), task));
        }
    }

    /// Queues a `join` or `leave`; the receiver resolves once it is stored.
    pub(crate) fn append_membership(
        self: &Arc<Self>,
        room: &Arc<LiveRoom>,
        user: &UserId,
        kind: EntryKind,
    ) -> oneshot::Receiver<Stored> {
        let (ack, done) = oneshot::channel();
        let entry = NewEntry::membership(room.id.clone(), user.clone(), kind);
        self.append(
            room,
            AppendRequest {
                entry,
                ack: Some(ack),
                permit: None,
            },
        );
        done
    }

    /// One live connection of `user` lets go of its seat. Returns the ack of
    /// the `leave` entry when one is appended.
    pub(crate) fn release(
        self: &Arc<Self>,
        room: &Arc<LiveRoom>,
        user: &UserId,
        epoch: u64,
        how: Letting,
    ) -> Option<oneshot::Receiver<Stored>> {
        let (released, ack) = {
            let mut ledger = room.ledger();
            let released = ledger.release(user, epoch, how);
            // Queued under the ledger lock, so the log orders it with the
            // seat decisions around it.
            let ack = released
                .append_leave
                .then(|| self.append_membership(room, user, EntryKind::Leave));
            (released, ack)
        };
        self.after_release(room, user, released);
        ack
    }

    /// A ticket left the reservation cache.
    fn ticket_gone(self: &Arc<Self>, room: &Arc<LiveRoom>, user: &UserId, key: &TicketKey) {
        let released = {
            let mut ledger = room.ledger();
            let released = ledger.drop_ticket(user, key);
            if released.append_leave {
                drop(self.append_membership(room, user, EntryKind::Leave));
            }
            released
        };
        self.after_release(room, user, released);
    }

    fn end_grace(self: &Arc<Self>, room: &Arc<LiveRoom>, user: &UserId, id: u64) {
        let released = {
            let mut ledger = room.ledger();
            let released = ledger.end_grace(user, id);
            if released.append_leave {
                drop(self.append_membership(room, user, EntryKind::Leave));
            }
            released
        };
        self.after_release(room, user, released);
    }

    /// `user` leaves `room` from every connection; whether a seat was freed,
    /// and the ack of the `leave` entry when one is appended.
    pub(crate) fn leave_everywhere(
        self: &Arc<Self>,
        room: &Arc<LiveRoom>,
        user: &UserId,
    ) -> (bool, Option<oneshot::Receiver<Stored>>) {
        let (released, ack) = {
            let mut ledger = room.ledger();
            let released = ledger.leave_everywhere(user);
            let ack = released
                .append_leave
                .then(|| self.append_membership(room, user, EntryKind::Leave));
            (released, ack)
        };
        let freed = released.freed;
        self.after_release(room, user, released);
        (freed, ack)
    }

    /// The follow-ups of a release that need no ledger lock.
    fn after_release(self: &Arc<Self>, room: &Arc<LiveRoom>, user: &UserId, released: Released) {
        if let Some(id) = released.grace {
            let engine = Arc::downgrade(self);
            let (room, user) = (Arc::clone(room), user.clone());
            let grace = self.config.reconnect_grace;
            let timer = self.counters.grace_timers.enter();
            self.runtime.spawn(async move {
                let _timer = timer;
                tokio::time::sleep(grace).await;
                if let Some(inner) = engine.upgrade() {
                    inner.end_grace(&room, &user, id);
                }
            });
        }
        if !released.invalidated.is_empty() {
            // Already gone from the ledger; this only empties the cache early.
            let engine = Arc::downgrade(self);
            self.runtime.spawn(async move {
                if let Some(inner) = engine.upgrade() {
                    for key in released.invalidated {
                        inner.reservations.invalidate(&key).await;
                    }
                }
            });
        }
        if released.freed {
            if let Some(cluster) = &self.cluster {
                let (cluster, room, user) = (cluster.clone(), room.id.clone(), user.clone());
                let seat = released.seat;
                self.runtime.spawn(async move {
                    // A row left behind would count as a seat for as long as
                    // this node lives: retry through a database blip. (A
                    // late delete is safe: it names this seat's id only.)
                    let node = &cluster.node_id;
                    let mut backoff = Duration::from_millis(100);
                    for _ in 0..RELEASE_ATTEMPTS {
                        match cluster.leases.release(&room, &user, node, seat).await {
                            Ok(()) => return,
                            Err(err) => {
                                tracing::warn!(%room, code = err.code(), "could not drop a seat row; retrying");
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(5));
                            }
                        }
                    }
                    tracing::error!(%room, "gave up dropping a seat row: it counts until this node restarts");
                });
            }
            self.directory.unload_if_idle(room);
        }
    }

    /// The room for a reserve: in memory, else loaded from storage, else
    /// (with `create`) a new pending room already holding `user`'s seat.
    /// Returns the room and whether the seat is already taken.
    async fn room_for_reserve(
        &self,
        user: &UserId,
        id: &RoomId,
        create: Option<&RoomSpec>,
        key: TicketKey,
    ) -> Result<(Arc<LiveRoom>, bool)> {
        if let Some(room) = self.stored_room(id).await? {
            return Ok((room, false));
        }
        let queue = self.config.append_queue;
        let spec = create.ok_or(ErrorKind::RoomNotFound)?;
        if let Some(cluster) = &self.cluster
            && !cluster
                .claims
                .claim(id, user, self.config.reservation_ttl)
                .await?
        {
            return Err(ErrorKind::RoomPending.into());
        }
        let ledger = SeatLedger::pending(spec.capacity, user.clone(), key);
        let fresh = Arc::new(LiveRoom::pending(id.clone(), spec.clone(), ledger, queue));
        let room = self.directory.insert_if_absent(Arc::clone(&fresh));
        let seated = Arc::ptr_eq(&room, &fresh);
        Ok((room, seated))
    }

    /// Writes a pending room to storage, once however many commits ask; in
    /// a cluster, then seats its creator (`user`, as `seat`) in the database.
    async fn store_pending_room(&self, room: &LiveRoom, user: &UserId, seat: u64) -> Result<()> {
        room.stored
            .get_or_try_init(|| async {
                match self.store.create_room(&room.as_stored()).await? {
                    CreateOutcome::Created => {}
                    CreateOutcome::AlreadyExists(stored) => {
                        // Created meanwhile by another path: the stored room
                        // is the truth. Only the creator is seated, so any
                        // capacity (≥ 1) still holds.
                        tracing::info!(room = %room.id, "pending room was already stored; adopting it");
                        room.ledger().set_capacity(stored.capacity);
                        room.set_title(stored.title);
                    }
                }
                Ok::<(), Error>(())
            })
            .await?;
        if let Some(cluster) = &self.cluster {
            // Counted like any seat: a room created meanwhile by another
            // node may already be full.
            cluster
                .leases
                .take(&room.id, user, &cluster.node_id, seat)
                .await?;
        }
        Ok(())
    }

    /// The stored room in memory, loading it if needed.
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

    pub(crate) async fn check_after_seq(
        &self,
        room: &LiveRoom,
        after_seq: Option<Seq>,
    ) -> Result<()> {
        let Some(after) = after_seq else {
            return Ok(());
        };
        check_seq("after_seq", after)?;
        self.refresh_last_seq(room).await?;
        if after > room.log.last_seq() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "after_seq is beyond the room's last seq",
            ));
        }
        Ok(())
    }

    /// The end of every commit: wait for the `join`, then open the stream.
    pub(crate) async fn finish_commit(
        &self,
        room: Arc<LiveRoom>,
        guard: SeatGuard,
        claim: Claim,
        join_ack: Option<oneshot::Receiver<Stored>>,
        after_seq: Option<Seq>,
    ) -> Result<Membership> {
        if let Some(ack) = join_ack {
            // Storage trouble: the join stays queued and is retried; this
            // commit gives up and its seat goes to grace.
            match tokio::time::timeout(self.config.reservation_ttl, ack).await {
                Ok(Ok(Ok(_))) => {}
                Ok(Ok(Err(err))) => return Err(err),
                Ok(Err(_)) | Err(_) => return Err(ErrorKind::Unavailable.into()),
            }
        }

        // Subscribe before reading last_seq: whatever is stored after this
        // point reaches the live feed, whatever before is in the backlog.
        let live = self.bus.subscribe(&room.id);
        self.refresh_last_seq(&room).await?;
        let last_seq = room.log.last_seq();
        let joined = match &self.cluster {
            // Seats on every node: the database's count.
            Some(cluster) => {
                let seated = cluster.leases.seated(&room.id).await?;
                Joined {
                    room_id: room.id.clone(),
                    capacity: room.ledger().capacity(),
                    occupancy: seated.occupancy,
                    last_seq,
                    members: seated.members,
                }
            }
            None => {
                let ledger = room.ledger();
                Joined {
                    room_id: room.id.clone(),
                    capacity: ledger.capacity(),
                    occupancy: ledger.occupancy(),
                    last_seq,
                    members: ledger.members(),
                }
            }
        };
        let entries = EntryStream::new(
            Arc::clone(&self.store),
            Arc::clone(&self.bus),
            room.id.clone(),
            live,
            after_seq.unwrap_or(last_seq),
            last_seq,
            self.config.reorder_wait,
            claim.ended,
            self.counters.subscribers.enter(),
        );
        Ok(Membership::new(joined, entries, guard))
    }
}

/// Drops a ticket's seat if the reserve is abandoned before the ticket is in
/// the reservation cache (so a cancelled request leaks nothing).
struct UncachedTicket<'a> {
    inner: &'a Arc<Inner>,
    room: &'a Arc<LiveRoom>,
    user: &'a UserId,
    key: TicketKey,
    armed: bool,
}

impl Drop for UncachedTicket<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.inner.ticket_gone(self.room, self.user, &self.key);
        }
    }
}

fn validate_send(config: &EngineConfig, client_id: &str, body: &str) -> Result<()> {
    if client_id.is_empty() || client_id.chars().count() > 64 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "client_id must be 1-64 characters",
        ));
    }
    if body.len() > config.max_message_bytes {
        return Err(Error::new(
            ErrorKind::MessageTooLarge,
            format!("the body is over {} bytes", config.max_message_bytes),
        ));
    }
    if body.trim().is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "the body is empty"));
    }
    // Postgres text cannot hold U+0000 and SQLite's text functions stop at
    // it: refused here, a stored message always reads back as it was sent.
    if body.contains('\0') || client_id.contains('\0') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the body and client_id may not contain U+0000",
        ));
    }
    Ok(())
}

fn validate_range(range: &SeqRange) -> Result<()> {
    if let Some(after) = range.after {
        check_seq("after_seq", after)?;
    }
    if let Some(before) = range.before {
        check_seq("before_seq", before)?;
    }
    if !(1..=MAX_HISTORY_LIMIT).contains(&range.limit) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("limit must be between 1 and {MAX_HISTORY_LIMIT}"),
        ));
    }
    Ok(())
}

#[async_trait]
impl ChatEngine for Engine {
    async fn reserve(
        &self,
        user: &UserId,
        room_id: &RoomId,
        create: Option<RoomSpec>,
    ) -> Result<Reservation> {
        let inner = &self.inner;
        if let Some(spec) = &create {
            spec.validate(inner.config.max_capacity)?;
        }
        let ttl = inner.config.reservation_ttl;
        let deadline = Instant::now() + ttl;
        let (key, ticket) = inner.tickets.mint(deadline, room_id, user);
        let (room, new_seat) = loop {
            let (room, seated) = inner
                .room_for_reserve(user, room_id, create.as_ref(), key)
                .await?;
            if seated {
                break (room, None);
            }
            let mut ledger = room.ledger();
            if ledger.is_retired() {
                continue; // unloaded meanwhile: look again
            }
            // A pending room's seat is only its creator's: nothing to count.
            let new_seat = ledger.reserve(user, key)?.filter(|_| !ledger.is_pending());
            drop(ledger);
            break (room, new_seat);
        };
        let mut uncached = UncachedTicket {
            inner,
            room: &room,
            user,
            key,
            armed: true,
        };
        if let (Some(cluster), Some(seat)) = (&inner.cluster, new_seat) {
            // The local ledger only knows this node's seats; the database
            // decides for the cluster. On refusal the guard frees the seat.
            cluster
                .leases
                .take(room_id, user, &cluster.node_id, seat)
                .await?;
        }
        let hold = Hold {
            room: Arc::clone(&room),
            user: user.clone(),
            key,
            deadline,
        };
        inner.reservations.insert(Arc::new(hold)).await;
        uncached.armed = false;
        let expires_at = Timestamp(Timestamp::now().millis() + ttl.as_millis() as i64);
        Ok(Reservation {
            ticket,
            room_id: room_id.clone(),
            expires_at,
        })
    }

    async fn commit(
        &self,
        user: &UserId,
        ticket: &str,
        after_seq: Option<Seq>,
    ) -> Result<Membership> {
        let inner = &self.inner;
        let verified = inner
            .tickets
            .verify(ticket, user)
            .ok_or(ErrorKind::TicketInvalid)?;
        let expired = || Instant::now() >= verified.deadline;
        let refused = |expired: bool| -> Error {
            if expired {
                ErrorKind::TicketExpired
            } else {
                ErrorKind::TicketInvalid
            }
            .into()
        };
        if expired() {
            inner.reservations.invalidate(&verified.key).await;
            return Err(ErrorKind::TicketExpired.into());
        }
        if let Some(cluster) = &inner.cluster
            && !cluster
                .leases
                .use_ticket(&verified.key, verified.expires_at)
                .await?
        {
            return Err(ErrorKind::TicketInvalid.into());
        }
        let Some(hold) = inner.reservations.get(&verified.key).await else {
            if inner.cluster.is_some() && !expired() {
                return inner
                    .commit_reserved_elsewhere(user, verified, after_seq)
                    .await;
            }
            return Err(refused(expired()));
        };
        if hold.user != *user {
            return Err(ErrorKind::TicketInvalid.into());
        }
        let room = Arc::clone(&hold.room);
        drop(hold);
        inner.check_after_seq(&room, after_seq).await?;

        // Consume the ticket and, for a stored room, queue the join — one
        // critical section, so the log follows the ledger's order.
        let (pending, mut join_ack, claim) = {
            let mut ledger = room.ledger();
            if expired() {
                drop(ledger);
                inner.ticket_gone(&room, user, &verified.key);
                return Err(ErrorKind::TicketExpired.into());
            }
            let claim = ledger
                .consume(user, &verified.key)
                .map_err(|_| refused(expired()))?;
            let pending = ledger.is_pending();
            let join = (!pending && ledger.mark_member(user))
                .then(|| inner.append_membership(&room, user, EntryKind::Join));
            (pending, join, claim)
        };
        // From here every way out of this function releases the connection.
        let guard = SeatGuard::new(
            Arc::clone(inner),
            Arc::clone(&room),
            user.clone(),
            claim.epoch,
        );
        inner.reservations.invalidate(&verified.key).await;

        if pending {
            if let Err(err) = inner.store_pending_room(&room, user, claim.epoch).await {
                guard.abandon();
                return Err(err);
            }
            let mut ledger = room.ledger();
            ledger.mark_stored();
            if ledger.mark_member(user) {
                join_ack = Some(inner.append_membership(&room, user, EntryKind::Join));
            }
        }
        inner
            .finish_commit(room, guard, claim, join_ack, after_seq)
            .await
    }

    async fn submit(
        &self,
        user: &UserId,
        room_id: &RoomId,
        client_id: &str,
        body: &str,
    ) -> Result<PendingSend> {
        let inner = &self.inner;
        validate_send(&inner.config, client_id, body)?;
        let stored = loop {
            let here = inner
                .directory
                .get(room_id)
                .filter(|room| room.ledger().is_joined(user));
            let (room, joined_here) = match here {
                Some(room) => (room, true),
                None => (inner.seated_elsewhere(room_id, user).await?, false),
            };
            let permit = room.log.send_permit().await;
            let (ack, stored) = oneshot::channel();
            {
                let ledger = room.ledger();
                if ledger.is_retired() {
                    continue;
                }
                if joined_here && !ledger.is_joined(user) {
                    return Err(ErrorKind::NotAMember.into());
                }
                let entry = NewEntry::text(room_id.clone(), user.clone(), client_id, body);
                inner.append(
                    &room,
                    AppendRequest {
                        entry,
                        ack: Some(ack),
                        permit: Some(permit),
                    },
                );
            }
            break stored;
        };
        Ok(PendingSend(stored))
    }

    async fn leave(&self, user: &UserId, room_id: &RoomId) -> Result<bool> {
        let inner = &self.inner;
        let Some(room) = inner.directory.get(room_id) else {
            return Ok(false);
        };
        let (freed, ack) = inner.leave_everywhere(&room, user);
        if let Some(ack) = ack
            && let Ok(Ok(stored)) = tokio::time::timeout(LEAVE_ACK_WAIT, ack).await
        {
            stored?;
        }
        Ok(freed)
    }

    async fn history(
        &self,
        user: &UserId,
        room_id: &RoomId,
        range: SeqRange,
    ) -> Result<Vec<Entry>> {
        validate_range(&range)?;
        let inner = &self.inner;
        let seated_here = inner
            .directory
            .get(room_id)
            .is_some_and(|room| room.ledger().holds_seat(user));
        if !seated_here {
            inner.seated_elsewhere(room_id, user).await?;
        }
        inner.store.entries(room_id, range).await
    }

    async fn room(&self, id: &RoomId) -> Result<Option<RoomInfo>> {
        if let Some(cluster) = &self.inner.cluster {
            // Seats and appends of every node: ask the database.
            let Some(stored) = self.inner.store.room(id).await? else {
                return Ok(None);
            };
            let occupancy = cluster.leases.seated(id).await?.occupancy;
            return Ok(Some(RoomInfo {
                room_id: stored.id,
                title: stored.title,
                capacity: stored.capacity,
                occupancy,
                last_seq: stored.last_seq,
            }));
        }
        if let Some(room) = self.inner.directory.get(id) {
            let ledger = room.ledger();
            if !ledger.is_retired() {
                if ledger.is_pending() {
                    return Ok(None);
                }
                return Ok(Some(RoomInfo {
                    room_id: id.clone(),
                    title: room.title(),
                    capacity: ledger.capacity(),
                    occupancy: ledger.occupancy(),
                    last_seq: room.log.last_seq(),
                }));
            }
        }
        Ok(self.inner.store.room(id).await?.map(|stored| RoomInfo {
            room_id: stored.id,
            title: stored.title,
            capacity: stored.capacity,
            occupancy: 0,
            last_seq: stored.last_seq,
        }))
    }

    fn stats(&self) -> EngineStats {
        let inner = &self.inner;
        let mut seats = SeatCounts::default();
        let mut pending_rooms = 0;
        let rooms = inner.directory.snapshot();
        for room in &rooms {
            let ledger = room.ledger();
            ledger.count_into(&mut seats);
            pending_rooms += u64::from(ledger.is_pending());
        }
        let counters = &inner.counters;
        EngineStats {
            rooms_loaded: rooms.len() as u64,
            pending_rooms,
            seats_reserved: seats.reserved,
            seats_joined: seats.joined,
            seats_grace: seats.grace,
            tickets: seats.tickets,
            reservation_entries: inner.reservations.entry_count(),
            room_tasks: counters.room_tasks.get(),
            grace_timers: counters.grace_timers.get(),
            subscribers: counters.subscribers.get(),
            entries_appended: counters
                .entries_appended
                .load(std::sync::atomic::Ordering::Relaxed),
            append_batches: counters
                .append_batches
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Tries to drop a cluster seat row (about two minutes with the backoff).
const RELEASE_ATTEMPTS: u32 = 30;

/// How long an explicit leave waits for its `leave` entry before returning
/// (the entry stays queued and is written either way).
pub(crate) const LEAVE_ACK_WAIT: Duration = Duration::from_secs(5);
