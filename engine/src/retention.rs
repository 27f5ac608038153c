//! The pruner (docs/contract.md §2, "Retention"): a background task that
//! deletes the oldest entries of rooms over their retention, in bounded
//! batches, never holding up appends.
//!
//! Every `retention_interval` it pages through the rooms that may be over a
//! bound (those with a retention of their own, or every room with entries
//! when the server has one), works out each room's bound — the count bound
//! as a seq (`last_seq - max_entries + 1`), the age bound as a time — and
//! asks the store to prune a page of rooms at a time, at most `prune_batch`
//! entries per call, until every room is within its bound. The calls are
//! paced ([`Pace`]): what a pass expects to delete is spread over the first
//! nine tenths of the period ([`SPREAD`]), and pruning never takes more
//! than half of a single writer's time. Seqs are never reused: `last_seq`
//! stays, `first_seq` moves up. In a cluster every node runs it; the store
//! lets one node at a time prune a room (Postgres: a transaction-scoped
//! advisory lock), and a node that finds the room busy leaves it to the
//! other.

use std::{sync::Weak, time::Duration};

use tokio::time::Instant;

use crate::{
    entry::{Seq, Timestamp},
    error::Result,
    ids::RoomId,
    ports::PruneBound,
    room::{Retention, StoredRoom},
    state::EngineState,
};

/// Rooms read per listing page of a pass.
const ROOMS_PER_PAGE: u32 = 500;

/// The share of the period a pass spreads what it expects to delete over.
///
/// Why nine tenths: the fewer calls at a time, the fewer appends wait for
/// one, and over half the period they came 1.8 times as close together as
/// they need to (docs/benchmarks.md, step 30); the tenth left over lets a
/// pass that runs a little late end before the next one is due.
const SPREAD: f64 = 0.9;

/// Runs passes until the engine is dropped.
pub(crate) async fn run(engine: Weak<EngineState>) {
    let Some(period) = engine.upgrade().map(|e| e.config.retention_interval) else {
        return;
    };
    // The first pass comes one period after start, not at once: a server
    // starting up has its joins and resumes to serve first, and a test that
    // prunes by hand (`prune_now`) does not race a pass it did not ask for.
    let period = period.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // What the last pass deleted: about what this one will (the rooms
    // grew for one period since).
    let mut last_deleted = 0;
    loop {
        tick.tick().await;
        if engine.strong_count() == 0 {
            return;
        }
        let pace = Pace::spread(Instant::now(), period.mul_f64(SPREAD), last_deleted);
        match prune_pass(&engine, pace).await {
            Ok(deleted) => last_deleted = deleted,
            Err(err) => tracing::warn!(
                code = err.code(),
                "retention pass failed; trying again next period"
            ),
        }
        if engine.strong_count() == 0 {
            return; // not a period later: the pass may have ended for it
        }
    }
}

/// When a pass's next prune call may start.
///
/// Why: on a single writer (SQLite) an append that arrives while a prune
/// transaction runs waits for it. Calls bunched at half the writer's time
/// leave the appends of that stretch a writer at its limit, and their tail
/// shows it; the same calls spread over the period leave a little wait on
/// many appends instead (docs/benchmarks.md, steps 29 and 30). So a pass
/// expects to delete what the last one did and spreads that over the first
/// [`SPREAD`] of the period. Beyond it — more to delete than expected, a
/// call that took longer than the schedule leaves, or no last pass to go
/// by (the first pass after start) — only the duty cap holds: after each
/// call the pruner waits at least as long as it took, so pruning never
/// takes more than half of the writer's time.
// Not `Copy`: it counts a pass's deletions, and a copy would lose them.
#[derive(Debug)]
pub(crate) struct Pace {
    started: Instant,
    /// What the expected entries are spread over (zero: nothing).
    stretch: Duration,
    /// What the last pass deleted.
    expected: u64,
    /// Entries deleted so far in this pass.
    deleted: u64,
}

impl Pace {
    /// A pass starting at `started` that expects to delete `expected`
    /// entries (the last pass's count) and spreads them over `stretch`.
    pub(crate) fn spread(started: Instant, stretch: Duration, expected: u64) -> Self {
        Pace {
            started,
            stretch,
            expected,
            deleted: 0,
        }
    }

    /// A pass that prunes as fast as the duty cap allows (`prune_now`).
    pub(crate) fn eager(started: Instant) -> Self {
        Pace::spread(started, Duration::ZERO, 0)
    }

