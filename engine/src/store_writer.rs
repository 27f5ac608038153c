//! [`StoreWriter`]: the one path from every room's append task to storage.
//! Batches from different rooms that wait at the same time are stored in
//! **one** transaction — group commit across rooms.
//!
//! Why: a room's task already batches that room's waiting sends, but a busy
//! server has many rooms with a few sends each. Alone, each room would run a
//! small transaction of its own, and a store with a single writer (SQLite)
//! would do them one after another, each with its own fsync. Through one
//! writer, a hundred rooms' batches become one commit. A room task waits for
//! its batch's outcome before it takes its next batch, so each room's entries
//! still reach storage in queue order, and the Store rule that one call is
//! one all-or-nothing transaction still holds for every batch inside it.
//!
//! A database server runs several transactions at once well: the writer keeps
//! up to [`Store::append_lanes`] in flight (SQLite: 1). The next group forms
//! from what waits meanwhile; never two batches of one room, as above.

use std::sync::{Arc, atomic::Ordering};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinSet,
};

use crate::{
    entry::NewEntry,
    error::{Error, ErrorKind},
    ports::{Appended, Store},
    stats::Counters,
};

/// Where a batch's outcomes go.
type Reply = oneshot::Sender<Result<Vec<Appended>, Refused>>;

/// A room's batch and where its outcomes go.
struct Submission {
    entries: Vec<NewEntry>,
    reply: Reply,
}

/// A batch that was not stored, handed back with why: the room re-queues
/// its joins and leaves.
pub(crate) struct Refused {
    pub(crate) error: Error,
    pub(crate) entries: Vec<NewEntry>,
}

/// The handle room tasks append through. The writer task ends when the last
/// handle (the engine) is dropped.
pub(crate) struct StoreWriter {
    submissions: mpsc::Sender<Submission>,
}

impl StoreWriter {
    /// Starts the writer: at most `batch_max` entries per transaction (a
    /// single larger batch still goes alone), and at most `queue` batches
    /// waiting — room tasks wait beyond that.
    pub(crate) fn start(
        store: Arc<dyn Store>,
        batch_max: usize,
        queue: usize,
        counters: Arc<Counters>,
        changes: Arc<watch::Sender<()>>,
    ) -> Self {
        let (submissions, inbox) = mpsc::channel(queue.max(1));
        tokio::spawn(write(store, batch_max.max(1), inbox, counters, changes));
        StoreWriter { submissions }
    }

    /// Stores `entries` (one room's batch) and returns one outcome per entry.
    pub(crate) async fn append(&self, entries: Vec<NewEntry>) -> Result<Vec<Appended>, Refused> {
        let (reply, outcome) = oneshot::channel();
        let gone = |entries| Refused {
            error: Error::new(ErrorKind::Unavailable, "the engine is shutting down"),
            entries,
        };
        if let Err(unsent) = self.submissions.send(Submission { entries, reply }).await {
            return Err(gone(unsent.0.entries));
        }
        outcome.await.unwrap_or_else(|_| Err(gone(Vec::new())))
    }
}

async fn write(
    store: Arc<dyn Store>,
    batch_max: usize,
    mut inbox: mpsc::Receiver<Submission>,
    counters: Arc<Counters>,
    changes: Arc<watch::Sender<()>>,
) {
    let lanes = store.append_lanes().max(1);
    let mut in_flight = JoinSet::new();
    // A submission that did not fit in the last transaction opens the next.
    let mut carried: Option<Submission> = None;
    loop {
        if in_flight.len() >= lanes {
            in_flight.join_next().await;
            continue;
        }
        let first = match carried.take() {
            Some(s) => s,
            None => tokio::select! {
                // Reaps a finished transaction, freeing its lane.
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => continue,
                s = inbox.recv() => match s {
                    Some(s) => s,
                    None => break,
                },
            },
        };
        let mut total = first.entries.len();
        let mut group = vec![first];
        while total < batch_max {
            match inbox.try_recv() {
                Ok(next) if total + next.entries.len() <= batch_max => {
                    total += next.entries.len();
                    group.push(next);
                }
                Ok(next) => {
                    carried = Some(next);
                    break;
                }
                Err(_) => break,
            }
        }
        in_flight.spawn(commit(
            Arc::clone(&store),
            group,
            total,
            Arc::clone(&counters),
            Arc::clone(&changes),
        ));
    }
    while in_flight.join_next().await.is_some() {}
}

/// Ticks `changes` when dropped.
struct WakeOnDrop(Arc<watch::Sender<()>>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        self.0.send_replace(());
    }
}

