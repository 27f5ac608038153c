//! The lease keeper: a cluster node's upkeep task. Every third of the lease
//! ttl it renews the node's lease (which keeps every seat the node holds
//! alive) and frees the seats of nodes that stopped renewing theirs.
//!
//! Any node may free a dead node's seats, and several may try at once: the
//! store appends a `leave` only for an open member with no live seat, under
//! the room's row lock, so each freed seat gets exactly one `leave`.

use std::{collections::BTreeMap, sync::Weak};

use tokio::time::MissedTickBehavior;

use crate::{ids::RoomId, join::end_every_seat, state::EngineState};

/// The most orphaned seats freed per round.
const ORPHANS_PER_ROUND: u32 = 500;

/// Runs until the engine is dropped; a no-op on a single node.
pub(crate) async fn run(engine: Weak<EngineState>) {
    let Some(period) = engine
        .upgrade()
        .and_then(|e| e.cluster.as_ref().map(|c| c.lease_ttl / 3))
    else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = engine.upgrade() else {
            return;
        };
        let Some(cluster) = &state.cluster else {
            return;
        };
        match cluster
            .leases
            .renew_node(&cluster.node_id, cluster.lease_ttl)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                // Other nodes may have freed our seats and given them away:
                // holding on to them would overfill rooms. Every local seat
                // ends; its clients join again, counted afresh.
                tracing::error!(node = %cluster.node_id, "this node's lease lapsed; ending its seats");
                end_every_seat(&state);
            }
            Err(err) => {
                // After a ttl without renewal other nodes free our seats.
                tracing::warn!(code = err.code(), node = %cluster.node_id, "could not renew the node's lease");
                continue;
            }
        }
        match cluster.leases.close_orphans(ORPHANS_PER_ROUND).await {
            Ok(left) if !left.is_empty() => {
                tracing::info!(seats = left.len(), "freed the seats of nodes that stopped");
                let mut by_room: BTreeMap<RoomId, Vec<_>> = BTreeMap::new();
                for entry in left {
                    by_room
                        .entry(entry.room_id.clone())
                        .or_default()
                        .push(std::sync::Arc::new(entry));
                }
                for (room, entries) in by_room {
                    if let (Some(live), Some(last)) = (state.directory.get(&room), entries.last()) {
                        live.log.observe(last.seq);
                    }
                    state.bus.publish(&room, &entries).await;
                }
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(code = err.code(), "could not free orphaned seats"),
        }
    }
}
