//! [`ChatEngine`], the one trait transports hold, and [`Engine`], its
//! implementation over a [`Store`] and a [`Bus`]: start-up, the trait's
//! methods (each hands off to the path that implements it: `join.rs`,
//! `append.rs`, `reads.rs`) and the stats.

use std::{
    collections::BTreeMap,
    sync::{Arc, Weak},
    time::Duration,
};

use async_trait::async_trait;
use tokio::{runtime::Handle, sync::watch, time::Instant};

use crate::{
    amendments,
    append::{self, PendingSend},
    config::EngineConfig,
    entry::{Data, Entry, EntryKind, HistoryPage, Message, NewEntry, Seq, SeqRange},
    error::{Error, ErrorKind, Result},
    hooks::{Hook, WebhookStats},
    ids::{RoomId, UserId},
    join::{self, Reservation},
    lease_keeper, lifecycle,
    limits::UserLimits,
    membership::Membership,
    moderation,
    policies::OpenPolicy,
    ports::{Bus, Cluster, EventSink, InProcessBus, Principal, RoomPolicy, Store},
    read_markers, reads, remote_removals,
    reservations::Reservations,
    retention,
    room::{Ban, Member, ReadState, RoomInfo, RoomPage, RoomPatch, RoomQuery, RoomSpec},
    room_directory::RoomDirectory,
    seat_ledger::SeatCounts,
    signals,
    state::EngineState,
    stats::{Counters, EngineStats, HistogramSnapshot},
    store_writer::StoreWriter,
    ticket::TicketMint,
    webhooks,
};

