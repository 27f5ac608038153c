//! # parlor-redis
//!
//! Parlor on Redis, for a cluster of engines: [`RedisBus`], the engine's
//! [`Bus`](parlor_engine::Bus) across nodes over pub/sub (entries, and
//! notices such as read receipts), and
//! [`RedisClaims`], cluster-wide claims on pending rooms (`SET NX PX`). It
//! depends on `parlor-engine`, never the reverse; Redis errors become the
//! engine's `UNAVAILABLE`.
//!
//! Redis carries no truth: entries are stored in the database before they
//! are published, and the engine's entry streams read any gap back from
//! there, so losing Redis (or a message) delays delivery and loses nothing.
//! Seats are counted in the database too (see `parlor_seaorm`'s
//! `SeatLeases`). See `docs/cluster.md`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use parlor_engine::{Cluster, Engine, EngineConfig};
//! use parlor_redis::Redis;
//! use parlor_seaorm::SeaOrmStore;
//!
//! # async fn demo() -> parlor_engine::Result<()> {
//! let store = SeaOrmStore::open("postgres://localhost/parlor").await?.for_node("node-a");
//! let redis = Redis::connect("redis://127.0.0.1:6379").await?;
//! let config = EngineConfig::default().ticket_secret("shared by every node");
//! let cluster = Cluster {
//!     node_id: "node-a".into(),
//!     leases: Arc::new(store.clone()),
//!     claims: Arc::new(redis.claims()),
//!     lease_ttl: std::time::Duration::from_secs(10),
//! };
//! let bus = Arc::new(redis.bus("node-a", config.live_buffer).await?);
//! let engine = Engine::builder(Arc::new(store)).bus(bus).cluster(cluster).config(config).start().await?;
//! # drop(engine); Ok(()) }
//! ```

mod bus;
mod claims;
mod wire;

pub use bus::RedisBus;
pub use claims::RedisClaims;

use parlor_engine::{Error, Result};
use redis::{Client, aio::ConnectionManager};

/// Keys and channels start with this.
const PREFIX: &str = "parlor";

/// A connection to Redis, from which the bus and the claims are made.
#[derive(Clone)]
pub struct Redis {
    client: Client,
    connection: ConnectionManager,
}

impl Redis {
    /// Connects to `url` (`redis://host:port`). The connection reconnects
    /// by itself after Redis comes back.
    pub async fn connect(url: &str) -> Result<Self> {
        let client = Client::open(url).map_err(Error::internal)?;
        let connection = client
            .get_connection_manager()
            .await
            .map_err(Error::unavailable)?;
        Ok(Redis { client, connection })
    }

    /// The bus for node `node`, whose local feeds buffer `live_buffer`
    /// entries for their slowest reader. Returns once it is subscribed.
    pub async fn bus(&self, node: &str, live_buffer: usize) -> Result<RedisBus> {
        RedisBus::start(
            self.client.clone(),
            self.connection.clone(),
            PREFIX.to_owned(),
            node,
            live_buffer,
        )
        .await
    }

    /// Claims on pending rooms.
    pub fn claims(&self) -> RedisClaims {
        RedisClaims::new(self.connection.clone(), PREFIX)
    }
}
