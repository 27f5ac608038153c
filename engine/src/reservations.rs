//! [`Reservations`]: unused tickets in a `moka::future::Cache`, and the
//! sweeper that expires them without traffic.
//!
//! Each cache entry is a [`Hold`] — which seat of which room a ticket holds —
//! with a per-entry expiry of the reservation's ttl. Whenever an entry leaves
//! the cache, for whatever cause, the eviction listener tells the engine the
//! ticket is gone, and the seat ledger frees the seat unless the ticket was
//! already consumed (that call is idempotent, so commit and leave may
//! invalidate freely). A pending room is held by its creator's seat, so it
//! vanishes with that seat: nothing of it is ever written.
//!
//! Two clocks: moka expires entries on its own clock (`std::time::Instant`,
//! which cannot be replaced), while deadlines are on tokio's clock so that
//! `tokio::time::pause()` drives every ttl in tests. The sweeper runs on
//! tokio's clock: each tick it invalidates holds past their deadline, then runs
//! moka's pending maintenance. In production both clocks agree and whichever
//! fires first wins; commit checks the deadline itself, so an expired ticket
//! is refused at its deadline even before either has fired.

use std::{sync::Arc, time::Duration};

use moka::{Expiry, future::Cache};
use tokio::time::Instant;

use crate::{ids::UserId, live_room::LiveRoom, ticket::TicketKey};

/// What one unused ticket holds.
pub(crate) struct Hold {
    pub(crate) room: Arc<LiveRoom>,
    pub(crate) user: UserId,
    pub(crate) key: TicketKey,
    pub(crate) deadline: Instant,
}

struct HoldExpiry;

impl Expiry<TicketKey, Arc<Hold>> for HoldExpiry {
    fn expire_after_create(
        &self,
        _key: &TicketKey,
        hold: &Arc<Hold>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(hold.deadline.saturating_duration_since(Instant::now()))
    }
}

pub(crate) struct Reservations {
    cache: Cache<TicketKey, Arc<Hold>>,
}

impl Reservations {
    /// `on_gone` runs whenever a hold leaves the cache.
    pub(crate) fn new(on_gone: impl Fn(Arc<Hold>) + Send + Sync + 'static) -> Self {
        let cache = Cache::builder()
            .name("parlor-reservations")
            .expire_after(HoldExpiry)
            .eviction_listener(move |_key, hold, _cause| on_gone(hold))
            .build();
        Reservations { cache }
    }

    pub(crate) async fn insert(&self, hold: Arc<Hold>) {
        self.cache.insert(hold.key, hold).await;
    }

    pub(crate) async fn get(&self, key: &TicketKey) -> Option<Arc<Hold>> {
        self.cache.get(key).await
    }

    pub(crate) async fn invalidate(&self, key: &TicketKey) {
        self.cache.invalidate(key).await;
    }

    /// Expires every hold past its deadline on tokio's clock, then lets moka
    /// run its own expiry and notifications.
    pub(crate) async fn sweep(&self) {
        let now = Instant::now();
        let expired: Vec<TicketKey> = self
            .cache
            .iter()
            .filter(|(_, hold)| hold.deadline <= now)
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.cache.invalidate(&key).await;
        }
        self.cache.run_pending_tasks().await;
    }

    pub(crate) fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }
}
