//! Where an in-process scenario keeps its data: a fresh SQLite file in a
//! temporary folder (WAL, as the server runs it), or a database URL.

use std::sync::Arc;

use parlor_engine::Principal;
use parlor_engine::{ChatEngine, Engine, EngineConfig, RoomId, RoomSpec, UserId, ports::EventSink};
use parlor_seaorm::SeaOrmStore;

/// An engine on real storage, and what keeps that storage alive.
pub(crate) struct BenchEngine {
    pub(crate) engine: Engine,
    pub(crate) backend: &'static str,
    _dir: Option<tempfile::TempDir>,
}

/// Opens `database_url`, or a temporary SQLite file when it is `None`.
pub(crate) async fn engine(database_url: Option<&str>, config: EngineConfig) -> BenchEngine {
    engine_with(database_url, config, Vec::new()).await
}

/// [`engine`], delivering to `sinks` too (webhooks).
pub(crate) async fn engine_with(
    database_url: Option<&str>,
    config: EngineConfig,
    sinks: Vec<Arc<dyn EventSink>>,
) -> BenchEngine {
    let (url, dir) = match database_url {
        Some(url) => (url.to_owned(), None),
        None => {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("bench.db").display()
            );
            (url, Some(dir))
        }
    };
    let backend = if url.starts_with("postgres") {
        "postgres"
    } else {
        "sqlite"
    };
    let store = SeaOrmStore::open(&url).await.expect("open storage");
    let engine = Engine::builder(Arc::new(store))
        .config(config)
        .webhooks(sinks)
        .start()
        .await
        .expect("start the engine");
    BenchEngine {
        engine,
        backend,
        _dir: dir,
    }
}

/// A prefix that keeps this run's rooms apart from earlier runs' in a
/// database that outlives it.
pub(crate) fn run_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ d.as_secs() as u32)
        .unwrap_or(0);
    format!("b{nanos:08x}")
}

/// A stored room with no seat taken: its creator joins, then leaves.
pub(crate) async fn empty_room(engine: &Engine, room: &RoomId, capacity: u32) {
    let owner = UserId::new("owner").unwrap();
    let ticket = engine
        .reserve(
            &Principal::new(owner.clone()),
            room,
            Some(RoomSpec::with_capacity(capacity)),
        )
        .await
        .expect("create");
    let membership = engine
        .commit(&Principal::new(owner.clone()), &ticket.ticket, None)
        .await
        .expect("commit");
    membership.leave().await.expect("leave");
}
