//! The append transaction: a batch of entries, from any number of rooms,
//! stored with a fixed number of statements however many rooms it spans.
//!
//! 0. when the batch carries joins or leaves: the rooms' rows are locked, and
//!    one SELECT of open members (and, in a cluster, one of live seats) drops
//!    the membership entries that would change nothing;
//! 1. with [`Duplicates::LookUp`] only, one SELECT finds texts already
//!    stored, by (room, sender, client_id);
//! 2. one `UPDATE rooms … RETURNING` reserves each room's seqs;
//! 3. one INSERT writes the rows;
//! 4. at most one INSERT and one DELETE bring the open members in step.
//!
//! Why: the engine funnels every room's batch into one transaction, and a
//! statement costs a round trip to the database (for SQLite, to its worker
//! thread) whatever its size. Per-room statements made a hundred rooms cost
//! three hundred round trips; a batch of texts costs two here (one on
//! SQLite, which sends steps 2 and 3 as one call). Steps 1–3 have SQL that
//! does not change with the batch: the rows travel as arrays on Postgres
//! (`append_postgres`) and as JSON on SQLite (`append_sqlite`).

use std::collections::{HashMap, HashSet};

use parlor_engine::{Entry, EntryKind, NewEntry, ports::Appended};
use sea_orm::{
    ActiveValue::Set,
    ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement, Value,
    sea_query::{Expr, ExprTrait},
};

#[cfg(feature = "postgres")]
use crate::append_postgres;
use crate::{append_sqlite, entity::member, store::to_entry};

type Key<'a> = (&'a str, &'a str, &'a str);

fn key(e: &NewEntry) -> Option<Key<'_>> {
    match (e.kind, e.client_id.as_deref()) {
        (EntryKind::Text, Some(client_id)) => {
            Some((e.room_id.as_str(), e.sender.as_str(), client_id))
        }
        _ => None,
    }
}

/// Whose live seats keep a `leave` from being written (the user is still
/// in the room there).
#[derive(Debug, Clone, Copy)]
pub(crate) enum SeatCheck<'a> {
    /// Single node: seats live in the engine, none in the database.
    None,
    /// A node's own leave: seats on any *other* node.
    OtherThan(&'a str),
    /// Freeing a dead node's seats: a live seat anywhere.
    Any,
}

/// Whether an append first looks for texts stored before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Duplicates {
    /// Look them up, and answer each with its stored twin.
    LookUp,
    /// Expect none: the unique (client_id, sender, room) index is the check,
    /// and a stored duplicate fails the transaction with a unique violation
    /// (the caller then tries again with `LookUp`). Saves a statement in
    /// the usual case, where a send is new.
    Unexpected,
}

/// Appends `batch` within `txn` (the caller commits) and answers each entry.
pub(crate) async fn append(
    txn: &impl ConnectionTrait,
    batch: &[NewEntry],
    seats: SeatCheck<'_>,
    duplicates: Duplicates,
) -> Result<Vec<Appended>, DbErr> {
    let keep = membership_changes(txn, batch, seats).await?;
    if keep.iter().all(|&k| k) {
        return append_changes(txn, batch, duplicates).await;
    }
    // Rare (a join or leave someone else already logged): copy what is kept.
    let kept: Vec<NewEntry> = batch
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(e, _)| e.clone())
        .collect();
    let mut stored = append_changes(txn, &kept, duplicates).await?.into_iter();
    Ok(keep
        .into_iter()
        .map(|k| {
            if k {
                stored.next().expect("one outcome per kept entry")
            } else {
                Appended::Unchanged
            }
        })
        .collect())
}