/// One transaction for the whole group; each batch gets its own outcomes.
async fn commit(
    store: Arc<dyn Store>,
    group: Vec<Submission>,
    total: usize,
    counters: Arc<Counters>,
    changes: Arc<watch::Sender<()>>,
) {
    // Whatever happens below, some batch may have been stored: the
    // webhooks look (a spurious wake costs them one read).
    let _wake = WakeOnDrop(changes);
    let mut entries = Vec::with_capacity(total);
    let mut replies = Vec::with_capacity(group.len());
    for submission in group {
        replies.push((submission.entries.len(), submission.reply));
        entries.extend(submission.entries);
    }
    match store.append(&entries).await {
        Ok(outcomes) if outcomes.len() == total => {
            counters.append_batches.fetch_add(1, Ordering::Relaxed);
            counters.batch_sizes.observe(total as f64);
            let mut outcomes = outcomes.into_iter();
            for (n, reply) in replies {
                let _ = reply.send(Ok(outcomes.by_ref().take(n).collect()));
            }
        }
        Ok(outcomes) => {
            tracing::error!(
                sent = total,
                got = outcomes.len(),
                "store answered an append with the wrong number of outcomes"
            );
            let err = Error::new(ErrorKind::Internal, "internal error");
            refuse(entries, replies, &err);
        }
        Err(err) if replies.len() > 1 && !err.kind().is_temporary() => {
            // One batch's fault (a room purged meanwhile, say) must not fail
            // the other rooms' batches it shared the transaction with: each
            // goes again alone, and only the faulty one fails.
            tracing::warn!(
                code = err.code(),
                batches = replies.len(),
                "a shared append transaction failed; storing its batches one by one"
            );
            let mut entries = entries.into_iter();
            for (n, reply) in replies {
                let batch: Vec<NewEntry> = entries.by_ref().take(n).collect();
                let outcome = match store.append(&batch).await {
                    Ok(outcomes) if outcomes.len() == n => {
                        counters.append_batches.fetch_add(1, Ordering::Relaxed);
                        counters.batch_sizes.observe(n as f64);
                        Ok(outcomes)
                    }
                    Ok(_) => Err(Refused {
                        error: Error::new(ErrorKind::Internal, "internal error"),
                        entries: batch,
                    }),
                    Err(error) => Err(Refused {
                        error,
                        entries: batch,
                    }),
                };
                let _ = reply.send(outcome);
            }
        }
        Err(err) => {
            tracing::warn!(code = err.code(), error = ?std::error::Error::source(&err),
                entries = total, "append transaction failed");
            refuse(entries, replies, &err);
        }
    }
}

/// Hands each batch its own entries back, with the error.
fn refuse(mut entries: Vec<NewEntry>, replies: Vec<(usize, Reply)>, err: &Error) {
    for (n, reply) in replies {
        let _ = reply.send(Err(Refused {
            error: Error::new(err.kind(), err.message()),
            entries: entries.drain(..n).collect(),
        }));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        ids::{RoomId, UserId},
        room::StoredRoom,
        testkit::MemoryStore,
    };

    fn text(room: &str, client_id: &str) -> NewEntry {
        NewEntry::text(
            RoomId::new(room).unwrap(),
            UserId::new("ann").unwrap(),
            client_id,
            "hi",
        )
    }

    /// A batch for a room that is not stored (purged while queued) fails
    /// alone: the batches that shared its transaction are stored.
    #[tokio::test]
    async fn one_rooms_fault_does_not_fail_the_batches_it_shared_a_commit_with() {
        let store = Arc::new(MemoryStore::default());
        let stored = StoredRoom {
            id: RoomId::new("a").unwrap(),
            capacity: 5,
            title: None,
            last_seq: 0,
            owner: None,
            private: false,
            closed: false,
            first_seq: 1,
            retention: None,
        };
        store.create_room(&stored).await.unwrap();
        store.set_latency(Duration::from_millis(50));
        let writer = StoreWriter::start(
            Arc::clone(&store) as Arc<dyn Store>,
            256,
            64,
            Arc::new(Counters::default()),
            Arc::new(watch::channel(()).0),
        );
        // The first occupies the one lane; the next two wait and then share
        // a transaction.
        let later = |room: &'static str, client_id: &'static str| {
            let writer = &writer;
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                writer.append(vec![text(room, client_id)]).await
            }
        };
        let (first, gone, second) = tokio::join!(
            writer.append(vec![text("a", "1")]),
            later("gone", "x"),
            later("a", "2"),
        );
        assert!(first.is_ok());
        let Err(refused) = gone else {
            panic!("a room that is not stored was appended to");
        };
        assert_eq!(refused.error.kind(), ErrorKind::RoomNotFound);
        let Ok(second) = second else {
            panic!("a batch failed with its neighbour");
        };
        assert_eq!(second[0].entry().map(|e| e.seq), Some(2));
    }
}
