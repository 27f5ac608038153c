//! [`GraphqlConfig`]: the GraphQL transport's limits.

use std::time::Duration;

/// GraphQL transport settings. `Default` is production-safe: introspection
/// off, depth and complexity limited.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GraphqlConfig {
    /// Time a socket has to send a valid `connection_init` (10 s; then 4408).
    pub init_timeout: Duration,
    /// Deepest selection accepted.
    pub max_depth: usize,
    /// Most complex query accepted.
    pub max_complexity: usize,
    /// Whether `__schema` / `__type` answer.
    pub introspection: bool,
    /// Live `joinRoom` subscriptions one socket may hold.
    pub max_subscriptions: usize,
    /// How long a socket may stay unable to take a frame before it is closed
    /// with 4409 (too slow).
    pub slow_client_patience: Duration,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        GraphqlConfig {
            init_timeout: Duration::from_secs(10),
            max_depth: 8,
            max_complexity: 500,
            introspection: false,
            max_subscriptions: 100,
            slow_client_patience: Duration::from_secs(2),
        }
    }
}

impl GraphqlConfig {
    /// Sets [`GraphqlConfig::introspection`].
    pub fn introspection(mut self, on: bool) -> Self {
        self.introspection = on;
        self
    }

    /// Sets [`GraphqlConfig::init_timeout`].
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// Sets [`GraphqlConfig::max_depth`].
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }
}
