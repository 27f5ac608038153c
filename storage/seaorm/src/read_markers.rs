//! Read markers' queries of the `Store` port (docs/contract.md §2, "Read
//! markers"): a monotone upsert, and every asked room's read state in one
//! query.

use parlor_engine::{ReadState, RoomId, Seq, UserId};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, Value};

/// Raises `user`'s marker in `room` to `seq` (never lowers it) and returns
/// the stored marker, in one statement. A room that is not stored fails
/// on the foreign key (the caller's `ROOM_NOT_FOUND`).
pub(crate) async fn set(
    db: &DatabaseConnection,
    room: &RoomId,
    user: &UserId,
    seq: Seq,
) -> Result<Seq, DbErr> {
    const SQLITE: &str = "INSERT INTO parlor_read_markers (room_id, user_id, seq) \
         VALUES (?1, ?2, ?3) ON CONFLICT (room_id, user_id) \
         DO UPDATE SET seq = max(parlor_read_markers.seq, excluded.seq) RETURNING seq";
    const POSTGRES: &str = "INSERT INTO parlor_read_markers (room_id, user_id, seq) \
         VALUES ($1, $2, $3) ON CONFLICT (room_id, user_id) \
         DO UPDATE SET seq = GREATEST(parlor_read_markers.seq, excluded.seq) RETURNING seq";
    let backend = db.get_database_backend();
    let sql = if backend == DbBackend::Postgres {
        POSTGRES
    } else {
        SQLITE
    };
    // The engine bounds a seq to 2^63 - 1.
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    let values: [Value; 3] = [room.as_str().into(), user.as_str().into(), seq.into()];
    let row = db
        .query_one_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?
        .ok_or_else(|| DbErr::RecordNotInserted)?;
    let stored: i64 = row.try_get_by_index(0)?;
    u64::try_from(stored).map_err(|_| DbErr::Custom("stored row has an invalid seq".into()))
}

/// `user`'s read state in each of `rooms`, in order, with one query: the
/// marker (0 when none) and the stored, unredacted `text` and `system`
/// entries after it that someone else sent. A room that is not stored
/// reads as no marker and nothing unread.
pub(crate) async fn states(
    db: &DatabaseConnection,
    user: &UserId,
    rooms: &[RoomId],
) -> Result<Vec<ReadState>, DbErr> {
    const SQLITE: &str = "SELECT k.key, coalesce(m.seq, 0), \
           (SELECT count(*) FROM parlor_entries e WHERE e.room_id = k.value \
              AND e.seq > coalesce(m.seq, 0) AND e.kind IN ('text', 'system') \
              AND e.sender <> ?2 AND NOT e.redacted) \
         FROM json_each(?1) AS k \
         LEFT JOIN parlor_read_markers m ON m.room_id = k.value AND m.user_id = ?2";
    const POSTGRES: &str = "SELECT k.i - 1, coalesce(m.seq, 0), \
           (SELECT count(*) FROM parlor_entries e WHERE e.room_id = k.room_id \
              AND e.seq > coalesce(m.seq, 0) AND e.kind IN ('text', 'system') \
              AND e.sender <> $2 AND NOT e.redacted) \
         FROM unnest($1::text[]) WITH ORDINALITY AS k(room_id, i) \
         LEFT JOIN parlor_read_markers m ON m.room_id = k.room_id AND m.user_id = $2";
    let mut states = vec![ReadState::default(); rooms.len()];
    if rooms.is_empty() {
        return Ok(states);
    }
    let backend = db.get_database_backend();
    let (sql, list) = if backend == DbBackend::Postgres {
        (POSTGRES, room_array(rooms)?)
    } else {
        let ids: Vec<&str> = rooms.iter().map(RoomId::as_str).collect();
        let json = serde_json::to_string(&ids)
            .map_err(|e| DbErr::Custom(format!("rooms to JSON: {e}")))?;
        (SQLITE, Value::from(json))
    };
    let values: [Value; 2] = [list, user.as_str().into()];
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    for row in rows {
        let at: i64 = row.try_get_by_index(0)?;
        let marker: i64 = row.try_get_by_index(1)?;
        let unread: i64 = row.try_get_by_index(2)?;
        let state = usize::try_from(at)
            .ok()
            .and_then(|at| states.get_mut(at))
            .ok_or_else(|| DbErr::Custom("read state of no asked room".into()))?;
        *state = ReadState {
            last_read_seq: u64::try_from(marker).unwrap_or(0),
            unread: u64::try_from(unread).unwrap_or(0),
        };
    }
    Ok(states)
}

/// The room ids as one Postgres `text[]` parameter.
#[cfg(feature = "postgres")]
fn room_array(rooms: &[RoomId]) -> Result<Value, DbErr> {
    let ids: Vec<Value> = rooms.iter().map(|r| Value::from(r.as_str())).collect();
    Ok(Value::Array(
        sea_orm::sea_query::ArrayType::String,
        Some(Box::new(ids)),
    ))
}

/// Without the `postgres` feature no connection is to Postgres.
#[cfg(not(feature = "postgres"))]
fn room_array(_: &[RoomId]) -> Result<Value, DbErr> {
    Err(DbErr::Custom("built without the `postgres` feature".into()))
}
