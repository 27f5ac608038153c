//! In a cluster, a kick, a ban or a close made on one node must take the
//! seats other nodes hold (docs/cluster.md, "Moderation across nodes").
//! The node that acts drops every node's seat rows in the database (the
//! seats stop counting at once) and appends the `leave` entries; every node
//! that has the room in memory follows the room's live entries on the bus
//! and, for a `leave` that carries a reason, takes that user's local seat
//! away as a leave of its own would: the streams end with the reason and
//! the ledger forgets the seat. The log is the message; no node calls
//! another.
//!
//! A seat taken on this node after the removal was made (the user came
//! back at once, through this node) is spared: the ledger compares the
//! seat's age with the entry's time.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::{
    entry::{EntryKind, LeaveReason},
    join::take_seat_away_now,
    live_room::LiveRoom,
    state::EngineState,
};

/// Starts following `room` for removals made elsewhere, on a cluster node;
/// the task ends when the room is unloaded or the engine stops.
pub(crate) fn follow(state: &Arc<EngineState>, room: &Arc<LiveRoom>) {
    if state.cluster.is_none() {
        return;
    }
    let mut live = state.bus.subscribe(&room.id);
    let mut unloaded = room.unloaded();
    let (weak_state, weak_room) = (Arc::downgrade(state), Arc::downgrade(room));
    state.runtime.spawn(async move {
        loop {
            let entry = tokio::select! {
                _ = unloaded.wait_for(|gone| *gone) => return,
                received = live.recv() => match received {
                    Ok(entry) => entry,
                    Err(RecvError::Lagged(missed)) => {
                        // A removal among them still ended the seats'
                        // rows: the next reserve or commit is checked
                        // against the database.
                        tracing::warn!(missed, "removal follower lagged behind the bus");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            let Some(reason) = entry.reason.filter(|_| entry.kind == EntryKind::Leave) else {
                continue;
            };
            let (Some(state), Some(room)) = (weak_state.upgrade(), weak_room.upgrade()) else {
                return;
            };
            if reason == LeaveReason::RoomClosed {
                room.ledger().close();
                room.mark_closed();
            }
            take_seat_away_now(&state, &room, &entry.sender, reason, entry.created_at);
        }
    });
}
