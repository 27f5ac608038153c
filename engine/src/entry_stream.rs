//! [`EntryStream`]: a room's entries after a point — backlog from storage,
//! then live — each exactly once, in seq order, with no gap at the seam.
//!
//! The stream subscribes to the live feed *before* it learns where the
//! backlog ends, so nothing can fall between the two. It then keeps one
//! number, `delivered`: a live entry at or below it is a duplicate and is
//! skipped; one above `delivered + 1` reveals a gap (a lagging feed, or a
//! bus that lost or reordered something) and sends the stream back to storage
//! until it has caught up. Storage is the truth; the live feed is a shortcut.

use std::{collections::VecDeque, sync::Arc};

use tokio::sync::{broadcast::error::RecvError, watch};

use crate::{
    entry::{Entry, MAX_HISTORY_LIMIT, Seq, SeqRange},
    error::{Error, ErrorKind, Result},
    ids::RoomId,
    ports::{LiveEntries, Store},
    stats::GaugeGuard,
};

/// How far the stream must read storage before it trusts the live feed.
#[derive(Debug, Clone, Copy)]
enum CatchUp {
    /// Up to and including this seq.
    UpTo(Seq),
    /// Until storage has nothing more (the feed lagged; we don't know how far).
    Exhaust,
}

/// One subscriber's gap-free view of a room log.
pub struct EntryStream {
    store: Arc<dyn Store>,
    room_id: RoomId,
    live: LiveEntries,
    delivered: Seq,
    catch_up: Option<CatchUp>,
    backlog: VecDeque<Arc<Entry>>,
    /// True once the seat was taken away (a leave of the room from anywhere).
    ended: watch::Receiver<bool>,
    _subscriber: GaugeGuard,
}

impl EntryStream {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        room_id: RoomId,
        live: LiveEntries,
        after: Seq,
        stored_up_to: Seq,
        ended: watch::Receiver<bool>,
        subscriber: GaugeGuard,
    ) -> Self {
        EntryStream {
            store,
            room_id,
            live,
            delivered: after,
            catch_up: (stored_up_to > after).then_some(CatchUp::UpTo(stored_up_to)),
            backlog: VecDeque::new(),
            ended,
            _subscriber: subscriber,
        }
    }

    /// The room this stream follows.
    pub fn room_id(&self) -> &RoomId {
        &self.room_id
    }

    /// The seq of the last entry handed out (or the join point).
    pub fn delivered(&self) -> Seq {
        self.delivered
    }

    /// The next entry. Cancel-safe: dropping the future loses nothing.
    /// After the user left the room from anywhere, `NOT_A_MEMBER`: the
    /// stream is over.
    pub async fn next(&mut self) -> Result<Arc<Entry>> {
        loop {
            if *self.ended.borrow() {
                return Err(Error::new(ErrorKind::NotAMember, "you left this room"));
            }
            if let Some(entry) = self.backlog.pop_front() {
                if entry.seq > self.delivered {
                    self.delivered = entry.seq;
                    return Ok(entry);
                }
                continue;
            }
            if let Some(catch_up) = self.catch_up {
                self.read_backlog(catch_up).await?;
                continue;
            }
            let received = tokio::select! {
                biased;
                _ = self.ended.changed() => continue,
                received = self.live.recv() => received,
            };
            match received {
                Ok(entry) if entry.seq <= self.delivered => continue,
                Ok(entry) if entry.seq == self.delivered + 1 => {
                    self.delivered = entry.seq;
                    return Ok(entry);
                }
                // A live entry is stored before it is published, so storage
                // has everything up to it.
                Ok(entry) => self.catch_up = Some(CatchUp::UpTo(entry.seq)),
                Err(RecvError::Lagged(_)) => self.catch_up = Some(CatchUp::Exhaust),
                Err(RecvError::Closed) => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "the room's live feed closed",
                    ));
                }
            }
        }
    }

    async fn read_backlog(&mut self, catch_up: CatchUp) -> Result<()> {
        let before = match catch_up {
            CatchUp::UpTo(seq) if seq <= self.delivered => {
                self.catch_up = None;
                return Ok(());
            }
            CatchUp::UpTo(seq) => Some(seq + 1),
            CatchUp::Exhaust => None,
        };
        let range = SeqRange {
            after: Some(self.delivered),
            before,
            limit: MAX_HISTORY_LIMIT,
        };
        let page = self.store.entries(&self.room_id, range).await?;
        if page.len() < MAX_HISTORY_LIMIT as usize {
            self.catch_up = None;
        }
        debug_assert!(
            page.first().is_none_or(|e| e.seq == self.delivered + 1)
                && page.windows(2).all(|w| w[1].seq == w[0].seq + 1),
            "storage returned a log with a gap"
        );
        self.backlog.extend(page.into_iter().map(Arc::new));
        Ok(())
    }
}

impl std::fmt::Debug for EntryStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryStream")
            .field("room_id", &self.room_id)
            .field("delivered", &self.delivered)
            .finish()
    }
}
