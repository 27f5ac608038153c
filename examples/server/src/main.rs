//! Run with: `cargo run --release -p parlor-server -- --dev-auth`
//!
//! Parlor's reference server. Flags and `PARLOR_*` variables: `--help`.
//! `--print-schema` prints the GraphQL schema and exits.
//! Logs go to stderr through `tracing`; set `RUST_LOG` to change the level.

use std::process::ExitCode;

use parlor_server::{Config, serve};
use tracing_subscriber::EnvFilter;

// mimalloc: a chat server allocates many small, short-lived buffers (frames,
// entries) from many threads; glibc's malloc spent a quarter of the append
// path's CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = Config::from_args(std::env::args_os()).unwrap_or_else(|e| e.exit());
    if config.print_schema {
        // The schema is this command's output, not a log line.
        use std::io::Write;
        let written = std::io::stdout().write_all(parlor_graphql::sdl().as_bytes());
        return if written.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let listener = match tokio::net::TcpListener::bind(config.bind).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(bind = %config.bind, "cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    match serve(config, listener, stop_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("parlor-server did not start: {e}");
            ExitCode::from(2)
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
