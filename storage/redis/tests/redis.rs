//! The Redis bus and claims against a real Redis (`PARLOR_TEST_REDIS_URL`;
//! a skip line without it): entries published on one node reach another
//! node's subscribers once, in order, with every field (data, system
//! entries, leave reasons), and not their own node twice; a
//! pending room's claim excludes other users until it expires.

use std::{sync::Arc, time::Duration};

use parlor_engine::{
    Bus, Data, Entry, EntryKind, LeaveReason, PendingClaims, RoomId, Timestamp, UserId,
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
/// its reason.
fn entry(room: &RoomId, seq: u64) -> Arc<Entry> {
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
    Arc::new(Entry {
        room_id: room.clone(),
        seq,
        id: uuid::Uuid::now_v7(),
        kind,
        sender: UserId::new(sender).unwrap(),
        client_id,
        body,
        data,
        reason,
        created_at: Timestamp::now(),
    })
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
    let mut on_a = a.subscribe(&room);
    let mut on_b = b.subscribe(&room);
    let sent: Vec<_> = (1..=20).map(|seq| entry(&room, seq)).collect();
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
