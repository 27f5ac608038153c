//! [`GraphqlConfig`]: the GraphQL transport's limits.

use std::time::Duration;

/// The longest [`ping_interval`](GraphqlConfig::ping_interval) or
/// [`ping_timeout`](GraphqlConfig::ping_timeout) accepted: 1 day.
const MAX_HEARTBEAT: Duration = Duration::from_secs(24 * 3600);

/// GraphQL transport settings. `Default` is production-safe: introspection
/// off, depth and complexity limited.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GraphqlConfig {
    /// Time a socket has to send a valid `connection_init` (10 s; then 4408,
    /// whatever else it sent meanwhile).
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
    /// with 1013 Try Again Later (too slow; graphql-transport-ws owns 4409).
    pub slow_client_patience: Duration,
    /// How often the server sends a WebSocket ping frame (25 s). The peer's
    /// WebSocket stack answers by itself; the pings also keep proxies (60 s
    /// idle cut-off in nginx and most load balancers) from closing a quiet
    /// socket. Source: the Socket.IO and Centrifugo defaults (25 s).
    pub ping_interval: Duration,
    /// A connection from which nothing (no frame of any kind, pongs
    /// included) arrived for `ping_interval + ping_timeout` (20 s more) is
    /// closed as lost: its seats go to grace.
    pub ping_timeout: Duration,
    /// A token GraphiQL opens with, as `Authorization: Bearer <token>` and in
    /// `connection_init` (`None`: the user types one). Meant for `--dev-auth`
    /// (`dev:guest`); it is written into the page, so never a real secret.
    pub graphiql_token: Option<String>,
}

impl Default for GraphqlConfig {
    fn default() -> Self {
        GraphqlConfig {
            init_timeout: Duration::from_secs(10),
            max_depth: 8,
            max_complexity: 500,
            introspection: false,
            max_subscriptions: 100,
            slow_client_patience: parlor_wire::burst::SLOW_CLIENT_PATIENCE,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            graphiql_token: None,
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

    /// Sets [`GraphqlConfig::ping_interval`], held within 1 ms ..= 1 day (a timer
    /// must stay within what the clock can add).
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every.clamp(Duration::from_millis(1), MAX_HEARTBEAT);
        self
    }

    /// Sets [`GraphqlConfig::ping_timeout`], held within 0 ..= 1 day.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout.min(MAX_HEARTBEAT);
        self
    }

    /// Sets [`GraphqlConfig::graphiql_token`].
    pub fn graphiql_token(mut self, token: Option<String>) -> Self {
        self.graphiql_token = token;
        self
    }
}
