//! Helpers shared by the engine's behaviour tests.
// Each test binary uses a different subset.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::{sync::Arc, time::Duration};

use parlor_engine::Principal;
use parlor_engine::{
    ChatEngine, Engine, EngineConfig, EngineStats, EntryKind, Membership, RoomId, RoomSpec, UserId,
    testkit::MemoryStore,
};

pub fn user(name: impl AsRef<str>) -> UserId {
    UserId::new(name.as_ref()).unwrap()
}

pub fn room(name: impl AsRef<str>) -> RoomId {
    RoomId::new(name.as_ref()).unwrap()
}

pub async fn engine_with(config: EngineConfig) -> (Engine, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::default());
    let engine = Engine::builder(store.clone())
        .config(config)
        .start()
        .await
        .unwrap();
    (engine, store)
}

pub async fn engine() -> (Engine, Arc<MemoryStore>) {
    engine_with(EngineConfig::default()).await
}

/// A seeded RNG; the seed is printed so a failing run can be replayed with
/// `PARLOR_TEST_SEED=<seed>`.
pub use parlor_engine::testkit::seeded_rng as rng;

/// Creates `name` with `capacity` (creator `owner` joins and leaves), so the
/// room is stored and empty.
pub async fn stored_room(engine: &Engine, name: &str, capacity: u32) -> RoomId {
    let id = room(name);
    let owner = user("owner");
    let t = engine
        .reserve(
            &Principal::new(owner.clone()),
            &id,
            Some(RoomSpec::with_capacity(capacity)),
        )
        .await
        .unwrap();
    engine
        .commit(&Principal::new(owner.clone()), &t.ticket, None)
        .await
        .unwrap()
        .leave()
        .await
        .unwrap();
    id
}

/// Reserve + commit in one go.
pub async fn join(engine: &Engine, who: &UserId, id: &RoomId) -> Membership {
    let t = engine
        .reserve(&Principal::new(who.clone()), id, None)
        .await
        .unwrap();
    engine
        .commit(&Principal::new(who.clone()), &t.ticket, None)
        .await
        .unwrap()
}

/// Lets every ttl pass (under paused time) and the engine settle.
pub async fn let_everything_expire(engine: &Engine) {
    let c = engine.config();
    let all = c.reservation_ttl + c.reconnect_grace + Duration::from_secs(5);
    tokio::time::sleep(all).await;
    engine.run_maintenance().await;
    settle().await;
}

/// Gives spawned tasks (appenders, timers' follow-ups) a chance to finish.
pub async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

/// Asserts that nothing is held any more.
pub fn assert_nothing_held(stats: &EngineStats) {
    let held = [
        ("seats_reserved", stats.seats_reserved),
        ("seats_joined", stats.seats_joined),
        ("seats_grace", stats.seats_grace),
        ("tickets", stats.tickets),
        ("reservation_entries", stats.reservation_entries),
        ("pending_rooms", stats.pending_rooms),
        ("rooms_loaded", stats.rooms_loaded),
        ("room_tasks", stats.room_tasks),
        ("grace_timers", stats.grace_timers),
        ("subscribers", stats.subscribers),
    ];
    let leaked: Vec<_> = held.iter().filter(|(_, n)| *n != 0).collect();
    assert!(leaked.is_empty(), "leaked: {leaked:?} in {stats:?}");
}

/// Every `join` in the log is followed by a `leave` before the next `join`
/// of the same user, and the log ends with every member gone.
pub fn assert_joins_matched(store: &MemoryStore, id: &RoomId) {
    let mut open = std::collections::HashSet::new();
    for e in store.log(id) {
        match e.kind {
            EntryKind::Join => assert!(
                open.insert(e.sender.clone()),
                "double join of {} at {}",
                e.sender,
                e.seq
            ),
            EntryKind::Leave => assert!(
                open.remove(&e.sender),
                "leave without join of {} at {}",
                e.sender,
                e.seq
            ),
            _ => {}
        }
    }
    assert!(open.is_empty(), "zombie members in {id}: {open:?}");
}

/// Asserts a log's seqs are exactly 1..=n.
pub fn assert_gap_free(store: &MemoryStore, id: &RoomId) -> u64 {
    let seqs: Vec<u64> = store.log(id).iter().map(|e| e.seq).collect();
    let n = seqs.len() as u64;
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "log of {id} is not 1..={n}"
    );
    n
}
