//! The Store conformance suite against every backend this crate supports:
//! SQLite on a temporary file always; Postgres when `PARLOR_TEST_POSTGRES_URL`
//! is set (`.ci/run` sets it), and a printed skip line otherwise.

use std::sync::Arc;

use parlor_engine::testkit::{MemoryStore, conformance};
use parlor_seaorm::SeaOrmStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    conformance::run(Arc::new(MemoryStore::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    let store = SeaOrmStore::open(&url).await.expect("open sqlite");
    conformance::run(Arc::new(store)).await;

    // WAL mode is on, and the schema is idempotent to migrate again. The
    // WAL file exists while a connection is open (SQLite removes it when the
    // last one closes), so the store is kept until the check.
    let again = Arc::new(
        SeaOrmStore::open(&url)
            .await
            .expect("reopen + migrate again"),
    );
    conformance::run(Arc::clone(&again) as Arc<dyn parlor_engine::Store>).await;
    assert!(
        dir.path().join("parlor.db-wal").exists(),
        "SQLite runs in WAL mode"
    );
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_conforms() {
    let Ok(url) = std::env::var("PARLOR_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED postgres_store_conforms: PARLOR_TEST_POSTGRES_URL is not set");
        return;
    };
    let store = SeaOrmStore::open(&url).await.expect("open postgres");
    conformance::run(Arc::new(store)).await;
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_store_conforms() {
    eprintln!("SKIPPED postgres_store_conforms: built without the `postgres` feature");
}

/// Beyond the suite: an empty data object is stored as one, never confused
/// with no data (Postgres carries an absent one as '' through its arrays),
/// on the fast path and the transactional one alike.
async fn empty_data_is_not_no_data(store: &dyn parlor_engine::Store) {
    use parlor_engine::{Data, EntryKind, Message, NewEntry, RoomId, SeqRange, StoredRoom, UserId};
    let id = RoomId::new(&format!("empty{:08x}", rand::random::<u32>())).unwrap();
    let room = StoredRoom {
        id: id.clone(),
        capacity: 2,
        title: None,
        last_seq: 0,
        owner: None,
        private: false,
        closed: false,
        first_seq: 1,
        retention: None,
    };
    store.create_room(&room).await.unwrap();
    let message = |client_id: &str, data: Option<Data>| {
        let kind = EntryKind::System;
        let sender = UserId::new("svc").unwrap();
        let body = Message { body: None, data };
        NewEntry::message(id.clone(), kind, sender, client_id, body)
    };
    let sent = [message("a", Some(Data::new())), message("b", None)];
    store.append(&sent[..1]).await.unwrap();
    store.append(&sent[1..]).await.unwrap();
    // Again, now that an SQLite store knows the head (its fast path).
    let more = [message("c", Some(Data::new())), message("d", None)];
    store.append(&more).await.unwrap();
    let got = store.entries(&id, SeqRange::after(0, 10)).await.unwrap();
    let data: Vec<_> = got.iter().map(|e| e.data.clone()).collect();
    assert_eq!(data, [Some(Data::new()), None, Some(Data::new()), None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_empty_data_apart_from_none() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    let store = SeaOrmStore::open(&url).await.expect("open sqlite");
    empty_data_is_not_no_data(&store).await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_empty_data_apart_from_none() {
    let Ok(url) = std::env::var("PARLOR_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED postgres_keeps_empty_data_apart_from_none: PARLOR_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let store = SeaOrmStore::open(&url).await.expect("open postgres");
    empty_data_is_not_no_data(&store).await;
}
