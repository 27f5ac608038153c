//! Webhook delivery (docs/contract.md §10) on the engine alone,
//! with a sink that records what it is handed: each room's events in
//! order, control events between the entries they came after; a failing
//! sink retried with backoff and marked failing, never losing an event;
//! retention held back for what a hook has not delivered; and many rooms
//! with concurrent sends and a sink that fails at random, every entry
//! delivered in order (seeded).

mod common;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use common::*;
use parlor_engine::{
    Ban, ChatEngine, Engine, EngineConfig, Error, ErrorKind, Principal, Retention, RoomEvent,
    RoomSpec, SeqRange, ports::EventSink, testkit::MemoryStore,
};
use rand::Rng;

/// A sink that records every batch it takes, and refuses while told to
/// (or at random, with a seeded probability).
#[derive(Default)]
struct Recorder {
    batches: Mutex<Vec<Vec<RoomEvent>>>,
    down: AtomicBool,
    /// Refuse one call in `1/refuse_one_in` (0: never).
    refuse_one_in: AtomicU32,
    seed: Mutex<Option<rand::rngs::SmallRng>>,
    calls: AtomicU32,
}

#[async_trait]
impl EventSink for Recorder {
    fn name(&self) -> &str {
        "http://recorder/hook"
    }

    async fn deliver(&self, events: &[RoomEvent]) -> parlor_engine::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let one_in = self.refuse_one_in.load(Ordering::SeqCst);
        let unlucky = one_in > 0
            && self
                .seed
                .lock()
                .unwrap()
                .as_mut()
                .is_some_and(|r| r.random_range(0..one_in) == 0);
        if self.down.load(Ordering::SeqCst) || unlucky {
            return Err(Error::new(ErrorKind::Unavailable, "receiver down (test)"));
        }
        self.batches.lock().unwrap().push(events.to_vec());
        Ok(())
    }
}

impl Recorder {
    /// Every event taken, in order.
    fn events(&self) -> Vec<RoomEvent> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// (type, seq) of every event taken of `room`, in order.
    fn stream(&self, room: &str) -> Vec<(&'static str, Option<u64>)> {
        self.events()
            .iter()
            .filter(|e| e.room_id().as_str() == room)
            .map(|e| (e.type_name(), e.seq()))
            .collect()
    }
}

async fn hooked(config: EngineConfig) -> (Engine, Arc<MemoryStore>, Arc<Recorder>) {
    let store = Arc::new(MemoryStore::default());
    let sink = Arc::new(Recorder::default());
    let engine = Engine::builder(store.clone())
        .config(config.webhook_poll(Duration::from_millis(50)))
        .webhook(sink.clone())
        .start()
        .await
        .unwrap();
    (engine, store, sink)
}

fn service() -> Principal {
    Principal::service(user("ops"))
}

/// Waits (real or paused time) until `done` holds, at most `limit`.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while !done() {
        assert!(waited < limit, "not within {limit:?}");
        tokio::time::sleep(step).await;
        waited += step;
    }
}

/// Waits until `done` holds while `progress` (the seqs delivered, say)
/// keeps rising: fails only when it stood still for `stall` — a stuck
/// delivery, not a slow machine (a loaded CI runner may take minutes for
/// what takes seconds here). Redeliveries do not count as progress.
async fn until_stalled(
    stall: Duration,
    mut progress: impl FnMut() -> u64,
    mut done: impl FnMut() -> bool,
) {
    let step = Duration::from_millis(50);
    let (mut seen, mut quiet) = (0, Duration::ZERO);
    while !done() {
        let now = progress();
        if now == seen {
            assert!(quiet < stall, "no progress for {stall:?}, at {now}");
            quiet += step;
        } else {
            (seen, quiet) = (now, Duration::ZERO);
        }
        tokio::time::sleep(step).await;
    }
}

#[tokio::test]
async fn a_rooms_events_arrive_in_order_with_its_control_events_in_place() {
    let (engine, _, sink) = hooked(EngineConfig::default()).await;
    let id = room("r");
    let ann = Principal::new(user("ann"));
    let t = engine
        .reserve(&ann, &id, Some(RoomSpec::with_capacity(5)))
        .await
        .unwrap();
    let _seat = engine.commit(&ann, &t.ticket, None).await.unwrap();
    engine.send(&ann, &id, "c1", "one").await.unwrap();
    let ban = Ban {
        until: None,
        reason: Some("spam".into()),
    };
    engine
        .set_ban(&service(), &id, &user("bob"), Some(&ban))
        .await
        .unwrap();
    engine.send(&ann, &id, "c2", "two").await.unwrap();
    engine.close_room(&service(), &id, false).await.unwrap();
    until(Duration::from_secs(5), || sink.stream("r").len() == 7).await;
    assert_eq!(
        sink.stream("r"),
        [
            ("room.created", None),
            ("member.joined", Some(1)),
            ("entry.stored", Some(2)),
            ("member.banned", None),
            ("entry.stored", Some(3)),
            // Stored closed first (no seat is taken after), then emptied.
            ("room.closed", None),
            ("member.left", Some(4)),
        ]
    );
    // Nothing more comes, and nothing twice.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.stream("r").len(), 7);
    let stats = &engine.webhooks()[0];
    assert_eq!((stats.delivered, stats.failing), (7, false));
    assert_eq!(stats.hook, "http://recorder/hook");
}

