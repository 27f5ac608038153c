//! The whole append, from a batch to an answer per entry:
//!
//! - **the fast path** (SQLite): a batch of new texts in rooms whose heads
//!   this store knows is one INSERT, with no transaction ([`KnownHeads`]);
//! - otherwise **one transaction**, begun `IMMEDIATE`, for the whole batch;
//! - **a retry** when a unique index refuses the batch: a client id stored
//!   before (or by another writer meanwhile), or a known head another
//!   writer moved. The first try expects no stored duplicate, as a send is
//!   usually new; the next ones look for them first.
//!
//! [`Dialect`], chosen once at connect, is the one place that picks
//! SQLite's SQL (`append_sqlite`) or Postgres's (`append_postgres`).
//!
//! The transaction stores a batch from any number of rooms with a fixed
//! number of statements however many rooms it spans:
//!
//! 0. when the batch carries joins, leaves, edits or redactions: the rooms'
//!    rows are locked (Postgres), and for joins and leaves one SELECT of open
//!    members (and, in a cluster, one of live seats) drops the membership
//!    entries that would change nothing;
//! 1. with [`Duplicates::LookUp`] only (always when the batch carries an
//!    edit), one SELECT finds texts and edits already stored, by (room,
//!    sender, client_id); with amendments, one SELECT reads their targets
//!    (and the rooms' heads), and the batch is walked in order: a target
//!    redacted earlier in the batch counts (`amendments`);
//! 2. one `UPDATE rooms … RETURNING` reserves each room's seqs;
//! 3. one INSERT writes the rows;
//! 4. at most one INSERT and one DELETE bring the open members in step;
//! 5. with amendments, the edits' targets get their new body, and the
//!    redacted messages and their edits lose body and data (SQLite: one
//!    call; Postgres: at most two statements).
//!
//! Why: the engine funnels every room's batch into one transaction, and a
//! statement costs a round trip to the database (for SQLite, to its worker
//! thread) whatever its size. Per-room statements made a hundred rooms cost
//! three hundred round trips; a batch of texts costs two here (one on
//! SQLite, which sends steps 2 and 3 as one call), and amendments add
//! their statements only to the batches that carry them. Steps 1–3 and 5
//! have SQL that does not change with the batch: the rows travel as arrays
//! on Postgres and as JSON on SQLite.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use parlor_engine::{Entry, EntryKind, NewEntry, Result, ports::Appended};
use sea_orm::{
    ActiveValue::Set,
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
    sea_query::{Expr, ExprTrait},
};

use crate::{
    amendments::{
        self, EditEffect, RedactionEffect, Redactor, TargetRow, Targets, Verdict, seq_value,
    },
    append_sqlite::{self, KnownHeads},
    entity::{entry, member},
    rows::to_entry,
    transactions::immediate,
    translate::{is_unique_violation, room_not_stored, translate_append},
};
#[cfg(feature = "postgres")]
use crate::{append_postgres, cluster};

/// How often an append is tried when it meets a stored idempotency key:
/// once expecting none, then looking first (twice, as a concurrent writer,
/// another node, may take a key between the look and the insert).
const APPEND_ATTEMPTS: usize = 3;

/// Append transactions in flight at once on Postgres: enough to overlap
/// commits, few enough to leave the pool's other connections to reads.
#[cfg(feature = "postgres")]
const POSTGRES_APPEND_LANES: usize = 4;

/// The SQL dialect of the append, chosen once at connect from the
/// database's backend. Its `impl` is the one place that switches on the
/// dialect: the append's steps call it and never ask which database they
/// are on.
#[derive(Debug, Clone)]
pub(crate) enum Dialect {
    /// SQLite, with each room's head as this store's appends left it (for
    /// the fast path). The rows travel as JSON.
    Sqlite(Arc<KnownHeads>),
    /// Postgres: the rows travel as arrays; rooms are locked, and a cluster's
    /// live seats read, before a join or leave is decided.
    #[cfg(feature = "postgres")]
    Postgres,
}

// Without the `postgres` feature, SQLite's arms leave some arguments unread.
#[cfg_attr(not(feature = "postgres"), allow(unused_variables))]
impl Dialect {
    /// The dialect of a connection to `backend`. Only SQLite and Postgres
    /// are built in, and SQLite's SQL is the default.
    pub(crate) fn of(backend: DbBackend) -> Self {
        #[cfg(feature = "postgres")]
        if backend == DbBackend::Postgres {
            return Dialect::Postgres;
        }
        Dialect::Sqlite(Arc::default())
    }

