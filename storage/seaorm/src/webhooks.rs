//! Webhooks' queries of the `Store` port (docs/contract.md §10): the
//! registered hooks, their cursors (a compare-and-set), the outbox rows of
//! the control changes, and which rooms a hook has not caught up with.
//!
//! The SQL is written once with `$n` parameters; SQLite reads the same
//! numbers as `?n` ([`sql`]).

use std::borrow::Cow;

use parlor_engine::{
    ControlEvent, OutboxEvent, RoomId, Seq, Timestamp,
    ports::{CursorMove, WebhookCursor},
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, QueryResult, Statement,
    TransactionTrait, Value,
};
use uuid::Uuid;

use crate::{rows::corrupt, transactions::immediate};

/// `text` for `backend`: SQLite numbers its parameters `?1`, Postgres `$1`.
/// (No statement here has a `$` anywhere else.)
fn sql(backend: DbBackend, text: &str) -> Cow<'_, str> {
    if backend == DbBackend::Postgres {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.replace('$', "?"))
    }
}

fn statement(backend: DbBackend, text: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(backend, sql(backend, text), values)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn to_u64(n: i64, what: &str) -> Result<u64, DbErr> {
    u64::try_from(n).map_err(|_| corrupt(what))
}

/// Locks `room`'s row inside `txn` (Postgres; SQLite's IMMEDIATE
/// transaction holds the one write lock already), for a change whose
/// outbox row must be placed after the head and numbered in commit order:
/// a ban, which otherwise takes only the foreign key's share lock.
pub(crate) async fn lock_room(txn: &impl ConnectionTrait, room: &RoomId) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        let lock = "SELECT 1 FROM parlor_rooms WHERE id = $1 FOR UPDATE";
        txn.query_one_raw(statement(backend, lock, [room.as_str().into()]))
            .await?;
    }
    Ok(())
}

/// Writes `event` of `room` as an outbox row inside `txn`, placed after
/// the room's head (0 when the room is not stored: purged) — only while a
/// hook is registered. The caller holds the room's row lock (Postgres:
/// [`lock_room`], or the change's own UPDATE or DELETE of the row) or the
/// write lock (SQLite), so the head cannot move and no other outbox row of
/// the room commits before this one: ids follow commit order per room.
pub(crate) async fn write_outbox(
    txn: &impl ConnectionTrait,
    room: &RoomId,
    event: &ControlEvent,
) -> Result<(), DbErr> {
    const INSERT: &str = "INSERT INTO parlor_outbox \
           (event_id, room_id, after_seq, at_ms, kind, data) \
         SELECT $1, $2, COALESCE((SELECT last_seq FROM parlor_rooms WHERE id = $2), 0), \
           $3, $4, $5 \
         WHERE EXISTS (SELECT 1 FROM parlor_webhooks)";
    let data = serde_json::to_string(&event.data())
        .map_err(|e| DbErr::Custom(format!("outbox data to JSON: {e}")))?;
    let values: [Value; 5] = [
        Uuid::now_v7().to_string().into(),
        room.as_str().into(),
        Timestamp::now().millis().into(),
        event.type_name().into(),
        data.into(),
    ];
    let backend = txn.get_database_backend();
    txn.execute_raw(statement(backend, INSERT, values)).await?;
    Ok(())
}

