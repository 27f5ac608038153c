//! The migrations that reorder the idempotency index (`m0003`, `m0005`), up
//! and down on a SQLite file: entries stay, and so does their uniqueness.
//! And `m0006` (owners, private rooms, invitations) on a database with rooms
//! stored before it, and `m0007` (data, leave reasons, closed rooms,
//! moderators, bans) on one with entries, and `m0008` (edits, redactions,
//! retention, read markers) on one with rooms and entries. (Postgres runs them up in every suite that opens it;
//! down is not run there, since the suites share one database.) And four
//! nodes migrating a fresh Postgres database at once.

use parlor_engine::{
    Ban, ErrorKind, LeaveReason, Message, NewEntry, Retention, RoomId, RoomPatch, SeqRange, Store,
    UserId,
};
use parlor_seaorm::{Migrator, SeaOrmStore};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement};
use sea_orm_migration::MigratorTrait;

/// The names `sql` selects (its first column).
async fn names(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index(0).unwrap())
        .collect()
}

/// The idempotency indexes on `parlor_entries`, by name (not the index of
/// the amendments' targets, `m0008`).
async fn indexes(db: &DatabaseConnection) -> Vec<String> {
    let sql = "SELECT name FROM sqlite_master WHERE type = 'index' \
               AND tbl_name = 'parlor_entries' AND name LIKE 'parlor_entries_%' \
               AND name <> 'parlor_entries_targets' ORDER BY name";
    names(db, sql).await
}

/// Ann's text `client_id` at `seq` in room "r".
async fn send(db: &DatabaseConnection, seq: i64, client_id: &str) -> Result<(), DbErr> {
    db.execute_unprepared(&format!(
        "INSERT INTO parlor_entries (room_id, seq, id, kind, sender, client_id, body, created_at) \
         VALUES ('r', {seq}, 'id-{seq}', 'text', 'ann', '{client_id}', 'hi', 0)"
    ))
    .await
    .map(drop)
}

async fn entries(db: &DatabaseConnection) -> i64 {
    let sql = "SELECT count(*) FROM parlor_entries";
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

#[tokio::test]
async fn reordering_the_idempotency_index_keeps_entries_and_uniqueness() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    let db = Database::connect(&url).await.unwrap();

    // The schema as the first release left it, with a stored send.
    Migrator::up(&db, Some(2)).await.unwrap();
    assert_eq!(indexes(&db).await, ["parlor_entries_idempotency"]);
    db.execute_unprepared(
        "INSERT INTO parlor_rooms (id, capacity, last_seq, created_at) VALUES ('r', 10, 1, 0)",
    )
    .await
    .unwrap();
    send(&db, 1, "a").await.unwrap();

    Migrator::up(&db, None).await.unwrap();
    assert_eq!(indexes(&db).await, ["parlor_entries_client_id_first"]);
    assert!(
        send(&db, 2, "a").await.is_err(),
        "a client id stored before"
    );
    send(&db, 2, "b").await.unwrap();

    // Back past m0010, m0009, m0008, m0007, m0006, m0005, m0004 and m0003:
    // the first index again.
    Migrator::down(&db, Some(8)).await.unwrap();
    assert_eq!(indexes(&db).await, ["parlor_entries_idempotency"]);
    assert_eq!(entries(&db).await, 2);
    assert!(send(&db, 3, "b").await.is_err(), "still unique after down");

    Migrator::up(&db, None).await.unwrap();
    assert_eq!(indexes(&db).await, ["parlor_entries_client_id_first"]);
    assert_eq!(entries(&db).await, 2);
    assert!(send(&db, 3, "a").await.is_err(), "still unique after up");
}

/// The names of the database's triggers, sorted.
async fn triggers(db: &DatabaseConnection) -> Vec<String> {
    let sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name";
    names(db, sql).await
}

/// The triggers of the whole schema (migrations `m0004` and `m0010`).
const PRUNE_AND_HEAD_TRIGGERS: [&str; 2] = ["parlor_entries_advance_head", "parlor_rooms_prune"];

/// The names of the columns of `table`.
async fn columns(db: &DatabaseConnection, table: &str) -> Vec<String> {
    let sql = format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid");
    names(db, &sql).await
}

