//! Run with: `cargo run -p parlor-embed`

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let app = parlor_embed::app("sqlite://embed.db?mode=rwc").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
