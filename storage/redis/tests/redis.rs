//! The Redis bus and claims against a real Redis (`PARLOR_TEST_REDIS_URL`;
//! a skip line without it): entries published on one node reach another
//! node's subscribers once, in order, with every field (data, system
//! entries, leave reasons, edits, redactions), and not their own node
//! twice; notices (read receipts) cross to other nodes' notice subscribers
//! and never to entry subscribers, past messages no node can read; a
//! pending room's claim excludes other users until it expires.

use std::{sync::Arc, time::Duration};

use parlor_engine::{
    Bus, Data, Entry, EntryKind, LeaveReason, Notice, NoticeKind, PendingClaims, RoomId, Timestamp,
    UserId,
};
use parlor_redis::Redis;
use tokio::time::timeout;

#[allow(clippy::print_stderr)] // a skipped suite says so
fn redis_url(test: &str) -> Option<String> {
    let url = std::env::var("PARLOR_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("SKIPPED {test}: PARLOR_TEST_REDIS_URL is not set");
    }
    url
}

fn fresh(name: &str) -> String {
    format!("{name}-{:08x}", rand::random::<u32>())
}

/// Entry `seq` of `room`: mostly texts, some with data; every fifth a
/// system entry with data and no body, every seventh a leave with
/// its reason; seq 8 a redacted text, 9 an edited one, 11 an edit, 13 a
/// redaction with its note.
fn entry(room: &RoomId, seq: u64) -> Arc<Entry> {
    let mut e = plain_entry(room, seq);
    let stamp = Timestamp(1_790_000_000_123 + seq as i64);
    match seq {
        8 => {
            (e.body, e.data, e.redacted) = (None, None, true);
            e.edited_at = Some(stamp);
        }
        9 => e.edited_at = Some(stamp),
        11 => {
            e.kind = EntryKind::Edit;
            e.target_seq = Some(9);
            e.body = Some("héllo again".into());
        }
        13 => {
            (e.kind, e.client_id, e.body, e.data) = (EntryKind::Redaction, None, None, None);
            e.target_seq = Some(8);
            e.redaction_reason = Some("a \"quoted\" note".into());
        }
        _ => {}
    }
    Arc::new(e)
}

