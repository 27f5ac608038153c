//! [`EngineConfig`]: the knobs of docs/contract.md §2–§3, with the contract's defaults.

use std::time::Duration;

use crate::{limits::RateLimit, room::Retention};

/// Engine settings. `Default` gives the contract's defaults, except the
/// per-user limits (`send_rate`, `reservation_rate`, `create_rate`,
/// `signal_rate`, `max_pending_rooms`), which are off: an embedder decides
/// them, and the reference server sets the contract's (docs/contract.md §2, "Limits").
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineConfig {
    /// How long a reserved seat waits for its commit (15 s).
    pub reservation_ttl: Duration,
    /// How long a seat whose last connection was lost waits for a re-commit (10 s).
    pub reconnect_grace: Duration,
    /// The largest capacity a room may be created with (10 000).
    pub max_capacity: u32,
    /// The largest message body, in bytes of UTF-8 (4096).
    pub max_message_bytes: usize,
    /// The largest `data` of a message, in bytes of serialized JSON (4096).
    pub max_data_bytes: usize,
    /// The most entries one append transaction carries (group commit).
    pub append_batch_max: usize,
    /// The most sends waiting on one room's log before senders wait.
    pub append_queue: usize,
    /// How many live entries a room buffers for a slow subscriber before that
    /// subscriber falls back to reading storage.
    pub live_buffer: usize,
    /// How often expired reservations are swept without traffic.
    pub sweep_interval: Duration,
    /// How long a live entry that came ahead of its turn waits for the ones
    /// before it before the stream reads storage instead (across nodes
    /// entries arrive out of order; on one node they never do).
    pub reorder_wait: Duration,
    /// How long a room may go on holding stored entries back from its
    /// subscribers while more sends wait to be stored, so that a burst goes
    /// out in one publish (2 ms; zero publishes every commit at once). It is
    /// checked as each commit ends, so an entry waits at most this plus one
    /// commit. Acks never wait.
    pub publish_hold: Duration,
    /// The key tickets are signed with. `None` draws a random one at start;
    /// nodes of a cluster share one so any node can check any ticket.
    pub ticket_secret: Option<Vec<u8>>,
    /// Sends per user, over every transport together (`None`: unlimited).
    /// The reference server sets 20/s, bursts of 40 (`--rate-limit`,
    /// `--rate-burst`).
    pub send_rate: Option<RateLimit>,
    /// Reservations per user (`None`: unlimited; the server: 5/s, bursts of
    /// 20, `--reservation-rate`, `--reservation-burst`).
    pub reservation_rate: Option<RateLimit>,
    /// Room creations per user (`None`: unlimited; the server: 1/s, bursts
    /// of 10, `--create-rate`, `--create-burst`).
    pub create_rate: Option<RateLimit>,
    /// Pending rooms one user may hold at once (`None`: unlimited; the
    /// server: 10, `--max-pending-rooms`). Beyond it a create is
    /// `RATE_LIMITED`.
    pub max_pending_rooms: Option<u32>,
    /// How much of each room's log is kept, unless the room has its own
    /// (default: everything; the server's `--retention-max-entries`,
    /// `--retention-max-age`).
    pub retention: Retention,
    /// How often the pruner looks for rooms over their retention (5 s). A
    /// pass spreads as many entries as the last one deleted over the first
    /// nine tenths of the period, so a room over its bound is pruned within
    /// two periods (1.9 when a pass has no more to delete than the last),
    /// unless the pruner is behind (then its batches come as fast as half
    /// of a single writer's time allows).
    pub retention_interval: Duration,
    /// The most entries one prune transaction deletes (1000): appends to
    /// the room wait at most that long.
    pub prune_batch: u32,
    /// Signals per user, their own bucket apart from sends (`None`:
    /// unlimited; the server: 5/s, bursts of 10, `--signal-rate`,
    /// `--signal-burst`).
    pub signal_rate: Option<RateLimit>,
    /// The signal names a member may send besides the app's own `x-…`
    /// names (default `typing`, `stopped_typing`; docs/contract.md §2,
    /// "Signals").
    pub signal_names: Vec<String>,
    /// The most events one webhook request carries (500).
    pub webhook_batch: u32,
    /// How often a webhook looks for undelivered events when nothing woke
    /// it (1 s): a cluster node learns so of other nodes' entries, and any
    /// node of a backlog left by a stop.
    pub webhook_poll: Duration,
    /// The longest wait between two tries of a failed webhook request
    /// (10 s); waits double from 200 ms up to it, with jitter, and a hook
    /// whose wait reached it is marked failing until a try succeeds.
    pub webhook_retry_max: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            reservation_ttl: Duration::from_secs(15),
            reconnect_grace: Duration::from_secs(10),
            max_capacity: 10_000,
            max_message_bytes: 4096,
            max_data_bytes: 4096,
            append_batch_max: 256,
            append_queue: 4096,
            live_buffer: 1024,
            sweep_interval: Duration::from_millis(250),
            reorder_wait: Duration::from_millis(100),
            publish_hold: Duration::from_millis(2),
            ticket_secret: None,
            send_rate: None,
            reservation_rate: None,
            create_rate: None,
            max_pending_rooms: None,
            retention: Retention::default(),
            retention_interval: Duration::from_secs(5),
            prune_batch: 1000,
            signal_rate: None,
            signal_names: vec!["typing".into(), "stopped_typing".into()],
            webhook_batch: 500,
            webhook_poll: Duration::from_secs(1),
            webhook_retry_max: Duration::from_secs(10),
        }
    }
}

