//! The room policy in the engine's paths (docs/contract.md §2, "Who may do
//! what"): which questions are asked when, the rules the engine keeps
//! around the answer (owners, invitations, private rooms), history's member
//! rule, and the per-user limits.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use common::{room, user};
use parlor_engine::{
    Action, ChatEngine, Decision, Engine, EngineConfig, EntryKind, ErrorKind, PolicyRequest,
    Principal, RateLimit, RoomPolicy, RoomSpec, SeqRange, UserId, policies::OpenPolicy,
    testkit::MemoryStore,
};

/// `open`, except that users named in `mute` may not send; counts every
/// question by action.
#[derive(Default)]
struct Counting {
    asked: Mutex<HashMap<Action, usize>>,
    mute: Vec<UserId>,
}

impl Counting {
    fn asked(&self, action: Action) -> usize {
        self.asked
            .lock()
            .unwrap()
            .get(&action)
            .copied()
            .unwrap_or(0)
    }
}

#[async_trait]
impl RoomPolicy for Counting {
    async fn decide(&self, request: &PolicyRequest<'_>) -> Decision {
        *self
            .asked
            .lock()
            .unwrap()
            .entry(request.action)
            .or_default() += 1;
        if request.action == Action::Send && self.mute.contains(&request.principal.user) {
            return Decision::forbidden(Action::Send);
        }
        OpenPolicy.decide(request).await
    }
}

async fn engine_with(policy: Arc<dyn RoomPolicy>, config: EngineConfig) -> Engine {
    Engine::builder(Arc::new(MemoryStore::default()))
        .config(config)
        .policy(policy)
        .start()
        .await
        .unwrap()
}

fn who(name: &str) -> Principal {
    Principal::new(user(name))
}

#[tokio::test]
async fn a_seat_remembers_the_send_answer_so_messages_cost_no_question() {
    let policy = Arc::new(Counting {
        mute: vec![user("bob")],
        ..Counting::default()
    });
    let engine = engine_with(policy.clone(), EngineConfig::default()).await;
    let id = room("talk");
    let (ann, bob) = (who("ann"), who("bob"));
    let t = engine
        .reserve(&ann, &id, Some(RoomSpec::with_capacity(5)))
        .await
        .unwrap();
    let _ann_seat = engine.commit(&ann, &t.ticket, None).await.unwrap();
    let t = engine.reserve(&bob, &id, None).await.unwrap();
    let _bob_seat = engine.commit(&bob, &t.ticket, None).await.unwrap();
    // ann created the room: she is its owner and is never asked. bob is
    // asked `join` at reserve and at commit, and `send` once, at commit.
    assert_eq!(policy.asked(Action::Create), 1);
    assert_eq!(policy.asked(Action::Join), 2);
    assert_eq!(policy.asked(Action::Send), 1);

    for i in 0..50 {
        let refused = engine.send(&bob, &id, &format!("b{i}"), "hi").await;
        assert_eq!(refused.unwrap_err().kind(), ErrorKind::Forbidden);
        engine
            .send(&ann, &id, &format!("a{i}"), "hi")
            .await
            .unwrap();
    }
    assert_eq!(policy.asked(Action::Send), 1, "no question per message");
    // A muted member may not signal either (docs/contract.md §2, "Signals"),
    // by the same remembered answer; ann may.
    let refused = engine.signal(&bob, &id, "typing", None).await;
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::Forbidden);
    engine.signal(&ann, &id, "typing", None).await.unwrap();
    assert_eq!(policy.asked(Action::Send), 1, "no question per signal");
    let log = engine
        .history(&ann, &id, SeqRange::after(0, 500))
        .await
        .unwrap()
        .entries;
    let by_bob = log
        .iter()
        .filter(|e| e.kind == EntryKind::Text && e.sender == user("bob"))
        .count();
    assert_eq!(by_bob, 0, "a refused send appends nothing");
}

