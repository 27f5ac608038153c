//! The append transaction's batch statements on Postgres, each with
//! fixed SQL whatever the batch size: the rows travel as arrays, one per
//! column, unpacked by `unnest`.
//!
//! Why: SQL that grows with the batch (`IN ((…), (…), …)`, `VALUES (…), …`)
//! is a new statement for Postgres at every size — parsed, planned and
//! prepared again, an extra round trip each time. With arrays, each statement
//! is prepared once per connection and a transaction costs one round trip per
//! step (docs/benchmarks.md, step 12). SQLite's counterparts, with the rows
//! as JSON, are in the SQLite module; the append's dialect switch picks one.

use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement, Value, sea_query::ArrayType,
};

use parlor_engine::NewEntry;

use crate::{
    amendments::{EditEffect, RedactionEffect, TargetRow, seq_value},
    entity::entry,
    rows::{data_text, reason_text},
    translate::room_not_stored,
};

/// One array parameter of `values`.
fn array(values: impl IntoIterator<Item = Value>, ty: ArrayType) -> Value {
    Value::Array(ty, Some(Box::new(values.into_iter().collect())))
}

fn bigints(values: impl IntoIterator<Item = i64>) -> Value {
    array(
        values.into_iter().map(|v| Value::BigInt(Some(v))),
        ArrayType::BigInt,
    )
}

fn texts<T: Into<String>>(values: impl IntoIterator<Item = T>) -> Value {
    array(
        values.into_iter().map(|v| Value::String(Some(v.into()))),
        ArrayType::String,
    )
}