impl EngineConfig {
    /// Sets [`EngineConfig::reservation_ttl`].
    pub fn reservation_ttl(mut self, ttl: Duration) -> Self {
        self.reservation_ttl = ttl;
        self
    }

    /// Sets [`EngineConfig::reconnect_grace`].
    pub fn reconnect_grace(mut self, grace: Duration) -> Self {
        self.reconnect_grace = grace;
        self
    }

    /// Sets [`EngineConfig::max_capacity`].
    pub fn max_capacity(mut self, max: u32) -> Self {
        self.max_capacity = max;
        self
    }

    /// Sets [`EngineConfig::max_message_bytes`].
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// Sets [`EngineConfig::max_data_bytes`].
    pub fn max_data_bytes(mut self, max: usize) -> Self {
        self.max_data_bytes = max;
        self
    }

    /// Sets [`EngineConfig::append_batch_max`] (1 = one transaction per entry).
    pub fn append_batch_max(mut self, max: usize) -> Self {
        self.append_batch_max = max.max(1);
        self
    }

    /// Sets [`EngineConfig::live_buffer`].
    pub fn live_buffer(mut self, n: usize) -> Self {
        self.live_buffer = n.max(1);
        self
    }

    /// Sets [`EngineConfig::publish_hold`].
    pub fn publish_hold(mut self, hold: Duration) -> Self {
        self.publish_hold = hold;
        self
    }

    /// Sets [`EngineConfig::send_rate`].
    pub fn send_rate(mut self, limit: RateLimit) -> Self {
        self.send_rate = Some(limit);
        self
    }

    /// Sets [`EngineConfig::reservation_rate`].
    pub fn reservation_rate(mut self, limit: RateLimit) -> Self {
        self.reservation_rate = Some(limit);
        self
    }

    /// Sets [`EngineConfig::create_rate`].
    pub fn create_rate(mut self, limit: RateLimit) -> Self {
        self.create_rate = Some(limit);
        self
    }

    /// Sets [`EngineConfig::max_pending_rooms`].
    pub fn max_pending_rooms(mut self, max: u32) -> Self {
        self.max_pending_rooms = Some(max);
        self
    }

    /// Sets [`EngineConfig::retention`].
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Sets [`EngineConfig::retention_interval`].
    pub fn retention_interval(mut self, every: Duration) -> Self {
        self.retention_interval = every;
        self
    }

    /// Sets [`EngineConfig::prune_batch`] (at least 1).
    pub fn prune_batch(mut self, max: u32) -> Self {
        self.prune_batch = max.max(1);
        self
    }

    /// Sets [`EngineConfig::webhook_batch`] (at least 1).
    pub fn webhook_batch(mut self, max: u32) -> Self {
        self.webhook_batch = max.max(1);
        self
    }

    /// Sets [`EngineConfig::webhook_poll`].
    pub fn webhook_poll(mut self, every: Duration) -> Self {
        self.webhook_poll = every;
        self
    }

    /// Sets [`EngineConfig::webhook_retry_max`].
    pub fn webhook_retry_max(mut self, max: Duration) -> Self {
        self.webhook_retry_max = max;
        self
    }

    /// Sets [`EngineConfig::signal_rate`].
    pub fn signal_rate(mut self, limit: RateLimit) -> Self {
        self.signal_rate = Some(limit);
        self
    }

    /// Sets [`EngineConfig::signal_names`] (`x-…` names are always allowed).
    pub fn signal_names(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.signal_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`EngineConfig::ticket_secret`].
    pub fn ticket_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.ticket_secret = Some(secret.into());
        self
    }
}
