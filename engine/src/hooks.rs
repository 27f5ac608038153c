//! [`Hook`]: one webhook's sink and what its delivery task has done,
//! shared by the task (`webhooks.rs`) and the engine's stats. It sits
//! below both, so that the engine's state holds hooks without naming the
//! task that runs them.

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use crate::ports::EventSink;

/// One hook and what its task has done, for `/metrics`.
pub(crate) struct Hook {
    pub(crate) sink: Arc<dyn EventSink>,
    pub(crate) label: String,
    pub(crate) delivered: AtomicU64,
    pub(crate) failed_tries: AtomicU64,
    pub(crate) failing: AtomicBool,
}

impl Hook {
    pub(crate) fn new(sink: Arc<dyn EventSink>) -> Self {
        Hook {
            label: sink.label(),
            sink,
            delivered: AtomicU64::new(0),
            failed_tries: AtomicU64::new(0),
            failing: AtomicBool::new(false),
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.sink.name()
    }

    pub(crate) fn stats(&self) -> WebhookStats {
        WebhookStats {
            hook: self.label.clone(),
            delivered: self.delivered.load(Ordering::Relaxed),
            failed_tries: self.failed_tries.load(Ordering::Relaxed),
            failing: self.failing.load(Ordering::Relaxed),
        }
    }
}

/// What one webhook's delivery has done since the engine started
/// (`Engine::webhooks`; the server's `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookStats {
    /// The hook's label (its URL without query or credentials).
    pub hook: String,
    /// Events the receiver took (2xx), counting redeliveries.
    pub delivered: u64,
    /// Requests that failed (not 2xx, or no answer).
    pub failed_tries: u64,
    /// Whether the retry wait reached its cap (`webhook_retry_max`)
    /// without a success since: the receiver is down or refusing.
    pub failing: bool,
}
