//! Counters a test (and `/metrics`) can read: [`EngineStats`].

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// A snapshot of the engine's state. Gauges are exact at the instant they
/// are read; totals only grow.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Rooms held in memory (they have seats, or their log is being written).
    pub rooms_loaded: u64,
    /// Rooms held in memory only, waiting for their creator's commit.
    pub pending_rooms: u64,
    /// Seats reserved and not yet committed.
    pub seats_reserved: u64,
    /// Seats with at least one live connection.
    pub seats_joined: u64,
    /// Seats whose last connection was lost, within their grace.
    pub seats_grace: u64,
    /// Unused, unexpired tickets.
    pub tickets: u64,
    /// Entries in the reservation cache (moka; settles after maintenance).
    pub reservation_entries: u64,
    /// Room log tasks running.
    pub room_tasks: u64,
    /// Grace timers running.
    pub grace_timers: u64,
    /// Live entry streams.
    pub subscribers: u64,
    /// Entries appended since start (new entries only, not duplicates).
    pub entries_appended: u64,
    /// Append transactions committed since start.
    pub append_batches: u64,
}

impl EngineStats {
    /// Seats held in any state.
    pub fn seats(&self) -> u64 {
        self.seats_reserved + self.seats_joined + self.seats_grace
    }
}

/// A gauge that counts live RAII guards.
#[derive(Debug, Default, Clone)]
pub(crate) struct Gauge(Arc<AtomicU64>);

/// Holds one unit of a [`Gauge`] until dropped.
#[derive(Debug)]
pub(crate) struct GaugeGuard(Arc<AtomicU64>);

impl Gauge {
    pub(crate) fn enter(&self) -> GaugeGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(Arc::clone(&self.0))
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The engine's own counters (seat gauges are read from the ledgers).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) room_tasks: Gauge,
    pub(crate) grace_timers: Gauge,
    pub(crate) subscribers: Gauge,
    pub(crate) entries_appended: AtomicU64,
    pub(crate) append_batches: AtomicU64,
}
