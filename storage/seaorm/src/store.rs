//! [`SeaOrmStore`]: the [`Store`] port on SeaORM, for SQLite and Postgres.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use parlor_engine::{
    Entry, EntryKind, Error, ErrorKind, NewEntry, Result, RoomId, SeqRange, StoredRoom, Timestamp,
    UserId,
    ports::{Appended, CreateOutcome, Store},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr, SqliteTransactionMode,
    TransactionOptions, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;

use crate::{
    append::{self, Duplicates, SeatCheck},
    append_sqlite::{self, KnownHeads},
    entity::{entry, member, room},
    migration::Migrator,
    translate::translate,
};

/// How often an append is tried when it meets a stored idempotency key:
/// once expecting none, then looking first (twice, as a concurrent writer,
/// another node, may take a key between the look and the insert).
const APPEND_ATTEMPTS: usize = 3;

/// Rooms and room logs in a SQL database through SeaORM.
///
/// SQLite (the embedded default) runs in WAL mode with `synchronous = FULL`:
/// a committed append survives a crash of the process or the machine. It has a
/// single writer, so writes get their own pool of one connection — writers
/// queue there instead of spinning on `SQLITE_BUSY` — while reads use a pool
/// of their own. Postgres uses one pool for both.
#[derive(Clone)]
pub struct SeaOrmStore {
    pub(crate) reads: DatabaseConnection,
    pub(crate) writes: DatabaseConnection,
    /// The cluster node this store appends for (see [`SeaOrmStore::for_node`]).
    pub(crate) node: Option<Arc<str>>,
    /// SQLite only: rooms' heads as this store's appends left them.
    heads: Option<Arc<KnownHeads>>,
}

impl SeaOrmStore {
    /// Connects to `url` (`sqlite://parlor.db?mode=rwc`, `postgres://…`).
    /// Does not migrate; call [`SeaOrmStore::migrate`].
    pub async fn connect(url: &str) -> Result<Self> {
        if url.starts_with("sqlite:") {
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            // An in-memory SQLite database exists per connection: one pool of one.
            let writes = connect(url, 1).await?;
            let reads = if in_memory {
                writes.clone()
            } else {
                connect(url, 4).await?
            };
            Ok(SeaOrmStore {
                reads,
                writes,
                node: None,
                heads: Some(Arc::default()),
            })
        } else {
            let pool = connect(url, 16).await?;
            Ok(SeaOrmStore {
                reads: pool.clone(),
                writes: pool,
                node: None,
                heads: None,
            })
        }
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
    pub async fn migrate(&self) -> Result<()> {
        Migrator::up(&self.writes, None).await.map_err(translate)
    }

    /// Connects and migrates.
    pub async fn open(url: &str) -> Result<Self> {
        let store = SeaOrmStore::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Whether the database answers (for readiness checks).
    pub async fn ping(&self) -> Result<()> {
        self.reads.ping().await.map_err(translate)
    }

    /// The database backend in use.
    pub fn backend(&self) -> DbBackend {
        self.writes.get_database_backend()
    }

    async fn append_once(
        &self,
        batch: &[NewEntry],
        duplicates: Duplicates,
    ) -> Result<Vec<Appended>, DbErr> {
        // IMMEDIATE takes SQLite's write lock at BEGIN, waiting for it as
        // long as the busy timeout allows: a transaction that read first
        // and then wrote could not wait, it would fail at once with BUSY
        // while another connection to the file writes. (Postgres ignores it.)
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let txn = self.writes.begin_with_options(options).await?;
        let seats = match &self.node {
            Some(node) => SeatCheck::OtherThan(node),
            None => SeatCheck::None,
        };
        let out = append::append(&txn, batch, seats, duplicates).await?;
        txn.commit().await?;
        Ok(out)
    }
}

/// Append transactions in flight at once on Postgres: enough to overlap
/// commits, few enough to leave the pool's other connections to reads.
const POSTGRES_APPEND_LANES: usize = 4;

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
    });
    Database::connect(options).await.map_err(translate)
}

fn corrupt(what: &str) -> DbErr {
    DbErr::Custom(format!("stored row has an invalid {what}"))
}

pub(crate) fn to_entry(row: entry::Model) -> Result<Entry, DbErr> {
    Ok(Entry {
        room_id: RoomId::new(&row.room_id).map_err(|_| corrupt("room id"))?,
        seq: u64::try_from(row.seq).map_err(|_| corrupt("seq"))?,
        id: row.id.parse().map_err(|_| corrupt("entry id"))?,
        kind: EntryKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
        sender: UserId::new(&row.sender).map_err(|_| corrupt("sender"))?,
        client_id: row.client_id,
        body: row.body,
        created_at: Timestamp(row.created_at),
    })
}

fn to_room(row: room::Model) -> Result<StoredRoom, DbErr> {
    Ok(StoredRoom {
        id: RoomId::new(&row.id).map_err(|_| corrupt("room id"))?,
        capacity: u32::try_from(row.capacity).map_err(|_| corrupt("capacity"))?,
        title: row.title,
        last_seq: u64::try_from(row.last_seq).map_err(|_| corrupt("last seq"))?,
    })
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

#[async_trait]
impl Store for SeaOrmStore {
    async fn create_room(&self, new: &StoredRoom) -> Result<CreateOutcome> {
        let row = room::ActiveModel {
            id: Set(new.id.to_string()),
            capacity: Set(new.capacity as i32),
            title: Set(new.title.clone()),
            last_seq: Set(0),
            created_at: Set(Timestamp::now().millis()),
        };
        match room::Entity::insert(row)
            .exec_without_returning(&self.writes)
            .await
        {
            Ok(_) => Ok(CreateOutcome::Created),
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
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // The first attempt expects no stored duplicate (the usual case) and
        // lets the unique index find one; the next attempts look first.
        let mut duplicates = Duplicates::Unexpected;
        let mut attempt = 1;
        if let Some(heads) = &self.heads {
            match append_sqlite::append_at_known_heads(&self.writes, heads, batch).await {
                Ok(Some(out)) => return Ok(out),
                Ok(None) => {}
                // A stored duplicate, or a head another writer moved.
                Err(err) if is_unique_violation(&err) => {
                    duplicates = Duplicates::LookUp;
                    attempt += 1;
                }
                Err(err) => return Err(translate(err)),
            }
        }
        loop {
            match self.append_once(batch, duplicates).await {
                Ok(out) => {
                    if let Some(heads) = &self.heads {
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
                Err(DbErr::RecordNotFound(what)) => {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "append to a room that is not stored",
                    )
                    .with_source(DbErr::RecordNotFound(what)));
                }
                Err(err) => return Err(translate(err)),
            }
        }
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
            .map(|m| {
                Ok((
                    RoomId::new(&m.room_id).map_err(|_| translate(corrupt("room id")))?,
                    UserId::new(&m.user_id).map_err(|_| translate(corrupt("user id")))?,
                ))
            })
            .collect()
    }

    fn append_lanes(&self) -> usize {
        match self.backend() {
            DbBackend::Postgres => POSTGRES_APPEND_LANES,
            _ => 1,
        }
    }
}
