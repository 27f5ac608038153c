//! Webhook delivery (docs/contract.md §10): each hook's task
//! reads the rooms' events from storage after the hook's durable cursor,
//! hands a batch to its `EventSink`, and moves the cursors only when the
//! sink took it. So delivery is at least once and in order per room, a
//! stop of any kind resumes where the cursors stand, and appends never
//! wait for a hook: the task reads what they stored, after they stored it.
//!
//! A room's stream is its log merged with its outbox rows, each row after
//! the entry at its `after_seq`. The merge is safe against appends running
//! at the same time: an outbox row is written under the room's lock with
//! `after_seq` = the head, so once entry `s` is visible every row placed
//! before it is too; a round delivers up to the last entry it read and the
//! rows placed up to it, and a row placed after it waits for the next round.
//!
//! In a cluster one node at a time delivers a hook (a lease tied to the
//! node's own, `SeatLeases::hold_webhook`); cursors move by compare-and-set,
//! so a node that lost the lease mid-request cannot move them past events
//! the new holder has not delivered.

use std::{
    sync::{Arc, Weak, atomic::Ordering},
    time::Duration,
};

use rand::Rng;
use tokio::{sync::watch, time::Instant};

use crate::{
    entry::SeqRange,
    error::Result,
    events::RoomEvent,
    hooks::Hook,
    ids::RoomId,
    ports::{CursorMove, Store, WebhookCursor},
    state::EngineState,
};

/// How many rooms one round looks at; the batch is shared out among them.
const ROOMS_PER_ROUND: u32 = 64;
/// The first wait after a failed try; each further failure doubles it.
const FIRST_RETRY: Duration = Duration::from_millis(200);

/// Runs `hook`'s delivery until the engine is dropped. `changes` ticks
/// when something was stored (an append, a control change).
pub(crate) async fn run(
    engine: Weak<EngineState>,
    hook: Arc<Hook>,
    mut changes: watch::Receiver<()>,
) {
    let Some((store, config)) = engine
        .upgrade()
        .map(|s| (Arc::clone(&s.store), s.config.clone()))
    else {
        return;
    };
    let mut start: Option<RoomId> = None;
    let mut lease = Lease::default();
    let mut idle = false;
    loop {
        if idle {
            match lease.until.filter(|_| !lease.holds) {
                // Another node delivers: nothing to do before asking again
                // (an append here must not make this node ask each time).
                Some(until) => tokio::time::sleep_until(until).await,
                None => tokio::select! {
                    changed = changes.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(config.webhook_poll) => {}
                },
            }
        }
        idle = true;
        match holds(&engine, &hook, &mut lease).await {
            None => return,
            Some(false) => continue,
            Some(true) => {}
        }
        let round = collect(store.as_ref(), &hook, &mut start, config.webhook_batch).await;
        let (events, advances) = match round {
            Ok(round) => round,
            Err(err) => {
                tracing::warn!(hook = %hook.label, code = err.code(), "could not read the events to deliver");
                continue;
            }
        };
        if events.is_empty() {
            continue;
        }
        match deliver(
            &engine,
            &hook,
            &events,
            config.webhook_retry_max,
            &mut lease,
        )
        .await
        {
            Delivered::Taken => {}
            // Another node delivers from the stored cursors now.
            Delivered::LeaseLost => continue,
            Delivered::EngineGone => return,
        }
        // One transaction for the whole batch's cursors. A cursor that
        // moved meanwhile (another node delivered, a purge reset it) stays:
        // the next round reads from where it is now.
        match store.advance_webhook(hook.name(), &advances).await {
            Ok(moved) => {
                let stale = moved.iter().filter(|m| !**m).count();
                if stale == moved.len() {
                    // Nothing moved: another node delivers, or another
                    // node's start forgot this hook. Either way, not again
                    // at once (a forgotten hook would resend in a loop).
                    tracing::warn!(hook = %hook.label, "no cursor moved: another node delivers, or the hook is not registered");
                    continue;
                }
                if stale > 0 {
                    tracing::debug!(hook = %hook.label, stale, "cursors moved meanwhile");
                }
            }
            Err(err) => {
                // The same events go again; not at once, or a store that
                // reads but cannot write would have them sent in a loop.
                tracing::warn!(hook = %hook.label, code = err.code(), "could not store the webhook's cursors; their events go again");
                tokio::time::sleep(config.webhook_poll).await;
                continue;
            }
        }
        idle = false;
    }
}