/// A purge's part, inside its transaction: the room's log is gone, so its
/// outbox rows move to seq 0, and every registered hook's cursor there goes
/// to seq 0 with its epoch bumped (a hook with none gets one at outbox row
/// 0: it delivered nothing of the room). The id's next incarnation starts
/// its stream after them, and a delivery read before the purge fails its
/// compare-and-set.
pub(crate) async fn rewind_purged(txn: &impl ConnectionTrait, room: &RoomId) -> Result<(), DbErr> {
    const REWIND_ROWS: &str = "UPDATE parlor_outbox SET after_seq = 0 WHERE room_id = $1";
    const REWIND_CURSORS: &str = "INSERT INTO parlor_webhook_cursors \
           (hook, room_id, seq, outbox_id, epoch) \
         SELECT h.hook, $1, 0, 0, 1 FROM parlor_webhooks h WHERE true \
         ON CONFLICT (hook, room_id) DO UPDATE \
         SET seq = 0, epoch = parlor_webhook_cursors.epoch + 1";
    let backend = txn.get_database_backend();
    // Cursors, then outbox rows: the order `advance` locks them in.
    for text in [REWIND_CURSORS, REWIND_ROWS] {
        txn.execute_raw(statement(backend, text, [room.as_str().into()]))
            .await?;
    }
    Ok(())
}

/// Registers exactly `hooks`, in one transaction; forgets the others'
/// cursors, and with no hook every outbox row. A hook new to the store
/// starts at every room's head: it hears what happens from now on.
pub(crate) async fn register(db: &DatabaseConnection, hooks: &[String]) -> Result<(), DbErr> {
    // Every stored room at its head and past every outbox row so far, and
    // purged rooms' rows (their room is gone) passed too. (`WHERE true`:
    // SQLite reads `ON` after a bare FROM as a join's.)
    const START_AT_HEADS: &str = "INSERT INTO parlor_webhook_cursors \
           (hook, room_id, seq, outbox_id) \
         SELECT $1, r.id, r.last_seq, (SELECT COALESCE(MAX(id), 0) FROM parlor_outbox) \
         FROM parlor_rooms r WHERE true ON CONFLICT DO NOTHING";
    const PAST_PURGED: &str = "INSERT INTO parlor_webhook_cursors \
           (hook, room_id, seq, outbox_id) \
         SELECT DISTINCT $1, o.room_id, 0, (SELECT COALESCE(MAX(id), 0) FROM parlor_outbox) \
         FROM parlor_outbox o WHERE true ON CONFLICT DO NOTHING";
    let txn = db.begin_with_options(immediate()).await?;
    let backend = db.get_database_backend();
    let known: Vec<String> = txn
        .query_all_raw(statement(backend, "SELECT hook FROM parlor_webhooks", []))
        .await?
        .iter()
        .map(|row| row.try_get_by_index(0))
        .collect::<Result<_, _>>()?;
    txn.execute_raw(statement(backend, "DELETE FROM parlor_webhooks", []))
        .await?;
    for hook in hooks {
        txn.execute_raw(statement(
            backend,
            "INSERT INTO parlor_webhooks (hook) VALUES ($1) ON CONFLICT DO NOTHING",
            [hook.as_str().into()],
        ))
        .await?;
    }
    txn.execute_raw(statement(
        backend,
        "DELETE FROM parlor_webhook_cursors \
         WHERE hook NOT IN (SELECT hook FROM parlor_webhooks)",
        [],
    ))
    .await?;
    for hook in hooks.iter().filter(|h| !known.contains(h)) {
        for text in [START_AT_HEADS, PAST_PURGED] {
            txn.execute_raw(statement(backend, text, [hook.as_str().into()]))
                .await?;
        }
    }
    if hooks.is_empty() {
        txn.execute_raw(statement(backend, "DELETE FROM parlor_outbox", []))
            .await?;
    }
    txn.commit().await
}

