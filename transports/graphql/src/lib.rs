//! # parlor-graphql
//!
//! Parlor's GraphQL transport (docs/contract.md §6): an async-graphql 7 schema over
//! any `Arc<dyn ChatEngine>`, served by axum — `/graphql` over HTTP as the
//! GraphQL-over-HTTP spec says (POST, GET for queries, GraphiQL for
//! browsers), and subscriptions on `/graphql/ws` over `graphql-transport-ws`
//! (to the letter of its PROTOCOL.md) and the legacy `graphql-ws`, with a
//! heartbeat (WebSocket pings; a silent socket is closed as lost).
//! It depends on `parlor-engine` only; engine error kinds become
//! `extensions.code` here and only here.
//!
//! `joinRoom(ticket, afterSeq)` commits the ticket when the subscription
//! starts: first a `Joined` event, then every entry in seq order, each once
//! (edits and redactions are entries too), and other members' read
//! `Receipt`s as they come. Completing the subscription (or `leaveRoom`, or
//! the client closing the socket with 1000) is a leave; a lost socket —
//! including every close the server makes, even for something the client
//! sent — and a subscription the server ends with an error
//! (`HISTORY_PRUNED`, …) send the seat to grace.
//!
//! ```
//! use std::sync::Arc;
//! use parlor_auth::DevTokens;
//! use parlor_engine::{Engine, EngineConfig};
//! use parlor_graphql::{GraphqlConfig, GraphqlTransport};
//! # use parlor_engine::testkit::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let store = Arc::new(MemoryStore::default());
//! let engine = Engine::builder(store).config(EngineConfig::default()).start().await?;
//! let graphql = GraphqlTransport::new(Arc::new(engine), Arc::new(DevTokens), GraphqlConfig::default());
//! let app: axum::Router = graphql.router(); // mount it in your axum app
//! # drop(app);
//! # Ok(()) }
//! ```

mod close;
mod config;
mod errors;
mod executor;
mod graphiql;
mod http;
pub mod schema;
mod shared_delivery;
mod socket;

use std::sync::Arc;

use axum::{Router, routing::get};
use parlor_engine::{Authenticator, ChatEngine, Gauge};
use tokio::sync::watch;

pub use config::GraphqlConfig;
pub use schema::{ParlorSchema, sdl};

pub(crate) struct GraphqlState {
    schema: executor::TransportSchema,
    auth: Arc<dyn Authenticator>,
    config: GraphqlConfig,
    /// The GraphiQL page, built once.
    graphiql: String,
    connections: Gauge,
    shutdown: watch::Receiver<bool>,
}

/// The transport: build it once, mount its [`router`](GraphqlTransport::router),
/// call [`shutdown`](GraphqlTransport::shutdown) when the server stops.
pub struct GraphqlTransport {
    state: Arc<GraphqlState>,
    shutdown: watch::Sender<bool>,
}

impl GraphqlTransport {
    /// A transport over `engine`, authenticating with `auth`.
    pub fn new(
        engine: Arc<dyn ChatEngine>,
        auth: Arc<dyn Authenticator>,
        config: GraphqlConfig,
    ) -> Self {
        let (shutdown, watching) = watch::channel(false);
        let state = GraphqlState {
            schema: executor::TransportSchema::new(schema::build(engine, config.clone())),
            graphiql: graphiql::page(config.graphiql_token.as_deref()),
            auth,
            config,
            connections: Gauge::default(),
            shutdown: watching,
        };
        GraphqlTransport {
            state: Arc::new(state),
            shutdown,
        }
    }

    /// `/graphql` (GraphQL over HTTP: POST, GET for queries, GraphiQL for
    /// browsers) and `/graphql/ws`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/graphql", get(http::get).post(http::post))
            .route("/graphql/ws", get(socket::upgrade))
            .with_state(Arc::clone(&self.state))
    }

    /// Closes every GraphQL socket with 1001.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Open GraphQL sockets.
    pub fn connections(&self) -> u64 {
        self.state.connections.get()
    }
}
