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
//!
//! A batch of new texts in rooms whose heads the store knows needs no
//! transaction at all: see [`KnownHeads`] (step 15).

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard, PoisonError},
};

use parlor_engine::{Entry, NewEntry, ports::Appended};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement, Value};
use serde::Serialize;

use crate::{
    amendments::{EditEffect, RedactionEffect, TargetRow, seq_value},
    entity::entry,
    rows::{data_text, reason_text},
};

pub(crate) fn statement(sql: &str, values: impl IntoIterator<Item = String>) -> Statement {
    let values = values.into_iter().map(|v| Value::String(Some(v)));
    Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
}

pub(crate) fn json(rows: &impl Serialize) -> Result<String, DbErr> {
    serde_json::to_string(rows).map_err(|e| DbErr::Custom(format!("batch to JSON: {e}")))
}

/// An entry as the statements read it; field order is the SQL's `->>`
/// index, and the second field is a seq or a `back`, as the statement says.
/// The data travels as its JSON text (a JSON string in the batch), so that
/// `->>` hands over exactly the text to store, and a JSON `null` is SQL NULL.
/// The last field, `target_seq`, is only read by the transactional INSERT:
/// the fast path stores messages, which amend nothing.
type Row<'a> = (
    &'a str,
    i64,
    String,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    i64,
    Option<String>,
    Option<&'a str>,
    Option<i64>,
);

fn row(e: &NewEntry, seq_or_back: i64) -> Result<Row<'_>, DbErr> {
    Ok((
        e.room_id.as_str(),
        seq_or_back,
        e.id.to_string(),
        e.kind.as_str(),
        e.sender.as_str(),
        e.client_id.as_deref(),
        e.body.as_deref(),
        e.created_at.millis(),
        e.data.as_ref().map(data_text).transpose()?,
        reason_text(e),
        e.target_seq.map(seq_value),
    ))
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

/// For each amended (room, seq) of `keys`: the room's head and the entry
/// stored there, if any. A room that is not stored has no row.
pub(crate) async fn lookup_targets(
    txn: &impl ConnectionTrait,
    keys: &[(&str, i64)],
) -> Result<Vec<TargetRow>, DbErr> {
    const SQL: &str = "SELECT k.value ->> 0, k.value ->> 1, r.last_seq, e.kind, \
                coalesce(e.redacted, 0) \
         FROM jsonb_each(?1) AS k JOIN parlor_rooms r ON r.id = k.value ->> 0 \
         LEFT JOIN parlor_entries e ON e.room_id = k.value ->> 0 AND e.seq = k.value ->> 1";
    txn.query_all_raw(statement(SQL, [json(&keys)?]))
        .await?
        .into_iter()
        .map(|row| {
            Ok(TargetRow {
                room_id: row.try_get_by_index(0)?,
                seq: row.try_get_by_index(1)?,
                head: row.try_get_by_index(2)?,
                kind: row.try_get_by_index(3)?,
                redacted: row.try_get_by_index::<i64>(4)? != 0,
            })
        })
        .collect()
}

/// The `redaction` entries of the messages at `targets` (room, seq).
pub(crate) async fn redactions_of(
    txn: &impl ConnectionTrait,
    targets: &[(&str, i64)],
) -> Result<Vec<entry::Model>, DbErr> {
    const SQL: &str = "SELECT e.* FROM jsonb_each(?1) AS t \
         JOIN parlor_entries e ON e.room_id = t.value ->> 0 \
           AND e.target_seq = t.value ->> 1 AND e.kind = 'redaction'";
    entry::Entity::find()
        .from_raw_sql(statement(SQL, [json(&targets)?]))
        .all(txn)
        .await
}

