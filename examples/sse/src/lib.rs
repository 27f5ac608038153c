//! # parlor-sse
//!
//! A third transport, written outside the core crates to prove the plug-in
//! boundary: it uses nothing but `parlor-engine`'s public API (the
//! [`ChatEngine`] trait and the [`Authenticator`] port), axum, and
//! `parlor-wire` for the contract's JSON (entries, the facts of a join, the
//! error body, HTTP error answers) — the same encoding as the raw WebSocket
//! and its HTTP routes. The stream is Server-Sent Events; sending and
//! leaving are plain HTTP.
//!
//! | request | answer |
//! |---|---|
//! | `GET /sse/v1/rooms/{room}/events?after_seq=&capacity=&title=&private=` | `text/event-stream`: `joined`, then `entry` events with `id: <seq>` and `receipt` events |
//! | `POST /sse/v1/rooms/{room}/messages` `{"client_id", "body"}` | 201 entry |
//! | `POST /sse/v1/rooms/{room}/leave` | 204 |
//!
//! Opening the stream is the whole two-phase join: the transport reserves a
//! seat (creating the room when `capacity` is given) and commits the ticket
//! at once, so a browser `EventSource` that reconnects by itself — sending
//! `Last-Event-ID`, the last seq it saw — resumes on its own seat with no gap
//! and no duplicate. A dropped stream sends the seat to grace; `leave` frees
//! it. Tokens go in `Authorization: Bearer …`, or in `access_token=` for
//! `EventSource`, which cannot set headers.
//!
//! The events (their data are the JSON shapes of docs/contract.md):
//!
//! | event | data |
//! |---|---|
//! | `joined` | `{"room_id", "capacity", "occupancy", "last_seq", "first_seq", "resumed", "members"}`; `resumed` is false when retention pruned entries after the resume point (the stream goes on from `first_seq`) |
//! | `entry` (with `id: <seq>`) | an entry (docs/contract.md §3): messages, joins, leaves, edits, redactions |
//! | `receipt` (no `id`) | `{"room_id", "user_id", "seq", "at"}`: another member marked the room read |
//! | `left` | `{}`, or `{"reason": "kicked" \| "room_closed"}`; the stream ends |
//! | `error` | `{"error": {"code", "message"}}`, e.g. `HISTORY_PRUNED` when retention overtook the stream; the stream ends (the seat goes to grace) and a reconnect with `Last-Event-ID` resumes |
//!
//! Run with: `cargo run -p parlor-sse`, then
//! `curl -N 'localhost:8090/sse/v1/rooms/lobby/events?capacity=10' -H 'Authorization: Bearer dev:alice'`.
//!
//! ```
//! # async fn demo(engine: std::sync::Arc<dyn parlor_engine::ChatEngine>) {
//! use std::sync::Arc;
//! let sse = parlor_sse::SseTransport::new(engine, Arc::new(parlor_auth::DevTokens));
//! let app: axum::Router = axum::Router::new().merge(sse.router());
//! # let _ = app;
//! # }
//! ```

mod events;
mod routes;

use std::{sync::Arc, time::Duration};

use axum::Router;
use parlor_engine::{Authenticator, ChatEngine};

/// The SSE transport: an axum router over an engine and an authenticator.
pub struct SseTransport {
    state: Arc<SseState>,
}

struct SseState {
    engine: Arc<dyn ChatEngine>,
    auth: Arc<dyn Authenticator>,
    /// How often an open stream gets a `: ping` comment line.
    ping_interval: Duration,
}

impl SseTransport {
    /// A transport over `engine`, checking tokens with `auth`.
    pub fn new(engine: Arc<dyn ChatEngine>, auth: Arc<dyn Authenticator>) -> Self {
        SseTransport {
            state: Arc::new(SseState {
                engine,
                auth,
                ping_interval: Duration::from_secs(25),
            }),
        }
    }

    /// How often every open stream gets a `: ping` comment line (25 s, as
    /// the WebSocket transports' `--ping-interval`). A keep-alive only: it
    /// keeps proxies (60 s idle cut-off in nginx) from closing a quiet
    /// stream and lets a reader see the server is there; nothing answers it
    /// (an `EventSource` ignores comment lines).
    pub fn ping_interval(mut self, every: Duration) -> Self {
        self.state = Arc::new(SseState {
            engine: Arc::clone(&self.state.engine),
            auth: Arc::clone(&self.state.auth),
            ping_interval: every.max(Duration::from_millis(1)),
        });
        self
    }

    /// The routes under `/sse/v1`.
    pub fn router(&self) -> Router {
        routes::router(Arc::clone(&self.state))
    }
}
