//! The [`EventSink`] port: where the engine delivers room events (a
//! webhook). The engine decides *what* and *when* — each room's events in
//! order, from a durable cursor, retried until taken — and the sink only
//! carries a batch out (`parlor-webhook`: a signed HTTP `POST`). Like
//! socketioxide-core's `SocketEmitter`, the lower layer calls out through
//! a trait and never imports a transport.

use async_trait::async_trait;

use crate::{error::Result, events::RoomEvent};

/// A receiver of room events.
#[async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// The name storage keeps this sink's cursors under, also shown in
    /// logs and metrics, so it reveals no secret (a webhook: its URL
    /// without credentials or query, and a hash of the whole URL). Two
    /// sinks of one engine never share a name; a sink whose name changes
    /// starts over as a new hook.
    fn name(&self) -> &str;

    /// The name for logs and metrics (default: [`name`](Self::name)).
    fn label(&self) -> String {
        self.name().to_owned()
    }

    /// Hands `events` (1..=`EngineConfig::webhook_batch` of them, each
    /// room's in order) to the receiver. `Ok` only when the receiver took
    /// them all (HTTP: a 2xx answer); anything else is retried with the
    /// same events, ids included, so a receiver dedupes by `id`.
    ///
    /// Errors: any; the engine retries with backoff and never drops events.
    async fn deliver(&self, events: &[RoomEvent]) -> Result<()>;
}