/// The chat engine as transports see it: object-safe, held as
/// `Arc<dyn ChatEngine>`. Every method keeps docs/contract.md §2–§3.
#[async_trait]
pub trait ChatEngine: Send + Sync + 'static {
    /// Phase 1: reserve a seat in `room` (creating it, pending, if absent and
    /// `create` is given) and get a ticket for it.
    ///
    /// Errors: `RATE_LIMITED`, the room policy's refusal of `create` or
    /// `join` (`FORBIDDEN`; `ROOM_NOT_FOUND` for a private room),
    /// `ROOM_NOT_FOUND`, `ROOM_FULL`, `ROOM_PENDING`, `INVALID_INPUT`.
    async fn reserve(
        &self,
        who: &Principal,
        room: &RoomId,
        create: Option<RoomSpec>,
    ) -> Result<Reservation>;

    /// Phase 2: use `ticket` as `user`'s live connection. The returned
    /// [`Membership`] streams entries after `after_seq` (or after the room's
    /// last seq) and holds the seat until it is left or dropped.
    /// The policy is asked `join` again, and `send` once for the seat.
    async fn commit(
        &self,
        who: &Principal,
        ticket: &str,
        after_seq: Option<Seq>,
    ) -> Result<Membership>;

    /// Queues a message behind every send queued before it in the room,
    /// and returns as soon as it is queued; the [`PendingSend`] resolves once
    /// it is durable. A user's message is a `text` entry and needs a joined
    /// seat; a service's is a `system` entry and needs none. A transport that
    /// submits a connection's sends one after another, without waiting for
    /// each to be stored, keeps their order and lets them share a commit.
    /// Waits only while the room's queue is full. Idempotent by (room,
    /// sender, `client_id`).
    ///
    /// Errors: `INVALID_INPUT`, `MESSAGE_TOO_LARGE` (body or data),
    /// `RATE_LIMITED`, `NOT_A_MEMBER`, the policy's refusal of `send`; for a
    /// service `ROOM_NOT_FOUND` or `ROOM_CLOSED`.
    async fn submit(
        &self,
        who: &Principal,
        room: &RoomId,
        client_id: &str,
        message: Message,
    ) -> Result<PendingSend>;

    /// Appends a text entry of `body` alone; returns once it is durable.
    /// Idempotent by (room, user, `client_id`).
    async fn send(
        &self,
        who: &Principal,
        room: &RoomId,
        client_id: &str,
        body: &str,
    ) -> Result<Arc<Entry>> {
        self.submit(who, room, client_id, Message::text(body))
            .await?
            .await
    }

    /// Leaves `room` from every connection of `user` at once: the seat is
    /// freed, a `leave` appended, unused tickets invalidated, and every entry
    /// stream of that seat ends. False when the user held no seat there.
    async fn leave(&self, user: &UserId, room: &RoomId) -> Result<bool>;

    /// A page of the room log, from `first_seq` on where retention pruned
    /// (the page says where the log starts). Messages show their latest
    /// edit; redacted ones neither body nor data. Needs the policy's
    /// `read`, and a joined seat (grace counts) or being the room's owner
    /// (`NOT_A_MEMBER`); `ROOM_NOT_FOUND` for an absent room or a private
    /// one the caller may not see.
    async fn history(&self, who: &Principal, room: &RoomId, range: SeqRange)
    -> Result<HistoryPage>;

    /// Edits the `text` message at `seq` (its sender; another user only
    /// where the policy allows `edit`): appends an `edit` entry with the
    /// new body and data, and returns it once durable. Idempotent by
    /// `client_id` when given.
    ///
    /// Errors: those of a send (`INVALID_INPUT`, `MESSAGE_TOO_LARGE`,
    /// `RATE_LIMITED`, `ROOM_CLOSED`), `ROOM_NOT_FOUND`,
    /// `ENTRY_NOT_FOUND`, `INVALID_INPUT` (not a text message, or
    /// redacted), `FORBIDDEN`, storage errors.
    async fn edit(
        &self,
        who: &Principal,
        room: &RoomId,
        seq: Seq,
        client_id: Option<&str>,
        message: Message,
    ) -> Result<Arc<Entry>>;

    /// Redacts the message at `seq` (its sender, a moderator, a service):
    /// appends a `redaction` entry and erases the message's body and data
    /// (and its edits') from storage in the same transaction; returns the
    /// redaction once durable (a second redaction: the first).
    ///
    /// Errors: `INVALID_INPUT` (reason over 500 characters, not a
    /// message), `RATE_LIMITED`, `ROOM_NOT_FOUND`, `ENTRY_NOT_FOUND`,
    /// `FORBIDDEN`, storage errors.
    async fn redact(
        &self,
        who: &Principal,
        room: &RoomId,
        seq: Seq,
        reason: Option<&str>,
    ) -> Result<Arc<Entry>>;

    /// Raises the caller's read marker in `room` to `seq` (a lower one is
    /// ignored) and returns their read state; the room's other live
    /// members get a `receipt` notice.
    ///
    /// Errors: `FORBIDDEN` (a service; the policy), `INVALID_INPUT` (seq
    /// beyond the log), `ROOM_NOT_FOUND`, storage errors.
    async fn mark_read(&self, who: &Principal, room: &RoomId, seq: Seq) -> Result<ReadState>;

    /// Sends a momentary signal (`typing`, `stopped_typing`, an app's own
    /// `x-…` name) with optional `data` (≤ 256 bytes of JSON) to `room`'s
    /// other live members, on every node: never stored, no seq, not
    /// replayed (docs/contract.md §2, "Signals").
    ///
    /// Errors: `FORBIDDEN` (a service; a member who may not send),
    /// `INVALID_INPUT` (the name), `MESSAGE_TOO_LARGE` (the data),
    /// `RATE_LIMITED`, `NOT_A_MEMBER`, storage errors.
    async fn signal(
        &self,
        who: &Principal,
        room: &RoomId,
        name: &str,
        data: Option<Data>,
    ) -> Result<()>;

    /// `user`'s read state in `room`: for a service, or the user.
    ///
    /// Errors: `FORBIDDEN`, `ROOM_NOT_FOUND`, storage errors.
    async fn read_marker(&self, who: &Principal, room: &RoomId, user: &UserId)
    -> Result<ReadState>;

    /// The room, if it is stored (a pending room is not) and the caller may
    /// see it (`None` for a private room the policy refuses them).
    async fn room(&self, who: &Principal, room: &RoomId) -> Result<Option<RoomInfo>>;

    /// Invites `user` to `room` (`invited = true`) or withdraws the
    /// invitation; needs the policy's `moderate` (a room's owner always may).
    /// Invitations admit users to private rooms.
    ///
    /// Errors: `ROOM_NOT_FOUND` (absent, or private and not visible to the
    /// caller), `FORBIDDEN`, storage errors.
    async fn set_invite(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
        invited: bool,
    ) -> Result<()>;

    /// Who holds a seat in the room: joined and grace seats with since
    /// when, sorted by user; a service also sees reserved seats. Needs the
    /// policy's `read`.
    ///
    /// Errors: `ROOM_NOT_FOUND` (absent, pending, or private and hidden),
    /// `FORBIDDEN`, storage errors.
    async fn members(&self, who: &Principal, room: &RoomId) -> Result<Vec<Member>>;

    /// A page of the rooms the caller may read, ascending by id,
    /// keyset-paged; a service sees every open room.
    ///
    /// Errors: `INVALID_INPUT` (limit outside 1..=500, prefix over 64
    /// characters), storage errors.
    async fn rooms(&self, who: &Principal, query: RoomQuery<'_>) -> Result<RoomPage>;

    /// Changes a room's title and/or capacity (`moderate`); returns its
    /// facts as they are now. A capacity below the occupancy evicts no one.
    ///
    /// Errors: `INVALID_INPUT`, `ROOM_NOT_FOUND`, `FORBIDDEN`, `ROOM_CLOSED`,
    /// storage errors.
    async fn update_room(
        &self,
        who: &Principal,
        room: &RoomId,
        patch: &RoomPatch,
    ) -> Result<RoomInfo>;

    /// Closes a room (`moderate`): every seat is taken away with a `leave`
    /// of reason `room_closed`, later reserves get `ROOM_CLOSED`; history
    /// stays readable. With `purge`, the log and the room are deleted.
    ///
    /// Errors: `ROOM_NOT_FOUND`, `FORBIDDEN`, storage errors.
    async fn close_room(&self, who: &Principal, room: &RoomId, purge: bool) -> Result<()>;

    /// Takes `user`'s seat away (`moderate`) with a `leave` of reason
    /// `kicked`; their streams end with `KICKED`. True when a seat was
    /// taken. `note` is the moderator's reason, for the server's log.
    ///
    /// Errors: `INVALID_INPUT` (note over 500 characters), `ROOM_NOT_FOUND`,
    /// `FORBIDDEN` (or the user is the room's owner), storage errors.
    async fn kick(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
        note: Option<&str>,
    ) -> Result<bool>;

    /// Bans `user` (`Some`: a kick, then their reserves get `FORBIDDEN`
    /// until `until`) or lifts the ban (`None`); `moderate`.
    ///
    /// Errors: as [`kick`](Self::kick).
    async fn set_ban(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
        ban: Option<&Ban>,
    ) -> Result<()>;

    /// Makes `user` a moderator of the room or not: the room's owner or a
    /// service only.
    ///
    /// Errors: `ROOM_NOT_FOUND`, `FORBIDDEN`, storage errors.
    async fn set_moderator(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
        moderator: bool,
    ) -> Result<()>;

    /// Counters, for tests and metrics.
    fn stats(&self) -> EngineStats;
}

