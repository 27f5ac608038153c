//! The integrator's control surface in the engine (docs/contract.md §2,
//! "Services", "Presence and listing", "Lifecycle", "Moderation"): system
//! entries without a seat, presence against the seat ledger under
//! randomized churn, keyset listing while rooms are created, kicks, bans,
//! moderators, capacity changes and closing.

mod common;

use std::{
    collections::{BTreeMap, HashSet},
    sync::Arc,
    time::Duration,
};

use common::{assert_nothing_held, engine, join, let_everything_expire, rng, room, user};
use parlor_engine::{
    Ban, ChatEngine, Data, Engine, EntryKind, ErrorKind, LeaveReason, MemberState, Membership,
    Message, Principal, RoomPatch, RoomQuery, RoomSpec, SeqRange, StoredRoom, Timestamp, UserId,
    ports::Store,
};
use rand::Rng;

fn service() -> Principal {
    Principal::service(user("billing"))
}

fn as_user(name: &str) -> Principal {
    Principal::new(user(name))
}

/// `owner` creates `name` and stays joined; returns the owner's membership.
async fn owned_room(engine: &Engine, owner: &str, name: &str, capacity: u32) -> Membership {
    let t = engine
        .reserve(
            &as_user(owner),
            &room(name),
            Some(RoomSpec::with_capacity(capacity)),
        )
        .await
        .unwrap();
    engine
        .commit(&as_user(owner), &t.ticket, None)
        .await
        .unwrap()
}

/// A room as storage holds it, olga's, with 5 seats: put straight into the
/// store, for the listing tests.
fn stored(id: String, private: bool) -> StoredRoom {
    StoredRoom {
        id: room(id),
        capacity: 5,
        title: None,
        last_seq: 0,
        owner: Some(user("olga")),
        private,
        closed: false,
        first_seq: 1,
        retention: None,
    }
}

fn data(n: usize) -> Data {
    let serde_json::Value::Object(map) = serde_json::json!({"n": n, "mentions": ["bob"]}) else {
        unreachable!()
    };
    map
}

async fn next_kind(m: &mut Membership, kind: EntryKind) -> Arc<parlor_engine::Entry> {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(5), m.next_entry())
            .await
            .expect("an entry in time")
            .expect("the stream goes on");
        if e.kind == kind {
            return e;
        }
    }
}

#[tokio::test]
async fn a_service_posts_system_entries_into_a_full_room_without_a_seat() {
    let (engine, _) = engine().await;
    let mut alice = owned_room(&engine, "alice", "full", 2).await;
    let mut bob = join(&engine, &user("bob"), &room("full")).await;
    let full = engine
        .reserve(&as_user("carol"), &room("full"), None)
        .await
        .unwrap_err();
    assert_eq!(full.kind(), ErrorKind::RoomFull);

    let n = 300;
    let mut sent = Vec::new();
    for i in 0..n {
        let message = Message {
            body: (i % 3 != 0).then(|| format!("notice {i}")),
            data: Some(data(i)),
        };
        let entry = engine
            .submit(&service(), &room("full"), &format!("s{i}"), message)
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(entry.kind, EntryKind::System);
        assert_eq!(entry.sender, user("billing"));
        sent.push(entry);
    }
    // Retries give the original entry, whatever they carry now.
    for i in [0, 7, n - 1] {
        let again = engine
            .submit(
                &service(),
                &room("full"),
                &format!("s{i}"),
                Message::text("changed"),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        assert_eq!(*again, *sent[i]);
    }
    for member in [&mut alice, &mut bob] {
        let mut last = 0;
        for want in &sent {
            let got = next_kind(member, EntryKind::System).await;
            assert!(got.seq > last, "in seq order");
            last = got.seq;
            assert_eq!(*got, **want, "delivered once, as stored");
        }
    }
    let info = engine
        .room(&as_user("alice"), &room("full"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.occupancy, 2, "the service holds no seat");
    let history = engine
        .history(&service(), &room("full"), SeqRange::after(0, 500))
        .await
        .unwrap()
        .entries;
    let systems: Vec<_> = history
        .iter()
        .filter(|e| e.kind == EntryKind::System)
        .collect();
    assert_eq!(systems.len(), n, "each stored once");

    let refused = engine
        .reserve(&service(), &room("full"), None)
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::Forbidden,
        "a service takes no seat"
    );
    let empty = engine
        .submit(&service(), &room("full"), "x", Message::default())
        .await
        .unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::InvalidInput);
    let absent = engine
        .submit(&service(), &room("nowhere"), "x", Message::text("hi"))
        .await
        .unwrap_err();
    assert_eq!(absent.kind(), ErrorKind::RoomNotFound);
}

