//! Retention's queries of the `Store` port (docs/contract.md §2,
//! "Retention"): the rooms that may need pruning, and the pruning of
//! rooms' oldest entries, a bounded batch at a time (Postgres: a
//! transaction per room; SQLite: one statement for several rooms).

use parlor_engine::{
    RoomId, StoredRoom,
    ports::{PruneBound, Pruned},
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QuerySelect, Statement,
    TransactionTrait, Value,
};

use std::collections::{HashMap, HashSet};

use crate::{
    append_sqlite::{json, statement},
    entity::room,
    rows::to_room,
    transactions::immediate,
    webhooks::{self, delivered_in},
};

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
    let txn = db.begin_with_options(immediate()).await?;
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
    if bound.is_stale(u64::try_from(stored.last_seq).unwrap_or(0)) {
        txn.commit().await?;
        return pruned(0, stored.first_seq);
    }
    let (select, delete, update, erase_edits) = if postgres {
        (
            "SELECT seq, created_at FROM parlor_entries WHERE room_id = $1 \
             ORDER BY seq LIMIT $2",
            "DELETE FROM parlor_entries WHERE room_id = $1 AND seq <= $2",
            "UPDATE parlor_rooms SET first_seq = $2 WHERE id = $1 AND first_seq < $2",
            "UPDATE parlor_entries SET body = NULL, data = NULL, redacted = TRUE \
             WHERE room_id = $1 AND target_seq <= $2 AND kind = 'edit' AND NOT redacted",
        )
    } else {
        (
            "SELECT seq, created_at FROM parlor_entries WHERE room_id = ?1 \
             ORDER BY seq LIMIT ?2",
            "DELETE FROM parlor_entries WHERE room_id = ?1 AND seq <= ?2",
            "UPDATE parlor_rooms SET first_seq = ?2 WHERE id = ?1 AND first_seq < ?2",
            "UPDATE parlor_entries SET body = NULL, data = NULL, redacted = 1 \
             WHERE room_id = ?1 AND target_seq <= ?2 AND kind = 'edit' AND NOT redacted",
        )
    };
    // A webhook's undelivered entries stay, whatever the bound says.
    let delivered = webhooks::delivered(&txn, id).await?.unwrap_or(i64::MAX);
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
        if !(below || older) || seq > delivered {
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
    // An edit kept whose message went is erased with it (the index on
    // (room_id, target_seq) finds them).
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        erase_edits,
        [Value::from(id), upto.into()],
    ))
    .await?;
    let first_seq = stored.first_seq.max(upto + 1);
    // On SQLite this UPDATE's trigger (migration `m0010`) finds nothing
    // left below `first_seq` to delete or erase.
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        update,
        [Value::from(id), first_seq.into()],
    ))
    .await?;
    txn.commit().await?;
    pruned(deleted, first_seq)
}