    /// How many appends the engine may have in flight at once. SQLite has a
    /// single writer, so more would only queue.
    pub(crate) fn append_lanes(&self) -> usize {
        match self {
            Dialect::Sqlite(_) => 1,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => POSTGRES_APPEND_LANES,
        }
    }

    /// Forgets what the fast path knows of `room`'s head (a purged room).
    pub(crate) fn forget_head(&self, room: &str) {
        if let Some(heads) = self.known_heads() {
            heads.forget_room(room);
        }
    }

    /// The heads the fast path numbers from, on SQLite.
    fn known_heads(&self) -> Option<&KnownHeads> {
        match self {
            Dialect::Sqlite(heads) => Some(heads),
            #[cfg(feature = "postgres")]
            Dialect::Postgres => None,
        }
    }

    /// Locks the batch's rooms until commit, so that membership and seats
    /// cannot change while they are read.
    async fn lock_rooms(
        &self,
        txn: &impl ConnectionTrait,
        batch: &[NewEntry],
    ) -> Result<(), DbErr> {
        match self {
            // One writer at a time already.
            Dialect::Sqlite(_) => Ok(()),
            #[cfg(feature = "postgres")]
            Dialect::Postgres => append_postgres::lock_rooms(txn, batch).await,
        }
    }

    /// Which of `pairs` hold a live seat on a node other than `except`.
    async fn live_seats(
        &self,
        txn: &impl ConnectionTrait,
        pairs: &HashSet<(&str, &str)>,
        except: Option<&str>,
    ) -> Result<HashSet<(String, String)>, DbErr> {
        match self {
            // A single node: its seats live in the engine, none in the database.
            Dialect::Sqlite(_) => Ok(HashSet::new()),
            #[cfg(feature = "postgres")]
            Dialect::Postgres => cluster::live_seats(txn, pairs.iter(), except).await,
        }
    }

