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
//! The node that made the removal skips its own `leave` when it comes back
//! (it marked the user; the user may have taken a seat again since). On
//! other nodes a seat taken after the removal (the user came back at once)
//! is spared when it was taken more than [`SKEW_MARGIN`] after the entry's
//! time by this node's clock: clocks of nodes differ, and a seat that
//! survives a kick is worse than a returning user kicked twice. A follower
//! that fell behind the bus checks every local seat against the database
//! instead, and takes away those whose rows are gone.

use std::{sync::Arc, time::Duration};

use tokio::sync::broadcast::error::RecvError;

use crate::{
    entry::{Entry, EntryKind, LeaveReason, MAX_HISTORY_LIMIT, Seq, SeqRange, Timestamp},
    error::Result,
    join::take_seat_away_now,
    live_room::LiveRoom,
    state::EngineState,
};

/// How much later than a removal's time, by this node's clock, a seat must
/// have been taken to be spared by it (see the module docs).
const SKEW_MARGIN: Duration = Duration::from_secs(2);

/// Starts following `room` for removals made elsewhere, on a cluster node;
/// the task ends when the room is unloaded or the engine stops.
///
/// A bus that routes by room receives the room only once it is subscribed
/// (`Bus::subscribe` returns then), so the removals stored between the
/// room's load and that moment are read from storage first; live entries
/// at or below what was read are skipped.
pub(crate) fn follow(state: &Arc<EngineState>, room: &Arc<LiveRoom>) {
    if state.cluster.is_none() {
        return;
    }
    let loaded_at = room.log.last_seq();
    let bus = Arc::clone(&state.bus);
    let room_id = room.id.clone();
    let mut unloaded = room.unloaded();
    let (weak_state, weak_room) = (Arc::downgrade(state), Arc::downgrade(room));
    state.runtime.spawn(async move {
        let mut live = bus.subscribe(&room_id).await;
        let mut read_up_to = loaded_at;
        if let (Some(state), Some(room)) = (weak_state.upgrade(), weak_room.upgrade()) {
            match stored_since(&state, &room, loaded_at).await {
                Ok(up_to) => read_up_to = up_to,
                Err(err) => {
                    tracing::warn!(
                        code = err.code(),
                        "could not read removals since the room loaded; checking seats"
                    );
                    if let Err(err) = recheck_seats(&state, &room).await {
                        tracing::warn!(code = err.code(), "could not recheck seats");
                    }
                }
            }
        }
        loop {
            let received = tokio::select! {
                _ = unloaded.wait_for(|gone| *gone) => return,
                received = live.recv() => received,
            };
            let entry = match received {
                Ok(entry) if entry.seq <= read_up_to => continue,
                Ok(entry) => Some(entry),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "removal follower lagged behind the bus");
                    None
                }
                // The bus closed the feed (it lost its link, and what was
                // published meanwhile never came): a new feed, and the
                // seats checked as after a lag.
                Err(RecvError::Closed) => {
                    live = bus.subscribe(&room_id).await;
                    None
                }
            };
            let (Some(state), Some(room)) = (weak_state.upgrade(), weak_room.upgrade()) else {
                return;
            };
            let Some(entry) = entry else {
                if let Err(err) = recheck_seats(&state, &room).await {
                    tracing::warn!(code = err.code(), "could not recheck seats after a lag");
                }
                continue;
            };
            apply(&state, &room, &entry);
        }
    });
}

/// Applies the removals stored after seq `after`; returns the last seq
/// read.
async fn stored_since(state: &Arc<EngineState>, room: &Arc<LiveRoom>, after: Seq) -> Result<Seq> {
    let mut read_up_to = after;
    loop {
        let range = SeqRange {
            after: Some(read_up_to),
            before: None,
            limit: MAX_HISTORY_LIMIT,
        };
        let page = state.store.entries(&room.id, range).await?;
        for entry in &page {
            read_up_to = entry.seq;
            apply(state, room, entry);
        }
        if page.len() < MAX_HISTORY_LIMIT as usize {
            return Ok(read_up_to);
        }
    }
}

/// What one entry means for the local seats: a `leave` with a reason
/// (kick, ban, close) made elsewhere takes that user's seat here.
fn apply(state: &Arc<EngineState>, room: &Arc<LiveRoom>, entry: &Entry) {
    let Some(reason) = entry.reason.filter(|_| entry.kind == EntryKind::Leave) else {
        return;
    };
    if reason == LeaveReason::RoomClosed {
        room.ledger().close();
        room.mark_closed();
    }
    if room.removed_here(&entry.sender, entry.created_at) {
        return; // this node's own removal, done already
    }
    let before = Timestamp(entry.created_at.millis() + SKEW_MARGIN.as_millis() as i64);
    take_seat_away_now(state, room, &entry.sender, reason, before);
}

/// After missed entries: takes away every local seat whose user holds no
/// live row any more (a removal made elsewhere dropped it), as a kick.
async fn recheck_seats(state: &Arc<EngineState>, room: &Arc<LiveRoom>) -> Result<()> {
    let Some(cluster) = &state.cluster else {
        return Ok(());
    };
    let users = room.ledger().seated_users();
    for user in users {
        if !cluster.leases.is_seated(&room.id, &user).await? {
            take_seat_away_now(state, room, &user, LeaveReason::Kicked, Timestamp::now());
        }
    }
    Ok(())
}