/// What this node last learnt of its hold on a hook, and until when it
/// goes by it without asking.
#[derive(Default)]
struct Lease {
    holds: bool,
    until: Option<Instant>,
}

/// Whether this node delivers `hook` now (`None`: the engine is gone):
/// always on a single node; in a cluster while it holds the hook's lease,
/// asked every third of the lease ttl — a node that lost its lease may
/// deliver for up to that long after another took over; the cursors'
/// compare-and-set keeps that from skipping or rewinding anything.
async fn holds(engine: &Weak<EngineState>, hook: &Hook, lease: &mut Lease) -> Option<bool> {
    let state = engine.upgrade()?;
    let Some(cluster) = &state.cluster else {
        return Some(true);
    };
    if lease.until.is_some_and(|until| Instant::now() < until) {
        return Some(lease.holds);
    }
    let asked = cluster
        .leases
        .hold_webhook(hook.name(), &cluster.node_id)
        .await;
    lease.holds = asked.as_ref().is_ok_and(|held| *held);
    lease.until = Some(Instant::now() + cluster.lease_ttl / 3);
    if let Err(err) = asked {
        tracing::warn!(hook = %hook.label, code = err.code(), "could not renew the webhook's lease");
    }
    Some(lease.holds)
}

/// One round's events: up to `batch` of them from up to
/// [`ROOMS_PER_ROUND`] rooms behind, each room's in order. The rooms are
/// taken in id order from where the last round stopped, so every room's
/// turn comes.
async fn collect(
    store: &dyn Store,
    hook: &Hook,
    start: &mut Option<RoomId>,
    batch: u32,
) -> Result<(Vec<RoomEvent>, Vec<CursorMove>)> {
    let mut rooms = store
        .webhook_rooms(hook.name(), start.as_ref(), ROOMS_PER_ROUND)
        .await?;
    if rooms.is_empty() && start.is_some() {
        rooms = store
            .webhook_rooms(hook.name(), None, ROOMS_PER_ROUND)
            .await?;
    }
    *start = if rooms.len() < ROOMS_PER_ROUND as usize {
        None
    } else {
        rooms.last().cloned()
    };
    let mut events = Vec::new();
    let mut advances = Vec::new();
    let share = (batch / u32::try_from(rooms.len()).unwrap_or(u32::MAX).max(1)).max(1);
    for room in rooms {
        // Never past the batch's bound, however few events it allows.
        let left = batch.saturating_sub(u32::try_from(events.len()).unwrap_or(u32::MAX));
        if left == 0 {
            break;
        }
        let take = share.min(left);
        let (from, to, backlog) = room_backlog(store, hook.name(), &room, take).await?;
        if !backlog.is_empty() {
            events.extend(backlog);
            advances.push(CursorMove { room, from, to });
        }
    }
    Ok((events, advances))
}

