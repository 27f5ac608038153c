//! Retention's queries of the `Store` port (docs/contract.md §2,
//! "Retention"): the rooms that may need pruning, and the pruning of one
//! room's oldest entries, a bounded batch per transaction.

use parlor_engine::{
    RoomId, StoredRoom,
    ports::{PruneBound, Pruned},
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QuerySelect,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait, Value,
};

use crate::{entity::room, rows::to_room};

/// Up to `limit` stored rooms (open or closed) after `after`, ascending by
/// id, that hold entries (`first_seq <= last_seq`) and have a retention of
/// their own — or, with `all`, every room that holds entries.
///
/// Ids are compared and ordered in the database's own collation, which the
/// primary key's index follows (and the partial index of the rooms with a
/// retention of their own, migration `m0008`): the keyset stays consistent
/// from page to page, which is all the pruner needs.
pub(crate) async fn retained_rooms(
    db: &DatabaseConnection,
    after: Option<&RoomId>,
    limit: u32,
    all: bool,
) -> Result<Vec<StoredRoom>, DbErr> {
    const SQLITE_ALL: &str = "SELECT * FROM parlor_rooms \
         WHERE id > ?1 AND first_seq <= last_seq ORDER BY id LIMIT ?2";
    const SQLITE_OWN: &str = "SELECT * FROM parlor_rooms \
         WHERE id > ?1 AND first_seq <= last_seq AND own_retention ORDER BY id LIMIT ?2";
    const POSTGRES_ALL: &str = "SELECT * FROM parlor_rooms \
         WHERE id > $1 AND first_seq <= last_seq ORDER BY id LIMIT $2";
    const POSTGRES_OWN: &str = "SELECT * FROM parlor_rooms \
         WHERE id > $1 AND first_seq <= last_seq AND own_retention ORDER BY id LIMIT $2";
    let backend = db.get_database_backend();
    let sql = match (backend == DbBackend::Postgres, all) {
        (false, true) => SQLITE_ALL,
        (false, false) => SQLITE_OWN,
        (true, true) => POSTGRES_ALL,
        (true, false) => POSTGRES_OWN,
    };
    // Every id is non-empty, so it sorts after "".
    let after = after.map_or("", RoomId::as_str);
    let values: [Value; 2] = [after.into(), i64::from(limit).into()];
    let rows = room::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
        .all(db)
        .await?;
    rows.into_iter().map(to_room).collect()
}

/// The first of the two keys of the Postgres advisory lock a prune takes
/// ("prun"); the second is the room id's hash.
const PRUNE_LOCK_SPACE: i32 = 0x7072_756e;

/// A room id's 32-bit FNV-1a hash: the second key of its prune lock. Two
/// rooms that share one only take turns.
fn prune_lock_key(room: &str) -> i32 {
    let hash = room.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// Deletes a prefix of `room`'s log that `bound` lets go, at most
/// `max_rows` entries, stopping at the first entry the bound keeps, and
/// moves `first_seq` past it, in one short transaction. A room that is not
/// stored: nothing deleted, `first_seq` 1.
///
/// The room's row is locked first (Postgres; SQLite has one writer), as
/// every append locks it: an append to the room waits for at most this one
/// batch, and an amendment checked under that lock finds its target still
/// stored when it writes. On Postgres a transaction-scoped advisory lock
/// lets one node at a time prune a room: a node that does not get it
/// deletes nothing and answers the room's `first_seq` as it is.
pub(crate) async fn prune(
    db: &DatabaseConnection,
    room_id: &RoomId,
    bound: PruneBound,
    max_rows: u32,
) -> Result<Pruned, DbErr> {
    let backend = db.get_database_backend();
    let options = TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    };
    let txn = db.begin_with_options(options).await?;
    let id = room_id.as_str();
    let postgres = backend == DbBackend::Postgres;
    if postgres {
        let values: [Value; 2] = [PRUNE_LOCK_SPACE.into(), prune_lock_key(id).into()];
        let sql = "SELECT pg_try_advisory_xact_lock($1, $2)";
        let got = txn
            .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
            .map(|row| row.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(false);
        if !got {
            let first_seq = room::Entity::find_by_id(id)
                .one(&txn)
                .await?
                .map_or(1, |r| r.first_seq);
            txn.commit().await?;
            tracing::debug!(room = %room_id, "another node prunes this room");
            return pruned(0, first_seq);
        }
    }
    let Some(stored) = room::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
    else {
        txn.commit().await?;
        return pruned(0, 1);
    };
    let (select, delete, update) = if postgres {
        (
            "SELECT seq, created_at FROM parlor_entries WHERE room_id = $1 \
             ORDER BY seq LIMIT $2",
            "DELETE FROM parlor_entries WHERE room_id = $1 AND seq <= $2",
            "UPDATE parlor_rooms SET first_seq = $2 WHERE id = $1 AND first_seq < $2",
        )
    } else {
        (
            "SELECT seq, created_at FROM parlor_entries WHERE room_id = ?1 \
             ORDER BY seq LIMIT ?2",
            "DELETE FROM parlor_entries WHERE room_id = ?1 AND seq <= ?2",
            "UPDATE parlor_rooms SET first_seq = ?2 WHERE id = ?1 AND first_seq < ?2",
        )
    };
    let oldest = txn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            select,
            [Value::from(id), i64::from(max_rows).into()],
        ))
        .await?;
    // The last seq of the prefix the bound lets go.
    let mut upto = None;
    for row in oldest {
        let seq: i64 = row.try_get_by_index(0)?;
        let created_at: i64 = row.try_get_by_index(1)?;
        let below = u64::try_from(seq).is_ok_and(|s| s < bound.below_seq);
        let older = bound.older_than.is_some_and(|t| created_at < t.millis());
        if !(below || older) {
            break;
        }
        upto = Some(seq);
    }
    let Some(upto) = upto else {
        txn.commit().await?;
        return pruned(0, stored.first_seq);
    };
    let deleted = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            delete,
            [Value::from(id), upto.into()],
        ))
        .await?
        .rows_affected();
    let first_seq = stored.first_seq.max(upto + 1);
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        update,
        [Value::from(id), first_seq.into()],
    ))
    .await?;
    txn.commit().await?;
    pruned(deleted, first_seq)
}

fn pruned(deleted: u64, first_seq: i64) -> Result<Pruned, DbErr> {
    let first_seq = u64::try_from(first_seq)
        .map_err(|_| DbErr::Custom("stored row has an invalid first seq".into()))?;
    Ok(Pruned { deleted, first_seq })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_lock_keys_are_stable_and_spread() {
        // FNV-1a's published test vectors.
        assert_eq!(prune_lock_key("") as u32, 0x811c_9dc5);
        assert_eq!(prune_lock_key("a") as u32, 0xe40c_292c);
        assert_ne!(prune_lock_key("room-1"), prune_lock_key("room-2"));
    }
}
