//! A room holds stored entries back from its subscribers while more sends
//! wait to be stored (`EngineConfig::publish_hold`), so that a burst goes
//! out in one publish. Acks are never held, the hold is bounded, and what is
//! held reaches subscribers in seq order, once.
//!
//! The store takes 10 ms per call (paused time), and sends are timed so that
//! each one waits while the one before it commits:
//!
//! | send | queued at | stored at |
//! |------|-----------|-----------|
//! | a    | 0 ms      | 10 ms     |
//! | b    | 5 ms      | 20 ms     |
//! | c    | 15 ms     | 30 ms     |
//! | d    | 25 ms     | 40 ms     |

mod common;

use std::time::Duration;

use common::*;
use parlor_engine::Principal;
use parlor_engine::{ChatEngine, Engine, EngineConfig, EntryKind, Membership, RoomId, UserId};
use tokio::time::Instant;

const COMMIT: Duration = Duration::from_millis(10);

/// A room with a sender and a subscriber, on a store that now takes
/// [`COMMIT`] per call.
struct Room {
    engine: Engine,
    id: RoomId,
    sender: UserId,
    _sender_seat: Membership,
    subscriber: Membership,
}

async fn room_with(hold: Duration) -> Room {
    let (engine, store) = engine_with(EngineConfig::default().publish_hold(hold)).await;
    let id = stored_room(&engine, "burst", 10).await;
    let sender = user("ann");
    let _sender_seat = join(&engine, &sender, &id).await;
    let subscriber = join(&engine, &user("bob"), &id).await;
    store.set_latency(COMMIT);
    Room {
        engine,
        id,
        sender,
        _sender_seat,
        subscriber,
    }
}

/// When each of a, b, c, d was acked and when the subscriber received it,
/// in ms from the first send.
async fn timeline(hold: Duration) -> (Vec<u64>, Vec<u64>) {
    let mut room = room_with(hold).await;
    let start = Instant::now();
    let ms = move || start.elapsed().as_millis() as u64;
    let mut acks = Vec::new();
    for (body, at) in [("a", 0), ("b", 5), ("c", 15), ("d", 25)] {
        let (engine, id, sender) = (room.engine.clone(), room.id.clone(), room.sender.clone());
        acks.push(tokio::spawn(send_at(engine, id, sender, body, at, ms)));
    }
    let mut received = Vec::new();
    let mut bodies = Vec::new();
    while bodies.len() < 4 {
        let entry = room.subscriber.next_entry().await.unwrap();
        if entry.kind == EntryKind::Text {
            bodies.push(entry.body.clone().unwrap());
            received.push(ms());
        }
    }
    assert_eq!(bodies, ["a", "b", "c", "d"], "in seq order, once");
    let mut acked = Vec::new();
    for ack in acks {
        acked.push(ack.await.unwrap());
    }
    (acked, received)
}

async fn send_at(
    engine: Engine,
    id: RoomId,
    sender: UserId,
    body: &'static str,
    at: u64,
    ms: impl Fn() -> u64,
) -> u64 {
    tokio::time::sleep(Duration::from_millis(at)).await;
    engine
        .send(&Principal::new(sender.clone()), &id, body, body)
        .await
        .unwrap();
    ms()
}

#[tokio::test(start_paused = true)]
async fn a_burst_is_held_for_one_publish_within_the_hold() {
    let (acked, received) = timeline(Duration::from_millis(15)).await;
    assert_eq!(acked, [10, 20, 30, 40], "acks are never held");
    // a is held while b waits; b while c waits, 10 ms after a; after c,
    // 20 ms ≥ 15 ms have passed: a, b and c go out together. d has nothing
    // waiting behind it.
    assert_eq!(received, [30, 30, 30, 40]);
}

#[tokio::test(start_paused = true)]
async fn no_hold_publishes_every_commit() {
    let (acked, received) = timeline(Duration::ZERO).await;
    assert_eq!(acked, [10, 20, 30, 40]);
    assert_eq!(received, [10, 20, 30, 40]);
}

#[tokio::test(start_paused = true)]
async fn a_lone_send_is_published_at_once() {
    let mut room = room_with(EngineConfig::default().publish_hold).await;
    let start = Instant::now();
    let ack = room
        .engine
        .send(
            &Principal::new(room.sender.clone()),
            &room.id,
            "only",
            "only",
        )
        .await
        .unwrap();
    let entry = room.subscriber.next_entry().await.unwrap();
    assert_eq!(entry.seq, ack.seq);
    assert_eq!(start.elapsed(), COMMIT, "nothing waited: no hold");
}
