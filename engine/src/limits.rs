//! [`RateLimit`] and the per-user token buckets that enforce it: one set of
//! limits in the engine, so a send over raw WebSocket, HTTP or GraphQL, and
//! a reservation, a room creation or a signal on any transport, draws from
//! the same bucket of its user, one bucket per kind (docs/contract.md §7,
//! `RATE_LIMITED`).
//!
//! A bucket holds up to `burst` tokens and gains `per_second` of them per
//! second; each action takes one. An empty bucket refuses with the time
//! until the next token, which transports send as `retry_after_ms`
//! (`Retry-After` on HTTP 429, `extensions.retryAfterMs` on GraphQL). Time is
//! tokio's clock, so `tokio::time::pause()` drives it in tests.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use moka::sync::Cache;
use tokio::time::Instant;

use crate::{
    error::{Error, ErrorKind, Result},
    ids::UserId,
};

/// Actions per second, and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: the largest burst.
    pub burst: f64,
}

impl RateLimit {
    /// `per_second` tokens a second, bursts of `burst`.
    pub const fn new(per_second: f64, burst: f64) -> Self {
        RateLimit { per_second, burst }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-user token buckets for one kind of action. A bucket idle long enough
/// to be full again is dropped, so memory follows active users.
pub(crate) struct RateBuckets {
    limit: RateLimit,
    /// What a refusal says ("sends", "reservations", "room creations").
    what: &'static str,
    buckets: Cache<UserId, Arc<Mutex<Bucket>>>,
}

impl RateBuckets {
    pub(crate) fn new(limit: RateLimit, what: &'static str) -> Self {
        let refill =
            Duration::from_secs_f64((limit.burst / limit.per_second.max(0.001)).clamp(1.0, 3600.0));
        RateBuckets {
            limit,
            what,
            buckets: Cache::builder()
                .time_to_idle(refill)
                .max_capacity(1_000_000)
                .build(),
        }
    }

    /// Takes a token for `user`.
    ///
    /// Errors: `RATE_LIMITED`, with the wait until the next token as
    /// [`Error::retry_after`].
    pub(crate) fn take(&self, user: &UserId) -> Result<()> {
        let now = Instant::now();
        let bucket = self.buckets.get_with_by_ref(user, || {
            Arc::new(Mutex::new(Bucket {
                tokens: self.limit.burst,
                at: now,
            }))
        });
        let mut b = bucket.lock().expect("bucket lock");
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = (1.0 - b.tokens) / self.limit.per_second.max(0.001);
        // Rounded up to whole ms, so a client that waits exactly that long
        // finds its token.
        let wait = Duration::from_millis((wait * 1000.0).ceil() as u64);
        Err(Error::new(
            ErrorKind::RateLimited,
            format!("too many {}, retry in {} ms", self.what, wait.as_millis()),
        )
        .retry_after(wait))
    }
}

/// The engine's per-user limits; an absent one never refuses.
pub(crate) struct UserLimits {
    sends: Option<RateBuckets>,
    reservations: Option<RateBuckets>,
    creations: Option<RateBuckets>,
    signals: Option<RateBuckets>,
}

impl UserLimits {
    pub(crate) fn new(
        sends: Option<RateLimit>,
        reservations: Option<RateLimit>,
        creations: Option<RateLimit>,
        signals: Option<RateLimit>,
    ) -> Self {
        UserLimits {
            sends: sends.map(|l| RateBuckets::new(l, "messages")),
            reservations: reservations.map(|l| RateBuckets::new(l, "reservations")),
            creations: creations.map(|l| RateBuckets::new(l, "room creations")),
            signals: signals.map(|l| RateBuckets::new(l, "signals")),
        }
    }

    /// One signal of `user`. Errors: `RATE_LIMITED`.
    pub(crate) fn signal(&self, user: &UserId) -> Result<()> {
        self.signals.as_ref().map_or(Ok(()), |b| b.take(user))
    }

    /// One send of `user`. Errors: `RATE_LIMITED`.
    pub(crate) fn send(&self, user: &UserId) -> Result<()> {
        self.sends.as_ref().map_or(Ok(()), |b| b.take(user))
    }

    /// One reservation of `user`. Errors: `RATE_LIMITED`.
    pub(crate) fn reserve(&self, user: &UserId) -> Result<()> {
        self.reservations.as_ref().map_or(Ok(()), |b| b.take(user))
    }

    /// One room creation of `user`. Errors: `RATE_LIMITED`.
    pub(crate) fn create(&self, user: &UserId) -> Result<()> {
        self.creations.as_ref().map_or(Ok(()), |b| b.take(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refills_and_says_when() {
        let rl = RateBuckets::new(RateLimit::new(20.0, 40.0), "messages");
        let (a, b) = (UserId::new("a").unwrap(), UserId::new("b").unwrap());
        assert_eq!((0..50).filter(|_| rl.take(&a).is_ok()).count(), 40);
        let refused = rl.take(&a).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::RateLimited);
        assert_eq!(
            refused.retry_after_duration(),
            Some(Duration::from_millis(50))
        );
        assert!(rl.take(&b).is_ok(), "buckets are per user");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!(
            (0..10).filter(|_| rl.take(&a).is_ok()).count(),
            2,
            "20/s refill"
        );
    }
}