    /// After a call that ended at `now`, took `took` and deleted
    /// `deleted` entries: when the next call may start. Never before
    /// `now + took` (the duty cap); while fewer than expected are
    /// deleted, not before the deletions so far are due on the schedule.
    pub(crate) fn next_call(&mut self, now: Instant, took: Duration, deleted: u64) -> Instant {
        self.deleted = self.deleted.saturating_add(deleted);
        let earliest = now + took;
        if self.deleted >= self.expected {
            return earliest; // also with nothing expected
        }
        let share = self.deleted as f64 / self.expected as f64;
        earliest.max(self.started + self.stretch.mul_f64(share))
    }

    /// Waits after a call that started at `started` and deleted `deleted`
    /// entries (0 for one that failed: it took the writer too) until the
    /// next may start ([`Pace::next_call`]).
    async fn after_call(&mut self, started: Instant, deleted: u64) {
        let now = Instant::now();
        tokio::time::sleep_until(self.next_call(now, now - started, deleted)).await;
    }
}

/// One pass over every room that may be over its retention, its prune
/// calls paced by `pace`; returns how many entries went. Ends early, with
/// what went, once the engine is dropped: it holds the engine only while
/// it lists or prunes, never while it waits.
///
/// Errors: storage errors of the room listing (the pass stops; the next one
/// starts over). A page of rooms that fails to prune is logged and passed
/// over.
pub(crate) async fn prune_pass(engine: &Weak<EngineState>, mut pace: Pace) -> Result<u64> {
    let mut after: Option<RoomId> = None;
    let mut deleted = 0;
    loop {
        let Some(state) = engine.upgrade() else {
            return Ok(deleted);
        };
        let server = state.config.retention;
        let rooms = state
            .store
            .retained_rooms(after.as_ref(), ROOMS_PER_PAGE, !server.keeps_everything())
            .await?;
        drop(state);
        let last_page = rooms.len() < ROOMS_PER_PAGE as usize;
        after = rooms.last().map(|room| room.id.clone());
        let now = Timestamp::now();
        let bounds: Vec<(RoomId, PruneBound)> = rooms
            .iter()
            .filter_map(|room| {
                let retention = room.retention.unwrap_or(server);
                bound_for(room, &retention, now).map(|bound| (room.id.clone(), bound))
            })
            .collect();
        deleted += prune_rooms(engine, bounds, &mut pace).await;
        if last_page {
            return Ok(deleted);
        }
    }
}

/// What `retention` lets go of `room` at `now`; `None` when it keeps
/// everything the room holds (no query needed).
fn bound_for(room: &StoredRoom, retention: &Retention, now: Timestamp) -> Option<PruneBound> {
    let below_seq: Seq = retention
        .max_entries
        .map_or(0, |keep| room.last_seq.saturating_sub(keep) + 1);
    let older_than = retention.max_age.map(|age| {
        let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        Timestamp(now.millis().saturating_sub(age))
    });
    (below_seq > room.first_seq || older_than.is_some()).then_some(PruneBound {
        below_seq,
        older_than,
        seen_last_seq: room.last_seq,
    })
}

