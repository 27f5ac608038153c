//! Must-show 7: a dropped guard keeps the seat through grace, a re-commit
//! appends no `join`, and after grace a `leave` is appended exactly once.

mod common;

use std::time::Duration;

use common::*;
use parlor_engine::Principal;
use parlor_engine::{ChatEngine, EntryKind};

#[tokio::test(start_paused = true)]
async fn grace_keeps_the_seat_and_ends_with_one_leave() {
    let (engine, store) = engine().await;
    let id = stored_room(&engine, "graceful", 1).await;
    let (ann, bob) = (user("ann"), user("bob"));
    let kinds = |who: &parlor_engine::UserId| -> Vec<EntryKind> {
        store
            .log(&id)
            .iter()
            .filter(|e| &e.sender == who)
            .map(|e| e.kind)
            .collect()
    };

    let m = join(&engine, &ann, &id).await;
    drop(m); // connection lost
    settle().await;
    assert_eq!(engine.stats().seats_grace, 1);
    // Capacity 1: the seat in grace still counts.
    assert_eq!(
        engine
            .reserve(&Principal::new(bob.clone()), &id, None)
            .await
            .unwrap_err()
            .code(),
        "ROOM_FULL"
    );

    // Back within grace: same seat, no new join.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let m = join(&engine, &ann, &id).await;
    assert_eq!(kinds(&ann), vec![EntryKind::Join]);
    assert_eq!(m.joined().members, vec![ann.clone()]);

    // The old grace timer fires now and must not free the re-committed seat.
    tokio::time::sleep(Duration::from_secs(2)).await;
    settle().await;
    assert_eq!(engine.stats().seats_joined, 1);

    // Lost again, and this time grace runs out.
    drop(m);
    tokio::time::sleep(Duration::from_secs(10) + Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(
        kinds(&ann),
        vec![EntryKind::Join, EntryKind::Leave],
        "one leave"
    );
    assert_nothing_held(&engine.stats());
    tokio::time::sleep(Duration::from_secs(60)).await;
    settle().await;
    assert_eq!(
        kinds(&ann),
        vec![EntryKind::Join, EntryKind::Leave],
        "still exactly one"
    );
    // The seat is free for bob.
    join(&engine, &bob, &id).await.leave().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn two_connections_hold_one_seat() {
    let (engine, store) = engine().await;
    let id = stored_room(&engine, "twice", 2).await;
    let ann = user("ann");
    let first = join(&engine, &ann, &id).await;
    let second = join(&engine, &ann, &id).await;
    assert_eq!(second.joined().occupancy, 1, "one seat per user");
    // Losing one connection of two keeps the seat joined.
    drop(first);
    settle().await;
    assert_eq!(
        (engine.stats().seats_joined, engine.stats().seats_grace),
        (1, 0)
    );
    second.leave().await.unwrap();
    let kinds: Vec<_> = store
        .log(&id)
        .iter()
        .filter(|e| e.sender == ann)
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec![EntryKind::Join, EntryKind::Leave]);
    settle().await;
    assert_nothing_held(&engine.stats());
}