/// Up to `limit` of `room`'s events after `hook`'s cursor, in order, with
/// the cursor before and after them.
async fn room_backlog(
    store: &dyn Store,
    hook: &str,
    room: &RoomId,
    limit: u32,
) -> Result<(Option<WebhookCursor>, WebhookCursor, Vec<RoomEvent>)> {
    let cursor = store.webhook_cursor(hook, room).await?;
    // No cursor yet: from the oldest stored entry (a purged room: none).
    let base = match cursor {
        Some(cursor) => cursor,
        None => WebhookCursor {
            seq: store
                .room(room)
                .await?
                .map_or(0, |r| r.first_seq.saturating_sub(1)),
            outbox_id: 0,
            epoch: 0,
        },
    };
    let entries = store
        .entries(room, SeqRange::after(base.seq, limit))
        .await?;
    // Rows placed up to the last entry read; with none read, up to where
    // the cursor stands (a row placed after an entry not read yet waits).
    let upto = entries.last().map_or(base.seq, |e| e.seq);
    let outbox = store.outbox(room, base.outbox_id, upto, limit).await?;
    let mut to = base;
    let mut events = Vec::with_capacity(entries.len() + outbox.len());
    let mut outbox = outbox.into_iter().peekable();
    let limit = limit as usize;
    for entry in entries {
        while events.len() < limit
            && let Some(row) = outbox.next_if(|o| o.after_seq < entry.seq)
        {
            to.outbox_id = row.outbox_id;
            events.push(RoomEvent::Control(row));
        }
        if events.len() >= limit {
            break;
        }
        to.seq = entry.seq;
        events.push(RoomEvent::Entry(entry));
    }
    for row in outbox {
        if events.len() >= limit || row.after_seq > to.seq {
            break;
        }
        to.outbox_id = row.outbox_id;
        events.push(RoomEvent::Control(row));
    }
    // A purge between the reads above rewound the room: what was read may
    // mix two incarnations. Nothing of it goes this round.
    if !events.is_empty() && store.webhook_cursor(hook, room).await? != cursor {
        return Ok((cursor, base, Vec::new()));
    }
    Ok((cursor, to, events))
}

/// How a delivery ended.
enum Delivered {
    /// The receiver took the batch.
    Taken,
    /// This node no longer holds the hook: the batch is dropped.
    LeaseLost,
    /// The engine was dropped meanwhile.
    EngineGone,
}

/// Hands `events` to the hook's sink until it takes them, waiting longer
/// after each failure, while this node still holds the hook.
async fn deliver(
    engine: &Weak<EngineState>,
    hook: &Hook,
    events: &[RoomEvent],
    retry_max: Duration,
    lease: &mut Lease,
) -> Delivered {
    let mut failures: u32 = 0;
    loop {
        match hook.sink.deliver(events).await {
            Ok(()) => {
                hook.delivered
                    .fetch_add(events.len() as u64, Ordering::Relaxed);
                if hook.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(hook = %hook.label, "webhook delivers again");
                }
                return Delivered::Taken;
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                hook.failed_tries.fetch_add(1, Ordering::Relaxed);
                let (wait, capped) = retry_wait(failures, retry_max);
                if capped && !hook.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(hook = %hook.label, failures, "webhook is failing; still retrying");
                }
                tracing::warn!(
                    hook = %hook.label, code = err.code(), error = %err, failures,
                    wait_ms = wait.as_millis() as u64, events = events.len(),
                    "webhook delivery failed"
                );
                tokio::time::sleep(wait).await;
                match holds(engine, hook, lease).await {
                    None => return Delivered::EngineGone,
                    Some(false) => return Delivered::LeaseLost,
                    Some(true) => {}
                }
            }
        }
    }
}

/// The wait after the `failures`-th failure in a row: 200 ms doubled each
/// time, capped at `max`, then drawn from its upper half (jitter, so hooks
/// and nodes that failed together do not retry together); and whether the
/// cap was reached.
fn retry_wait(failures: u32, max: Duration) -> (Duration, bool) {
    let doubled = FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(20));
    let capped = doubled >= max;
    let wait = doubled.min(max);
    let jittered = wait.mul_f64(rand::rng().random_range(0.5..=1.0));
    (jittered, capped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_waits_double_with_jitter_up_to_the_cap() {
        let max = Duration::from_secs(10);
        for failures in 1..40 {
            let (wait, capped) = retry_wait(failures, max);
            let full = FIRST_RETRY
                .saturating_mul(1 << (failures - 1).min(20))
                .min(max);
            assert!(wait <= full && wait >= full / 2, "{failures}: {wait:?}");
            assert_eq!(capped, full == max, "{failures}");
        }
        // 200 ms · 2^6 = 12.8 s: the 7th failure in a row reaches 10 s.
        assert!(!retry_wait(6, max).1);
        assert!(retry_wait(7, max).1);
    }
}
