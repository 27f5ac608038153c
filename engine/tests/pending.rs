//! Must-show 3: pending rooms live in memory only until their creator's
//! first commit; they vanish at expiry; others get ROOM_PENDING; concurrent
//! commits for one pending room create it exactly once.

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use parlor_engine::{ChatEngine, EngineConfig, EntryKind, ErrorKind, RoomSpec, Store};
use parlor_engine::{Principal, UserId};

#[tokio::test(start_paused = true)]
async fn a_pending_room_is_not_stored_and_vanishes_at_expiry() {
    let (engine, store) = engine().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let id = room("fresh");
    let spec = Some(RoomSpec {
        capacity: 3,
        title: Some("Fresh".into()),
        private: false,
    });

    assert_eq!(
        engine
            .reserve(&Principal::new(alice.clone()), &id, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::RoomNotFound
    );
    let first = engine
        .reserve(&Principal::new(alice.clone()), &id, spec.clone())
        .await
        .unwrap();
    assert!(
        store.room(&id).await.unwrap().is_none(),
        "pending is memory only"
    );
    assert!(
        engine
            .room(&Principal::new(UserId::new("observer").unwrap()), &id)
            .await
            .unwrap()
            .is_none(),
        "and not visible as a room"
    );
    assert_eq!(engine.stats().pending_rooms, 1);
    assert_eq!(
        engine
            .reserve(&Principal::new(bob.clone()), &id, spec.clone())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::RoomPending
    );
    assert_eq!(
        engine
            .reserve(&Principal::new(bob.clone()), &id, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::RoomPending
    );

    // The creator again: a fresh ticket for the same seat.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let second = engine
        .reserve(&Principal::new(alice.clone()), &id, spec.clone())
        .await
        .unwrap();
    assert_ne!(first.ticket, second.ticket);
    assert_eq!(engine.stats().seats(), 1);

    // The first ticket's ttl ends; the second still holds the seat.
    tokio::time::sleep(Duration::from_secs(6)).await;
    engine.run_maintenance().await;
    assert_eq!(engine.stats().pending_rooms, 1);
    assert_eq!(
        engine
            .commit(&Principal::new(alice.clone()), &first.ticket, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TicketExpired
    );

    // Then the second: the pending room vanishes without a trace.
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle().await;
    assert_nothing_held(&engine.stats());
    assert!(store.room(&id).await.unwrap().is_none());
    assert_eq!(store.create_calls(), 0, "nothing was ever written");
    assert_eq!(
        engine
            .commit(&Principal::new(alice.clone()), &second.ticket, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TicketExpired
    );

    // Now bob may create it.
    let t = engine
        .reserve(
            &Principal::new(bob.clone()),
            &id,
            Some(RoomSpec::with_capacity(2)),
        )
        .await
        .unwrap();
    let m = engine
        .commit(&Principal::new(bob.clone()), &t.ticket, None)
        .await
        .unwrap();
    let stored = store.room(&id).await.unwrap().unwrap();
    assert_eq!((stored.capacity, stored.last_seq), (2, 1));
    assert_eq!(
        m.joined().members,
        vec![bob.clone()],
        "the creator is the first member"
    );
    assert_eq!(store.log(&id)[0].kind, EntryKind::Join);
    m.leave().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_create_a_pending_room_once() {
    let mut rng = rng("concurrent_commits_create_a_pending_room_once");
    for round in 0..50 {
        let (engine, store) = engine_with(EngineConfig::default()).await;
        // Widen the window between "pending" and "stored".
        store.set_latency(Duration::from_micros(use_rand(&mut rng, 0..300)));
        let alice = user("alice");
        let id = room(format!("once{round}"));
        let spec = RoomSpec::with_capacity(5);
        let mut tickets = Vec::new();
        for _ in 0..16 {
            tickets.push(
                engine
                    .reserve(&Principal::new(alice.clone()), &id, Some(spec.clone()))
                    .await
                    .unwrap()
                    .ticket,
            );
        }
        let engine = Arc::new(engine);
        let commits: Vec<_> = tickets
            .into_iter()
            .map(|t| {
                let (engine, alice) = (engine.clone(), alice.clone());
                tokio::spawn(async move {
                    engine
                        .commit(&Principal::new(alice.clone()), &t, None)
                        .await
                })
            })
            .collect();
        let mut memberships = Vec::new();
        for c in commits {
            memberships.push(
                c.await
                    .unwrap()
                    .expect("every ticket of the creator commits"),
            );
        }
        assert_eq!(
            store.create_calls(),
            1,
            "round {round}: created exactly once"
        );
        let joins = store
            .log(&id)
            .iter()
            .filter(|e| e.kind == EntryKind::Join)
            .count();
        assert_eq!(joins, 1, "round {round}: one join for one seat");
        assert!(memberships.iter().all(|m| m.joined().occupancy == 1));
        for m in memberships {
            m.leave().await.unwrap();
        }
        assert_joins_matched(&store, &id);
    }
}

fn use_rand(rng: &mut impl rand::Rng, range: std::ops::Range<u64>) -> u64 {
    rng.random_range(range)
}
