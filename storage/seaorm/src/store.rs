//! [`SeaOrmStore`]: the [`Store`] port on SeaORM, for SQLite and Postgres.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use parlor_engine::{
    Ban, ControlEvent, Entry, Error, ErrorKind, NewEntry, OutboxEvent, ReadState, Result, RoomId,
    RoomPatch, Seq, SeqRange, StoredRoom, UserId,
    ports::{Appended, CreateOutcome, CursorMove, PruneBound, Pruned, Store, WebhookCursor},
};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
    sea_query::OnConflict,
};
use sea_orm_migration::MigratorTrait;

use crate::{
    append::{self, Dialect, SeatCheck},
    entity::{ban, entry, invite, member, moderator, room},
    migration::Migrator,
    read_markers, retention, rooms,
    rows::{ban_row, invite_row, moderator_row, room_row, to_ban, to_entry, to_member, to_room},
    transactions::immediate,
    translate::{is_unique_violation, translate, translate_per_room},
    webhooks,
};

/// Rooms and room logs in a SQL database through SeaORM.
///
/// SQLite (the embedded default) runs in WAL mode with `synchronous = FULL`:
/// a committed append survives a crash of the process or the machine. It has a
/// single writer, so writes get their own pool of one connection — writers
/// queue there instead of spinning on `SQLITE_BUSY` — while reads use a pool
/// of their own. It runs with `secure_delete`, so that what a redaction
/// erases (or retention prunes) is overwritten in the database's pages, and
/// [`SeaOrmStore::checkpoint`] at shutdown leaves no copy in the WAL either.
/// Postgres uses one pool for both.
#[derive(Clone)]
pub struct SeaOrmStore {
    pub(crate) reads: DatabaseConnection,
    pub(crate) writes: DatabaseConnection,
    /// The cluster node this store appends for (see [`SeaOrmStore::for_node`]).
    pub(crate) node: Option<Arc<str>>,
    /// Which SQL the append speaks, chosen at connect.
    pub(crate) dialect: Dialect,
}

impl SeaOrmStore {
    /// Connects to `url` (`sqlite://parlor.db?mode=rwc`, `postgres://…`).
    /// Does not migrate; call [`SeaOrmStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self> {
        let (reads, writes) = if url.starts_with("sqlite:") {
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            // An in-memory SQLite database exists per connection: one pool of one.
            let writes = connect(url, 1).await?;
            let reads = if in_memory {
                writes.clone()
            } else {
                connect(url, 4).await?
            };
            (reads, writes)
        } else {
            let pool = connect(url, 16).await?;
            (pool.clone(), pool)
        };
        Ok(SeaOrmStore {
            dialect: Dialect::of(writes.get_database_backend()),
            reads,
            writes,
            node: None,
        })
    }

    /// This store as node `node` of a cluster: a `leave` it appends is
    /// skipped while the user still holds a live seat on another node (see
    /// [`SeatLeases`](parlor_engine::SeatLeases), which this store also
    /// implements, on Postgres).
    pub fn for_node(mut self, node: &str) -> Self {
        self.node = Some(Arc::from(node));
        self
    }

    /// Brings the schema up to date.
    ///
    /// Several nodes of a cluster started together on one Postgres run the
    /// same migration at once, and all but one fail on what the winner
    /// created; once the winner has recorded it, they find it done. So a
    /// failed migration is tried again, a few times, with a growing pause.
    pub async fn migrate(&self) -> Result<()> {
        let mut attempt = 1;
        loop {
            match Migrator::up(&self.writes, None).await {
                Ok(()) => return Ok(()),
                Err(err) if self.backend() == DbBackend::Postgres && attempt < MIGRATE_ATTEMPTS => {
                    tracing::warn!(attempt, error = %err, "migration failed; another node may be migrating, trying again");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(err) => return Err(translate(err)),
            }
        }
    }

    /// Connects and migrates.
    pub async fn open(url: &str) -> Result<Self> {
        let store = SeaOrmStore::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// SQLite: copies the write-ahead log into the database file and
    /// truncates it to zero bytes (`PRAGMA wal_checkpoint(TRUNCATE)`), so
    /// that no file of the database holds an older copy of a page — such as
    /// the body of a message redacted since (docs/contract.md §2, "Edits and
    /// redactions"). Call it at shutdown, after the engine has flushed its
    /// appends. Nothing to do on Postgres (its dead row versions last until
    /// VACUUM).
    ///
    /// Errors: `UNAVAILABLE` when a reader kept the log from being
    /// truncated (a read still running), or the database's error.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let sql = "PRAGMA wal_checkpoint(TRUNCATE)";
        let row = self
            .writes
            .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
            .await
            .map_err(translate)?;
        // (busy, frames in the log, frames checkpointed); busy is 1 when
        // the checkpoint could not finish.
        let busy: i64 = match row {
            Some(row) => row.try_get_by_index(0).map_err(translate)?,
            None => 0,
        };
        if busy != 0 {
            return Err(Error::unavailable(std::io::Error::other(
                "the WAL checkpoint could not finish: a reader is busy",
            )));
        }
        Ok(())
    }

    /// Closes the store's connections (its clones' too), waiting for them
    /// to finish. Optional: dropping the store closes them in the background.
    pub async fn close(self) -> Result<()> {
        self.reads.close_by_ref().await.map_err(translate)?;
        self.writes.close_by_ref().await.map_err(translate)
    }

    /// Whether the database answers (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        self.reads.ping().await.map_err(translate)
    }

    /// The database backend in use.
    pub fn backend(&self) -> DbBackend {
        self.writes.get_database_backend()
    }

    /// After a DELETE from a per-room set (invitations, moderators, bans)
    /// that removed `deleted` rows: nothing removed is no error, unless the
    /// room itself is not stored (`ROOM_NOT_FOUND`, as when adding).
    async fn removed(&self, room: &RoomId, deleted: u64) -> Result<()> {
        if deleted == 0 && self.room(room).await?.is_none() {
            return Err(ErrorKind::RoomNotFound.into());
        }
        Ok(())
    }
}

