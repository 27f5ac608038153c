//! [`WsState`]: what every handler and connection of the transport shares.

use std::sync::{Arc, atomic::AtomicU64};

use parlor_engine::{Authenticator, ChatEngine, Gauge, Histogram, Principal};
use tokio::sync::watch;

use parlor_wire::ApiError;

use crate::{config::WsConfig, frames::FrameCache};

/// Send→ack latency buckets, in seconds.
const LATENCY_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

pub(crate) struct WsState {
    pub(crate) engine: Arc<dyn ChatEngine>,
    pub(crate) auth: Arc<dyn Authenticator>,
    pub(crate) config: WsConfig,
    pub(crate) frames: FrameCache,
    pub(crate) connections: Gauge,
    pub(crate) send_latency: Histogram,
    /// Connections closed with 4409.
    pub(crate) too_slow_closes: AtomicU64,
    /// Flips to true when the server shuts down: sockets close with 1001.
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl WsState {
    pub(crate) fn new(
        engine: Arc<dyn ChatEngine>,
        auth: Arc<dyn Authenticator>,
        config: WsConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        WsState {
            engine,
            auth,
            config,
            frames: FrameCache::new(),
            connections: Gauge::default(),
            send_latency: Histogram::new(LATENCY_BOUNDS),
            too_slow_closes: AtomicU64::new(0),
            shutdown,
        }
    }

    /// `token` → user, or `UNAUTHENTICATED`.
    pub(crate) async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        Ok(self.auth.authenticate(token).await?)
    }
}