/// For each entry, whether it is written: texts always; a `join` only for a
/// user who is not an open member, a `leave` only for one who is and who
/// holds no live seat that `seats` counts — taken in batch order.
async fn membership_changes(
    txn: &impl ConnectionTrait,
    batch: &[NewEntry],
    seats: SeatCheck<'_>,
) -> Result<Vec<bool>, DbErr> {
    let mut keep = vec![true; batch.len()];
    let pairs: HashSet<(&str, &str)> = batch
        .iter()
        .filter(|e| e.kind != EntryKind::Text)
        .map(|e| (e.room_id.as_str(), e.sender.as_str()))
        .collect();
    if pairs.is_empty() {
        return Ok(keep);
    }
    let postgres = is_postgres(txn);
    // On Postgres, lock the batch's rooms until commit: membership and seats
    // cannot change under us while they are read. (SQLite has one writer at
    // a time already.)
    #[cfg(feature = "postgres")]
    if postgres {
        append_postgres::lock_rooms(txn, batch).await?;
    }
    let tuples = || pairs.iter().map(|&(r, u)| (r.to_owned(), u.to_owned()));
    let mut open: HashSet<(String, String)> = member::Entity::find()
        .filter(
            Expr::tuple([
                Expr::col(member::Column::RoomId),
                Expr::col(member::Column::UserId),
            ])
            .in_tuples(tuples()),
        )
        .all(txn)
        .await?
        .into_iter()
        .map(|m| (m.room_id, m.user_id))
        .collect();
    let seated = match seats {
        SeatCheck::None => HashSet::new(),
        SeatCheck::OtherThan(_) | SeatCheck::Any if !postgres => HashSet::new(),
        SeatCheck::OtherThan(node) => live_seats(txn, pairs.iter(), Some(node)).await?,
        SeatCheck::Any => live_seats(txn, pairs.iter(), None).await?,
    };
    for (i, e) in batch.iter().enumerate() {
        if e.kind == EntryKind::Text {
            continue;
        }
        let pair = (e.room_id.to_string(), e.sender.to_string());
        keep[i] = match e.kind {
            EntryKind::Join => open.insert(pair),
            _ if seated.contains(&pair) => false,
            _ => open.remove(&pair),
        };
    }
    Ok(keep)
}

