//! Must-show 4: 50 concurrent senders × 200 messages into one room, with 20
//! subscribers joining at random moments — some dropping their connection
//! and resuming with `after_seq`. The log is 1..N gap-free, and every
//! subscriber gets every entry after its join point exactly once, in order.

mod common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use common::*;
use parlor_engine::{
    ChatEngine, Engine, EngineConfig, EntryKind, RoomId, Seq, testkit::MemoryStore,
};
use parlor_engine::{Principal, UserId};
use rand::{Rng, SeedableRng, rngs::SmallRng};
use tokio::sync::watch;

const SENDERS: usize = 50;
const MESSAGES: usize = 200;
const SUBSCRIBERS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_subscriber_sees_every_entry_once_in_order() {
    let mut rng = rng("every_subscriber_sees_every_entry_once_in_order");
    let (engine, store) = engine().await;
    let id = stored_room(&engine, "busy", 1000).await;

    // The end of the log, announced once every sender is done.
    let (end_tx, end_rx) = watch::channel(None::<Seq>);
    let mut subscribers = Vec::new();
    for s in 0..SUBSCRIBERS {
        let (engine, id, end) = (engine.clone(), id.clone(), end_rx.clone());
        let seed = rng.random();
        subscribers.push(tokio::spawn(subscribe(engine, id, s, seed, end)));
    }
    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let (engine, id) = (engine.clone(), id.clone());
        let seed: u64 = rng.random();
        senders.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(seed);
            let who = user(format!("sender{s}"));
            let membership = join(&engine, &who, &id).await;
            let mut last = 0;
            for m in 0..MESSAGES {
                if rng.random_bool(0.05) {
                    tokio::time::sleep(Duration::from_micros(rng.random_range(0..2000))).await;
                }
                let ack = engine
                    .send(
                        &Principal::new(who.clone()),
                        &id,
                        &format!("m{m}"),
                        &format!("{s}:{m}"),
                    )
                    .await
                    .unwrap();
                assert!(ack.seq > last, "a sender's own acks rise");
                last = ack.seq;
            }
            membership
        }));
    }
    let mut memberships = Vec::new();
    for s in senders {
        memberships.push(s.await.unwrap());
    }
    let end = engine
        .room(&Principal::new(UserId::new("observer").unwrap()), &id)
        .await
        .unwrap()
        .unwrap()
        .last_seq;
    end_tx.send(Some(end)).unwrap();

    let mut resumed = 0;
    for sub in subscribers {
        let (start, seen, resumes) = sub.await.unwrap();
        resumed += resumes;
        let expected: Vec<Seq> = (start + 1..=end).collect();
        assert_eq!(seen.len(), expected.len(), "subscriber from {start}: count");
        assert_eq!(
            seen, expected,
            "subscriber from {start}: every entry once, in order"
        );
    }
    assert!(resumed > 0, "some subscribers resumed with after_seq");

    let n = assert_gap_free(&store, &id);
    assert!(n >= end);
    let log = store.log(&id);
    let texts: HashSet<_> = log
        .iter()
        .filter(|e| e.kind == EntryKind::Text)
        .map(|e| (e.sender.clone(), e.client_id.clone()))
        .collect();
    assert_eq!(texts.len(), SENDERS * MESSAGES, "each message stored once");
    for m in memberships {
        m.leave().await.unwrap();
    }
}

