//! The pruner (docs/contract.md §2, "Retention"): a background task that
//! deletes the oldest entries of rooms over their retention, in bounded
//! batches, never holding up appends.
//!
//! Every `retention_interval` it pages through the rooms that may be over a
//! bound (those with a retention of their own, or every room with entries
//! when the server has one), works out each room's bound — the count bound
//! as a seq (`last_seq - max_entries + 1`), the age bound as a time — and
//! asks the store to prune a page of rooms at a time, at most `prune_batch`
//! entries per call, until every room is within its bound, pausing after
//! each call for as long as it took (at most half of a single writer's time
//! goes to pruning). Seqs are never reused: `last_seq` stays, `first_seq`
//! moves up. In a cluster every node runs it; the store lets one node at a
//! time prune a room (Postgres: a transaction-scoped advisory lock), and a
//! node that finds the room busy leaves it to the other.

use std::{sync::Weak, time::Duration};

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

/// Runs passes until the engine is dropped.
pub(crate) async fn run(engine: Weak<EngineState>) {
    let Some(period) = engine.upgrade().map(|e| e.config.retention_interval) else {
        return;
    };
    // The first pass comes one period after start, not at once: a server
    // starting up has its joins and resumes to serve first, and a test that
    // prunes by hand (`prune_now`) does not race a pass it did not ask for.
    let period = period.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = engine.upgrade() else {
            return;
        };
        if let Err(err) = prune_pass(&state).await {
            tracing::warn!(
                code = err.code(),
                "retention pass failed; trying again next period"
            );
        }
    }
}

/// One pass over every room that may be over its retention; returns how
/// many entries went.
///
/// Errors: storage errors of the room listing (the pass stops; the next one
/// starts over). A page of rooms that fails to prune is logged and passed
/// over.
pub(crate) async fn prune_pass(state: &EngineState) -> Result<u64> {
    let server = state.config.retention;
    let mut after: Option<RoomId> = None;
    let mut deleted = 0;
    loop {
        let rooms = state
            .store
            .retained_rooms(after.as_ref(), ROOMS_PER_PAGE, !server.keeps_everything())
            .await?;
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
        deleted += prune_rooms(state, bounds).await;
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
    })
}

/// Prunes `rooms` to their bounds, `prune_batch` entries per store call
/// (one transaction where the store can: rooms pruned together cost a
/// single writer far less than room by room), and tells each loaded room
/// where its log starts now. A failing call is logged and ends this page's
/// pruning (the next pass tries again); returns how many entries went.
async fn prune_rooms(state: &EngineState, mut rooms: Vec<(RoomId, PruneBound)>) -> u64 {
    let batch = state.config.prune_batch;
    let mut deleted = 0;
    while !rooms.is_empty() {
        let started = tokio::time::Instant::now();
        let pruned = match state.store.prune_rooms(&rooms, batch).await {
            Ok(pruned) => pruned,
            Err(err) if rooms.len() > 1 => {
                // One room's trouble must not hold up the others: each alone.
                tracing::debug!(
                    code = err.code(),
                    "pruning rooms together failed; one by one"
                );
                for room in rooms {
                    deleted += Box::pin(prune_rooms(state, vec![room])).await;
                }
                return deleted;
            }
            Err(err) => {
                let room = rooms.first().map(|(id, _)| id.to_string());
                tracing::warn!(room, code = err.code(), "could not prune a room; next pass");
                return deleted;
            }
        };
        // Paced: after each batch the pruner leaves storage to the appends
        // for as long as the batch took, so it never takes more than half
        // of a single writer's time (SQLite) however far behind it is.
        tokio::time::sleep(started.elapsed()).await;
        let mut this_batch = 0;
        for (room_id, p) in &pruned {
            this_batch += p.deleted;
            if let Some(room) = state.directory.get(room_id) {
                room.pruned_below(p.first_seq);
            }
            if p.deleted > 0 {
                tracing::debug!(room = %room_id, deleted = p.deleted, first_seq = p.first_seq, "pruned");
            }
        }
        deleted += this_batch;
        if this_batch == 0 {
            return deleted; // every room it looked at is within its bound
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
                older_than: None
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
                older_than: Some(Timestamp(100_000_000 - 86_400_000))
            })
        );
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