/// Up to `limit` rooms after `after`, ascending by id, with entries above
/// `hook`'s cursor (no cursor: any stored entry) or outbox rows past it.
///
/// It reads every room's row: fine for the thousands of rooms one
/// database serves, and it runs once per delivery round, not per append.
pub(crate) async fn rooms_behind(
    db: &DatabaseConnection,
    hook: &str,
    after: Option<&RoomId>,
    limit: u32,
) -> Result<Vec<RoomId>, DbErr> {
    const SELECT: &str = "SELECT id FROM (\
           SELECT r.id AS id FROM parlor_rooms r \
           LEFT JOIN parlor_webhook_cursors c ON c.hook = $1 AND c.room_id = r.id \
           WHERE r.last_seq > COALESCE(c.seq, r.first_seq - 1) \
           UNION \
           SELECT o.room_id AS id FROM parlor_outbox o \
           LEFT JOIN parlor_webhook_cursors c ON c.hook = $1 AND c.room_id = o.room_id \
           WHERE o.id > COALESCE(c.outbox_id, 0)\
         ) AS behind WHERE id > $2 ORDER BY id LIMIT $3";
    let backend = db.get_database_backend();
    // Every id is non-empty, so it sorts after "".
    let after = after.map_or("", RoomId::as_str);
    let values: [Value; 3] = [hook.into(), after.into(), i64::from(limit).into()];
    let rows = db.query_all_raw(statement(backend, SELECT, values)).await?;
    rows.into_iter()
        .map(|row| {
            let id: String = row.try_get_by_index(0)?;
            RoomId::new(&id).map_err(|_| DbErr::Custom("stored row has an invalid room id".into()))
        })
        .collect()
}

/// `hook`'s cursor in `room`.
pub(crate) async fn cursor(
    db: &DatabaseConnection,
    hook: &str,
    room: &RoomId,
) -> Result<Option<WebhookCursor>, DbErr> {
    const SELECT: &str = "SELECT seq, outbox_id, epoch FROM parlor_webhook_cursors \
         WHERE hook = $1 AND room_id = $2";
    let backend = db.get_database_backend();
    let values: [Value; 2] = [hook.into(), room.as_str().into()];
    let Some(row) = db.query_one_raw(statement(backend, SELECT, values)).await? else {
        return Ok(None);
    };
    Ok(Some(WebhookCursor {
        seq: to_u64(row.try_get_by_index(0)?, "seq")?,
        outbox_id: to_u64(row.try_get_by_index(1)?, "outbox id")?,
        epoch: to_u64(row.try_get_by_index(2)?, "epoch")?,
    }))
}

/// Up to `limit` of `room`'s outbox rows with `id > after` and
/// `after_seq <= upto`, ascending by id.
pub(crate) async fn outbox(
    db: &DatabaseConnection,
    room: &RoomId,
    after: u64,
    upto: Seq,
    limit: u32,
) -> Result<Vec<OutboxEvent>, DbErr> {
    const SELECT: &str = "SELECT id, event_id, after_seq, at_ms, kind, data FROM parlor_outbox \
         WHERE room_id = $1 AND id > $2 AND after_seq <= $3 ORDER BY id LIMIT $4";
    let backend = db.get_database_backend();
    let values: [Value; 4] = [
        room.as_str().into(),
        to_i64(after).into(),
        to_i64(upto).into(),
        i64::from(limit).into(),
    ];
    let rows = db.query_all_raw(statement(backend, SELECT, values)).await?;
    rows.iter().map(|row| to_outbox_event(row, room)).collect()
}

fn to_outbox_event(row: &QueryResult, room: &RoomId) -> Result<OutboxEvent, DbErr> {
    let event_id: String = row.try_get_by_index(1)?;
    let kind: String = row.try_get_by_index(4)?;
    let data: String = row.try_get_by_index(5)?;
    let data = serde_json::from_str(&data).map_err(|_| corrupt("outbox data"))?;
    Ok(OutboxEvent {
        outbox_id: to_u64(row.try_get_by_index(0)?, "outbox id")?,
        id: Uuid::parse_str(&event_id).map_err(|_| corrupt("outbox event id"))?,
        room_id: room.clone(),
        after_seq: to_u64(row.try_get_by_index(2)?, "seq")?,
        at: Timestamp(row.try_get_by_index(3)?),
        event: ControlEvent::from_stored(&kind, &data)
            .map_err(|_| corrupt("outbox kind or data"))?,
    })
}