#[tokio::test]
async fn data_is_bounded_and_a_message_needs_a_body_or_data() {
    let (engine, _) = engine().await;
    let _alice = owned_room(&engine, "alice", "d", 5).await;
    let big: Data = [(
        "blob".to_owned(),
        serde_json::Value::String("x".repeat(5000)),
    )]
    .into_iter()
    .collect();
    let err = engine
        .submit(
            &as_user("alice"),
            &room("d"),
            "c1",
            Message::text("hi").with_data(big),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MessageTooLarge);
    let data_only = engine
        .submit(
            &as_user("alice"),
            &room("d"),
            "c2",
            Message {
                body: None,
                data: Some(data(1)),
            },
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(
        (data_only.kind, data_only.body.as_deref()),
        (EntryKind::Text, None)
    );
    let err = engine
        .submit(&as_user("alice"), &room("d"), "c4", Message::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "neither body nor data");
    let ok = engine
        .submit(
            &as_user("alice"),
            &room("d"),
            "c3",
            Message::text("hi @bob").with_data(data(2)),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!((ok.kind, ok.data.clone()), (EntryKind::Text, Some(data(2))));
}

/// What the test believes a user holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Reserved,
    Joined,
    Grace,
}

#[tokio::test]
async fn presence_agrees_with_the_ledger_under_churn() {
    let mut rng = rng("presence_agrees_with_the_ledger_under_churn");
    let (engine, _) = engine().await;
    let capacity = 6;
    let _owner = owned_room(&engine, "owner", "churn", capacity).await;
    let id = room("churn");
    let users: Vec<UserId> = (0..10).map(|i| user(format!("u{i}"))).collect();
    let mut held: BTreeMap<UserId, Held> = BTreeMap::new();
    held.insert(user("owner"), Held::Joined);
    let mut tickets: BTreeMap<UserId, String> = BTreeMap::new();
    let mut seats: BTreeMap<UserId, Membership> = BTreeMap::new();
    for step in 0..400 {
        let who = users[rng.random_range(0..users.len())].clone();
        let principal = Principal::new(who.clone());
        match (held.get(&who).copied(), rng.random_range(0..4)) {
            (None, _) | (Some(Held::Grace), 0) => {
                match engine.reserve(&principal, &id, None).await {
                    Ok(t) => {
                        tickets.insert(who.clone(), t.ticket);
                        if !held.contains_key(&who) {
                            held.insert(who.clone(), Held::Reserved);
                        }
                    }
                    Err(e) => {
                        assert_eq!(e.kind(), ErrorKind::RoomFull, "step {step}");
                        assert_eq!(held.len(), capacity as usize, "full only when full");
                    }
                }
            }
            (Some(Held::Reserved | Held::Grace), 1 | 2) if tickets.contains_key(&who) => {
                let ticket = tickets.remove(&who).unwrap();
                let m = engine.commit(&principal, &ticket, None).await.unwrap();
                seats.insert(who.clone(), m);
                held.insert(who.clone(), Held::Joined);
            }
            (Some(Held::Joined), 1) => {
                seats.remove(&who).unwrap().leave().await.unwrap();
                tickets.remove(&who);
                held.remove(&who);
            }
            (Some(Held::Joined), 2) => {
                drop(seats.remove(&who)); // lost: grace
                held.insert(who.clone(), Held::Grace);
            }
            (Some(_), 3) => {
                let kicked = engine.kick(&service(), &id, &who, None).await.unwrap();
                assert!(kicked, "step {step}: {who} held a seat");
                seats.remove(&who);
                tickets.remove(&who);
                held.remove(&who);
            }
            _ => continue,
        }
        common::settle().await;
        let seen = engine.members(&service(), &id).await.unwrap();
        let seen: BTreeMap<UserId, Held> = seen
            .into_iter()
            .map(|m| {
                let state = match m.state {
                    MemberState::Reserved => Held::Reserved,
                    MemberState::Joined => Held::Joined,
                    MemberState::Grace => Held::Grace,
                };
                (m.user_id, state)
            })
            .collect();
        assert_eq!(seen, held, "step {step}: presence is the ledger");
        let for_users = engine.members(&as_user("owner"), &id).await.unwrap();
        let members: Vec<_> = for_users.iter().map(|m| m.user_id.clone()).collect();
        let want: Vec<_> = held
            .iter()
            .filter(|(_, h)| **h != Held::Reserved)
            .map(|(u, _)| u.clone())
            .collect();
        assert_eq!(members, want, "step {step}: users see no reservations");
        let info = engine.room(&service(), &id).await.unwrap().unwrap();
        assert_eq!(info.occupancy as usize, held.len(), "step {step}");
    }
}

#[tokio::test]
async fn listing_pages_through_ten_thousand_rooms_while_rooms_are_created() {
    let (engine, store) = engine().await;
    let mut before = Vec::new();
    for i in 0..10_000 {
        let id = format!("r{i:05}");
        store.create_room(&stored(id.clone(), false)).await.unwrap();
        before.push(id);
    }
    store
        .create_room(&stored("r-secret".into(), true))
        .await
        .unwrap();
    // Rooms created while the listing pages, between existing ids and after.
    let creator = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for i in 0..2_000 {
                let id = format!("r{:05}x", i * 5);
                store.create_room(&stored(id, false)).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = engine
            .rooms(
                &as_user("stranger"),
                RoomQuery {
                    prefix: "r",
                    after: after.as_ref(),
                    limit: 100,
                },
            )
            .await
            .unwrap();
        seen.extend(page.rooms.iter().map(|r| r.room_id.to_string()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    creator.await.unwrap();
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ascending by id, none repeated");
    let seen: HashSet<_> = seen.into_iter().collect();
    let missing: Vec<_> = before.iter().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "missing: {missing:?}");
    assert!(
        !seen.contains("r-secret"),
        "a private room is not listed to strangers"
    );
    let page = engine
        .rooms(
            &service(),
            RoomQuery {
                prefix: "r-",
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let ids: Vec<_> = page.rooms.iter().map(|r| r.room_id.as_str()).collect();
    assert_eq!(ids, vec!["r-secret"], "the service sees every room");
    assert_eq!(page.next, None);
    for limit in [0, 501] {
        let err = engine
            .rooms(
                &service(),
                RoomQuery {
                    prefix: "",
                    after: None,
                    limit,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn a_kick_ends_the_users_streams_and_they_may_come_back() {
    let (engine, store) = engine().await;
    let _alice = owned_room(&engine, "alice", "k", 5).await;
    let id = room("k");
    let mut bob = join(&engine, &user("bob"), &id).await;
    let mut bob_again = {
        let t = engine.reserve(&as_user("bob"), &id, None).await.unwrap();
        engine
            .commit(&as_user("bob"), &t.ticket, None)
            .await
            .unwrap()
    };
    let carol_refused = engine
        .kick(&as_user("carol"), &id, &user("bob"), None)
        .await
        .unwrap_err();
    assert_eq!(carol_refused.kind(), ErrorKind::Forbidden);
    assert!(
        engine
            .kick(&as_user("alice"), &id, &user("bob"), Some("spam"))
            .await
            .unwrap()
    );
    for stream in [&mut bob, &mut bob_again] {
        let end = loop {
            match stream.next_entry().await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(
            end.kind(),
            ErrorKind::Kicked,
            "every connection of the seat"
        );
    }
    let leave = store
        .log(&id)
        .into_iter()
        .rev()
        .find(|e| e.kind == EntryKind::Leave)
        .unwrap();
    assert_eq!(
        (leave.sender.clone(), leave.reason),
        (user("bob"), Some(LeaveReason::Kicked))
    );
    let info = engine.room(&service(), &id).await.unwrap().unwrap();
    assert_eq!(info.occupancy, 1);
    assert!(
        !engine
            .kick(&as_user("alice"), &id, &user("bob"), None)
            .await
            .unwrap(),
        "no seat: nothing to take"
    );
    let _back = join(&engine, &user("bob"), &id).await;

    // Moderators: named by the owner, they may kick; others may not name.
    let named = engine
        .set_moderator(&as_user("bob"), &id, &user("bob"), true)
        .await
        .unwrap_err();
    assert_eq!(named.kind(), ErrorKind::Forbidden);
    engine
        .set_moderator(&as_user("alice"), &id, &user("dave"), true)
        .await
        .unwrap();
    assert!(
        engine
            .kick(&as_user("dave"), &id, &user("bob"), None)
            .await
            .unwrap()
    );
    let owner = engine
        .kick(&as_user("dave"), &id, &user("alice"), None)
        .await
        .unwrap_err();
    assert_eq!(
        owner.kind(),
        ErrorKind::Forbidden,
        "a moderator cannot kick the owner"
    );
    assert!(
        engine
            .kick(&service(), &id, &user("alice"), None)
            .await
            .unwrap(),
        "a service can"
    );
    engine
        .set_moderator(&service(), &id, &user("dave"), false)
        .await
        .unwrap();
    let gone = engine
        .kick(&as_user("dave"), &id, &user("carol"), None)
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::Forbidden);
}

#[tokio::test]
async fn a_ban_refuses_reserves_until_it_lapses_or_is_lifted() {
    let (engine, _) = engine().await;
    let _alice = owned_room(&engine, "alice", "b", 5).await;
    let id = room("b");
    let mut bob = join(&engine, &user("bob"), &id).await;
    let until = Timestamp(Timestamp::now().millis() + 700);
    let ban = Ban {
        until: Some(until),
        reason: Some("flooding".into()),
    };
    engine
        .set_ban(&as_user("alice"), &id, &user("bob"), Some(&ban))
        .await
        .unwrap();
    let end = loop {
        if let Err(e) = bob.next_entry().await {
            break e;
        }
    };
    assert_eq!(end.kind(), ErrorKind::Kicked, "a ban kicks");
    let refused = engine
        .reserve(&as_user("bob"), &id, None)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    // The ban lapses at `until` (server wall clock).
    tokio::time::sleep(Duration::from_millis(800)).await;
    engine.reserve(&as_user("bob"), &id, None).await.unwrap();

    let forever = Ban {
        until: None,
        reason: None,
    };
    engine
        .set_ban(&service(), &id, &user("carol"), Some(&forever))
        .await
        .unwrap();
    let refused = engine
        .reserve(&as_user("carol"), &id, None)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    engine
        .set_ban(&service(), &id, &user("carol"), None)
        .await
        .unwrap();
    engine.reserve(&as_user("carol"), &id, None).await.unwrap();
}

#[tokio::test]
async fn a_lower_capacity_evicts_no_one_and_admits_only_below_it() {
    let (engine, _) = engine().await;
    let _alice = owned_room(&engine, "alice", "cap", 3).await;
    let id = room("cap");
    let bob = join(&engine, &user("bob"), &id).await;
    let carol = join(&engine, &user("carol"), &id).await;
    let patch = RoomPatch {
        title: Some(Some("Smaller".into())),
        capacity: Some(1),
        retention: None,
    };
    let info = engine
        .update_room(&as_user("alice"), &id, &patch)
        .await
        .unwrap();
    assert_eq!(
        (info.capacity, info.occupancy, info.title.as_deref()),
        (1, 3, Some("Smaller"))
    );
    let full = |e: parlor_engine::Error| assert_eq!(e.kind(), ErrorKind::RoomFull);
    full(
        engine
            .reserve(&as_user("dan"), &id, None)
            .await
            .unwrap_err(),
    );
    bob.leave().await.unwrap();
    full(
        engine
            .reserve(&as_user("dan"), &id, None)
            .await
            .unwrap_err(),
    );
    carol.leave().await.unwrap();
    full(
        engine
            .reserve(&as_user("dan"), &id, None)
            .await
            .unwrap_err(),
    );
    let refused = engine
        .update_room(&as_user("bob"), &id, &RoomPatch::default())
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    let bad = RoomPatch {
        title: None,
        capacity: Some(0),
        retention: None,
    };
    let err = engine.update_room(&service(), &id, &bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    engine
        .update_room(
            &service(),
            &id,
            &RoomPatch {
                title: None,
                capacity: Some(2),
                retention: None,
            },
        )
        .await
        .unwrap();
    engine.reserve(&as_user("dan"), &id, None).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_takes_every_seat_and_purge_frees_the_id() {
    let (engine, store) = engine().await;
    let alice = owned_room(&engine, "alice", "c", 5).await;
    let id = room("c");
    let mut bob = join(&engine, &user("bob"), &id).await;
    let reserved = engine.reserve(&as_user("carol"), &id, None).await.unwrap();
    let refused = engine
        .close_room(&as_user("bob"), &id, false)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    engine
        .close_room(&as_user("alice"), &id, false)
        .await
        .unwrap();
    let end = loop {
        if let Err(e) = bob.next_entry().await {
            break e;
        }
    };
    assert_eq!(end.kind(), ErrorKind::RoomClosed);
    let mut leaves: Vec<_> = store
        .log(&id)
        .into_iter()
        .filter(|e| e.kind == EntryKind::Leave)
        .map(|e| (e.sender.to_string(), e.reason))
        .collect();
    leaves.sort_by(|a, b| a.0.cmp(&b.0));
    let closed_by = Some(LeaveReason::RoomClosed);
    assert_eq!(
        leaves,
        vec![
            ("alice".to_owned(), closed_by),
            ("bob".to_owned(), closed_by)
        ],
        "every member leaves once, with the reason"
    );
    let used = engine
        .commit(&as_user("carol"), &reserved.ticket, None)
        .await
        .unwrap_err();
    assert_eq!(used.kind(), ErrorKind::TicketInvalid, "unused tickets die");
    let closed = engine
        .reserve(&as_user("dan"), &id, None)
        .await
        .unwrap_err();
    assert_eq!(closed.kind(), ErrorKind::RoomClosed);
    let info = engine.room(&service(), &id).await.unwrap().unwrap();
    assert!(info.closed);
    let history = engine
        .history(&as_user("alice"), &id, SeqRange::after(0, 100))
        .await
        .unwrap()
        .entries;
    assert!(!history.is_empty(), "history stays readable");
    let listed = engine
        .rooms(
            &service(),
            RoomQuery {
                prefix: "",
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert!(listed.rooms.is_empty(), "a closed room is not listed");
    drop((alice, bob));
    let_everything_expire(&engine).await;
    assert_nothing_held(&engine.stats());

    engine.close_room(&service(), &id, true).await.unwrap();
    assert_eq!(engine.room(&service(), &id).await.unwrap(), None);
    let gone = engine
        .reserve(&as_user("dan"), &id, None)
        .await
        .unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::RoomNotFound);
    let err = engine.close_room(&service(), &id, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RoomNotFound);
    let again = owned_room(&engine, "erin", "c", 2).await;
    assert_eq!(again.joined().last_seq, 1, "a new room starts a new log");
}

/// A page's `next` never names a room hidden from the caller, however many
/// hidden rooms lie between the visible ones (a private id must not leak
/// through the cursor).
#[tokio::test]
async fn the_listing_cursor_never_names_a_hidden_room() {
    let (engine, store) = engine().await;
    store
        .create_room(&stored("h-a".into(), false))
        .await
        .unwrap();
    for i in 0..300 {
        store
            .create_room(&stored(format!("h-b{i:03}"), true))
            .await
            .unwrap();
    }
    store
        .create_room(&stored("h-c".into(), false))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = engine
            .rooms(
                &as_user("stranger"),
                RoomQuery {
                    prefix: "h-",
                    after: after.as_ref(),
                    limit: 1,
                },
            )
            .await
            .unwrap();
        seen.extend(page.rooms.iter().map(|r| r.room_id.to_string()));
        match page.next {
            Some(next) => {
                assert!(
                    !next.as_str().starts_with("h-b"),
                    "a private id leaked: {next}"
                );
                after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(seen, ["h-a", "h-c"]);
}