/// How many times a start tries the migrations (see [`SeaOrmStore::migrate`]).
const MIGRATE_ATTEMPTS: u32 = 8;

/// WAL pages between automatic checkpoints (SQLite's default is 1 000).
#[cfg(feature = "sqlite")]
const WAL_AUTOCHECKPOINT_PAGES: u32 = 8_000;

async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false);
    #[cfg(feature = "sqlite")]
    options.map_sqlx_sqlite_opts(|o| {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        o.journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // An append is one INSERT of many rows under a unique index, so
            // SQLite keeps a statement journal of every page it touches (to
            // undo just that statement). On disk that is a temporary file
            // written, synced and deleted per transaction; in memory it is a
            // copy. (docs/benchmarks.md, step 11.)
            .pragma("temp_store", "memory")
            // Checkpoint every ~32 MiB of WAL, not every 4 MiB: a page that
            // many commits touched (a room's newest leaf, a sender's leaf of
            // the idempotency index) is copied into the database once per
            // checkpoint, so fewer, larger checkpoints copy fewer pages.
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            // Deleted content is overwritten with zeros: a redaction's
            // erasure and retention's deletes leave no bytes behind in the
            // database's pages (docs/contract.md §2).
            .pragma("secure_delete", "ON")
    });
    Database::connect(options).await.map_err(translate)
}

#[async_trait]
impl Store for SeaOrmStore {
    async fn create_room(&self, new: &StoredRoom) -> Result<CreateOutcome> {
        let created = ControlEvent::created(new);
        // The row and its `room.created` outbox row, in one transaction.
        let insert = async {
            let txn = self.writes.begin_with_options(immediate()).await?;
            room::Entity::insert(room_row(new))
                .exec_without_returning(&txn)
                .await?;
            webhooks::write_outbox(&txn, &new.id, &created).await?;
            txn.commit().await
        };
        match insert.await {
            Ok(()) => Ok(CreateOutcome::Created),
            Err(err) if is_unique_violation(&err) => {
                let existing = self.room(&new.id).await?.ok_or_else(|| {
                    Error::new(ErrorKind::Internal, "internal error").with_source(err)
                })?;
                Ok(CreateOutcome::AlreadyExists(existing))
            }
            Err(err) => Err(translate(err)),
        }
    }