    /// The stored entries among `keys`.
    async fn stored_texts(
        &self,
        txn: &impl ConnectionTrait,
        keys: &[IdempotencyKey<'_>],
    ) -> Result<Vec<entry::Model>, DbErr> {
        match self {
            Dialect::Sqlite(_) => append_sqlite::stored_texts(txn, keys).await,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => append_postgres::stored_texts(txn, keys).await,
        }
    }

    /// For each amended (room, seq): the room's head and the entry there.
    async fn lookup_targets(
        &self,
        txn: &impl ConnectionTrait,
        keys: &[(&str, i64)],
    ) -> Result<Vec<TargetRow>, DbErr> {
        match self {
            Dialect::Sqlite(_) => append_sqlite::lookup_targets(txn, keys).await,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => append_postgres::lookup_targets(txn, keys).await,
        }
    }

    /// The `redaction` entries of the messages at `targets`.
    async fn redactions_of(
        &self,
        txn: &impl ConnectionTrait,
        targets: &[(&str, i64)],
    ) -> Result<Vec<entry::Model>, DbErr> {
        match self {
            Dialect::Sqlite(_) => append_sqlite::redactions_of(txn, targets).await,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => append_postgres::redactions_of(txn, targets).await,
        }
    }

    /// Step 5: writes the accepted amendments' effects on their targets.
    async fn apply_amendments(
        &self,
        txn: &impl ConnectionTrait,
        edits: &[EditEffect<'_>],
        redactions: &[RedactionEffect<'_>],
    ) -> Result<(), DbErr> {
        match self {
            Dialect::Sqlite(_) => append_sqlite::apply_amendments(txn, edits, redactions).await,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => append_postgres::apply_amendments(txn, edits, redactions).await,
        }
    }

    /// Steps 2–3: reserves each room's seqs and inserts `entries`, each at
    /// its room's new head minus its `back`; returns the new heads.
    async fn reserve_and_insert<'a>(
        &self,
        txn: &impl ConnectionTrait,
        per_room: &[(&str, i64)],
        entries: impl Iterator<Item = (&'a NewEntry, i64)>,
    ) -> Result<HashMap<String, i64>, DbErr> {
        match self {
            Dialect::Sqlite(_) => append_sqlite::reserve_and_insert(txn, per_room, entries).await,
            #[cfg(feature = "postgres")]
            Dialect::Postgres => append_postgres::reserve_and_insert(txn, per_room, entries).await,
        }
    }
}

/// A message's idempotency key: (room, sender, client_id), unique among
/// stored entries.
type IdempotencyKey<'a> = (&'a str, &'a str, &'a str);

/// The idempotency key of a message (`text` or `system`) or an `edit`;
/// `None` for a join, leave or redaction. Messages and edits share the
/// unique index: a key is one entry's, whatever its kind.
fn idempotency_key(e: &NewEntry) -> Option<IdempotencyKey<'_>> {
    let client_id = e
        .client_id
        .as_deref()
        .filter(|_| e.kind.is_message() || e.kind == EntryKind::Edit)?;
    Some((e.room_id.as_str(), e.sender.as_str(), client_id))
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
    /// Look them up, and answer each with the entry stored before.
    LookUp,
    /// Expect none: the unique (client_id, sender, room) index is the check,
    /// and a stored duplicate fails the transaction with a unique violation
    /// (the caller then tries again with `LookUp`). Saves a statement in
    /// the usual case, where a send is new.
    Unexpected,
}

/// Appends `batch` through `writes` and answers each entry: the fast path
/// when it applies, else a transaction per attempt until one commits.
pub(crate) async fn append(
    writes: &DatabaseConnection,
    dialect: &Dialect,
    seats: SeatCheck<'_>,
    batch: &[NewEntry],
) -> Result<Vec<Appended>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    // The first attempt expects no stored duplicate (the usual case) and
    // lets the unique index find one; the next attempts look first.
    let mut duplicates = Duplicates::Unexpected;
    let mut attempt = 1;
    if let Some(heads) = dialect.known_heads() {
        match append_sqlite::append_at_known_heads(writes, heads, batch).await {
            Ok(Some(out)) => return Ok(out),
            Ok(None) => {}
            // A stored duplicate, or a head another writer moved.
            Err(err) if is_unique_violation(&err) => {
                duplicates = Duplicates::LookUp;
                attempt += 1;
            }
            Err(err) => return Err(translate_append(err)),
        }
    }
    loop {
        match append_once(writes, dialect, seats, batch, duplicates).await {
            Ok(out) => {
                if let Some(heads) = dialect.known_heads() {
                    let new = out.iter().filter(|o| o.is_new());
                    heads.learn(new.filter_map(Appended::entry));
                }
                return Ok(out);
            }
            // A client id this batch repeats was stored before, or
            // another writer stored it between our read and our insert:
            // the next attempt finds it.
            Err(err) if is_unique_violation(&err) && attempt < APPEND_ATTEMPTS => {
                duplicates = Duplicates::LookUp;
                attempt += 1;
            }
            Err(err) => return Err(translate_append(err)),
        }
    }
}

/// One attempt: [`append_in`] within a transaction of its own, committed.
async fn append_once(
    writes: &DatabaseConnection,
    dialect: &Dialect,
    seats: SeatCheck<'_>,
    batch: &[NewEntry],
    duplicates: Duplicates,
) -> Result<Vec<Appended>, DbErr> {
    // IMMEDIATE takes SQLite's write lock at BEGIN, waiting for it as
    // long as the busy timeout allows: a transaction that read first
    // and then wrote could not wait, it would fail at once with BUSY
    // while another connection to the file writes. (Postgres ignores it.)
    let txn = writes.begin_with_options(immediate()).await?;
    let out = append_in(&txn, dialect, batch, seats, duplicates).await?;
    txn.commit().await?;
    Ok(out)
}

/// Appends `batch` within `txn` (the caller commits) and answers each entry.
pub(crate) async fn append_in(
    txn: &impl ConnectionTrait,
    dialect: &Dialect,
    batch: &[NewEntry],
    seats: SeatCheck<'_>,
    duplicates: Duplicates,
) -> Result<Vec<Appended>, DbErr> {
    // Joins, leaves and amendments are decided on what is stored: the rooms
    // are locked first, so that it cannot change until commit.
    if batch.iter().any(|e| !e.kind.is_message()) {
        dialect.lock_rooms(txn, batch).await?;
    }
    // An amendment is decided after its key: a repeat answers the entry
    // stored first, whatever became of its target since.
    let duplicates = if batch.iter().any(|e| e.kind == EntryKind::Edit) {
        Duplicates::LookUp
    } else {
        duplicates
    };
    let keep = membership_changes(txn, dialect, batch, seats).await?;
    if keep.iter().all(|&k| k) {
        return write_entries(txn, dialect, batch, duplicates).await;
    }
    // Rare (a join or leave someone else already logged): copy what is kept.
    let kept: Vec<NewEntry> = batch
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(e, _)| e.clone())
        .collect();
    let mut stored = write_entries(txn, dialect, &kept, duplicates)
        .await?
        .into_iter();
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

