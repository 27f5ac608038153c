//! [`RateLimiter`]: a token bucket per user, shared by all of the user's
//! connections and HTTP sends.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use moka::sync::Cache;
use parlor_engine::UserId;
use tokio::time::Instant;

/// Sends per second, and how many may come at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size: the largest burst.
    pub burst: f64,
}

impl Default for RateLimit {
    /// 20 messages per second, bursts of 40.
    fn default() -> Self {
        RateLimit {
            per_second: 20.0,
            burst: 40.0,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Per-user token buckets. A bucket idle long enough to be full again is
/// dropped, so memory follows active senders.
pub(crate) struct RateLimiter {
    limit: RateLimit,
    buckets: Cache<UserId, Arc<Mutex<Bucket>>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let refill =
            Duration::from_secs_f64((limit.burst / limit.per_second.max(0.001)).clamp(1.0, 3600.0));
        RateLimiter {
            limit,
            buckets: Cache::builder()
                .time_to_idle(refill)
                .max_capacity(1_000_000)
                .build(),
        }
    }

    /// Takes a token for `user`; false when the bucket is empty.
    pub(crate) fn allow(&self, user: &UserId) -> bool {
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
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_refills() {
        let rl = RateLimiter::new(RateLimit {
            per_second: 20.0,
            burst: 40.0,
        });
        let (a, b) = (UserId::new("a").unwrap(), UserId::new("b").unwrap());
        assert_eq!((0..50).filter(|_| rl.allow(&a)).count(), 40);
        assert!(rl.allow(&b), "buckets are per user");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert_eq!((0..10).filter(|_| rl.allow(&a)).count(), 2, "20/s refill");
    }
}