fn plain_entry(room: &RoomId, seq: u64) -> Entry {
    let data: Data = serde_json::from_str(&format!(
        r#"{{"seq":{seq},"mentions":["bob"],"nested":{{"ok":true,"x":1.5,"none":null}},"empty":{{}}}}"#
    ))
    .unwrap();
    let (kind, sender, client_id, body, data, reason) = if seq.is_multiple_of(7) {
        let reason = Some(if seq.is_multiple_of(2) {
            LeaveReason::RoomClosed
        } else {
            LeaveReason::Kicked
        });
        (EntryKind::Leave, "ann", None, None, None, reason)
    } else if seq.is_multiple_of(5) {
        let client_id = Some(format!("s{seq}"));
        (
            EntryKind::System,
            "billing",
            client_id,
            None,
            Some(data),
            None,
        )
    } else {
        let client_id = Some(format!("c{seq}"));
        let body = Some(format!("héllo {seq}"));
        let data = (seq.is_multiple_of(3)).then_some(data);
        (EntryKind::Text, "ann", client_id, body, data, None)
    };
    Entry {
        room_id: room.clone(),
        seq,
        id: uuid::Uuid::now_v7(),
        kind,
        sender: UserId::new(sender).unwrap(),
        client_id,
        body,
        data,
        reason,
        target_seq: None,
        redaction_reason: None,
        edited_at: None,
        redacted: false,
        created_at: Timestamp::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_cross_nodes_once_in_order() {
    let Some(url) = redis_url("entries_cross_nodes_once_in_order") else {
        return;
    };
    let redis = Redis::connect(&url).await.unwrap();
    // A node id that JSON must escape still tells a node its own messages.
    let a = redis.bus(&fresh("a \"quoted\" \\ node"), 64).await.unwrap();
    let b = redis.bus(&fresh("b"), 64).await.unwrap();
    let room = RoomId::new(&fresh("room")).unwrap();
    let mut on_a = a.subscribe(&room).await;
    let mut on_b = b.subscribe(&room).await;
    let sent: Vec<_> = (1..=20).map(|seq| entry(&room, seq)).collect();
    assert!(
        [EntryKind::Edit, EntryKind::Redaction]
            .iter()
            .all(|k| sent.iter().any(|e| e.kind == *k))
            && sent.iter().any(|e| e.redacted && e.edited_at.is_some()),
        "the batch holds every new field"
    );
    for chunk in sent.chunks(7) {
        a.publish(&room, chunk).await;
    }
    for (who, feed) in [("a", &mut on_a), ("b", &mut on_b)] {
        for want in &sent {
            let got = timeout(Duration::from_secs(5), feed.recv())
                .await
                .unwrap_or_else(|_| panic!("{who} got entry {}", want.seq))
                .unwrap();
            assert_eq!(*got, **want, "{who}: every field, in order");
        }
    }
    // A's own entries came back from Redis too, and were not delivered twice.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        on_a.try_recv().is_err(),
        "no duplicate on the publishing node"
    );
}

fn receipt(room: &RoomId, user: &str, seq: u64) -> Arc<Notice> {
    Arc::new(Notice {
        room_id: room.clone(),
        sender: UserId::new(user).unwrap(),
        at: Timestamp::now(),
        kind: NoticeKind::Receipt { seq },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_cross_nodes_to_notice_subscribers_only() {
    let Some(url) = redis_url("notices_cross_nodes_to_notice_subscribers_only") else {
        return;
    };
    let redis = Redis::connect(&url).await.unwrap();
    let a = redis.bus(&fresh("a"), 64).await.unwrap();
    let b = redis.bus(&fresh("b"), 64).await.unwrap();
    let room = RoomId::new(&fresh("room")).unwrap();
    let other = RoomId::new(&fresh("other")).unwrap();
    let mut notices_a = a.subscribe_notices(&room);
    let mut notices_b = b.subscribe_notices(&room);
    let mut elsewhere_b = b.subscribe_notices(&other);
    let mut entries_a = a.subscribe(&room).await;
    let mut entries_b = b.subscribe(&room).await;

    // Messages no node can read — not JSON, a notice of an unknown kind,
    // a receipt without its seq, a signal without its name, entries and a
    // notice at once — are
    // skipped, and what follows still arrives.
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let unknown = [
        "not json".to_owned(),
        format!(
            r#"{{"node":"x","room":"{room}","notice":{{"type":"typing","sender":"ann","at":1}}}}"#
        ),
        format!(
            r#"{{"node":"x","room":"{room}","notice":{{"type":"receipt","sender":"ann","at":1}}}}"#
        ),
        format!(
            r#"{{"node":"x","room":"{room}","notice":{{"type":"signal","sender":"ann","at":1}}}}"#
        ),
        format!(
            r#"{{"node":"x","room":"{room}","entries":[],"notice":{{"type":"receipt","sender":"ann","at":1,"seq":1}}}}"#
        ),
    ];
    for message in &unknown {
        let _: () = redis::cmd("PUBLISH")
            .arg(format!("parlor:room:{room}"))
            .arg(message)
            .query_async(&mut raw)
            .await
            .unwrap();
    }

    let sent = receipt(&room, "ann", 7);
    a.notify(Arc::clone(&sent)).await;
    let mut feeds = [("a", &mut notices_a), ("b", &mut notices_b)];
    for (who, feed) in &mut feeds {
        let got = timeout(Duration::from_secs(5), feed.recv())
            .await
            .unwrap_or_else(|_| panic!("{who} got the receipt"))
            .unwrap();
        assert_eq!(*got, *sent, "{who}: every field");
    }
    // Nothing more: not twice on the publishing node, not the unreadable
    // ones, not in another room, never on an entry feed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(notices_a.try_recv().is_err(), "no duplicate on a");
    assert!(notices_b.try_recv().is_err(), "nothing unreadable on b");
    assert!(elsewhere_b.try_recv().is_err(), "another room's feed");
    assert!(
        entries_a.try_recv().is_err(),
        "a notice is not an entry (a)"
    );
    assert!(
        entries_b.try_recv().is_err(),
        "a notice is not an entry (b)"
    );

    // Both ways, in the order sent, entries and notices through one outbox.
    let entry = entry(&room, 1);
    b.publish(&room, std::slice::from_ref(&entry)).await;
    b.notify(receipt(&room, "bob", 1)).await;
    let got = timeout(Duration::from_secs(5), entries_a.recv())
        .await
        .expect("a got b's entry")
        .unwrap();
    assert_eq!(*got, *entry);
    let got = timeout(Duration::from_secs(5), notices_a.recv())
        .await
        .expect("a got b's receipt")
        .unwrap();
    assert_eq!(
        (got.sender.as_str(), &got.kind),
        ("bob", &NoticeKind::Receipt { seq: 1 })
    );

    // A signal crosses with its name and data, and only as a notice.
    let mut data = parlor_engine::Data::new();
    data.insert("draft".into(), serde_json::json!(true));
    let typing = Arc::new(Notice {
        room_id: room.clone(),
        sender: UserId::new("bob").unwrap(),
        at: Timestamp::now(),
        kind: NoticeKind::Signal {
            name: "typing".into(),
            data: Some(data),
        },
    });
    b.notify(Arc::clone(&typing)).await;
    let got = timeout(Duration::from_secs(5), notices_a.recv())
        .await
        .expect("a got b's signal")
        .unwrap();
    assert_eq!(*got, *typing, "every field");
    assert!(entries_a.try_recv().is_err(), "a signal is not an entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_claim_excludes_others_until_it_expires() {
    let Some(url) = redis_url("a_pending_claim_excludes_others_until_it_expires") else {
        return;
    };
    let claims = Redis::connect(&url).await.unwrap().claims();
    let room = RoomId::new(&fresh("pending")).unwrap();
    let (ann, bob) = (UserId::new("ann").unwrap(), UserId::new("bob").unwrap());
    let ttl = Duration::from_millis(300);
    assert!(claims.claim(&room, &ann, ttl).await.unwrap());
    assert!(
        !claims.claim(&room, &bob, ttl).await.unwrap(),
        "another user"
    );
    assert!(
        claims.claim(&room, &ann, ttl).await.unwrap(),
        "the same user renews"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        claims.claim(&room, &bob, ttl).await.unwrap(),
        "expired: free again"
    );
}

/// A node receives only the rooms it has subscribers for: a room's entries
/// published right after `subscribe` returns reach it (the subscription is
/// in place by then), other rooms' never do, and once the last local
/// subscriber is gone the node stops receiving the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_receives_only_the_rooms_it_follows() {
    let Some(url) = redis_url("a_node_receives_only_the_rooms_it_follows") else {
        return;
    };
    let redis = Redis::connect(&url).await.unwrap();
    let a = redis.bus(&fresh("a"), 64).await.unwrap();
    let c = redis.bus(&fresh("c"), 64).await.unwrap();
    let unfollowed = RoomId::new(&fresh("unfollowed")).unwrap();
    for round in 0..40 {
        // Fresh rooms each round: each subscribe is a new SUBSCRIBE.
        let room = RoomId::new(&fresh(&format!("followed{round}"))).unwrap();
        let mut on_c = c.subscribe(&room).await;
        let sent = entry(&room, 1);
        a.publish(&unfollowed, &[entry(&unfollowed, 1)]).await;
        a.publish(&room, std::slice::from_ref(&sent)).await;
        let got = timeout(Duration::from_secs(5), on_c.recv())
            .await
            .unwrap_or_else(|_| panic!("round {round}: the entry right after subscribe"))
            .unwrap();
        assert_eq!(*got, *sent);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.received_entries(), 40, "only the followed rooms' entries");
    // a follows none of them: its own entries never come back to it.
    assert_eq!(
        a.received_entries(),
        0,
        "nothing for a node that follows nothing"
    );
    assert_eq!(a.published_entries(), 80);
    // Every feed was dropped: within a sweep or two, nothing is followed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while c.subscribed_rooms() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "rooms unsubscribed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let room = RoomId::new(&fresh("followed-again")).unwrap();
    a.publish(&room, &[entry(&room, 1)]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        c.received_entries(),
        40,
        "an unfollowed room costs c nothing"
    );
    let mut on_c = c.subscribe(&room).await;
    let sent = entry(&room, 2);
    a.publish(&room, std::slice::from_ref(&sent)).await;
    let got = timeout(Duration::from_secs(5), on_c.recv())
        .await
        .expect("followed again")
        .unwrap();
    assert_eq!(got.seq, 2);
}
