//! # parlor-embed
//!
//! The smallest integration: Parlor's engine on SQLite with only the GraphQL
//! transport, mounted in your own axum app next to your own routes.
//!
//! Run with: `cargo run -p parlor-embed`, then open <http://127.0.0.1:3000/graphql>
//! and send `{"authorization": "Bearer dev:alice"}` as the connection payload.
//!
//! ```no_run
//! # async fn demo() -> parlor_engine::Result<()> {
//! let app = parlor_embed::app("sqlite://embed.db?mode=rwc").await?;
//! # let _ = app; Ok(()) }
//! ```

use std::sync::Arc;

use axum::{Router, routing::get};
use parlor_engine::{Engine, EngineConfig};
use parlor_graphql::{GraphqlConfig, GraphqlTransport};
use parlor_seaorm::SeaOrmStore;

/// Your app: your routes, plus chat at `/graphql` and `/graphql/ws`.
pub async fn app(database_url: &str) -> parlor_engine::Result<Router> {
    let store = SeaOrmStore::open(database_url).await?;
    let engine = Engine::builder(Arc::new(store))
        .config(EngineConfig::default())
        .start()
        .await?;
    // Dev tokens (`dev:<user>`) keep this short: use parlor_auth::JwtAuthenticator for real users.
    let chat = GraphqlTransport::new(
        Arc::new(engine),
        Arc::new(parlor_auth::DevTokens),
        GraphqlConfig::default(),
    );
    Ok(Router::new()
        .route("/", get(|| async { "my app; chat is at /graphql" }))
        .merge(chat.router()))
}
