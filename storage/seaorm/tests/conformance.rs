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
