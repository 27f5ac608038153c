//! Run with: `cargo run -p parlor-sse`
//!
//! A server with only the SSE transport, on SQLite (`parlor-sse.db`) and dev
//! tokens (`dev:<user>`), at <http://127.0.0.1:8090>.

use std::sync::Arc;

use parlor_auth::DevTokens;
use parlor_engine::{Engine, EngineConfig};
use parlor_seaorm::SeaOrmStore;
use parlor_sse::SseTransport;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    let store = SeaOrmStore::open("sqlite://parlor-sse.db?mode=rwc").await?;
    let engine = Engine::builder(Arc::new(store))
        .config(EngineConfig::default())
        .start()
        .await?;
    let sse = SseTransport::new(Arc::new(engine.clone()), Arc::new(DevTokens));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8090").await?;
    tracing::warn!("dev tokens are on: any client can be any user");
    tracing::info!(addr = %listener.local_addr()?, "parlor-sse listening");
    axum::serve(listener, sse.router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Every acked entry is stored already; let queued appends finish too.
    engine.flush(std::time::Duration::from_secs(5)).await;
    Ok(())
}
