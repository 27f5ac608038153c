//! The append transaction's batch statements on SQLite, with fixed SQL
//! whatever the batch size: the rows travel as one JSON text, unpacked by
//! `jsonb_each` (which hands each row over as binary JSON, so `->>` reads a
//! field without parsing text again).
//!
//! Why: every statement is a round trip to SQLite's worker thread, and on a
//! busy two-core virtual machine each one costs two thread wake-ups (about
//! half a millisecond). So the seq bump and the INSERT go as **one** call:
//! the UPDATE advances each room's `last_seq` and returns the new heads, and
//! the INSERT after it in the same call reads them back to number its rows
//! (`head - back`, where `back` counts the room's entries after this one in
//! the batch). And SQL that does not change with the batch is parsed once
//! and then served from the connection's statement cache, where builder SQL
//! with a parameter per value was parsed, and every value bound, at every
//! batch (docs/benchmarks.md, step 14).

use std::collections::HashMap;

use parlor_engine::NewEntry;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement, Value};
use serde::Serialize;

use crate::entity::entry;

fn statement(sql: &str, values: impl IntoIterator<Item = String>) -> Statement {
    let values = values.into_iter().map(|v| Value::String(Some(v)));
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

fn json(rows: &impl Serialize) -> Result<String, DbErr> {
    serde_json::to_string(rows).map_err(|e| DbErr::Custom(format!("batch to JSON: {e}")))
}

/// The stored entries among `keys` (room, sender, client_id).
pub(crate) async fn stored_texts(
    txn: &impl ConnectionTrait,
    keys: &[(&str, &str, &str)],
) -> Result<Vec<entry::Model>, DbErr> {
    const SQL: &str = "SELECT e.* FROM jsonb_each(?1) AS k \
         JOIN parlor_entries e ON e.room_id = k.value ->> 0 \
           AND e.client_id = k.value ->> 2 AND e.sender = k.value ->> 1";
    entry::Entity::find()
        .from_raw_sql(statement(SQL, [json(&keys)?]))
        .all(txn)
        .await
}

/// Reserves each room's seqs and inserts `entries`, in one call; returns
/// the rooms' new heads. `per_room` holds each room once with its count of
/// entries; each entry comes with its `back`: how many entries of its room
/// follow it in the batch (so its seq is the new head minus `back`).
pub(crate) async fn reserve_and_insert<'a>(
    txn: &impl ConnectionTrait,
    per_room: &[(&str, i64)],
    entries: impl Iterator<Item = (&'a NewEntry, i64)>,
) -> Result<HashMap<String, i64>, DbErr> {
    const SQL: &str = "UPDATE parlor_rooms SET last_seq = last_seq + (d.value ->> 1) \
         FROM jsonb_each(?1) AS d WHERE parlor_rooms.id = d.value ->> 0 \
         RETURNING id, last_seq; \
         INSERT INTO parlor_entries \
         (room_id, seq, id, kind, sender, client_id, body, created_at) \
         SELECT r.id, r.last_seq - (e.value ->> 1), e.value ->> 2, e.value ->> 3, \
                e.value ->> 4, e.value ->> 5, e.value ->> 6, e.value ->> 7 \
         FROM jsonb_each(?2) AS e JOIN parlor_rooms r ON r.id = e.value ->> 0";
    // Field order is the SQL's `->>` index.
    type Row<'a> = (
        &'a str,
        i64,
        String,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        i64,
    );
    let rows: Vec<Row<'_>> = entries
        .map(|(e, back)| {
            (
                e.room_id.as_str(),
                back,
                e.id.to_string(),
                e.kind.as_str(),
                e.sender.as_str(),
                e.client_id.as_deref(),
                e.body.as_deref(),
                e.created_at.millis(),
            )
        })
        .collect();
    txn.query_all_raw(statement(SQL, [json(&per_room)?, json(&rows)?]))
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}