    async fn room(&self, id: &RoomId) -> Result<Option<StoredRoom>> {
        let row = room::Entity::find_by_id(id.as_str())
            .one(&self.reads)
            .await
            .map_err(translate)?;
        row.map(to_room).transpose().map_err(translate)
    }

    async fn append(&self, batch: &[NewEntry]) -> Result<Vec<Appended>> {
        // A cluster node's `leave` waits while another node seats the user.
        let seats = match &self.node {
            Some(node) => SeatCheck::OtherThan(node),
            None => SeatCheck::None,
        };
        append::append(&self.writes, &self.dialect, seats, batch).await
    }

    async fn entries(&self, room_id: &RoomId, range: SeqRange) -> Result<Vec<Entry>> {
        let mut query = entry::Entity::find().filter(entry::Column::RoomId.eq(room_id.as_str()));
        if let Some(after) = range.after {
            query = query.filter(entry::Column::Seq.gt(after as i64));
        }
        if let Some(before) = range.before {
            query = query.filter(entry::Column::Seq.lt(before as i64));
        }
        let newest_first = range.from_newest();
        query = if newest_first {
            query.order_by_desc(entry::Column::Seq)
        } else {
            query.order_by_asc(entry::Column::Seq)
        };
        let rows = query
            .limit(u64::from(range.limit))
            .all(&self.reads)
            .await
            .map_err(translate)?;
        let mut entries = rows
            .into_iter()
            .map(to_entry)
            .collect::<Result<Vec<_>, _>>()
            .map_err(translate)?;
        if newest_first {
            entries.reverse();
        }
        Ok(entries)
    }

    async fn open_members(&self) -> Result<Vec<(RoomId, UserId)>> {
        let rows = member::Entity::find()
            .all(&self.reads)
            .await
            .map_err(translate)?;
        rows.into_iter()
            .map(|m| to_member(m).map_err(translate))
            .collect()
    }

    async fn set_invite(&self, room: &RoomId, user: &UserId, invited: bool) -> Result<()> {
        if invited {
            // The foreign key refuses a room that is not stored; a second
            // invitation meets the primary key and changes nothing.
            invite::Entity::insert(invite_row(room, user))
                .on_conflict_do_nothing()
                .exec_without_returning(&self.writes)
                .await
                .map_err(translate_per_room)?;
            return Ok(());
        }
        let deleted = invite::Entity::delete_by_id((room.to_string(), user.to_string()))
            .exec(&self.writes)
            .await
            .map_err(translate)?;
        self.removed(room, deleted.rows_affected).await
    }

    async fn is_invited(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        let row = invite::Entity::find_by_id((room.to_string(), user.to_string()))
            .one(&self.reads)
            .await
            .map_err(translate)?;
        Ok(row.is_some())
    }

