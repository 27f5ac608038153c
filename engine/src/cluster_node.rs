//! What changes when the engine is one node of a cluster: the paths that
//! ask the database about seats held through other nodes. The rest of the
//! engine asks `inner.cluster` only where a single node and a cluster part
//! ways (the capacity check at reserve, the joined facts at commit, the
//! release of a seat row); `docs/cluster.md` has the design.

use std::sync::Arc;

use crate::{
    engine::Inner,
    entry::{EntryKind, Seq},
    error::{ErrorKind, Result},
    ids::{RoomId, UserId},
    live_room::LiveRoom,
    membership::{Membership, SeatGuard},
    seat_ledger::fresh_seat,
    ticket::VerifiedTicket,
};

impl Inner {
    /// Every seat held here ends at once, as if each user left (a cluster
    /// node whose lease lapsed).
    pub(crate) fn end_every_seat(self: &Arc<Self>) {
        for room in self.directory.snapshot() {
            let users = room.ledger().seated_users();
            for user in users {
                drop(self.leave_everywhere(&room, &user));
            }
        }
    }

    /// In a cluster other nodes append too: learn the stored head.
    pub(crate) async fn refresh_last_seq(&self, room: &LiveRoom) -> Result<()> {
        if self.cluster.is_some()
            && let Some(stored) = self.store.room(&room.id).await?
        {
            room.log.observe(stored.last_seq);
        }
        Ok(())
    }

    /// Commits a ticket that another node of the cluster reserved: the
    /// database still seats its user, so this node takes a row for the same
    /// seat and a local seat without a ticket.
    pub(crate) async fn commit_reserved_elsewhere(
        self: &Arc<Self>,
        user: &UserId,
        ticket: VerifiedTicket,
        after_seq: Option<Seq>,
    ) -> Result<Membership> {
        let cluster = self.cluster.as_ref().expect("only in a cluster");
        loop {
            let room = self
                .stored_room(&ticket.room)
                .await?
                .ok_or(ErrorKind::TicketInvalid)?;
            self.check_after_seq(&room, after_seq).await?;
            let seat = room.ledger().seat_of(user).unwrap_or_else(fresh_seat);
            if !cluster
                .leases
                .adopt(&room.id, user, &cluster.node_id, seat)
                .await?
            {
                // Its seat was freed (a leave, or the ticket's node died).
                return Err(ErrorKind::TicketInvalid.into());
            }
            let (claim, join_ack) = {
                let mut ledger = room.ledger();
                if ledger.is_retired() {
                    continue; // unloaded meanwhile: look again
                }
                let claim = ledger.adopt(user, seat);
                let join = ledger
                    .mark_member(user)
                    .then(|| self.append_membership(&room, user, EntryKind::Join));
                (claim, join)
            };
            let guard = SeatGuard::new(
                Arc::clone(self),
                Arc::clone(&room),
                user.clone(),
                claim.epoch,
            );
            return self
                .finish_commit(room, guard, claim, join_ack, after_seq)
                .await;
        }
    }

    /// In a cluster, a user seated through another node may send and read
    /// history here (an HTTP request lands on any node): the room, if so.
    pub(crate) async fn seated_elsewhere(
        &self,
        room_id: &RoomId,
        user: &UserId,
    ) -> Result<Arc<LiveRoom>> {
        let Some(cluster) = &self.cluster else {
            return Err(ErrorKind::NotAMember.into());
        };
        if !cluster.leases.is_seated(room_id, user).await? {
            return Err(ErrorKind::NotAMember.into());
        }
        self.stored_room(room_id)
            .await?
            .ok_or_else(|| ErrorKind::NotAMember.into())
    }
}