/// With several append transactions in flight (a store with lanes, like
/// Postgres), rooms are stored side by side, yet every room's log stays
/// gap-free, each message is stored once, and a sender's acks still rise.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_in_several_lanes_keep_every_room_in_order() {
    const ROOMS: usize = 8;
    const PER_ROOM: usize = 6;
    const EACH: usize = 40;
    let mut rng = rng("appends_in_several_lanes_keep_every_room_in_order");
    let store = Arc::new(MemoryStore::default());
    store.set_append_lanes(4);
    let engine = Engine::builder(store.clone())
        .config(EngineConfig::default().append_batch_max(8))
        .start()
        .await
        .unwrap();
    let mut rooms = Vec::new();
    for r in 0..ROOMS {
        rooms.push(stored_room(&engine, &format!("lane{r}"), 100).await);
    }
    store.set_latency(Duration::from_micros(300));
    let mut senders = Vec::new();
    for (r, id) in rooms.iter().enumerate() {
        for s in 0..PER_ROOM {
            let (engine, id, seed) = (engine.clone(), id.clone(), rng.random::<u64>());
            senders.push(tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(seed);
                let who = user(format!("u{r}-{s}"));
                let membership = join(&engine, &who, &id).await;
                let mut last = 0;
                for m in 0..EACH {
                    if rng.random_bool(0.1) {
                        tokio::time::sleep(Duration::from_micros(rng.random_range(0..1000))).await;
                    }
                    let ack = engine
                        .send(&Principal::new(who.clone()), &id, &format!("m{m}"), "hi")
                        .await
                        .unwrap();
                    assert!(ack.seq > last, "a sender's own acks rise");
                    last = ack.seq;
                }
                membership
            }));
        }
    }
    for s in senders {
        s.await.unwrap().leave().await.unwrap();
    }
    assert!(
        store.most_concurrent_appends() > 1,
        "transactions overlapped (else this test shows nothing)"
    );
    for id in &rooms {
        assert_gap_free(&store, id);
        let texts = store
            .log(id)
            .iter()
            .filter(|e| e.kind == EntryKind::Text)
            .count();
        assert_eq!(texts, PER_ROOM * EACH, "each message stored once");
    }
}

/// Joins at a random moment; some subscribers drop their connection midway
/// and resume with `after_seq`. Returns (join point, seqs seen, resumes).
async fn subscribe(
    engine: Engine,
    id: RoomId,
    n: usize,
    seed: u64,
    mut end: watch::Receiver<Option<Seq>>,
) -> (Seq, Vec<Seq>, usize) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let who = user(format!("sub{n}"));
    tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
    let ticket = engine
        .reserve(&Principal::new(who.clone()), &id, None)
        .await
        .unwrap();
    // Some start from an earlier point of the log than their join.
    let here = engine
        .room(&Principal::new(UserId::new("observer").unwrap()), &id)
        .await
        .unwrap()
        .unwrap()
        .last_seq;
    let after = rng.random_bool(0.3).then(|| rng.random_range(0..=here));
    let mut m = engine
        .commit(&Principal::new(who.clone()), &ticket.ticket, after)
        .await
        .unwrap();
    let start = after.unwrap_or(m.joined().last_seq);
    let mut seen: Vec<Seq> = Vec::new();
    let mut resumes = 0;
    let drop_after = rng.random_bool(0.5).then(|| rng.random_range(1..3000));
    loop {
        let last = seen.last().copied().unwrap_or(start);
        if end.borrow().is_some_and(|e| last >= e) {
            break;
        }
        if drop_after == Some(seen.len()) && resumes == 0 {
            // Lose the connection, then resume after the last seq seen.
            drop(m);
            resumes += 1;
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..3000))).await;
            let t = engine
                .reserve(&Principal::new(who.clone()), &id, None)
                .await
                .unwrap();
            m = engine
                .commit(&Principal::new(who.clone()), &t.ticket, Some(last))
                .await
                .unwrap();
            continue;
        }
        tokio::select! {
            entry = m.next_entry() => seen.push(entry.unwrap().seq),
            _ = end.changed() => {}
        }
    }
    // Only the announced end counts; stop there.
    let e = end.borrow().unwrap();
    seen.retain(|&s| s <= e);
    m.leave().await.unwrap();
    (start, seen, resumes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubscribe_from_grace_appends_no_join() {
    let (engine, store) = engine().await;
    let id = stored_room(&engine, "regrace", 5).await;
    let who = user("ann");
    let m = join(&engine, &who, &id).await;
    drop(m);
    let m = join(&engine, &who, &id).await;
    let joins = store
        .log(&id)
        .iter()
        .filter(|e| e.kind == EntryKind::Join && e.sender == who)
        .count();
    assert_eq!(joins, 1);
    m.leave().await.unwrap();
}
