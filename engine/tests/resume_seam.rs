//! Must-show 6: the resume seam under stress. Entries appended while a
//! resume reads its backlog are neither lost nor doubled — repeated 150
//! times with a slowed store (wider race windows), and again with a tiny live
//! buffer that forces subscribers to fall behind and catch up from storage.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::*;
use parlor_engine::{ChatEngine, EngineConfig, Seq};
use parlor_engine::{Principal, UserId};
use rand::Rng;

async fn seam_rounds(config: EngineConfig, rounds: usize, name: &str) {
    let mut rng = rng(name);
    let (engine, store) = engine_with(config).await;
    let id = stored_room(&engine, "seam", 100).await;
    let writer = user("writer");
    let _w = join(&engine, &writer, &id).await;
    let mut next_msg = 0u64;
    for round in 0..rounds {
        store.set_latency(Duration::from_micros(rng.random_range(0..200)));
        // Steady writers that keep appending while the reader resumes; eight
        // at once, so group commit publishes batches larger than a small
        // live buffer.
        let stop = Arc::new(AtomicBool::new(false));
        let pumps: Vec<_> = (0..8u64)
            .map(|lane| {
                let (engine, id, writer, stop) =
                    (engine.clone(), id.clone(), writer.clone(), stop.clone());
                let base = next_msg;
                tokio::spawn(async move {
                    let mut n = base;
                    while !stop.load(Ordering::Acquire) {
                        engine
                            .send(
                                &Principal::new(writer.clone()),
                                &id,
                                &format!("w{lane}-{n}"),
                                "x",
                            )
                            .await
                            .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_micros(rng.random_range(0..2000))).await;
        let reader = user(format!("reader{round}"));
        let head = engine
            .room(&Principal::new(UserId::new("observer").unwrap()), &id)
            .await
            .unwrap()
            .unwrap()
            .last_seq;
        let after = head.saturating_sub(rng.random_range(0..600));
        let t = engine
            .reserve(&Principal::new(reader.clone()), &id, None)
            .await
            .unwrap();
        let mut m = engine
            .commit(&Principal::new(reader.clone()), &t.ticket, Some(after))
            .await
            .unwrap();
        let mut seen: Vec<Seq> = Vec::new();
        // Read across the seam while the writer is still going.
        for _ in 0..rng.random_range(50..400) {
            seen.push(m.next_entry().await.unwrap().seq);
            if rng.random_bool(0.02) {
                // A reader that sometimes stalls falls behind the live feed.
                tokio::time::sleep(Duration::from_micros(rng.random_range(0..1000))).await;
            }
        }
        stop.store(true, Ordering::Release);
        for pump in pumps {
            next_msg = next_msg.max(pump.await.unwrap());
        }
        let end = engine
            .room(&Principal::new(UserId::new("observer").unwrap()), &id)
            .await
            .unwrap()
            .unwrap()
            .last_seq;
        while seen.last().copied().unwrap_or(after) < end {
            seen.push(m.next_entry().await.unwrap().seq);
        }
        assert_eq!(
            seen,
            (after + 1..=end).collect::<Vec<_>>(),
            "round {round}: no gap, no duplicate"
        );
        m.leave().await.unwrap();
    }
    assert_gap_free(&store, &id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resume_while_appending_loses_and_doubles_nothing() {
    seam_rounds(EngineConfig::default(), 150, "resume_while_appending").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lagging_subscriber_catches_up_from_storage() {
    seam_rounds(
        EngineConfig::default().live_buffer(4),
        60,
        "lagging_subscriber",
    )
    .await;
}