/// The engine: seats, tickets and room logs over a [`Store`] and a [`Bus`].
/// Cheap to clone; every clone is the same engine. Start one with
/// [`Engine::builder`].
#[derive(Clone)]
pub struct Engine {
    state: Arc<EngineState>,
}

/// Starts an [`Engine`]: a [`Store`], and optionally settings, a shared
/// [`Bus`] and a [`Cluster`].
///
/// ```
/// # use std::sync::Arc;
/// # use parlor_engine::{Engine, EngineConfig, testkit::MemoryStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> parlor_engine::Result<()> {
/// let engine = Engine::builder(Arc::new(MemoryStore::default()))
///     .config(EngineConfig::default())
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "an engine starts only when `start` is awaited"]
pub struct EngineBuilder {
    store: Arc<dyn Store>,
    config: EngineConfig,
    bus: Option<Arc<dyn Bus>>,
    cluster: Option<Cluster>,
    policy: Arc<dyn RoomPolicy>,
    sinks: Vec<Arc<dyn EventSink>>,
}

impl EngineBuilder {
    /// The engine's settings (default: [`EngineConfig::default`]).
    pub fn config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    /// Fans out through `bus` (default: an [`InProcessBus`] of
    /// `config.live_buffer` entries per subscriber). A cluster needs a bus
    /// every node shares (`parlor-redis`).
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Who may do what in which room (default: [`OpenPolicy`]). The built-in
    /// policies are in [`policies`](crate::policies); `docs/plugins.md` shows
    /// how to write one.
    pub fn policy(mut self, policy: Arc<dyn RoomPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// Delivers room events to `sink` too (a webhook: `parlor-webhook`),
    /// at least once and in order per room, from a cursor kept in the
    /// store (docs/contract.md §10). Every node of a cluster
    /// needs the same sinks: each registers its list at start.
    pub fn webhook(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// [`webhook`](Self::webhook) for each of `sinks`.
    pub fn webhooks(mut self, sinks: impl IntoIterator<Item = Arc<dyn EventSink>>) -> Self {
        self.sinks.extend(sinks);
        self
    }

    /// Makes the engine one node of a cluster: seats are rows in the shared
    /// database (`cluster.leases`), pending rooms are claimed through
    /// `cluster.claims`. Every node needs the same
    /// [`EngineConfig::ticket_secret`] and a shared [`bus`](Self::bus).
    /// `docs/cluster.md` has the design.
    pub fn cluster(mut self, cluster: Cluster) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Starts the engine. Needs a tokio runtime.
    ///
    /// A single node first closes the memberships a previous stop left open
    /// (appends their `leave` entries) before it takes any request. A cluster
    /// node instead forgets its own old seats (other nodes hold the rest) and
    /// renews its lease; any node frees the seats of a node that stopped
    /// renewing, with one `leave` each.
    ///
    /// It registers its webhooks with the store (forgetting any other
    /// hook's cursors) and starts one delivery task per hook.
    ///
    /// Errors: `INVALID_INPUT` when two webhooks share a name; storage
    /// errors of that recovery.
    pub async fn start(self) -> Result<Engine> {
        let EngineBuilder {
            store,
            config,
            bus,
            cluster,
            policy,
            sinks,
        } = self;
        let names: Vec<String> = sinks.iter().map(|s| s.name().to_owned()).collect();
        if names
            .iter()
            .enumerate()
            .any(|(i, n)| names[..i].contains(n))
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "two webhooks have the same name",
            ));
        }
        store.set_webhooks(&names).await?;
        match &cluster {
            Some(cluster) => {
                cluster.leases.reset_node(&cluster.node_id).await?;
                cluster
                    .leases
                    .renew_node(&cluster.node_id, cluster.lease_ttl)
                    .await?;
            }
            None => close_open_members(store.as_ref()).await?,
        }
        let bus = bus.unwrap_or_else(|| Arc::new(InProcessBus::new(config.live_buffer)));
        let clustered = cluster.is_some();
        let hooks = sinks.into_iter().map(|s| Arc::new(Hook::new(s))).collect();
        let state = launch(store, bus, policy, config, cluster, hooks);
        if clustered {
            tokio::spawn(lease_keeper::run(Arc::downgrade(&state)));
        }
        for hook in &state.hooks {
            tokio::spawn(webhooks::run(
                Arc::downgrade(&state),
                Arc::clone(hook),
                state.changes.subscribe(),
            ));
        }
        Ok(Engine { state })
    }
}