/// Locks the rooms named by `$1` in id order, the one order every append
/// takes them in (a macro, so that the statements using it stay constants).
macro_rules! lock_rooms_sql {
    () => {
        "SELECT id FROM parlor_rooms WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE"
    };
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The stored entries among `keys` (room, sender, client_id).
pub(crate) async fn stored_texts(
    txn: &impl ConnectionTrait,
    keys: &[(&str, &str, &str)],
) -> Result<Vec<entry::Model>, DbErr> {
    const SQL: &str = "SELECT e.* FROM parlor_entries e \
         JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(room_id, sender, client_id) \
         ON e.room_id = k.room_id AND e.sender = k.sender AND e.client_id = k.client_id";
    let values = vec![
        texts(keys.iter().map(|k| k.0)),
        texts(keys.iter().map(|k| k.1)),
        texts(keys.iter().map(|k| k.2)),
    ];
    entry::Entity::find()
        .from_raw_sql(statement(SQL, values))
        .all(txn)
        .await
}

/// Reserves each room's seqs and inserts `entries`; returns the rooms' new
/// heads. Arguments as for SQLite's `reserve_and_insert`: each entry's
/// seq is its room's new head minus its `back`.
pub(crate) async fn reserve_and_insert<'a>(
    txn: &impl ConnectionTrait,
    per_room: &[(&str, i64)],
    entries: impl Iterator<Item = (&'a NewEntry, i64)>,
) -> Result<HashMap<String, i64>, DbErr> {
    let heads = reserve_seqs(txn, per_room).await?;
    let rows = entries
        .map(|(e, back)| {
            let room_id = e.room_id.as_str();
            let head = heads.get(room_id).ok_or_else(|| room_not_stored(room_id))?;
            Ok((e, head - back))
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    insert_entries(txn, &rows).await?;
    Ok(heads)
}

/// Adds `n` to each room's `last_seq` and returns the new heads. The rooms
/// are locked in id order first, so concurrent appends cannot deadlock.
async fn reserve_seqs(
    txn: &impl ConnectionTrait,
    per_room: &[(&str, i64)],
) -> Result<HashMap<String, i64>, DbErr> {
    const SQL: &str = concat!(
        "WITH locked AS (",
        lock_rooms_sql!(),
        ") UPDATE parlor_rooms r SET last_seq = r.last_seq + d.n \
         FROM unnest($1::text[], $2::bigint[]) AS d(id, n), locked \
         WHERE r.id = d.id AND locked.id = d.id \
         RETURNING r.id, r.last_seq"
    );
    let values = vec![
        texts(per_room.iter().map(|r| r.0)),
        bigints(per_room.iter().map(|r| r.1)),
    ];
    txn.query_all_raw(statement(SQL, values))
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

/// Locks the batch's rooms, in id order (the order `reserve_seqs` takes).
pub(crate) async fn lock_rooms(
    txn: &impl ConnectionTrait,
    batch: &[NewEntry],
) -> Result<(), DbErr> {
    const SQL: &str = lock_rooms_sql!();
    let rooms = texts(batch.iter().map(|e| e.room_id.as_str()));
    txn.query_all_raw(statement(SQL, vec![rooms])).await?;
    Ok(())
}

/// Inserts the entries, each at its seq.
async fn insert_entries(
    txn: &impl ConnectionTrait,
    entries: &[(&NewEntry, i64)],
) -> Result<(), DbErr> {
    // sea-query binds no NULL inside an array, so an absent client_id or
    // body (join and leave entries) travels as '' and is stored as NULL: a
    // message never has an empty one (the engine refuses both). So do an
    // absent data (a data's text is a JSON object, never '': an empty
    // object is '{}') and an absent target_seq (0: seqs start at 1). A
    // reason or a redaction's note may be '', so a present one travels
    // behind a '.' that the INSERT cuts off.
    const SQL: &str = "INSERT INTO parlor_entries \
         (room_id, seq, id, kind, sender, client_id, body, created_at, data, reason, target_seq) \
         SELECT room_id, seq, id, kind, sender, NULLIF(client_id, ''), NULLIF(body, ''), \
                created_at, NULLIF(data, ''), \
                CASE WHEN reason = '' THEN NULL ELSE substr(reason, 2) END, \
                NULLIF(target_seq, 0) \
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], \
                     $5::text[], $6::text[], $7::text[], $8::bigint[], \
                     $9::text[], $10::text[], $11::bigint[]) \
           AS r(room_id, seq, id, kind, sender, client_id, body, created_at, data, reason, \
                target_seq)";
    let big = |f: fn(&(&NewEntry, i64)) -> i64| bigints(entries.iter().map(f));
    let string = |f: fn(&NewEntry) -> &str| texts(entries.iter().map(|(e, _)| f(e)));
    let data = entries
        .iter()
        .map(|(e, _)| e.data.as_ref().map(data_text).unwrap_or(Ok(String::new())))
        .collect::<Result<Vec<String>, DbErr>>()?;
    let reasons = entries
        .iter()
        .map(|(e, _)| reason_text(e).map_or_else(String::new, |r| format!(".{r}")));
    let values = vec![
        string(|e| e.room_id.as_str()),
        big(|&(_, seq)| seq),
        texts(entries.iter().map(|(e, _)| e.id.to_string())),
        string(|e| e.kind.as_str()),
        string(|e| e.sender.as_str()),
        string(|e| e.client_id.as_deref().unwrap_or("")),
        string(|e| e.body.as_deref().unwrap_or("")),
        big(|(e, _)| e.created_at.millis()),
        texts(data),
        texts(reasons),
        big(|(e, _)| e.target_seq.map_or(0, seq_value)),
    ];
    txn.execute_raw(statement(SQL, values)).await?;
    Ok(())
}

/// For each amended (room, seq) of `keys`: the room's head and the entry
/// stored there, if any. A room that is not stored has no row.
pub(crate) async fn lookup_targets(
    txn: &impl ConnectionTrait,
    keys: &[(&str, i64)],
) -> Result<Vec<TargetRow>, DbErr> {
    const SQL: &str = "SELECT k.room_id, k.seq, r.last_seq, e.kind, coalesce(e.redacted, false) \
         FROM unnest($1::text[], $2::bigint[]) AS k(room_id, seq) \
         JOIN parlor_rooms r ON r.id = k.room_id \
         LEFT JOIN parlor_entries e ON e.room_id = k.room_id AND e.seq = k.seq";
    let values = vec![
        texts(keys.iter().map(|k| k.0)),
        bigints(keys.iter().map(|k| k.1)),
    ];
    txn.query_all_raw(statement(SQL, values))
        .await?
        .into_iter()
        .map(|row| {
            Ok(TargetRow {
                room_id: row.try_get_by_index(0)?,
                seq: row.try_get_by_index(1)?,
                head: row.try_get_by_index(2)?,
                kind: row.try_get_by_index(3)?,
                redacted: row.try_get_by_index(4)?,
            })
        })
        .collect()
}

/// The `redaction` entries of the messages at `targets` (room, seq).
pub(crate) async fn redactions_of(
    txn: &impl ConnectionTrait,
    targets: &[(&str, i64)],
) -> Result<Vec<entry::Model>, DbErr> {
    const SQL: &str = "SELECT e.* FROM unnest($1::text[], $2::bigint[]) AS t(room_id, seq) \
         JOIN parlor_entries e ON e.room_id = t.room_id AND e.target_seq = t.seq \
           AND e.kind = 'redaction'";
    let values = vec![
        texts(targets.iter().map(|t| t.0)),
        bigints(targets.iter().map(|t| t.1)),
    ];
    entry::Entity::find()
        .from_raw_sql(statement(SQL, values))
        .all(txn)
        .await
}

/// Writes the accepted amendments' effects, edits first: each edit's
/// target gets its body, data and `edited_at`; each redacted message, and
/// every `edit` of it, loses body and data and is marked redacted.
pub(crate) async fn apply_amendments(
    txn: &impl ConnectionTrait,
    edits: &[EditEffect<'_>],
    redactions: &[RedactionEffect<'_>],
) -> Result<(), DbErr> {
    // As in the INSERT, an absent body or data travels as ''.
    const EDITS: &str = "UPDATE parlor_entries e \
         SET body = NULLIF(u.body, ''), data = NULLIF(u.data, ''), edited_at = u.edited_at \
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) \
           AS u(room_id, seq, body, data, edited_at) \
         WHERE e.room_id = u.room_id AND e.seq = u.seq";
    // The messages and their edits are different rows: one statement.
    const REDACTIONS: &str = "WITH t AS (SELECT * FROM unnest($1::text[], $2::bigint[]) \
           AS t(room_id, seq)), \
         edits AS (UPDATE parlor_entries e SET body = NULL, data = NULL, redacted = true \
           FROM t WHERE e.room_id = t.room_id AND e.kind = 'edit' AND e.target_seq = t.seq) \
         UPDATE parlor_entries e SET body = NULL, data = NULL, redacted = true \
         FROM t WHERE e.room_id = t.room_id AND e.seq = t.seq";
    if !edits.is_empty() {
        let values = vec![
            texts(edits.iter().map(|e| e.room_id)),
            bigints(edits.iter().map(|e| e.target)),
            texts(edits.iter().map(|e| e.body.unwrap_or(""))),
            texts(edits.iter().map(|e| e.data.clone().unwrap_or_default())),
            bigints(edits.iter().map(|e| e.edited_at)),
        ];
        txn.execute_raw(statement(EDITS, values)).await?;
    }
    if !redactions.is_empty() {
        let values = vec![
            texts(redactions.iter().map(|r| r.0)),
            bigints(redactions.iter().map(|r| r.1)),
        ];
        txn.execute_raw(statement(REDACTIONS, values)).await?;
    }
    Ok(())
}
