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

/// A gauge that counts live RAII guards (connections, tasks, streams).
#[derive(Debug, Default, Clone)]
pub struct Gauge(Arc<AtomicU64>);

/// Holds one unit of a [`Gauge`] until dropped.
#[derive(Debug)]
pub struct GaugeGuard(Arc<AtomicU64>);

impl Gauge {
    /// Counts one more until the guard is dropped.
    pub fn enter(&self) -> GaugeGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(Arc::clone(&self.0))
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The engine's own counters (seat gauges are read from the ledgers).
#[derive(Debug)]
pub(crate) struct Counters {
    pub(crate) room_tasks: Gauge,
    pub(crate) grace_timers: Gauge,
    pub(crate) subscribers: Gauge,
    pub(crate) entries_appended: AtomicU64,
    pub(crate) append_batches: AtomicU64,
    pub(crate) batch_sizes: Histogram,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            room_tasks: Gauge::default(),
            grace_timers: Gauge::default(),
            subscribers: Gauge::default(),
            entries_appended: AtomicU64::new(0),
            append_batches: AtomicU64::new(0),
            batch_sizes: Histogram::new(BATCH_SIZE_BOUNDS),
        }
    }
}

/// A fixed-bucket histogram safe to update from many tasks (for `/metrics`).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, plus the overflow (`+Inf`) bucket.
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths.
    sum_micros: AtomicU64,
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Upper bounds of the buckets (the last, `+Inf`, is implied).
    pub bounds: &'static [f64],
    /// Non-cumulative counts per bucket; one more than `bounds`.
    pub counts: Vec<u64>,
    /// Sum of all observations.
    pub sum: f64,
}

impl HistogramSnapshot {
    /// How many observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl Histogram {
    /// Buckets with these upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one value.
    pub fn observe(&self, value: f64) {
        let at = self.bounds.partition_point(|&b| b < value);
        self.counts[at].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// The current counts.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds,
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// Bucket bounds for append batch sizes.
pub(crate) const BATCH_SIZE_BOUNDS: &[f64] =
    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_bounds() {
        let h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 2.0, 10.0, 11.0, 100.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.counts, vec![2, 2, 2]);
        assert_eq!(s.count(), 6);
        assert!((s.sum - 124.5).abs() < 1e-9);
    }
}