/// Builds the shared state and starts the reservation sweeper.
fn launch(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    policy: Arc<dyn RoomPolicy>,
    config: EngineConfig,
    cluster: Option<Cluster>,
    hooks: Vec<Arc<Hook>>,
) -> Arc<EngineState> {
    let counters = Arc::new(Counters::default());
    let changes = Arc::new(watch::channel(()).0);
    let state = Arc::new_cyclic(|weak: &Weak<EngineState>| {
        let follower = weak.clone();
        let weak = weak.clone();
        EngineState {
            reservations: Reservations::new(move |hold| {
                if let Some(state) = weak.upgrade() {
                    join::ticket_gone(&state, &hold.room, &hold.user, &hold.key);
                }
            }),
            tickets: TicketMint::new(config.ticket_secret.as_deref()),
            limits: UserLimits::new(
                config.send_rate,
                config.reservation_rate,
                config.create_rate,
                config.signal_rate,
            ),
            writer: StoreWriter::start(
                Arc::clone(&store),
                config.append_batch_max,
                config.append_queue,
                Arc::clone(&counters),
                Arc::clone(&changes),
            ),
            store,
            bus,
            policy,
            config,
            cluster,
            directory: RoomDirectory::new(move |room| {
                if let Some(state) = follower.upgrade() {
                    remote_removals::follow(&state, room);
                }
            }),
            counters,
            hooks,
            changes,
            runtime: Handle::current(),
        }
    });
    tokio::spawn(sweep_until_dropped(Arc::downgrade(&state)));
    tokio::spawn(retention::run(Arc::downgrade(&state)));
    state
}