/// For each entry, whether it goes on to be written: messages and
/// amendments always; a `join` only for a user who is not an open member, a
/// `leave` only for one who is and who holds no live seat that `seats`
/// counts — taken in batch order. The caller has locked the rooms.
async fn membership_changes(
    txn: &impl ConnectionTrait,
    dialect: &Dialect,
    batch: &[NewEntry],
    seats: SeatCheck<'_>,
) -> Result<Vec<bool>, DbErr> {
    let mut keep = vec![true; batch.len()];
    let pairs: HashSet<(&str, &str)> = batch
        .iter()
        .filter(|e| e.kind.is_membership())
        .map(|e| (e.room_id.as_str(), e.sender.as_str()))
        .collect();
    if pairs.is_empty() {
        return Ok(keep);
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
        SeatCheck::OtherThan(node) => dialect.live_seats(txn, &pairs, Some(node)).await?,
        SeatCheck::Any => dialect.live_seats(txn, &pairs, None).await?,
    };
    for (i, e) in batch.iter().enumerate() {
        if !e.kind.is_membership() {
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

/// Writes entries that all change the log (steps 1–5) and answers each.
async fn write_entries(
    txn: &impl ConnectionTrait,
    dialect: &Dialect,
    batch: &[NewEntry],
    duplicates: Duplicates,
) -> Result<Vec<Appended>, DbErr> {
    let mut out: Vec<Option<Appended>> = vec![None; batch.len()];

    // 1. Texts (and edits) stored before.
    let keys: Vec<IdempotencyKey<'_>> = batch.iter().filter_map(idempotency_key).collect();
    let rows = if keys.is_empty() || duplicates == Duplicates::Unexpected {
        Vec::new()
    } else {
        dialect.stored_texts(txn, &keys).await?
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

    // 1b. The amendments' targets, in one SELECT (none without amendments).
    let mut targets = amended_targets(txn, dialect, batch).await?;

    // What to insert, per room, in batch order. A text whose key is stored
    // is answered with the stored entry; one whose key an earlier entry of
    // this batch has is a repeat, answered with what that entry gets. An
    // amendment is checked against its target as the batch has left it.
    let mut to_insert: Vec<usize> = Vec::new();
    let mut repeats: Vec<Repeat> = Vec::new();
    let mut redacted_before: Vec<usize> = Vec::new();
    let mut first_with_key: HashMap<IdempotencyKey<'_>, usize> = HashMap::new();
    let mut per_room: Vec<(&str, i64)> = Vec::new();
    for (i, e) in batch.iter().enumerate() {
        let key = idempotency_key(e);
        if let Some(k) = key {
            // (Duplicates are rare: skip building the owned key when none was found.)
            let earlier = if stored.is_empty() {
                None
            } else {
                stored.get(&(k.0.to_owned(), k.1.to_owned(), k.2.to_owned()))
            };
            if let Some(earlier) = earlier {
                out[i] = Some(Appended::Existing(earlier.clone()));
                continue;
            }
            if let Some(&first) = first_with_key.get(&k) {
                repeats.push(Repeat { at: i, first });
                continue;
            }
        }
        if let Some(targets) = targets.as_mut() {
            match targets.check(e)? {
                Verdict::Accept => targets.accept(i, e),
                Verdict::Refuse(kind) => {
                    out[i] = Some(Appended::Refused(kind));
                    continue;
                }
                Verdict::RedactedBy(Redactor::InBatch(first)) => {
                    repeats.push(Repeat { at: i, first });
                    continue;
                }
                Verdict::RedactedBy(Redactor::Stored) => {
                    redacted_before.push(i);
                    continue;
                }
            }
        }
        if let Some(k) = key {
            first_with_key.insert(k, i);
        }
        to_insert.push(i);
        match per_room.iter_mut().find(|(r, _)| *r == e.room_id.as_str()) {
            Some((_, n)) => *n += 1,
            None => per_room.push((e.room_id.as_str(), 1)),
        }
    }
    if !redacted_before.is_empty() {
        answer_first_redactions(txn, dialect, batch, &redacted_before, &mut out).await?;
    }
    if to_insert.is_empty() {
        return answer_repeats(out, repeats);
    }

    // Each entry's place from its room's end of the batch: its seq will be
    // the room's new head minus `back`.
    let mut left: HashMap<&str, i64> = per_room.iter().copied().collect();
    let backs: Vec<i64> = to_insert
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
    let rows = to_insert
        .iter()
        .zip(&backs)
        .map(|(&i, &back)| (&batch[i], back));
    let heads = dialect.reserve_and_insert(txn, &per_room, rows).await?;
    for (&i, &back) in to_insert.iter().zip(&backs) {
        let room_id = batch[i].room_id.as_str();
        let head = heads.get(room_id).ok_or_else(|| room_not_stored(room_id))?;
        out[i] = Some(Appended::New(batch[i].clone().at((head - back) as u64)));
    }

    // 4. Open members follow the log: the last join or leave of each
    // (room, user) in the batch decides.
    let mut last: HashMap<(&str, &str), EntryKind> = HashMap::new();
    for &i in &to_insert {
        let e = &batch[i];
        if e.kind.is_membership() {
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

    // 5. The amendments change their targets (an edit in the same batch as
    // its target's insert included).
    if targets.is_some() {
        let (edits, redactions) = amendments::effects(to_insert.iter().map(|&i| &batch[i]))?;
        if !edits.is_empty() || !redactions.is_empty() {
            dialect.apply_amendments(txn, &edits, &redactions).await?;
        }
    }
    answer_repeats(out, repeats)
}

/// The walk over the batch's amendments, from one lookup of their targets;
/// `None` (and no statement) when the batch has none.
async fn amended_targets(
    txn: &impl ConnectionTrait,
    dialect: &Dialect,
    batch: &[NewEntry],
) -> Result<Option<Targets>, DbErr> {
    let mut keys: Vec<(&str, i64)> = batch
        .iter()
        .filter(|e| e.kind.is_amendment())
        .map(|e| (e.room_id.as_str(), e.target_seq.map_or(-1, seq_value)))
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    keys.sort_unstable();
    keys.dedup();
    let rows = dialect.lookup_targets(txn, &keys).await?;
    Targets::new(rows).map(Some)
}

/// Answers each redaction at `at` (of a message redacted before this batch)
/// with the message's first redaction, as stored.
async fn answer_first_redactions(
    txn: &impl ConnectionTrait,
    dialect: &Dialect,
    batch: &[NewEntry],
    at: &[usize],
    out: &mut [Option<Appended>],
) -> Result<(), DbErr> {
    let target = |i: usize| {
        let e = &batch[i];
        (e.room_id.as_str(), e.target_seq.map_or(-1, seq_value))
    };
    let mut targets: Vec<(&str, i64)> = at.iter().map(|&i| target(i)).collect();
    targets.sort_unstable();
    targets.dedup();
    let mut first: HashMap<(String, i64), Entry> = HashMap::new();
    for row in dialect.redactions_of(txn, &targets).await? {
        let e = to_entry(row)?;
        let key = (e.room_id.to_string(), e.target_seq.map_or(-1, seq_value));
        match first.get(&key) {
            Some(earlier) if earlier.seq < e.seq => {}
            _ => {
                first.insert(key, e);
            }
        }
    }
    for &i in at {
        let (room, seq) = target(i);
        let e = first.get(&(room.to_owned(), seq)).ok_or_else(|| {
            DbErr::Custom(format!("a redacted message of {room} has no redaction"))
        })?;
        out[i] = Some(Appended::Existing(e.clone()));
    }
    Ok(())
}

/// A text that repeats the idempotency key of an earlier entry of the same
/// batch (a client sending twice before an answer), or a redaction of a
/// message an earlier entry of the batch redacted: it is not stored, and is
/// answered with what that earlier entry gets.
struct Repeat {
    /// Its index in the batch.
    at: usize,
    /// The index of the batch's first entry with that key.
    first: usize,
}

/// Answers each repeat with the entry its first occurrence got, and hands
/// back the answers (by now every entry has one).
fn answer_repeats(
    mut out: Vec<Option<Appended>>,
    repeats: Vec<Repeat>,
) -> Result<Vec<Appended>, DbErr> {
    for Repeat { at, first } in repeats {
        let entry = out[first]
            .as_ref()
            .and_then(Appended::entry)
            .expect("answered above")
            .clone();
        out[at] = Some(Appended::Existing(entry));
    }
    Ok(out
        .into_iter()
        .map(|o| o.expect("every entry answered"))
        .collect())
}