/// Which of `pairs` hold a live seat (on a node other than `except`).
pub(crate) async fn live_seats<'a>(
    txn: &impl ConnectionTrait,
    pairs: impl Iterator<Item = &'a (&'a str, &'a str)>,
    except: Option<&str>,
) -> Result<HashSet<(String, String)>, DbErr> {
    let mut values: Vec<Value> = Vec::new();
    let mut tuples = Vec::new();
    for &(room, user) in pairs {
        values.push(room.into());
        values.push(user.into());
        tuples.push(format!("(${}, ${})", values.len() - 1, values.len()));
    }
    let mut sql = format!(
        "SELECT DISTINCT s.room_id, s.user_id FROM parlor_seats s \
         JOIN parlor_nodes n ON n.id = s.node_id \
         WHERE n.expires_ms > {NOW_MS} AND (s.room_id, s.user_id) IN ({})",
        tuples.join(", ")
    );
    if let Some(node) = except {
        values.push(node.into());
        sql.push_str(&format!(" AND s.node_id <> ${}", values.len()));
    }
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

fn is_postgres(txn: &impl ConnectionTrait) -> bool {
    txn.get_database_backend() == DbBackend::Postgres
}

/// The database's clock in Unix milliseconds: every node reads the same one.
pub(crate) const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

/// Appends entries that all change the log.
async fn append_changes(
    txn: &impl ConnectionTrait,
    batch: &[NewEntry],
    duplicates: Duplicates,
) -> Result<Vec<Appended>, DbErr> {
    let mut out: Vec<Option<Appended>> = vec![None; batch.len()];

    // 1. Texts stored before.
    let keys: Vec<Key<'_>> = batch.iter().filter_map(key).collect();
    let rows = match () {
        _ if keys.is_empty() || duplicates == Duplicates::Unexpected => Vec::new(),
        #[cfg(feature = "postgres")]
        _ if is_postgres(txn) => append_postgres::stored_texts(txn, &keys).await?,
        _ => append_sqlite::stored_texts(txn, &keys).await?,
    };
    let mut stored: HashMap<(String, String, String), Entry> = HashMap::new();
    for row in rows {
        let e = to_entry(row)?;
        let k = (
            e.room_id.to_string(),
            e.sender.to_string(),
            e.client_id.clone().unwrap_or_default(),
        );
        stored.insert(k, e);
    }

    // New entries per room, in batch order; a duplicate (stored, or earlier
    // in this batch) is answered with its twin.
    let mut fresh: Vec<usize> = Vec::new();
    let mut twins: Vec<(usize, usize)> = Vec::new();
    let mut in_batch: HashMap<Key<'_>, usize> = HashMap::new();
    let mut per_room: Vec<(&str, i64)> = Vec::new();
    for (i, e) in batch.iter().enumerate() {
        if let Some(k) = key(e) {
            // (Duplicates are rare: skip building the owned key when none was found.)
            let twin = if stored.is_empty() {
                None
            } else {
                stored.get(&(k.0.to_owned(), k.1.to_owned(), k.2.to_owned()))
            };
            if let Some(twin) = twin {
                out[i] = Some(Appended::Existing(twin.clone()));
                continue;
            }
            if let Some(&first) = in_batch.get(&k) {
                twins.push((i, first));
                continue;
            }
            in_batch.insert(k, i);
        }
        fresh.push(i);
        match per_room.iter_mut().find(|(r, _)| *r == e.room_id.as_str()) {
            Some((_, n)) => *n += 1,
            None => per_room.push((e.room_id.as_str(), 1)),
        }
    }
    if fresh.is_empty() {
        return fill_twins(out, twins);
    }

    // Each entry's place from its room's end of the batch: its seq will be
    // the room's new head minus `back`.
    let mut left: HashMap<&str, i64> = per_room.iter().copied().collect();
    let backs: Vec<i64> = fresh
        .iter()
        .map(|&i| {
            let n = left
                .get_mut(batch[i].room_id.as_str())
                .expect("counted above");
            *n -= 1;
            *n
        })
        .collect();

    // 2–3. Reserve every room's seqs at once and write the rows. The row
    // locks serialize writers of a room (across nodes too) until this
    // transaction ends; Postgres takes them in id order, so concurrent
    // writers cannot deadlock.
    let rows = fresh
        .iter()
        .zip(&backs)
        .map(|(&i, &back)| (&batch[i], back));
    let heads = match () {
        #[cfg(feature = "postgres")]
        _ if is_postgres(txn) => append_postgres::reserve_and_insert(txn, &per_room, rows).await?,
        _ => append_sqlite::reserve_and_insert(txn, &per_room, rows).await?,
    };
    for (&i, &back) in fresh.iter().zip(&backs) {
        let room_id = batch[i].room_id.as_str();
        let head = heads.get(room_id).ok_or_else(|| room_not_stored(room_id))?;
        out[i] = Some(Appended::New(batch[i].clone().at((head - back) as u64)));
    }

    // 4. Open members follow the log: the last join or leave of each
    // (room, user) in the batch decides.
    let mut last: HashMap<(&str, &str), EntryKind> = HashMap::new();
    for &i in &fresh {
        let e = &batch[i];
        if e.kind != EntryKind::Text {
            last.insert((e.room_id.as_str(), e.sender.as_str()), e.kind);
        }
    }
    let (joins, leaves): (Vec<_>, Vec<_>) = last
        .into_iter()
        .partition(|(_, kind)| *kind == EntryKind::Join);
    if !joins.is_empty() {
        let rows = joins.iter().map(|((r, u), _)| member::ActiveModel {
            room_id: Set((*r).to_owned()),
            user_id: Set((*u).to_owned()),
        });
        // A join for a member still open (a crash between join and leave)
        // keeps the single row: a set insert.
        member::Entity::insert_many(rows)
            .on_conflict_do_nothing()
            .exec_without_returning(txn)
            .await?;
    }
    if !leaves.is_empty() {
        let pairs = leaves
            .iter()
            .map(|((r, u), _)| ((*r).to_owned(), (*u).to_owned()));
        member::Entity::delete_many()
            .filter(
                Expr::tuple([
                    Expr::col(member::Column::RoomId),
                    Expr::col(member::Column::UserId),
                ])
                .in_tuples(pairs),
            )
            .exec(txn)
            .await?;
    }
    fill_twins(out, twins)
}

/// An append to a room that is not stored: the store refuses the batch.
pub(crate) fn room_not_stored(room_id: &str) -> DbErr {
    DbErr::RecordNotFound(format!("room {room_id} is not stored"))
}

fn fill_twins(
    mut out: Vec<Option<Appended>>,
    twins: Vec<(usize, usize)>,
) -> Result<Vec<Appended>, DbErr> {
    for (i, first) in twins {
        let twin = out[first]
            .as_ref()
            .and_then(Appended::entry)
            .expect("answered above")
            .clone();
        out[i] = Some(Appended::Existing(twin));
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("every entry answered"))
        .collect())
}