/// Prunes `rooms` to their bounds, `prune_batch` entries per store call
/// (several rooms at once where the store can — SQLite: one statement —
/// rooms pruned together cost a single writer far less than room by
/// room), each call when `pace` lets it, and tells each loaded room where
/// its log starts now. A failing call
/// is logged and ends this page's pruning (the next pass tries again);
/// returns how many entries went.
async fn prune_rooms(
    engine: &Weak<EngineState>,
    mut rooms: Vec<(RoomId, PruneBound)>,
    pace: &mut Pace,
) -> u64 {
    let mut deleted = 0;
    while !rooms.is_empty() {
        let Some(state) = engine.upgrade() else {
            return deleted;
        };
        let started = Instant::now();
        let outcome = state
            .store
            .prune_rooms(&rooms, state.config.prune_batch)
            .await;
        let mut this_batch = 0;
        for (room_id, p) in outcome.iter().flatten() {
            this_batch += p.deleted;
            if let Some(room) = state.directory.get(room_id) {
                room.pruned_below(p.first_seq);
            }
            if p.deleted > 0 {
                tracing::debug!(room = %room_id, deleted = p.deleted, first_seq = p.first_seq, "pruned");
            }
        }
        drop(state);
        deleted += this_batch;
        // A call that deleted nothing, or failed, took the writer too: the
        // cap holds.
        pace.after_call(started, this_batch).await;
        let pruned = match outcome {
            Ok(pruned) => pruned,
            Err(err) if rooms.len() > 1 => {
                // One room's trouble must not hold up the others: each alone.
                tracing::debug!(
                    code = err.code(),
                    "pruning rooms together failed; one by one"
                );
                for room in rooms {
                    deleted += Box::pin(prune_rooms(engine, vec![room], pace)).await;
                }
                return deleted;
            }
            Err(err) => {
                let room = rooms.first().map(|(id, _)| id.to_string());
                tracing::warn!(room, code = err.code(), "could not prune a room; next pass");
                return deleted;
            }
        };
        if this_batch == 0 {
            // Every room it looked at is within its bound, or changed while
            // it looked and was left out: the next pass looks again.
            return deleted;
        }
        // A room the store found within its bound needs no second look; a
        // room it did not reach, or that lost entries, gets one.
        rooms.retain(|(id, _)| !pruned.iter().any(|(r, p)| r == id && p.deleted == 0));
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(first_seq: Seq, last_seq: Seq) -> StoredRoom {
        let mut room = StoredRoom::new(RoomId::new("r").unwrap(), 10);
        room.first_seq = first_seq;
        room.last_seq = last_seq;
        room
    }

    #[test]
    fn the_count_bound_keeps_the_newest_entries() {
        let keep_100 = Retention {
            max_entries: Some(100),
            max_age: None,
        };
        let now = Timestamp(1_000_000);
        assert_eq!(bound_for(&room(1, 100), &keep_100, now), None, "within");
        assert_eq!(
            bound_for(&room(1, 150), &keep_100, now),
            Some(PruneBound {
                below_seq: 51,
                older_than: None,
                seen_last_seq: 150,
            })
        );
        assert_eq!(bound_for(&room(51, 150), &keep_100, now), None, "pruned");
        assert_eq!(
            bound_for(&room(1, 150), &Retention::default(), now),
            None,
            "no bound"
        );
    }

    #[test]
    fn the_age_bound_is_a_time_before_now() {
        let day = Retention {
            max_entries: None,
            max_age: Some(Duration::from_secs(86_400)),
        };
        let now = Timestamp(100_000_000);
        assert_eq!(
            bound_for(&room(1, 5), &day, now),
            Some(PruneBound {
                below_seq: 0,
                older_than: Some(Timestamp(100_000_000 - 86_400_000)),
                seen_last_seq: 5,
            })
        );
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_pass_spreads_what_the_last_one_deleted_over_its_stretch() {
        let start = Instant::now();
        let mut pace = Pace::spread(start, 2_500 * MS, 10_000);
        // 1 000 of 10 000 deleted in 5 ms: the next call at 250 ms, not 10.
        assert_eq!(
            pace.next_call(start + 5 * MS, 5 * MS, 1_000),
            start + 250 * MS
        );
        // The next 1 000 took longer than the schedule leaves: the cap.
        let late = start + 495 * MS;
        assert_eq!(pace.next_call(late, 245 * MS, 1_000), late + 245 * MS);
    }

    #[test]
    fn past_what_was_expected_only_the_duty_cap_holds() {
        let start = Instant::now();
        let mut pace = Pace::spread(start, 1_000 * MS, 2_000);
        assert_eq!(
            pace.next_call(start + 4 * MS, 4 * MS, 1_000),
            start + 500 * MS
        );
        // 2 000 of 2 000 at 504 ms: the rest comes at once, not at 1 000 ms.
        let now = start + 504 * MS;
        assert_eq!(pace.next_call(now, 4 * MS, 1_000), now + 4 * MS);
        assert_eq!(pace.next_call(now, 4 * MS, 1_000), now + 4 * MS);
    }

    #[test]
    fn with_nothing_expected_or_eager_only_the_duty_cap_holds() {
        let start = Instant::now();
        for mut pace in [Pace::spread(start, 2_500 * MS, 0), Pace::eager(start)] {
            assert_eq!(
                pace.next_call(start + 7 * MS, 7 * MS, 1_000),
                start + 14 * MS
            );
            assert_eq!(pace.next_call(start + 7 * MS, 7 * MS, 0), start + 14 * MS);
        }
    }

    #[test]
    fn an_age_beyond_any_clock_prunes_nothing() {
        let forever = Retention {
            max_entries: None,
            max_age: Some(Duration::from_secs(u64::MAX)),
        };
        let bound = bound_for(&room(1, 5), &forever, Timestamp(1_000)).unwrap();
        assert!(bound.older_than.unwrap().millis() < 0, "{bound:?}");
    }
}