/// SQLite's `Store::prune_rooms`: several rooms in one statement, at most
/// `max_rows` entries in all, an equal share of them per room that has
/// entries to let go.
///
/// Why several rooms: the entries of all rooms share the table's pages in
/// the order they were stored, so pruning room by room rewrites a page
/// once for every room with a row on it, while the oldest few rows of
/// every room at once are rows stored at about the same time — whole
/// pages (docs/benchmarks.md, step 23). Each room loses only a prefix its
/// bound lets go, and never more than `max_rows` go in all: with more
/// rooms to prune than that, the first `max_rows` lose one each and the
/// others are left out (not reached). A room with less to let go than its
/// share leaves the rest of the budget unused; the caller calls again
/// while rooms lose entries.
///
/// Why one statement: the cuts are worked out on the read pool, where no
/// append waits for them, and the writer does only one `UPDATE` of the
/// rooms' `first_seq` in autocommit, whose trigger (migration `m0010`)
/// deletes the entries below it — one call to SQLite's worker thread
/// while appends wait, not four (docs/benchmarks.md, step 30). What was
/// read may be stale by then, so the `UPDATE` checks it again: a room
/// whose `first_seq` moved meanwhile (another prune), that was purged and
/// created again (another `created_at`, or a log shorter than the cut), or
/// whose cut a webhook's cursor no longer covers is left as it is and left
/// out of the answer (not reached this time: a later call or pass reads it
/// again).
pub(crate) async fn prune_rooms_sqlite(
    reads: &DatabaseConnection,
    writes: &DatabaseConnection,
    rooms: &[(RoomId, PruneBound)],
    max_rows: u32,
) -> Result<Vec<(RoomId, Pruned)>, DbErr> {
    // With each room's head, the highest seq every registered webhook
    // delivered there (NULL: no hook holds retention back).
    const HEADS: &str = concat!(
        "SELECT r.id, r.first_seq, r.last_seq, r.created_at, ",
        delivered_in!("r.id"),
        " FROM jsonb_each(?1) AS j JOIN parlor_rooms r ON r.id = j.value"
    );
    // Moves each room's `first_seq` past its cut — its trigger deletes the
    // entries below — where the room is still the one read (its
    // `created_at`), `first_seq` is still what was read, the log reaches
    // the cut, and every registered webhook has delivered it.
    const CUT: &str = concat!(
        "UPDATE parlor_rooms SET first_seq = (c.value ->> 2) + 1 \
         FROM jsonb_each(?1) AS c \
         WHERE parlor_rooms.id = c.value ->> 0 AND parlor_rooms.first_seq = c.value ->> 1 \
           AND parlor_rooms.created_at = c.value ->> 3 \
           AND c.value ->> 2 <= parlor_rooms.last_seq \
           AND c.value ->> 2 <= coalesce(",
        delivered_in!("parlor_rooms.id"),
        ", c.value ->> 2) RETURNING id"
    );
    let ids: Vec<&str> = rooms.iter().map(|(id, _)| id.as_str()).collect();
    let mut heads = HashMap::new();
    for row in reads.query_all_raw(statement(HEADS, [json(&ids)?])).await? {
        let id: String = row.try_get_by_index(0)?;
        let first: i64 = row.try_get_by_index(1)?;
        let last: i64 = row.try_get_by_index(2)?;
        let created_at: i64 = row.try_get_by_index(3)?;
        let delivered: Option<i64> = row.try_get_by_index(4)?;
        heads.insert(id, (first, last, created_at, delivered));
    }
    let budget = i64::from(max_rows.max(1));
    // How far one room's age check looks: its share if every room has
    // entries to let go.
    let window = (budget / i64::try_from(rooms.len()).unwrap_or(i64::MAX)).max(1);
    let mut done = Vec::with_capacity(rooms.len());
    // Each room's first seq, the last its bound lets go, and when it was
    // created.
    let mut ranges: Vec<(&RoomId, i64, i64, i64)> = Vec::new();
    for (room, bound) in rooms {
        let Some(&(first, last, created_at, delivered)) = heads.get(room.as_str()) else {
            done.push((room.clone(), pruned(0, 1)?));
            continue;
        };
        if bound.is_stale(u64::try_from(last).unwrap_or(0)) {
            done.push((room.clone(), pruned(0, first)?));
            continue;
        }
        // Never past the log, nor past what a webhook has not delivered.
        let last = last.min(delivered.unwrap_or(i64::MAX));
        let below = i64::try_from(bound.below_seq).unwrap_or(i64::MAX);
        let mut upto = below.saturating_sub(1);
        if let Some(older_than) = bound.older_than
            && upto < last
        {
            let from = first.max(below);
            let aged = aged_prefix_end(reads, room, from, older_than.millis(), window).await?;
            upto = upto.max(aged);
        }
        // Never past the log (or a webhook's cursor), whatever the bound says.
        let upto = upto.min(last);
        if upto < first {
            done.push((room.clone(), pruned(0, first)?));
        } else {
            ranges.push((room, first, upto, created_at));
        }
    }
    if ranges.is_empty() {
        return Ok(done);
    }
    // More rooms than budget: the first `budget` rooms lose one each.
    ranges.truncate(usize::try_from(budget).unwrap_or(usize::MAX));
    let share = (budget / i64::try_from(ranges.len()).unwrap_or(i64::MAX)).max(1);
    let cuts: Vec<(&str, i64, i64, i64)> = ranges
        .iter()
        .map(|&(room, first, upto, created_at)| {
            let cut = upto.min(first + share - 1);
            (room.as_str(), first, cut, created_at)
        })
        .collect();
    let moved: HashSet<String> = writes
        .query_all_raw(statement(CUT, [json(&cuts)?]))
        .await?
        .into_iter()
        .map(|row| row.try_get_by_index(0))
        .collect::<Result<_, _>>()?;
    for (&(room, first, ..), &(_, _, cut, _)) in ranges.iter().zip(&cuts) {
        if moved.contains(room.as_str()) {
            // Seqs are gap-free from `first_seq`: the prefix held them all.
            let deleted = u64::try_from(cut - first + 1).unwrap_or(0);
            done.push((room.clone(), pruned(deleted, cut + 1)?));
        }
    }
    Ok(done)
}

/// The last seq of the prefix the age bound lets go among `room`'s
/// entries from seq `from` on, looking at most `window` entries ahead: just
/// before the first entry stored at or after `older_than` (ms), else the
/// window's last seq (every entry in it is older). The scan stops at the
/// first entry the bound keeps, so a room with nothing old costs one row.
async fn aged_prefix_end(
    txn: &impl ConnectionTrait,
    room: &RoomId,
    from: i64,
    older_than: i64,
    window: i64,
) -> Result<i64, DbErr> {
    const SQL: &str = "SELECT seq FROM parlor_entries \
         WHERE room_id = ?1 AND seq >= ?2 AND seq < ?2 + ?4 AND created_at >= ?3 \
         ORDER BY seq LIMIT 1";
    let values: [Value; 4] = [
        room.as_str().into(),
        from.into(),
        older_than.into(),
        window.into(),
    ];
    let kept = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            SQL,
            values,
        ))
        .await?
        .map(|row| row.try_get_by_index::<i64>(0))
        .transpose()?;
    Ok(match kept {
        Some(kept) => kept - 1,
        None => from.saturating_add(window - 1),
    })
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