#[tokio::test]
async fn owners_and_invitations_come_to_rooms_stored_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    let db = Database::connect(&url).await.unwrap();

    // The schema before m0006, with a stored room.
    Migrator::up(&db, Some(5)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO parlor_rooms (id, capacity, last_seq, created_at) VALUES ('r', 10, 0, 0)",
    )
    .await
    .unwrap();

    Migrator::up(&db, None).await.unwrap();
    let store = SeaOrmStore::connect(&url).await.unwrap();
    let r = RoomId::new("r").unwrap();
    let ivy = UserId::new("ivy").unwrap();
    let stored = store.room(&r).await.unwrap().expect("still stored");
    assert_eq!((stored.owner, stored.private), (None, false));
    store.set_invite(&r, &ivy, true).await.unwrap();
    assert!(store.is_invited(&r, &ivy).await.unwrap());
    let absent = RoomId::new("absent").unwrap();
    assert_eq!(
        store
            .set_invite(&absent, &ivy, true)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::RoomNotFound
    );
    assert_eq!(
        store
            .set_invite(&absent, &ivy, false)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::RoomNotFound
    );
    drop(store);

    // Down (past m0010, m0009, m0008 and m0007 too): the columns and the
    // table go, the room stays; up again.
    Migrator::down(&db, Some(5)).await.unwrap();
    assert_eq!(
        columns(&db, "parlor_rooms").await,
        ["id", "capacity", "title", "last_seq", "created_at"]
    );
    assert!(columns(&db, "parlor_invites").await.is_empty());
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(
        columns(&db, "parlor_rooms").await,
        [
            "id",
            "capacity",
            "title",
            "last_seq",
            "created_at",
            "owner_id",
            "private",
            "closed",
            "first_seq",
            "own_retention",
            "retention_max_entries",
            "retention_max_age_ms"
        ]
    );
    let store = SeaOrmStore::connect(&url).await.unwrap();
    let stored = store.room(&r).await.unwrap().expect("still stored");
    assert_eq!((stored.owner, stored.private), (None, false));
    assert!(!store.is_invited(&r, &ivy).await.unwrap());
}

#[tokio::test]
async fn data_closing_and_moderation_come_to_rooms_stored_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    let db = Database::connect(&url).await.unwrap();

    // The schema before m0007, with a stored room and a send.
    Migrator::up(&db, Some(6)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO parlor_rooms (id, capacity, last_seq, created_at) VALUES ('r', 10, 1, 0); \
         INSERT INTO parlor_entries (room_id, seq, id, kind, sender, client_id, body, created_at) \
         VALUES ('r', 1, '0190a0a0-0000-7000-8000-000000000001', 'text', 'ann', 'a', 'hi', 0)",
    )
    .await
    .unwrap();

    Migrator::up(&db, None).await.unwrap();
    let store = SeaOrmStore::connect(&url).await.unwrap();
    let r = RoomId::new("r").unwrap();
    let bo = UserId::new("bo").unwrap();
    let stored = store.room(&r).await.unwrap().expect("still stored");
    assert!(!stored.closed);
    let log = store.entries(&r, SeqRange::after(0, 10)).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].data.as_ref(), log[0].reason), (None, None));
    store.set_moderator(&r, &bo, true).await.unwrap();
    let ban = Ban {
        until: None,
        reason: Some("spam".into()),
    };
    store.set_ban(&r, &bo, Some(&ban)).await.unwrap();
    assert_eq!(store.ban(&r, &bo).await.unwrap(), Some(ban));
    drop(store);

    // Down (past m0010, m0009 and m0008 too): the columns and tables go, the
    // room and its entry stay; up again.
    Migrator::down(&db, Some(4)).await.unwrap();
    assert!(
        !columns(&db, "parlor_rooms")
            .await
            .contains(&"closed".to_owned())
    );
    let entry_columns = columns(&db, "parlor_entries").await;
    assert!(!entry_columns.iter().any(|c| c == "data" || c == "reason"));
    assert!(columns(&db, "parlor_moderators").await.is_empty());
    assert!(columns(&db, "parlor_bans").await.is_empty());
    assert_eq!(entries(&db).await, 1);
    Migrator::up(&db, None).await.unwrap();
    let store = SeaOrmStore::connect(&url).await.unwrap();
    assert!(!store.room(&r).await.unwrap().expect("stored").closed);
    assert!(!store.is_moderator(&r, &bo).await.unwrap());
    assert_eq!(store.ban(&r, &bo).await.unwrap(), None);
}