#[tokio::test]
async fn history_needs_a_member_or_the_owner_and_an_absent_room_is_not_found() {
    let engine = engine_with(Arc::new(OpenPolicy), EngineConfig::default()).await;
    let id = room("hist");
    let (ann, bob) = (who("ann"), who("bob"));
    let t = engine
        .reserve(&ann, &id, Some(RoomSpec::with_capacity(5)))
        .await
        .unwrap();
    engine
        .commit(&ann, &t.ticket, None)
        .await
        .unwrap()
        .leave()
        .await
        .unwrap();
    // The owner reads without a seat.
    engine
        .history(&ann, &id, SeqRange::default())
        .await
        .unwrap();
    let t = engine.reserve(&bob, &id, None).await.unwrap();
    assert_eq!(
        engine
            .history(&bob, &id, SeqRange::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotAMember,
        "a reservation is not enough"
    );
    let seat = engine.commit(&bob, &t.ticket, None).await.unwrap();
    engine
        .history(&bob, &id, SeqRange::default())
        .await
        .unwrap();
    drop(seat); // grace still counts
    engine
        .history(&bob, &id, SeqRange::default())
        .await
        .unwrap();
    assert_eq!(
        engine
            .history(&bob, &room("nowhere"), SeqRange::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::RoomNotFound
    );
}

#[tokio::test]
async fn a_private_room_is_invisible_to_strangers_and_open_to_the_invited() {
    let engine = engine_with(Arc::new(OpenPolicy), EngineConfig::default()).await;
    let id = room("secret");
    let (olga, sam, tia) = (who("olga"), who("sam"), who("tia"));
    let t = engine
        .reserve(&olga, &id, Some(RoomSpec::with_capacity(5).private()))
        .await
        .unwrap();
    let _olga_seat = engine.commit(&olga, &t.ticket, None).await.unwrap();

    let not_found = |r: Result<_, parlor_engine::Error>| r.err().map(|e| e.kind());
    assert_eq!(
        not_found(engine.reserve(&sam, &id, None).await.map(|_| ())),
        Some(ErrorKind::RoomNotFound)
    );
    assert_eq!(engine.room(&sam, &id).await.unwrap(), None);
    assert!(engine.room(&olga, &id).await.unwrap().is_some());
    assert_eq!(
        not_found(
            engine
                .history(&sam, &id, SeqRange::default())
                .await
                .map(|_| ())
        ),
        Some(ErrorKind::RoomNotFound)
    );
    assert_eq!(
        not_found(engine.set_invite(&sam, &id, &user("sam"), true).await),
        Some(ErrorKind::RoomNotFound),
        "a stranger cannot invite, nor learn the room exists"
    );

    engine
        .set_invite(&olga, &id, &user("sam"), true)
        .await
        .unwrap();
    let t = engine.reserve(&sam, &id, None).await.unwrap();
    let _sam_seat = engine.commit(&sam, &t.ticket, None).await.unwrap();
    engine.send(&sam, &id, "s1", "hello").await.unwrap();
    engine
        .history(&sam, &id, SeqRange::default())
        .await
        .unwrap();
    let facts = engine.room(&sam, &id).await.unwrap().expect("sam reads it");
    assert_eq!(facts.can_moderate, Some(false), "invited, not a moderator");
    let owners = engine.room(&olga, &id).await.unwrap().unwrap();
    assert_eq!(owners.can_moderate, Some(true));

    engine
        .set_invite(&olga, &id, &user("sam"), false)
        .await
        .unwrap();
    assert_eq!(
        not_found(engine.reserve(&sam, &id, None).await.map(|_| ())),
        Some(ErrorKind::RoomNotFound),
        "withdrawn: the next reserve is refused"
    );
    assert_eq!(
        not_found(engine.reserve(&tia, &id, None).await.map(|_| ())),
        Some(ErrorKind::RoomNotFound)
    );

    // In a public room a non-owner may not moderate: FORBIDDEN.
    let public = room("public");
    let t = engine
        .reserve(&olga, &public, Some(RoomSpec::with_capacity(5)))
        .await
        .unwrap();
    let _seat = engine.commit(&olga, &t.ticket, None).await.unwrap();
    assert_eq!(
        not_found(engine.set_invite(&sam, &public, &user("tia"), true).await),
        Some(ErrorKind::Forbidden)
    );
}

#[tokio::test(start_paused = true)]
async fn reservations_and_creations_are_limited_per_user_with_a_time_to_wait() {
    let config = EngineConfig::default()
        .reservation_rate(RateLimit::new(1.0, 2.0))
        .create_rate(RateLimit::new(0.5, 1.0));
    let engine = engine_with(Arc::new(OpenPolicy), config).await;
    let ann = who("ann");
    engine
        .reserve(&ann, &room("a1"), Some(RoomSpec::with_capacity(2)))
        .await
        .unwrap();
    // Her one creation is spent: the second is refused, though a
    // reservation token is left.
    let refused = engine
        .reserve(&ann, &room("a2"), Some(RoomSpec::with_capacity(2)))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RateLimited);
    assert_eq!(refused.retry_after_duration(), Some(Duration::from_secs(2)));
    // The refused creation took a reservation token: none is left.
    let refused = engine.reserve(&ann, &room("a1"), None).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RateLimited);
    assert_eq!(refused.retry_after_duration(), Some(Duration::from_secs(1)));
    // Another user has buckets of their own.
    engine
        .reserve(&who("bob"), &room("b1"), Some(RoomSpec::with_capacity(2)))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(1)).await;
    engine.reserve(&ann, &room("a1"), None).await.unwrap();
}

#[tokio::test]
async fn pending_rooms_per_user_are_bounded() {
    let config = EngineConfig::default().max_pending_rooms(2);
    let engine = engine_with(Arc::new(OpenPolicy), config).await;
    let ann = who("ann");
    let spec = || Some(RoomSpec::with_capacity(2));
    let first = engine.reserve(&ann, &room("p1"), spec()).await.unwrap();
    engine.reserve(&ann, &room("p2"), spec()).await.unwrap();
    let refused = engine.reserve(&ann, &room("p3"), spec()).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::RateLimited);
    assert!(refused.retry_after_duration().is_some());
    // Another user is not held by ann's pending rooms.
    engine
        .reserve(&who("bob"), &room("p3"), spec())
        .await
        .unwrap();
    // Committing stores a pending room: ann may create again.
    let _seat = engine.commit(&ann, &first.ticket, None).await.unwrap();
    engine.reserve(&ann, &room("p4"), spec()).await.unwrap();
}
