//! A redaction really erases (docs/contract.md §2, "Edits and
//! redactions"): on SQLite, once the store is checkpointed (and after it is
//! closed) no file of the database holds the message's bytes, nor its
//! edit's; on Postgres, no query of the entries table returns them.

use parlor_engine::{
    Data, Message, NewEntry, RoomId, SeqRange, Store, StoredRoom, UserId, ports::Appended,
};
use parlor_seaorm::SeaOrmStore;

/// Words no database writes by itself: a message, its edit and its data.
/// Each is stored at the head of a long text: SQLite reuses a shrunk
/// row's space from its end, so that without `secure_delete` the head of a
/// long erased value is what stays in the page.
struct Secrets {
    body: String,
    edit: String,
    data: String,
}

impl Secrets {
    fn new() -> Self {
        let tag = format!("{:016x}", rand::random::<u64>());
        Secrets {
            body: format!("ERASE-BODY-{tag}"),
            edit: format!("ERASE-EDIT-{tag}"),
            data: format!("ERASE-DATA-{tag}"),
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.body, &self.edit, &self.data]
    }
}

/// `secret` as stored: at the head of a long text.
fn long(secret: &str) -> String {
    format!("{secret} {}", "and so on ".repeat(40))
}

/// Stores a message with data in a new room; returns the room and the
/// message's seq.
async fn store_message(store: &dyn Store, secrets: &Secrets) -> (RoomId, u64) {
    let room = RoomId::new(&format!("erase{:08x}", rand::random::<u32>())).unwrap();
    store
        .create_room(&StoredRoom::new(room.clone(), 4))
        .await
        .unwrap();
    let data = serde_json::json!({ "card": long(&secrets.data) });
    let data: Data = serde_json::from_value(data).unwrap();
    let message = NewEntry::message(
        room.clone(),
        parlor_engine::EntryKind::Text,
        UserId::new("ann").unwrap(),
        "m1",
        Message::text(long(&secrets.body)).with_data(data),
    );
    // Other rows around it on its page, as in a real log.
    let bob = UserId::new("bob").unwrap();
    let filler = |i: usize| {
        NewEntry::text(
            room.clone(),
            bob.clone(),
            &format!("f{i}"),
            &format!("filler {i}"),
        )
    };
    let mut batch: Vec<NewEntry> = (0..5).map(filler).collect();
    batch.push(message);
    batch.extend((5..10).map(filler));
    let out = store.append(&batch).await.unwrap();
    (room, out[5].entry().expect("stored").seq)
}

/// Edits the message at `seq`: the edit's words are in its row and the
/// message's.
async fn edit(store: &dyn Store, secrets: &Secrets, room: &RoomId, seq: u64) {
    let edit = NewEntry::edit(
        room.clone(),
        UserId::new("ann").unwrap(),
        seq,
        Some("e1"),
        Message::text(long(&secrets.edit)),
    );
    assert!(store.append(&[edit]).await.unwrap()[0].is_new());
}

/// Redacts the message at `seq` through the store, and checks that it
/// reads back erased.
async fn redact(store: &dyn Store, room: &RoomId, seq: u64) {
    let moderator = UserId::new("mod").unwrap();
    let redaction = NewEntry::redaction(room.clone(), moderator, seq, Some("erasure".into()));
    let out = store.append(&[redaction]).await.unwrap();
    assert!(matches!(out[0], Appended::New(_)), "{out:?}");
    let log = store.entries(room, SeqRange::after(0, 100)).await.unwrap();
    let erased: Vec<_> = log
        .iter()
        .filter(|e| e.seq == seq || e.target_seq == Some(seq))
        .map(|e| (e.kind, e.body.is_some() || e.data.is_some(), e.redacted))
        .collect();
    use parlor_engine::EntryKind::*;
    assert_eq!(
        erased,
        [
            (Text, false, true),
            (Edit, false, true),
            (Redaction, false, false)
        ]
    );
}

/// Which of `secrets` the files of the database at `db` hold (the file
/// itself, and its `-wal` and `-shm` when present).
fn found_in_files(db: &std::path::Path, secrets: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for secret in secrets {
            if bytes.windows(secret.len()).any(|w| w == secret.as_bytes()) {
                found.push(format!("{secret} in {}", path.display()));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_keep_no_byte_of_a_redacted_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("parlor.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let store = SeaOrmStore::open(&url).await.expect("open sqlite");
    let secrets = Secrets::new();
    let (room, seq) = store_message(&store, &secrets).await;

    // The words are on disk now: in the database file itself once
    // checkpointed (the search below finds what is there).
    store.checkpoint().await.expect("checkpoint");
    let before = found_in_files(&db, &[&secrets.body, &secrets.data]);
    assert_eq!(before.len(), 2, "stored before the redaction: {before:?}");
    edit(&store, &secrets, &room, seq).await;

    redact(&store, &room, seq).await;
    store.checkpoint().await.expect("checkpoint");
    let after = found_in_files(&db, &secrets.all());
    assert!(after.is_empty(), "erased bytes remain: {after:?}");

    store.close().await.expect("close");
    let closed = found_in_files(&db, &secrets.all());
    assert!(
        closed.is_empty(),
        "erased bytes remain after close: {closed:?}"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the SKIPPED line
async fn postgres_queries_return_no_byte_of_a_redacted_message() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};

    let Ok(url) = std::env::var("PARLOR_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED postgres_queries_return_no_byte_of_a_redacted_message: \
             PARLOR_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let store = SeaOrmStore::open(&url).await.expect("open postgres");
    let secrets = Secrets::new();
    let (room, seq) = store_message(&store, &secrets).await;
    let db = Database::connect(&url).await.unwrap();
    // Every column of every row, as text.
    let rows_holding = |secret: &str| {
        let sql = "SELECT count(*) FROM parlor_entries e WHERE strpos(e::text, $1) > 0";
        Statement::from_sql_and_values(DbBackend::Postgres, sql, [secret.into()])
    };
    let count = |secret: String| {
        let db = &db;
        let statement = rows_holding(&secret);
        async move {
            let row = db.query_one_raw(statement).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    for secret in [&secrets.body, &secrets.data] {
        assert_eq!(count(secret.clone()).await, 1, "{secret} is stored");
    }
    edit(&store, &secrets, &room, seq).await;
    assert_eq!(
        count(secrets.edit.clone()).await,
        2,
        "the edit's words are in its row and the message's"
    );
    redact(&store, &room, seq).await;
    for secret in secrets.all() {
        assert_eq!(count(secret.to_owned()).await, 0, "{secret} is erased");
    }
}

#[cfg(not(feature = "postgres"))]
#[test]
#[allow(clippy::print_stderr)] // the SKIPPED line
fn postgres_queries_return_no_byte_of_a_redacted_message() {
    eprintln!(
        "SKIPPED postgres_queries_return_no_byte_of_a_redacted_message: \
         built without the `postgres` feature"
    );
}