#[tokio::test(start_paused = true)]
async fn a_failing_sink_is_retried_with_growing_waits_and_marked_failing() {
    let (engine, _, sink) = hooked(EngineConfig::default()).await;
    sink.down.store(true, Ordering::SeqCst);
    let id = stored_room(&engine, "down", 5).await;
    let before = sink.calls.load(Ordering::SeqCst);
    // 200 ms, 400 ms, … doubled, with jitter to half: by 6 s at most 6
    // tries (the 6th wait alone is 3.2–6.4 s); the 7th failure reaches the
    // 10 s cap and marks the hook failing.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let tries = sink.calls.load(Ordering::SeqCst) - before;
    assert!((4..=7).contains(&tries), "{tries} tries in 6 s");
    assert!(!engine.webhooks()[0].failing);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let stats = engine.webhooks()[0].clone();
    assert!(stats.failing, "{stats:?}");
    assert!(stats.failed_tries >= 7, "{stats:?}");
    // At most one try per 5 s at the cap (10 s, jittered to half).
    let at_cap = sink.calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let more = sink.calls.load(Ordering::SeqCst) - at_cap;
    assert!((2..=6).contains(&more), "{more} tries in 30 s at the cap");

    // Back up: everything arrives once, and the hook is no longer failing.
    sink.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(11)).await;
    let types: Vec<_> = sink.stream(id.as_str()).iter().map(|e| e.0).collect();
    assert_eq!(types, ["room.created", "member.joined", "member.left"]);
    assert!(!engine.webhooks()[0].failing);
}

#[tokio::test]
async fn retention_keeps_what_a_hook_has_not_delivered() {
    let config = EngineConfig::default().retention(Retention {
        max_entries: Some(5),
        max_age: None,
    });
    let (engine, store, sink) = hooked(config).await;
    sink.down.store(true, Ordering::SeqCst);
    let id = stored_room(&engine, "kept", 5).await;
    for i in 0..20 {
        engine
            .send(&service(), &id, &format!("c{i}"), "hi")
            .await
            .unwrap();
    }
    assert_eq!(
        engine.prune_now().await.unwrap(),
        0,
        "nothing delivered yet"
    );
    assert_eq!(store.log(&id).len(), 22);

    sink.down.store(false, Ordering::SeqCst);
    until(Duration::from_secs(15), || sink.stream("kept").len() == 23).await;
    // The cursor is stored after the sink took the batch.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(engine.prune_now().await.unwrap(), 17);
    let page = engine
        .history(&service(), &id, SeqRange::after(0, 100))
        .await
        .unwrap();
    assert_eq!(page.first_seq, 18);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rooms_with_a_flaky_sink_deliver_every_entry_in_order() {
    for run in 0..3 {
        let mut rng = rng(&format!("flaky webhook, run {run}"));
        let (engine, store, sink) = hooked(
            EngineConfig::default()
                .webhook_batch(rng.random_range(1..=64))
                // Short waits: a third of the tries fail.
                .webhook_retry_max(Duration::from_millis(10)),
        )
        .await;
        sink.refuse_one_in.store(3, Ordering::SeqCst);
        *sink.seed.lock().unwrap() = Some(rand::SeedableRng::seed_from_u64(rng.random()));
        let rooms: Vec<_> = (0..6).map(|r| format!("flaky-{r}")).collect();
        let mut tasks = Vec::new();
        for name in &rooms {
            let id = stored_room(&engine, name, 10).await;
            for sender in 0..3 {
                let engine = engine.clone();
                let id = id.clone();
                let n = rng.random_range(5..40);
                tasks.push(tokio::spawn(async move {
                    let who = Principal::new(user(format!("u{sender}")));
                    let seat = join(&engine, &who.user, &id).await;
                    for i in 0..n {
                        engine
                            .send(&who, &id, &format!("c{i}"), "hi")
                            .await
                            .unwrap();
                    }
                    // Held until the checks end: a seat dropped here would
                    // log a `leave` when its grace ran out, mid-delivery.
                    seat
                }));
            }
        }
        let mut seats = Vec::new();
        for task in tasks {
            seats.push(task.await.unwrap());
        }
        // Every stored entry, each room's in seq order, each seq once
        // before its successor; redeliveries only repeat.
        let logs: HashMap<String, u64> = rooms
            .iter()
            .map(|r| (r.clone(), store.log(&room(r)).len() as u64))
            .collect();
        let delivered = || -> u64 {
            let highest = |r: &String| sink.stream(r).iter().filter_map(|e| e.1).max();
            rooms.iter().filter_map(highest).sum()
        };
        until_stalled(Duration::from_secs(20), delivered, || {
            rooms.iter().all(|r| {
                let seqs: Vec<u64> = sink.stream(r).iter().filter_map(|e| e.1).collect();
                seqs.last().copied() == Some(logs[r]) && seqs.len() as u64 >= logs[r]
            })
        })
        .await;
        for r in &rooms {
            let mut next = 1;
            for (ty, seq) in sink.stream(r) {
                let Some(seq) = seq else {
                    assert_eq!((ty, next), ("room.created", 1), "{r}");
                    continue;
                };
                assert!(seq <= next, "{r}: {seq} before {next}");
                if seq == next {
                    next += 1;
                }
            }
            assert_eq!(next, logs[r] + 1, "{r}: every entry");
        }
        drop(seats);
        drop(engine);
    }
}