impl Engine {
    /// A builder for an engine on `store`.
    pub fn builder(store: Arc<dyn Store>) -> EngineBuilder {
        EngineBuilder {
            store,
            config: EngineConfig::default(),
            bus: None,
            cluster: None,
            policy: Arc::new(OpenPolicy),
            sinks: Vec::new(),
        }
    }

    /// Expires due reservations now instead of at the next sweep tick.
    pub async fn run_maintenance(&self) {
        self.state.reservations.sweep().await;
    }

    /// Runs one retention pass now instead of at the next period; returns
    /// how many entries were pruned.
    ///
    /// Errors: storage errors.
    pub async fn prune_now(&self) -> Result<u64> {
        let pace = retention::Pace::eager(tokio::time::Instant::now());
        retention::prune_pass(&Arc::downgrade(&self.state), pace).await
    }

    /// What each webhook's delivery has done, in the order they were
    /// added.
    pub fn webhooks(&self) -> Vec<WebhookStats> {
        self.state.hooks.iter().map(|h| h.stats()).collect()
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.state.config
    }

    /// Sizes of the append transactions so far (entries per commit).
    pub fn append_batch_sizes(&self) -> HistogramSnapshot {
        self.state.counters.batch_sizes.snapshot()
    }

    /// Waits until no append is in flight (every queued entry is stored or
    /// failed), or `timeout` passes; true when everything settled. For a
    /// graceful shutdown: call it after the transports stopped taking sends.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.state.counters.room_tasks.get() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

async fn sweep_until_dropped(engine: Weak<EngineState>) {
    let Some(period) = engine.upgrade().map(|e| e.config.sweep_interval) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = engine.upgrade() else {
            return;
        };
        state.reservations.sweep().await;
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

#[async_trait]
impl ChatEngine for Engine {
    async fn reserve(
        &self,
        who: &Principal,
        room: &RoomId,
        create: Option<RoomSpec>,
    ) -> Result<Reservation> {
        join::reserve(&self.state, who, room, create).await
    }

    async fn commit(
        &self,
        who: &Principal,
        ticket: &str,
        after_seq: Option<Seq>,
    ) -> Result<Membership> {
        let committed = join::commit(&self.state, who, ticket, after_seq).await?;
        Ok(Membership::from_parts(committed))
    }

    async fn submit(
        &self,
        who: &Principal,
        room: &RoomId,
        client_id: &str,
        message: Message,
    ) -> Result<PendingSend> {
        append::submit(&self.state, who, room, client_id, message).await
    }

    async fn leave(&self, user: &UserId, room: &RoomId) -> Result<bool> {
        join::leave_room(&self.state, user, room).await
    }

    async fn history(
        &self,
        who: &Principal,
        room: &RoomId,
        range: SeqRange,
    ) -> Result<HistoryPage> {
        reads::history(&self.state, who, room, range).await
    }

    async fn edit(
        &self,
        who: &Principal,
        room: &RoomId,
        seq: Seq,
        client_id: Option<&str>,
        message: Message,
    ) -> Result<Arc<Entry>> {
        amendments::edit(&self.state, who, room, seq, client_id, message).await
    }

    async fn redact(
        &self,
        who: &Principal,
        room: &RoomId,
        seq: Seq,
        reason: Option<&str>,
    ) -> Result<Arc<Entry>> {
        amendments::redact(&self.state, who, room, seq, reason).await
    }

    async fn mark_read(&self, who: &Principal, room: &RoomId, seq: Seq) -> Result<ReadState> {
        read_markers::mark_read(&self.state, who, room, seq).await
    }

    async fn signal(
        &self,
        who: &Principal,
        room: &RoomId,
        name: &str,
        data: Option<Data>,
    ) -> Result<()> {
        signals::signal(&self.state, who, room, name, data).await
    }

    async fn read_marker(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
    ) -> Result<ReadState> {
        read_markers::read_marker(&self.state, who, room, user).await
    }

    async fn room(&self, who: &Principal, room: &RoomId) -> Result<Option<RoomInfo>> {
        reads::room_info(&self.state, who, room).await
    }

    async fn set_invite(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
        invited: bool,
    ) -> Result<()> {
        moderation::set_invite(&self.state, who, room, user, invited).await
    }

    async fn members(&self, who: &Principal, room: &RoomId) -> Result<Vec<Member>> {
        reads::members(&self.state, who, room).await
    }

    async fn rooms(&self, who: &Principal, query: RoomQuery<'_>) -> Result<RoomPage> {
        reads::rooms(&self.state, who, query).await
    }

    async fn update_room(
        &self,
        who: &Principal,
        room: &RoomId,
        patch: &RoomPatch,
    ) -> Result<RoomInfo> {
        lifecycle::update_room(&self.state, who, room, patch).await
    }

    async fn close_room(&self, who: &Principal, room: &RoomId, purge: bool) -> Result<()> {
        lifecycle::close_room(&self.state, who, room, purge).await
    }

    async fn kick(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
        note: Option<&str>,
    ) -> Result<bool> {
        moderation::kick(&self.state, who, room, user, note).await
    }

    async fn set_ban(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
        ban: Option<&Ban>,
    ) -> Result<()> {
        moderation::set_ban(&self.state, who, room, user, ban).await
    }

    async fn set_moderator(
        &self,
        who: &Principal,
        room: &RoomId,
        user: &UserId,
        moderator: bool,
    ) -> Result<()> {
        moderation::set_moderator(&self.state, who, room, user, moderator).await
    }

    fn stats(&self) -> EngineStats {
        let state = &self.state;
        let mut seats = SeatCounts::default();
        let mut pending_rooms = 0;
        let rooms = state.directory.snapshot();
        for room in &rooms {
            let ledger = room.ledger();
            ledger.count_into(&mut seats);
            pending_rooms += u64::from(ledger.is_pending());
        }
        let counters = &state.counters;
        EngineStats {
            rooms_loaded: rooms.len() as u64,
            pending_rooms,
            seats_reserved: seats.reserved,
            seats_joined: seats.joined,
            seats_grace: seats.grace,
            tickets: seats.tickets,
            reservation_entries: state.reservations.entry_count(),
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