/// Moves each of `hook`'s cursors from its `from` to its `to` if it is
/// still `from`, in one transaction; then drops the outbox rows every
/// registered hook passed in those rooms. A purged room's cursors stay
/// (a row per hook and id): deleting them would let a delivery read
/// before the purge insert a cursor into the id's next incarnation.
/// Cursors, then outbox rows: the order a purge locks them in too.
pub(crate) async fn advance(
    db: &DatabaseConnection,
    hook: &str,
    moves: &[CursorMove],
) -> Result<Vec<bool>, DbErr> {
    // Only a registered hook's cursors move: a hook another node's start
    // forgot is not written back behind its back.
    const INSERT: &str = "INSERT INTO parlor_webhook_cursors \
           (hook, room_id, seq, outbox_id, epoch) \
         SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM parlor_webhooks WHERE hook = $1) \
         ON CONFLICT DO NOTHING";
    const UPDATE: &str = "UPDATE parlor_webhook_cursors SET seq = $3, outbox_id = $4 \
         WHERE hook = $1 AND room_id = $2 AND epoch = $5 AND seq = $6 AND outbox_id = $7 \
           AND EXISTS (SELECT 1 FROM parlor_webhooks WHERE hook = $1)";
    const DROP_PASSED: &str = "DELETE FROM parlor_outbox WHERE room_id = $1 AND id <= \
         (SELECT MIN(COALESCE(c.outbox_id, 0)) FROM parlor_webhooks h \
          LEFT JOIN parlor_webhook_cursors c ON c.hook = h.hook AND c.room_id = $1)";
    let backend = db.get_database_backend();
    let txn = db.begin_with_options(immediate()).await?;
    let mut moved = Vec::with_capacity(moves.len());
    for CursorMove { room, from, to } in moves {
        let mut values: Vec<Value> = vec![
            hook.into(),
            room.as_str().into(),
            to_i64(to.seq).into(),
            to_i64(to.outbox_id).into(),
        ];
        let done = match from {
            None => {
                values.push(to_i64(to.epoch).into());
                txn.execute_raw(statement(backend, INSERT, values)).await?
            }
            Some(from) => {
                values.push(to_i64(from.epoch).into());
                values.push(to_i64(from.seq).into());
                values.push(to_i64(from.outbox_id).into());
                txn.execute_raw(statement(backend, UPDATE, values)).await?
            }
        };
        let this = done.rows_affected() > 0;
        moved.push(this);
        if this && to.outbox_id > from.unwrap_or_default().outbox_id {
            txn.execute_raw(statement(backend, DROP_PASSED, [room.as_str().into()]))
                .await?;
        }
    }
    txn.commit().await?;
    Ok(moved)
}

/// SQL for the highest seq every registered hook delivered in the room
/// `$room` (an SQL expression): NULL when no hook is registered, 0 while
/// a hook has no cursor there. Retention never prunes past it.
macro_rules! delivered_in {
    ($room:literal) => {
        concat!(
            "(SELECT MIN(COALESCE(k.seq, 0)) FROM parlor_webhooks h \
             LEFT JOIN parlor_webhook_cursors k ON k.hook = h.hook AND k.room_id = ",
            $room,
            ")"
        )
    };
}
pub(crate) use delivered_in;

/// The highest seq every registered hook delivered in `room`, read inside
/// a prune's transaction; `None` when no hook is registered.
pub(crate) async fn delivered(
    txn: &impl ConnectionTrait,
    room: &str,
) -> Result<Option<i64>, DbErr> {
    const SELECT: &str = concat!("SELECT ", delivered_in!("$1"));
    let backend = txn.get_database_backend();
    let row = txn
        .query_one_raw(statement(backend, SELECT, [room.into()]))
        .await?;
    Ok(row
        .map(|row| row.try_get_by_index::<Option<i64>>(0))
        .transpose()?
        .flatten())
}
