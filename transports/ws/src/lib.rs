//! # parlor-ws
//!
//! Parlor's raw WebSocket + HTTP transport: an axum 0.8 [`Router`] over any
//! `Arc<dyn ChatEngine>`, serving docs/contract.md §4 (HTTP: reserve, room, history,
//! send, edit, redact, read markers, invitations; the control surface of
//! listing, presence, lifecycle, retention and moderation; the OpenAPI
//! document at `/v1/openapi.json`, see [`ApiDoc`]) and §5 (the `/v1/ws`
//! socket: `hello`, `join`, `send`, `leave`, `read`; entries and read
//! receipts).
//! It depends on `parlor-engine`, and on `parlor-wire` for what it shares with
//! the other web transports (the contract's JSON shapes, HTTP error answers,
//! the origin policy, the burst writer); the engine knows nothing of it.
//! Error kinds become error frames and close codes here and only here.
//!
//! With the `client` feature it also carries a Rust client
//! ([`client::Client`], [`client::ResumingRoom`]) for bots, tests and the
//! bench.
//!
//! ```
//! use std::sync::Arc;
//! use parlor_auth::DevTokens;
//! use parlor_engine::{Engine, EngineConfig};
//! use parlor_ws::{WsConfig, WsTransport};
//! # use parlor_engine::testkit::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let store = Arc::new(MemoryStore::default());
//! let engine = Engine::builder(store).config(EngineConfig::default()).start().await?;
//! let transport = WsTransport::new(Arc::new(engine), Arc::new(DevTokens), WsConfig::default());
//! let app: axum::Router = transport.router(); // mount it in your axum app
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # drop((app, listener));
//! // axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

#[cfg(feature = "client")]
pub mod client;
mod config;
mod connection;
mod control;
mod extract;
mod frames;
mod http;
mod openapi;
mod room_feeds;
mod socket_writer;
mod state;
mod wire;

use std::sync::Arc;

use axum::{
    Router,
    routing::{get, patch, post, put},
};
use parlor_engine::{Authenticator, ChatEngine, HistogramSnapshot};
use parlor_wire::OriginPolicy;
use tokio::sync::watch;

pub use config::WsConfig;
pub use openapi::{ApiDoc, openapi_json};
use state::WsState;

/// The transport: build it once, mount its [`router`](WsTransport::router),
/// and call [`shutdown`](WsTransport::shutdown) when the server stops.
pub struct WsTransport {
    state: Arc<WsState>,
    shutdown: watch::Sender<bool>,
}

impl WsTransport {
    /// A transport over `engine`, authenticating with `auth`.
    pub fn new(
        engine: Arc<dyn ChatEngine>,
        auth: Arc<dyn Authenticator>,
        config: WsConfig,
    ) -> Self {
        let (shutdown, watching) = watch::channel(false);
        WsTransport {
            state: Arc::new(WsState::new(engine, auth, config, watching)),
            shutdown,
        }
    }

    /// The routes: `/v1/ws`, `/v1/rooms/…` and `/v1/openapi.json` (the
    /// [`ApiDoc`] of the HTTP routes), behind the origin check and
    /// its CORS answers ([`origin_policy`](WsTransport::origin_policy)).
    pub fn router(&self) -> Router {
        let state = Arc::clone(&self.state);
        let routes = Router::new()
            .route("/v1/ws", get(connection::upgrade))
            .route("/v1/openapi.json", get(openapi::openapi_json_route))
            .route("/v1/rooms", get(control::list))
            .route(
                "/v1/rooms/{room_id}",
                get(http::room)
                    .patch(control::update)
                    .delete(control::close),
            )
            .route("/v1/rooms/{room_id}/members", get(control::members))
            .route("/v1/rooms/{room_id}/kicks/{user_id}", post(control::kick))
            .route(
                "/v1/rooms/{room_id}/bans/{user_id}",
                put(control::ban).delete(control::unban),
            )
            .route(
                "/v1/rooms/{room_id}/moderators/{user_id}",
                put(control::add_moderator).delete(control::remove_moderator),
            )
            .route("/v1/rooms/{room_id}/reservations", post(http::reserve))
            .route(
                "/v1/rooms/{room_id}/messages",
                get(http::messages).post(http::send),
            )
            .route(
                "/v1/rooms/{room_id}/messages/{seq}",
                patch(http::edit).delete(http::redact),
            )
            .route("/v1/rooms/{room_id}/read", put(http::mark_read))
            .route("/v1/rooms/{room_id}/signals", post(http::signal))
            .route("/v1/rooms/{room_id}/read/{user_id}", get(http::read_marker))
            .route(
                "/v1/rooms/{room_id}/invites/{user_id}",
                put(http::invite).delete(http::uninvite),
            )
            .method_not_allowed_fallback(http::method_not_allowed)
            .with_state(state);
        self.origin_policy().protect(routes)
    }

    /// The origin policy ([`parlor_wire::OriginPolicy`]) of
    /// [`WsConfig::allowed_origins`] and [`WsConfig::trust_forwarded`], for
    /// the server to protect the other routes it mounts (GraphQL) with the
    /// same rules.
    pub fn origin_policy(&self) -> OriginPolicy {
        let config = &self.state.config;
        OriginPolicy::new(&config.allowed_origins).trust_forwarded(config.trust_forwarded)
    }

    /// Closes every socket with 1001 ("server shutting down"); new sockets
    /// are closed the same way. Seats go to grace, as for any lost connection.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Open WebSocket connections.
    pub fn connections(&self) -> u64 {
        self.state.connections.get()
    }

    /// Connections closed with 4409 (too slow) since start.
    pub fn too_slow_closes(&self) -> u64 {
        self.state
            .too_slow_closes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Send→ack latency (seconds) of WebSocket and HTTP sends.
    pub fn send_latency(&self) -> HistogramSnapshot {
        self.state.send_latency.snapshot()
    }
}
