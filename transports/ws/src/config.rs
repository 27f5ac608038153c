//! [`WsConfig`]: the transport's knobs, with the contract's defaults.

use std::time::Duration;

/// The longest [`ping_interval`](WsConfig::ping_interval) or
/// [`ping_timeout`](WsConfig::ping_timeout) accepted: 1 day.
const MAX_HEARTBEAT: Duration = Duration::from_secs(24 * 3600);

/// Transport settings. `Default` gives the contract's defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WsConfig {
    /// How long a new socket may take to send a valid `hello` (10 s; then 4401).
    pub hello_timeout: Duration,
    /// The largest text frame accepted (64 KiB; larger closes with 1009).
    pub max_frame_bytes: usize,
    /// The server's answers (acks, errors, `joined`, `left`) waiting to be
    /// written to one connection (1024). Entries are not queued per
    /// connection: they wait in the room's live buffer, then in storage.
    pub outbound_queue: usize,
    /// How long a socket write may stall, or the answer queue stay full,
    /// before the connection is closed with 4409 (2 s).
    pub slow_client_patience: Duration,
    /// Origins allowed to open sockets and call the API (with CORS), in
    /// addition to the server's own, which is always allowed; `*` allows
    /// every origin. Requests without an `Origin` (non-browser clients) are
    /// always allowed. See [`parlor_wire::OriginPolicy`].
    pub allowed_origins: Vec<String>,
    /// Take the server's own origin from a reverse proxy's `Forwarded` /
    /// `X-Forwarded-Host` / `X-Forwarded-Proto` headers (off: they are
    /// ignored, since a client could forge them).
    pub trust_forwarded: bool,
    /// How often the server sends a WebSocket ping frame (25 s). The peer's
    /// WebSocket stack answers by itself; the pings also keep proxies (60 s
    /// idle cut-off in nginx and most load balancers) from closing a quiet
    /// socket. Source: the Socket.IO and Centrifugo defaults (25 s).
    pub ping_interval: Duration,
    /// A connection from which nothing (no frame of any kind, pongs
    /// included) arrived for `ping_interval + ping_timeout` (20 s more) is
    /// closed as lost: its seats go to grace.
    pub ping_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            hello_timeout: Duration::from_secs(10),
            max_frame_bytes: 64 * 1024,
            outbound_queue: 1024,
            slow_client_patience: parlor_wire::burst::SLOW_CLIENT_PATIENCE,
            allowed_origins: Vec::new(),
            trust_forwarded: false,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
        }
    }
}

impl WsConfig {
    /// Sets [`WsConfig::hello_timeout`].
    pub fn hello_timeout(mut self, t: Duration) -> Self {
        self.hello_timeout = t;
        self
    }

    /// Sets [`WsConfig::max_frame_bytes`].
    pub fn max_frame_bytes(mut self, n: usize) -> Self {
        self.max_frame_bytes = n;
        self
    }

    /// Sets [`WsConfig::outbound_queue`].
    pub fn outbound_queue(mut self, n: usize) -> Self {
        self.outbound_queue = n.max(1);
        self
    }

    /// Sets [`WsConfig::slow_client_patience`].
    pub fn slow_client_patience(mut self, patience: Duration) -> Self {
        self.slow_client_patience = patience;
        self
    }

    /// Adds an allowed origin, e.g. `https://chat.example.com`.
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Sets [`WsConfig::trust_forwarded`].
    pub fn trust_forwarded(mut self, trust: bool) -> Self {
        self.trust_forwarded = trust;
        self
    }

    /// Sets [`WsConfig::ping_interval`], held within 1 ms ..= 1 day (a timer
    /// must stay within what the clock can add).
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.ping_interval = every.clamp(Duration::from_millis(1), MAX_HEARTBEAT);
        self
    }

    /// Sets [`WsConfig::ping_timeout`], held within 0 ..= 1 day.
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout.min(MAX_HEARTBEAT);
        self
    }
}
