//! # parlor-seaorm
//!
//! Parlor's durable storage: the engine's [`Store`](parlor_engine::Store)
//! port on SeaORM 2, over SQLite (feature `sqlite`, the embedded default) or
//! Postgres (feature `postgres`). It depends on `parlor-engine`, never the
//! reverse: the engine sees only the `Store` trait, and every database error
//! is translated here into an engine [`Error`](parlor_engine::Error)
//! (`UNAVAILABLE` for "retry", `INTERNAL` otherwise) whose client-facing text
//! never contains the database's own.
//!
//! Seven tables, created by the bundled migrations (besides the cluster's
//! seat leases, see `leases`):
//! - `parlor_rooms` — id, capacity, title, owner (NULL for rooms stored
//!   before rooms had owners), whether it is private, whether it is closed,
//!   `last_seq`, the log's head, `first_seq`, where retention left its
//!   start, and the room's own retention, if it has one;
//! - `parlor_entries` — the room logs, keyed by (room_id, seq), with a unique
//!   (client_id, sender, room_id) that makes messages and edits idempotent;
//!   a message's data is stored as its JSON text, a leave's reason or a
//!   redaction's note as text; an edit or redaction names its target
//!   (`target_seq`), an edited message says when (`edited_at`), and a
//!   redacted one (and its edits) holds no body or data (`redacted`);
//! - `parlor_members` — open memberships, so a restart can close them;
//! - `parlor_invites`, `parlor_moderators` — (room_id, user_id) sets of
//!   stored rooms;
//! - `parlor_bans` — a ban per (room_id, user_id): until when, and why;
//! - `parlor_read_markers` — each (room_id, user_id)'s last-read seq.
//!
//! A room is created with an INSERT, never an upsert: a duplicate id is
//! reported as [`CreateOutcome::AlreadyExists`](parlor_engine::ports::CreateOutcome).
//! An append is one transaction for the whole batch, which reserves each
//! room's seqs by advancing `last_seq` in the same transaction. On SQLite a
//! batch of new texts in rooms whose heads this store's own appends left is
//! a single INSERT, numbered from those heads; a trigger advances
//! `last_seq`, and the (room_id, seq) key turns a head another writer moved
//! into a retry the long way. Retention on SQLite moves rooms' `first_seq`
//! in one UPDATE, and another trigger deletes the entries below it.
//!
//! ## Where things are
//!
//! Lowest layer first: a module names only modules listed before it.
//! - `translate` — database errors → engine errors, unique-violation
//!   detection, the "room not stored" error an append raises, and the
//!   `ROOM_NOT_FOUND` of an invitation, moderator or ban of a room that is
//!   not stored;
//! - `entity`, `migration` — the tables' SeaORM entities, and the schema
//!   migrations ([`Migrator`]);
//! - `rows` — stored rows ↔ engine types;
//! - `cluster` — the database clock and the live-seat lookup (Postgres SQL
//!   that both the append and the leases run);
//! - `amendments` — which edits and redactions of a batch the log takes,
//!   walked in batch order from one lookup of their targets, and their
//!   effects on the targets;
//! - `append_sqlite`, `append_postgres` — each dialect's fixed-SQL batch
//!   statements (amendments' lookups and effects too); `append_sqlite` also
//!   keeps the fast path's known heads;
//! - `append` — the whole append: fast path, `BEGIN IMMEDIATE`, retry on a
//!   unique violation, and `Dialect`, the one switch between the two
//!   dialects' SQL, chosen once at connect;
//! - `read_markers` — the monotone upsert of a marker, and read states
//!   (markers and unread counts) of many rooms in one query;
//! - `retention` — the rooms that may need pruning, and pruning rooms'
//!   oldest entries in bounded batches (Postgres: a short transaction per
//!   room, one node at a time by an advisory lock; SQLite: one statement
//!   on the writer for several rooms);
//! - `rooms` — the room listing (byte order on both databases), updates,
//!   closing, and purging a room with everything stored about it;
//! - `store` — [`SeaOrmStore`]: connecting, migrating, and the `Store` port,
//!   whose append calls `append` and whose room lifecycle calls `rooms`;
//! - `leases` — `SeatLeases` for [`SeaOrmStore`] (Postgres), on `store`,
//!   `append` and `cluster`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use parlor_engine::{Engine, EngineConfig};
//! use parlor_seaorm::SeaOrmStore;
//!
//! # async fn demo() -> parlor_engine::Result<()> {
//! let store = SeaOrmStore::open("sqlite://parlor.db?mode=rwc").await?;
//! let engine = Engine::builder(Arc::new(store)).config(EngineConfig::default()).start().await?;
//! # drop(engine); Ok(()) }
//! ```

mod amendments;
mod append;
#[cfg(feature = "postgres")]
mod append_postgres;
mod append_sqlite;
mod cluster;
mod entity;
mod leases;
mod migration;
mod read_markers;
mod retention;
mod rooms;
mod rows;
mod store;
mod transactions;
mod translate;
mod webhooks;

pub use migration::Migrator;
pub use store::SeaOrmStore;
