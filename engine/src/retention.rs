//! The pruner (docs/contract.md §2, "Retention"): a background task that
//! deletes the oldest entries of rooms over their retention, in bounded
//! batches, never holding up appends.
//!
//! Every `retention_interval` it pages through the rooms that may be over a
//! bound (those with a retention of their own, or every room with entries
//! when the server has one), works out each room's bound — the count bound
//! as a seq (`last_seq - max_entries + 1`), the age bound as a time — and
//! asks the store to prune, `prune_batch` entries per transaction, until the
//! room is within it, pausing after each batch for as long as it took (at
//! most half of a single writer's time goes to pruning). Seqs are never reused: `last_seq` stays, `first_seq`
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
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(10)));
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
/// starts over). A room that fails to prune is logged and passed over.
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
        for room in rooms {
            after = Some(room.id.clone());
            let retention = room.retention.unwrap_or(server);
            let Some(bound) = bound_for(&room, &retention, Timestamp::now()) else {
                continue;
            };
            // One room's trouble does not hold up the rooms after it.
            match prune_room(state, &room.id, bound).await {
                Ok(n) => deleted += n,
                Err(err) => {
                    tracing::warn!(room = %room.id, code = err.code(), "could not prune a room; next pass");
                }
            }
        }
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

/// Prunes one room in batches until it is within `bound` (or another node
/// holds it); tells the loaded room where its log starts now.
async fn prune_room(state: &EngineState, room_id: &RoomId, bound: PruneBound) -> Result<u64> {
    let batch = state.config.prune_batch;
    let mut deleted = 0;
    loop {
        let started = tokio::time::Instant::now();
        let pruned = state.store.prune(room_id, bound, batch).await?;
        // Paced: after each batch the pruner leaves storage to the appends
        // for as long as the batch took, so it never takes more than half
        // of a single writer's time (SQLite) however far behind it is.
        tokio::time::sleep(started.elapsed()).await;
        deleted += pruned.deleted;
        if let Some(room) = state.directory.get(room_id) {
            room.pruned_below(pruned.first_seq);
        }
        if pruned.deleted < u64::from(batch) {
            if deleted > 0 {
                tracing::debug!(room = %room_id, deleted, first_seq = pruned.first_seq, "pruned");
            }
            return Ok(deleted);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_age_beyond_any_clock_prunes_nothing() {
        let forever = Retention {
            max_entries: None,
            max_age: Some(Duration::from_secs(u64::MAX)),
        };
        let bound = bound_for(&room(1, 5), &forever, Timestamp(1_000)).unwrap();
        assert!(bound.older_than.unwrap().millis() < 0, "{bound:?}");
    }

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
}
