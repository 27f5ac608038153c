//! [`SeatLeases`] on Postgres: the cluster's seats as rows beside the logs.
//!
//! - `parlor_nodes (id, expires_ms)`: one lease per node, renewed by it;
//! - `parlor_seats (room_id, user_id, node_id, seat)`: the seats each node
//!   holds. A seat is *live* while its node's lease is; a user counts once
//!   however many nodes hold a row for them;
//! - `parlor_used_tickets (key, expires_ms)`: single use across nodes.
//!
//! Every decision that reads the count and writes a seat (`take`, `adopt`)
//! locks the room's row first, as an append with a `leave` does, so a
//! capacity check, a leave and an orphan sweep of one room are serialized.
//! Times come from the database's clock, so nodes need not agree on theirs.

use std::time::Duration;

use async_trait::async_trait;
use parlor_engine::{
    Entry, EntryKind, Error, ErrorKind, NewEntry, Result, RoomId, SeatId, SeatLeases, Timestamp,
    UserId,
    ports::{Appended, Seated, SeatedUser},
};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionTrait, Value};

use crate::{
    append::{self, Duplicates, SeatCheck},
    cluster::{NOW_MS, live_seats},
    store::SeaOrmStore,
    translate::translate,
};

fn stmt(sql: impl Into<String>, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// What [`SeaOrmStore::lock_and_count`] found of a stored room.
enum Count {
    /// (capacity, live seats, whether the user holds one).
    Open(i64, i64, bool),
    /// Closed: it seats no one.
    Closed,
}

/// Rows of live seats, joined with their node's lease.
const LIVE_SEATS: &str = "parlor_seats s JOIN parlor_nodes n ON n.id = s.node_id";

impl SeaOrmStore {
    fn postgres_only(&self) -> Result<()> {
        if self.backend() == DbBackend::Postgres {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Internal,
                "a cluster needs Postgres: SQLite cannot be shared by nodes",
            ))
        }
    }

    /// Locks `room`'s row and answers (capacity, live seats, whether `user`
    /// holds one), or that it is closed; `None` when the room is not stored.
    async fn lock_and_count(
        txn: &impl ConnectionTrait,
        room: &RoomId,
        user: &UserId,
    ) -> Result<Option<Count>, DbErr> {
        let Some(row) = txn
            .query_one_raw(stmt(
                "SELECT capacity::bigint, closed FROM parlor_rooms WHERE id = $1 FOR UPDATE",
                [room.as_str().into()],
            ))
            .await?
        else {
            return Ok(None);
        };
        let capacity: i64 = row.try_get_by_index(0)?;
        if row.try_get_by_index::<bool>(1)? {
            // A closed room seats no one (its rows were evicted at close).
            return Ok(Some(Count::Closed));
        }
        let counts = txn
            .query_one_raw(stmt(
                format!(
                    "SELECT COUNT(DISTINCT s.user_id), COALESCE(BOOL_OR(s.user_id = $2), false) \
                     FROM {LIVE_SEATS} WHERE s.room_id = $1 AND n.expires_ms > {NOW_MS}"
                ),
                [room.as_str().into(), user.as_str().into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("COUNT returned no row".into()))?;
        Ok(Some(Count::Open(
            capacity,
            counts.try_get_by_index(0)?,
            counts.try_get_by_index(1)?,
        )))
    }

    async fn upsert_seat(
        txn: &impl ConnectionTrait,
        room: &RoomId,
        user: &UserId,
        node: &str,
        seat: SeatId,
    ) -> Result<(), DbErr> {
        txn.execute_raw(stmt(
            format!(
                "INSERT INTO parlor_seats (room_id, user_id, node_id, seat, taken_ms) \
                 VALUES ($1, $2, $3, $4, {NOW_MS}) \
                 ON CONFLICT (room_id, user_id, node_id) DO UPDATE SET seat = EXCLUDED.seat"
            ),
            [
                room.as_str().into(),
                user.as_str().into(),
                node.into(),
                (seat.get() as i64).into(),
            ],
        ))
        .await?;
        Ok(())
    }

    async fn take_or_adopt(
        &self,
        room: &RoomId,
        user: &UserId,
        node: &str,
        seat: SeatId,
        only_if_seated: bool,
    ) -> Result<bool> {
        self.postgres_only()?;
        let txn = self.writes.begin().await.map_err(translate)?;
        let counted = Self::lock_and_count(&txn, room, user)
            .await
            .map_err(translate)?;
        let (capacity, seated, mine) = match counted {
            Some(Count::Open(capacity, seated, mine)) => (capacity, seated, mine),
            _ if only_if_seated => return Ok(false),
            None => return Err(ErrorKind::RoomNotFound.into()),
            Some(Count::Closed) => return Err(ErrorKind::RoomClosed.into()),
        };
        if !mine {
            if only_if_seated {
                return Ok(false);
            }
            if seated >= capacity {
                return Err(ErrorKind::RoomFull.into());
            }
        }
        Self::upsert_seat(&txn, room, user, node, seat)
            .await
            .map_err(translate)?;
        txn.commit().await.map_err(translate)?;
        Ok(true)
    }
}

#[async_trait]
impl SeatLeases for SeaOrmStore {
    async fn renew_node(&self, node: &str, ttl: Duration) -> Result<bool> {
        self.postgres_only()?;
        // The old expiry tells a lapsed lease (other nodes may have freed
        // this node's seats) from a live one or a first start.
        let row = self
            .writes
            .query_one_raw(stmt(
                format!(
                    "WITH old AS (SELECT expires_ms FROM parlor_nodes WHERE id = $1) \
                     INSERT INTO parlor_nodes (id, expires_ms) VALUES ($1, {NOW_MS} + $2) \
                     ON CONFLICT (id) DO UPDATE SET expires_ms = EXCLUDED.expires_ms \
                     RETURNING COALESCE((SELECT expires_ms FROM old) > {NOW_MS}, true)"
                ),
                [node.into(), (ttl.as_millis() as i64).into()],
            ))
            .await
            .map_err(translate)?
            .ok_or_else(|| Error::new(ErrorKind::Internal, "renewal returned no row"))?;
        row.try_get_by_index(0).map_err(translate)
    }

    async fn reset_node(&self, node: &str) -> Result<()> {
        self.postgres_only()?;
        self.writes
            .execute_raw(stmt(
                "DELETE FROM parlor_seats WHERE node_id = $1",
                [node.into()],
            ))
            .await
            .map_err(translate)?;
        Ok(())
    }

    async fn take(&self, room: &RoomId, user: &UserId, node: &str, seat: SeatId) -> Result<()> {
        self.take_or_adopt(room, user, node, seat, false)
            .await
            .map(drop)
    }

    async fn adopt(&self, room: &RoomId, user: &UserId, node: &str, seat: SeatId) -> Result<bool> {
        self.take_or_adopt(room, user, node, seat, true).await
    }

    async fn release(&self, room: &RoomId, user: &UserId, node: &str, seat: SeatId) -> Result<()> {
        self.postgres_only()?;
        self.writes
            .execute_raw(stmt(
                "DELETE FROM parlor_seats \
                 WHERE room_id = $1 AND user_id = $2 AND node_id = $3 AND seat = $4",
                [
                    room.as_str().into(),
                    user.as_str().into(),
                    node.into(),
                    (seat.get() as i64).into(),
                ],
            ))
            .await
            .map_err(translate)?;
        Ok(())
    }

    async fn seated(&self, room: &RoomId) -> Result<Seated> {
        self.postgres_only()?;
        let rows = self
            .reads
            .query_all_raw(stmt(
                format!(
                    "SELECT s.user_id, BOOL_OR(m.user_id IS NOT NULL), MIN(s.taken_ms) \
                     FROM {LIVE_SEATS} \
                     LEFT JOIN parlor_members m ON m.room_id = s.room_id AND m.user_id = s.user_id \
                     WHERE s.room_id = $1 AND n.expires_ms > {NOW_MS} \
                     GROUP BY s.user_id ORDER BY s.user_id COLLATE \"C\""
                ),
                [room.as_str().into()],
            ))
            .await
            .map_err(translate)?;
        let mut seated = Seated {
            occupancy: rows.len() as u32,
            ..Seated::default()
        };
        for row in rows {
            let id: String = row.try_get_by_index(0).map_err(translate)?;
            let user =
                UserId::new(&id).map_err(|_| Error::new(ErrorKind::Internal, "stored user id"))?;
            let member: bool = row.try_get_by_index(1).map_err(translate)?;
            let taken_ms: i64 = row.try_get_by_index(2).map_err(translate)?;
            if member {
                seated.members.push(user.clone());
            }
            seated.seats.push(SeatedUser {
                user,
                member,
                since: Timestamp(taken_ms),
            });
        }
        Ok(seated)
    }

    async fn evict(&self, room: &RoomId, user: Option<&UserId>) -> Result<()> {
        self.postgres_only()?;
        let statement = match user {
            Some(user) => stmt(
                "DELETE FROM parlor_seats WHERE room_id = $1 AND user_id = $2",
                [room.as_str().into(), user.as_str().into()],
            ),
            None => stmt(
                "DELETE FROM parlor_seats WHERE room_id = $1",
                [room.as_str().into()],
            ),
        };
        self.writes
            .execute_raw(statement)
            .await
            .map_err(translate)?;
        Ok(())
    }

    async fn hold_webhook(&self, hook: &str, node: &str) -> Result<bool> {
        self.postgres_only()?;
        // Taken when free, kept by its holder, taken over from a holder
        // whose node lease lapsed; one statement, so two nodes asking at
        // once cannot both win.
        let row = self
            .writes
            .query_one_raw(stmt(
                format!(
                    "INSERT INTO parlor_webhook_leaders (hook, node_id) VALUES ($1, $2) \
                     ON CONFLICT (hook) DO UPDATE SET node_id = EXCLUDED.node_id \
                     WHERE parlor_webhook_leaders.node_id = EXCLUDED.node_id \
                        OR NOT EXISTS (SELECT 1 FROM parlor_nodes n \
                          WHERE n.id = parlor_webhook_leaders.node_id \
                            AND n.expires_ms > {NOW_MS}) \
                     RETURNING node_id"
                ),
                [hook.into(), node.into()],
            ))
            .await
            .map_err(translate)?;
        Ok(row.is_some())
    }

    async fn is_seated(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        self.postgres_only()?;
        let pair = (room.as_str(), user.as_str());
        let live = live_seats(&self.reads, [pair].iter(), None)
            .await
            .map_err(translate)?;
        Ok(!live.is_empty())
    }

    async fn use_ticket(&self, key: &[u8], expires_at: Timestamp) -> Result<bool> {
        self.postgres_only()?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let done = self
            .writes
            .execute_raw(stmt(
                "INSERT INTO parlor_used_tickets (key, expires_ms) VALUES ($1, $2) \
                 ON CONFLICT (key) DO NOTHING",
                [hex.into(), expires_at.millis().into()],
            ))
            .await
            .map_err(translate)?;
        Ok(done.rows_affected() == 1)
    }

    async fn close_orphans(&self, limit: u32) -> Result<Vec<Entry>> {
        self.postgres_only()?;
        let rows = self
            .reads
            .query_all_raw(stmt(
                format!(
                    "SELECT m.room_id, m.user_id FROM parlor_members m WHERE NOT EXISTS ( \
                       SELECT 1 FROM {LIVE_SEATS} WHERE s.room_id = m.room_id \
                       AND s.user_id = m.user_id AND n.expires_ms > {NOW_MS}) \
                     ORDER BY m.room_id LIMIT $1"
                ),
                [i64::from(limit).into()],
            ))
            .await
            .map_err(translate)?;
        let mut leaves = Vec::with_capacity(rows.len());
        for row in rows {
            let room: String = row.try_get_by_index(0).map_err(translate)?;
            let user: String = row.try_get_by_index(1).map_err(translate)?;
            if let (Ok(room), Ok(user)) = (RoomId::new(&room), UserId::new(&user)) {
                leaves.push(NewEntry::membership(room, user, EntryKind::Leave));
            }
        }
        let mut left = Vec::new();
        if !leaves.is_empty() {
            // Checked again under the rooms' locks: a seat taken since the
            // SELECT keeps its member, and a leave another node wrote since
            // is not written twice.
            let txn = self.writes.begin().await.map_err(translate)?;
            let out = append::append_in(
                &txn,
                &self.dialect,
                &leaves,
                SeatCheck::Any,
                Duplicates::LookUp,
            )
            .await
            .map_err(translate)?;
            txn.commit().await.map_err(translate)?;
            left.extend(out.into_iter().filter_map(|o| match o {
                Appended::New(entry) => Some(entry),
                _ => None,
            }));
        }
        // Housekeeping: seats of dead nodes no longer count, and used
        // tickets past their expiry could not be committed anyway.
        for sql in [
            format!(
                "DELETE FROM parlor_seats WHERE node_id IN \
                 (SELECT id FROM parlor_nodes WHERE expires_ms < {NOW_MS})"
            ),
            format!("DELETE FROM parlor_used_tickets WHERE expires_ms < {NOW_MS}"),
        ] {
            self.writes
                .execute_raw(stmt(sql, []))
                .await
                .map_err(translate)?;
        }
        Ok(left)
    }
}