    async fn rooms(
        &self,
        prefix: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<StoredRoom>> {
        rooms::list(&self.reads, prefix, after, limit)
            .await
            .map_err(translate)
    }

    async fn update_room(&self, id: &RoomId, patch: &RoomPatch) -> Result<Option<StoredRoom>> {
        rooms::update(&self.writes, id, patch)
            .await
            .map_err(translate)
    }

    async fn close_room(&self, id: &RoomId, purge: bool) -> Result<bool> {
        if !purge {
            return rooms::close(&self.writes, id).await.map_err(translate);
        }
        let purged = rooms::purge(&self.writes, id).await.map_err(translate)?;
        // The id may be created again, and its new log starts at seq 1.
        self.dialect.forget_head(id.as_str());
        Ok(purged)
    }

    async fn set_moderator(&self, room: &RoomId, user: &UserId, moderator: bool) -> Result<()> {
        if moderator {
            // As an invitation: the foreign key refuses a room that is not
            // stored, the primary key a second row.
            moderator::Entity::insert(moderator_row(room, user))
                .on_conflict_do_nothing()
                .exec_without_returning(&self.writes)
                .await
                .map_err(translate_per_room)?;
            return Ok(());
        }
        let deleted = moderator::Entity::delete_by_id((room.to_string(), user.to_string()))
            .exec(&self.writes)
            .await
            .map_err(translate)?;
        self.removed(room, deleted.rows_affected).await
    }

    async fn is_moderator(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        let row = moderator::Entity::find_by_id((room.to_string(), user.to_string()))
            .one(&self.reads)
            .await
            .map_err(translate)?;
        Ok(row.is_some())
    }

    async fn set_ban(&self, room: &RoomId, user: &UserId, ban: Option<&Ban>) -> Result<()> {
        if let Some(ban) = ban {
            let banned = ControlEvent::banned(user, ban);
            // An upsert: a later ban replaces the earlier one whole; its
            // `member.banned` outbox row goes in the same transaction.
            let upsert = async {
                let txn = self.writes.begin_with_options(immediate()).await?;
                webhooks::lock_room(&txn, room).await?;
                ban::Entity::insert(ban_row(room, user, ban))
                    .on_conflict(
                        OnConflict::columns([ban::Column::RoomId, ban::Column::UserId])
                            .update_columns([ban::Column::UntilMs, ban::Column::Reason])
                            .to_owned(),
                    )
                    .exec_without_returning(&txn)
                    .await?;
                webhooks::write_outbox(&txn, room, &banned).await?;
                txn.commit().await
            };
            return upsert.await.map_err(translate_per_room);
        }
        let deleted = ban::Entity::delete_by_id((room.to_string(), user.to_string()))
            .exec(&self.writes)
            .await
            .map_err(translate)?;
        self.removed(room, deleted.rows_affected).await
    }

    async fn ban(&self, room: &RoomId, user: &UserId) -> Result<Option<Ban>> {
        let row = ban::Entity::find_by_id((room.to_string(), user.to_string()))
            .one(&self.reads)
            .await
            .map_err(translate)?;
        Ok(row.map(to_ban))
    }

    async fn retained_rooms(
        &self,
        after: Option<&RoomId>,
        limit: u32,
        all: bool,
    ) -> Result<Vec<StoredRoom>> {
        retention::retained_rooms(&self.reads, after, limit, all)
            .await
            .map_err(translate)
    }

    async fn prune(&self, room: &RoomId, bound: PruneBound, max_rows: u32) -> Result<Pruned> {
        retention::prune(&self.writes, room, bound, max_rows)
            .await
            .map_err(translate)
    }

    async fn prune_rooms(
        &self,
        rooms: &[(RoomId, PruneBound)],
        max_rows: u32,
    ) -> Result<Vec<(RoomId, Pruned)>> {
        match self.dialect {
            Dialect::Sqlite(_) => {
                retention::prune_rooms_sqlite(&self.reads, &self.writes, rooms, max_rows)
                    .await
                    .map_err(translate)
            }
            // Postgres deletes without a single writer's lock; each room
            // keeps its own transaction and advisory lock (one node per room).
            #[cfg(feature = "postgres")]
            Dialect::Postgres => {
                parlor_engine::ports::prune_room_by_room(self, rooms, max_rows).await
            }
        }
    }

    async fn set_read_marker(&self, room: &RoomId, user: &UserId, seq: Seq) -> Result<Seq> {
        read_markers::set(&self.writes, room, user, seq)
            .await
            .map_err(translate_per_room)
    }

    async fn read_states(&self, user: &UserId, rooms: &[RoomId]) -> Result<Vec<ReadState>> {
        read_markers::states(&self.reads, user, rooms)
            .await
            .map_err(translate)
    }

    async fn set_webhooks(&self, hooks: &[String]) -> Result<()> {
        webhooks::register(&self.writes, hooks)
            .await
            .map_err(translate)
    }

    async fn webhook_rooms(
        &self,
        hook: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<RoomId>> {
        webhooks::rooms_behind(&self.reads, hook, after, limit)
            .await
            .map_err(translate)
    }

    async fn webhook_cursor(&self, hook: &str, room: &RoomId) -> Result<Option<WebhookCursor>> {
        webhooks::cursor(&self.reads, hook, room)
            .await
            .map_err(translate)
    }

    async fn outbox(
        &self,
        room: &RoomId,
        after: u64,
        upto: Seq,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>> {
        webhooks::outbox(&self.reads, room, after, upto, limit)
            .await
            .map_err(translate)
    }

    async fn advance_webhook(&self, hook: &str, moves: &[CursorMove]) -> Result<Vec<bool>> {
        webhooks::advance(&self.writes, hook, moves)
            .await
            .map_err(translate)
    }

    fn append_lanes(&self) -> usize {
        self.dialect.append_lanes()
    }
}
