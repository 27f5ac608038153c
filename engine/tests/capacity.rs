//! Must-show 1: occupancy never exceeds capacity under concurrent joins.
//!
//! For C in {1, 2, 10, 100}: 200 randomized rounds of 4C–10C real tasks on a
//! multi-threaded runtime, each reserving and committing after random delays,
//! then (in "churn" rounds) randomly leaving, dropping (grace) or staying. An
//! observer samples the room all along. Invariants checked at every
//! observation: live memberships ≤ C, seats ≤ C, every `joined` reports
//! occupancy ≤ C. In "no leave" rounds exactly C tasks are admitted and every
//! other one is told `ROOM_FULL`.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use common::*;
use parlor_engine::{ChatEngine, Engine, EngineConfig, ErrorKind};
use parlor_engine::{Principal, UserId};
use rand::Rng;

const ROUNDS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn occupancy_never_exceeds_capacity() {
    let mut rng = rng("occupancy_never_exceeds_capacity");
    // A short grace so churn rounds recycle dropped seats.
    let config = EngineConfig::default().reconnect_grace(Duration::from_millis(5));
    let (engine, store) = engine_with(config).await;
    for capacity in [1u32, 2, 10, 100] {
        let id = stored_room(&engine, &format!("cap{capacity}"), capacity).await;
        for round in 0..ROUNDS {
            let tasks = rng.random_range(4 * capacity..=10 * capacity);
            let churn = round % 2 == 1;
            let seed: u64 = rng.random();
            let admitted = run_round(&engine, &id, capacity, tasks, churn, seed).await;
            if !churn {
                assert_eq!(
                    admitted, capacity,
                    "C={capacity} round {round}: exactly C admitted"
                );
            }
            // Between rounds everything is released (dropped seats once
            // their short grace has run).
            let mut occupancy = u32::MAX;
            for _ in 0..2000 {
                occupancy = engine
                    .room(&Principal::new(UserId::new("observer").unwrap()), &id)
                    .await
                    .unwrap()
                    .unwrap()
                    .occupancy;
                if occupancy == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(occupancy, 0, "C={capacity} round {round}: all released");
        }
        // A freed seat's leave entry may still be on its way to storage.
        assert!(engine.flush(Duration::from_secs(10)).await);
        assert_joins_matched(&store, &id);
        assert_gap_free(&store, &id);
    }
}

/// Returns how many tasks were admitted.
async fn run_round(
    engine: &Engine,
    id: &parlor_engine::RoomId,
    capacity: u32,
    tasks: u32,
    churn: bool,
    seed: u64,
) -> u32 {
    let live = Arc::new(AtomicU32::new(0));
    let admitted = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicBool::new(false));

    let observer = {
        let (engine, id, done) = (engine.clone(), id.clone(), done.clone());
        let live = live.clone();
        tokio::spawn(async move {
            let mut observations = 0u32;
            while !done.load(Ordering::Acquire) {
                let info = engine
                    .room(&Principal::new(UserId::new("observer").unwrap()), &id)
                    .await
                    .unwrap()
                    .unwrap();
                assert!(
                    info.occupancy <= capacity,
                    "observed occupancy {} > {capacity}",
                    info.occupancy
                );
                let seats = engine.stats().seats();
                assert!(live.load(Ordering::Acquire) <= capacity);
                // Other rooms are idle during a round, so all seats are this room's.
                assert!(
                    seats <= u64::from(capacity),
                    "observed {seats} seats > {capacity}"
                );
                observations += 1;
                tokio::task::yield_now().await;
            }
            observations
        })
    };

    let mut handles = Vec::new();
    for i in 0..tasks {
        let (engine, id) = (engine.clone(), id.clone());
        let (live, admitted) = (live.clone(), admitted.clone());
        let task_seed = seed ^ u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        handles.push(tokio::spawn(async move {
            use rand::SeedableRng;
            let mut rng = rand::rngs::SmallRng::seed_from_u64(task_seed);
            let who = user(format!("u{i}"));
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..500))).await;
            let ticket = match engine
                .reserve(&Principal::new(who.clone()), &id, None)
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::RoomFull, "only ROOM_FULL may refuse");
                    return None;
                }
            };
            tokio::time::sleep(Duration::from_micros(rng.random_range(0..500))).await;
            let membership = engine
                .commit(&Principal::new(who.clone()), &ticket.ticket, None)
                .await
                .expect("a reserved seat commits");
            let now = live.fetch_add(1, Ordering::AcqRel) + 1;
            assert!(now <= capacity, "{now} live memberships > {capacity}");
            assert!(membership.joined().occupancy <= capacity);
            admitted.fetch_add(1, Ordering::AcqRel);
            if churn {
                tokio::time::sleep(Duration::from_micros(rng.random_range(0..300))).await;
                live.fetch_sub(1, Ordering::AcqRel);
                match rng.random_range(0..3) {
                    0 => membership.leave().await.unwrap(),
                    1 => drop(membership), // lost: grace, then freed
                    _ => return Some(membership),
                }
                return None;
            }
            Some(membership)
        }));
    }
    let mut kept = Vec::new();
    for h in handles {
        if let Some(m) = h.await.expect("task") {
            kept.push(m);
        }
    }
    done.store(true, Ordering::Release);
    let observations = observer.await.expect("observer");
    assert!(observations > 0);
    for m in kept {
        m.leave().await.unwrap();
    }
    admitted.load(Ordering::Acquire)
}
