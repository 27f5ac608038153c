//! # parlor-graphql
//!
//! Parlor's GraphQL transport (CONTRACT §6): an async-graphql 7 schema over
//! any `Arc<dyn ChatEngine>`, served by axum through async-graphql-axum —
//! `POST /graphql`, GraphiQL on `GET /graphql`, and subscriptions on
//! `/graphql/ws` over `graphql-transport-ws` and the legacy `graphql-ws`.
//! It depends on `parlor-engine` only; engine error kinds become
//! `extensions.code` here and only here.
//!
//! `joinRoom(ticket, afterSeq)` commits the ticket when the subscription
//! starts: first a `Joined` event, then every entry in seq order, each once.
//! Completing the subscription (or `leaveRoom`, or closing the socket with
//! 1000) is a leave; a lost socket sends the seat to grace.
//!
//! ```
//! use std::sync::Arc;
//! use parlor_engine::{Engine, EngineConfig, auth::DevTokens};
//! use parlor_graphql::{GraphqlConfig, GraphqlTransport};
//! # use parlor_engine::testkit::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let store = Arc::new(MemoryStore::default());
//! let engine = Engine::start(store, EngineConfig::default()).await?;
//! let graphql = GraphqlTransport::new(Arc::new(engine), Arc::new(DevTokens), GraphqlConfig::default());
//! let app: axum::Router = graphql.router(); // mount it in your axum app
//! # drop(app);
//! # Ok(()) }
//! ```

mod config;
mod errors;
pub mod schema;
mod socket;

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, header::AUTHORIZATION},
    response::Html,
    routing::get,
};
use parlor_engine::{Authenticator, ChatEngine, Gauge};
use tokio::sync::watch;

pub use config::GraphqlConfig;
pub use schema::{ParlorSchema, sdl};

pub(crate) struct GraphqlState {
    schema: ParlorSchema,
    auth: Arc<dyn Authenticator>,
    config: GraphqlConfig,
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
            schema: schema::build(engine, config.clone()),
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

    /// `/graphql` (POST queries and mutations, GET GraphiQL) and `/graphql/ws`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/graphql", get(graphiql).post(execute))
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

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

async fn execute(
    State(state): State<Arc<GraphqlState>>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let mut request = request.into_inner();
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = token
        && let Ok(principal) = state.auth.authenticate(token.trim()).await
    {
        request = request.data(schema::Viewer(principal.user));
    }
    state.schema.execute(request).await.into()
}