#[tokio::test]
async fn amendments_retention_and_read_markers_come_to_logs_stored_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    let db = Database::connect(&url).await.unwrap();

    // The schema before m0008, with a room holding a text and a leave.
    Migrator::up(&db, Some(7)).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO parlor_rooms (id, capacity, last_seq, created_at) VALUES ('r', 10, 2, 0); \
         INSERT INTO parlor_entries (room_id, seq, id, kind, sender, client_id, body, created_at) \
         VALUES ('r', 1, '0190a0a0-0000-7000-8000-000000000001', 'text', 'ann', 'a', 'hi', 0); \
         INSERT INTO parlor_entries (room_id, seq, id, kind, sender, created_at, reason) \
         VALUES ('r', 2, '0190a0a0-0000-7000-8000-000000000002', 'leave', 'bob', 0, 'kicked')",
    )
    .await
    .unwrap();

    Migrator::up(&db, None).await.unwrap();
    let store = SeaOrmStore::connect(&url).await.unwrap();
    let r = RoomId::new("r").unwrap();
    let (ann, bob) = (UserId::new("ann").unwrap(), UserId::new("bob").unwrap());
    let stored = store.room(&r).await.unwrap().expect("still stored");
    assert_eq!((stored.first_seq, stored.retention), (1, None));
    let log = store.entries(&r, SeqRange::after(0, 10)).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|e| (e.target_seq, e.edited_at, e.redacted))
            .collect::<Vec<_>>(),
        [(None, None, false), (None, None, false)]
    );
    assert_eq!(
        log[1].reason,
        Some(LeaveReason::Kicked),
        "a leave's reason stays one"
    );
    let edit = NewEntry::edit(r.clone(), ann.clone(), 1, Some("e"), Message::text("hey"));
    let redaction = NewEntry::redaction(r.clone(), ann.clone(), 1, Some("oops".into()));
    let out = store.append(&[edit, redaction]).await.unwrap();
    assert!(out.iter().all(|o| o.is_new()));
    assert_eq!(store.set_read_marker(&r, &bob, 4).await.unwrap(), 4);
    let retention = Retention {
        max_entries: Some(3),
        max_age: None,
    };
    let patch = RoomPatch {
        retention: Some(Some(retention)),
        ..RoomPatch::default()
    };
    let room = store.update_room(&r, &patch).await.unwrap().unwrap();
    assert_eq!(room.retention, Some(retention));
    drop(store);

    // Down past m0010: the trigger that prunes below `first_seq` goes.
    assert_eq!(triggers(&db).await, PRUNE_AND_HEAD_TRIGGERS);
    Migrator::down(&db, Some(1)).await.unwrap();
    assert_eq!(triggers(&db).await, ["parlor_entries_advance_head"]);
    // Down past m0009: the webhooks' tables go.
    assert!(!columns(&db, "parlor_outbox").await.is_empty());
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(columns(&db, "parlor_outbox").await.is_empty());
    assert!(columns(&db, "parlor_webhook_cursors").await.is_empty());
    // Down: the columns and the table go, and so do the amendments (the
    // schema before has no such kind); the room and its entries stay.
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(columns(&db, "parlor_read_markers").await.is_empty());
    let room_columns = columns(&db, "parlor_rooms").await;
    assert!(
        !room_columns
            .iter()
            .any(|c| c == "first_seq" || c == "own_retention")
    );
    assert!(
        !columns(&db, "parlor_entries")
            .await
            .contains(&"redacted".to_owned())
    );
    assert_eq!(entries(&db).await, 2);
    Migrator::up(&db, None).await.unwrap();
    let store = SeaOrmStore::connect(&url).await.unwrap();
    let stored = store.room(&r).await.unwrap().expect("stored");
    assert_eq!((stored.first_seq, stored.retention), (1, None));
    assert_eq!(
        store
            .read_states(&bob, std::slice::from_ref(&r))
            .await
            .unwrap()[0]
            .last_read_seq,
        0
    );
}

/// Nodes of a cluster upgraded together start at once on one Postgres that
/// needs migrations: every one of them comes up (the ones that lose the
/// race to a migration find it done and go on), on a fresh database.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the SKIPPED line
async fn nodes_starting_together_all_migrate() {
    let Ok(url) = std::env::var("PARLOR_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED nodes_starting_together_all_migrate: PARLOR_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let admin = Database::connect(&url).await.expect("connect");
    let name = format!("parlor_race_{:08x}", rand_suffix());
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a fresh database");
    let (base, _) = url.rsplit_once('/').expect("a database in the URL");
    let fresh = format!("{base}/{name}");
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let fresh = fresh.clone();
            tokio::spawn(async move { SeaOrmStore::open(&fresh).await.map(drop) })
        })
        .collect();
    let mut failed = Vec::new();
    for open in opens {
        if let Err(err) = open.await.expect("task") {
            failed.push(err.to_string());
        }
    }
    admin
        .execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the database");
    assert!(failed.is_empty(), "nodes failed to start: {failed:?}");
}

#[cfg(not(feature = "postgres"))]
#[test]
#[allow(clippy::print_stderr)] // the SKIPPED line
fn nodes_starting_together_all_migrate() {
    eprintln!("SKIPPED nodes_starting_together_all_migrate: built without the `postgres` feature");
}

#[cfg(feature = "postgres")]
fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id()
}
