//! [`PendingSend`]: a send that is queued in its room's log and not yet
//! durable — the second half of [`ChatEngine::submit`](crate::ChatEngine::submit).

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::oneshot;

use crate::{
    entry::Entry,
    error::{ErrorKind, Result},
    room_log::Stored,
};

/// Resolves to the stored entry once it is durable (or to why it was not).
/// Dropping it does not withdraw the send: the entry is stored either way.
#[derive(Debug)]
pub struct PendingSend(pub(crate) oneshot::Receiver<Stored>);

impl Future for PendingSend {
    type Output = Result<Arc<Entry>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|stored| match stored {
            Ok(Ok(Some(entry))) => Ok(entry),
            Ok(Err(err)) => Err(err),
            // A text entry always changes the log; no answer is a bug.
            Ok(Ok(None)) | Err(_) => Err(ErrorKind::Internal.into()),
        })
    }
}