/// Writes the accepted amendments' effects, edits first, in one call: each
/// edit's target gets its body, data and `edited_at`; each redacted
/// message, and every `edit` of it, loses body and data and is marked
/// redacted.
pub(crate) async fn apply_amendments(
    txn: &impl ConnectionTrait,
    edits: &[EditEffect<'_>],
    redactions: &[RedactionEffect<'_>],
) -> Result<(), DbErr> {
    const SQL: &str = "UPDATE parlor_entries SET body = u.value ->> 2, data = u.value ->> 3, \
                edited_at = u.value ->> 4 \
         FROM jsonb_each(?1) AS u \
         WHERE parlor_entries.room_id = u.value ->> 0 AND parlor_entries.seq = u.value ->> 1; \
         UPDATE parlor_entries SET body = NULL, data = NULL, redacted = TRUE \
         FROM jsonb_each(?2) AS t \
         WHERE parlor_entries.room_id = t.value ->> 0 AND parlor_entries.seq = t.value ->> 1; \
         UPDATE parlor_entries SET body = NULL, data = NULL, redacted = TRUE \
         FROM jsonb_each(?2) AS t \
         WHERE parlor_entries.room_id = t.value ->> 0 AND parlor_entries.kind = 'edit' \
           AND parlor_entries.target_seq = t.value ->> 1";
    let edits: Vec<_> = edits
        .iter()
        .map(|e| (e.room_id, e.target, e.body, e.data.as_deref(), e.edited_at))
        .collect();
    txn.execute_raw(statement(SQL, [json(&edits)?, json(&redactions)?]))
        .await?;
    Ok(())
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
         (room_id, seq, id, kind, sender, client_id, body, created_at, data, reason, target_seq) \
         SELECT r.id, r.last_seq - (e.value ->> 1), e.value ->> 2, e.value ->> 3, \
                e.value ->> 4, e.value ->> 5, e.value ->> 6, e.value ->> 7, \
                e.value ->> 8, e.value ->> 9, e.value ->> 10 \
         FROM jsonb_each(?2) AS e JOIN parlor_rooms r ON r.id = e.value ->> 0";
    let rows = entries
        .map(|(e, back)| row(e, back))
        .collect::<Result<Vec<Row<'_>>, DbErr>>()?;
    txn.query_all_raw(statement(SQL, [json(&per_room)?, json(&rows)?]))
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

/// Each room's head (`last_seq`) as this store's own appends left it, so
/// that a batch of new texts can be numbered without reading them and
/// stored with **one** statement: an INSERT in autocommit, which a trigger
/// (migration `m0004`) keeps `last_seq` in step with. One statement is one
/// crossing to SQLite's worker thread, where a transaction took three
/// (`BEGIN`, the body, `COMMIT`).
///
/// Why it is safe: SQLite has one writer, and it is this store's connection.
/// A head can only be stale if something else wrote to the file (another
/// process, another store on it); then the seq after the stale head is
/// already taken, the (room_id, seq) key fails the statement whole, and the
/// store forgets the batch's heads and appends the long way, which reads
/// them again.
#[derive(Debug, Default)]
pub(crate) struct KnownHeads(Mutex<HashMap<String, i64>>);

/// Rooms whose heads are kept; past that the map starts over (each room then
/// pays one transactional append to be known again).
const KNOWN_HEADS_MAX: usize = 100_000;

impl KnownHeads {
    fn heads(&self) -> MutexGuard<'_, HashMap<String, i64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Each entry's seq, when every entry is a message with a client id not
    /// repeated in the batch, in a room whose head is known.
    fn number(&self, batch: &[NewEntry]) -> Option<Vec<i64>> {
        let heads = self.heads();
        let mut next: HashMap<&str, i64> = HashMap::new();
        let mut keys = HashSet::with_capacity(batch.len());
        batch
            .iter()
            .map(|e| {
                let client_id = e.client_id.as_deref().filter(|_| e.kind.is_message())?;
                if !keys.insert((e.room_id.as_str(), e.sender.as_str(), client_id)) {
                    return None;
                }
                let room = e.room_id.as_str();
                let seq = match next.get(room) {
                    Some(seq) => seq + 1,
                    None => heads.get(room)? + 1,
                };
                next.insert(room, seq);
                Some(seq)
            })
            .collect()
    }

    /// Learns heads from entries just stored.
    pub(crate) fn learn<'a>(&self, stored: impl Iterator<Item = &'a Entry>) {
        let mut heads = self.heads();
        for e in stored {
            let seq = e.seq as i64;
            match heads.get_mut(e.room_id.as_str()) {
                Some(head) => *head = (*head).max(seq),
                None => {
                    if heads.len() >= KNOWN_HEADS_MAX {
                        heads.clear();
                    }
                    heads.insert(e.room_id.to_string(), seq);
                }
            }
        }
    }

    /// Forgets `room`'s head: a purged room's log starts again at 1, and the
    /// head this store knew would number it from the old one.
    pub(crate) fn forget_room(&self, room: &str) {
        self.heads().remove(room);
    }

    fn forget(&self, batch: &[NewEntry]) {
        let mut heads = self.heads();
        for e in batch {
            heads.remove(e.room_id.as_str());
        }
    }
}

/// Stores `batch` with one INSERT when [`KnownHeads`] can number it;
/// `None` when it cannot (the caller appends the long way). A unique
/// violation means a stored duplicate or a stale head: nothing was written,
/// and the batch's heads are forgotten.
pub(crate) async fn append_at_known_heads(
    conn: &impl ConnectionTrait,
    heads: &KnownHeads,
    batch: &[NewEntry],
) -> Result<Option<Vec<Appended>>, DbErr> {
    const SQL: &str = "INSERT INTO parlor_entries \
         (room_id, seq, id, kind, sender, client_id, body, created_at, data, reason) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, \
                value ->> 4, value ->> 5, value ->> 6, value ->> 7, \
                value ->> 8, value ->> 9 \
         FROM jsonb_each(?1)";
    let Some(seqs) = heads.number(batch) else {
        return Ok(None);
    };
    let rows = batch
        .iter()
        .zip(&seqs)
        .map(|(e, &seq)| row(e, seq))
        .collect::<Result<Vec<Row<'_>>, DbErr>>()?;
    if let Err(err) = conn.execute_raw(statement(SQL, [json(&rows)?])).await {
        heads.forget(batch);
        return Err(err);
    }
    let out: Vec<Appended> = batch
        .iter()
        .zip(seqs)
        .map(|(e, seq)| Appended::New(e.clone().at(seq as u64)))
        .collect();
    heads.learn(out.iter().filter_map(Appended::entry));
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use parlor_engine::{EntryKind, RoomId, UserId};

    use super::*;

    fn text(room: &str, client_id: &str) -> NewEntry {
        NewEntry::text(
            RoomId::new(room).unwrap(),
            UserId::new("ann").unwrap(),
            client_id,
            "hi",
        )
    }

    #[test]
    fn numbers_only_new_texts_in_rooms_it_knows() {
        let heads = KnownHeads::default();
        let batch = [text("a", "1"), text("b", "1"), text("a", "2")];
        assert_eq!(heads.number(&batch), None, "no head known yet");

        heads.learn([text("a", "0").at(7), text("b", "0").at(2)].iter());
        assert_eq!(heads.number(&batch), Some(vec![8, 3, 9]));
        assert_eq!(
            heads.number(&batch),
            Some(vec![8, 3, 9]),
            "numbering moves no head; storing does"
        );
        assert_eq!(
            heads.number(&[text("a", "1"), text("a", "1")]),
            None,
            "a client id twice in the batch"
        );
        let join = NewEntry::membership(
            RoomId::new("a").unwrap(),
            UserId::new("bob").unwrap(),
            EntryKind::Join,
        );
        assert_eq!(heads.number(&[join]), None, "a membership entry");

        heads.forget(&batch[..1]);
        assert_eq!(heads.number(&batch), None, "room a is forgotten");
        assert_eq!(heads.number(&batch[1..2]), Some(vec![3]), "room b is not");
    }

    #[test]
    fn heads_only_move_forward_and_the_map_is_bounded() {
        let heads = KnownHeads::default();
        heads.learn([text("a", "0").at(9), text("a", "1").at(5)].iter());
        assert_eq!(heads.number(&[text("a", "2")]), Some(vec![10]));

        // Room "a" and as many more as fill the map.
        let many: Vec<Entry> = (1..KNOWN_HEADS_MAX)
            .map(|i| text(&format!("r{i}"), "0").at(1))
            .collect();
        heads.learn(many.iter());
        assert_eq!(heads.heads().len(), KNOWN_HEADS_MAX);
        heads.learn([text("one-more", "0").at(1)].iter());
        assert_eq!(heads.heads().len(), 1, "a full map starts over");
        assert_eq!(heads.number(&[text("one-more", "1")]), Some(vec![2]));
    }
}
