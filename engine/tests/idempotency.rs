//! Must-show 5: concurrent duplicates of the same (sender, client_id) yield
//! one entry — the same seq and id to every caller — and one delivery.
//! Also: a send that fails with UNAVAILABLE is retried with the same
//! client_id and lands exactly once.

mod common;

use std::time::Duration;

use common::*;
use parlor_engine::Principal;
use parlor_engine::{ChatEngine, EntryKind, ErrorKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_yield_one_entry_and_one_delivery() {
    let (engine, store) = engine().await;
    let id = stored_room(&engine, "idem", 10).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let sender = join(&engine, &alice, &id).await;
    let mut watcher = join(&engine, &bob, &id).await;

    for round in 0..50 {
        let client_id = format!("dup-{round}");
        let calls: Vec<_> = (0..20)
            .map(|i| {
                let (engine, alice, id, client_id) =
                    (engine.clone(), alice.clone(), id.clone(), client_id.clone());
                tokio::spawn(async move {
                    // Even a changed body on a retry keeps the original.
                    engine
                        .send(
                            &Principal::new(alice.clone()),
                            &id,
                            &client_id,
                            &format!("try {i}"),
                        )
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut acks = Vec::new();
        for c in calls {
            acks.push(c.await.unwrap());
        }
        let first = &acks[0];
        assert!(
            acks.iter()
                .all(|a| a.seq == first.seq && a.id == first.id && a.body == first.body),
            "round {round}: every caller gets the same entry"
        );
        // A later retry too.
        let again = engine
            .send(
                &Principal::new(alice.clone()),
                &id,
                &client_id,
                "late retry",
            )
            .await
            .unwrap();
        assert_eq!((again.seq, again.id), (first.seq, first.id));
        // Delivered once: the next entry the watcher sees is this one, and
        // the one after is the next round's (checked next iteration).
        let delivered = watcher.next_entry().await.unwrap();
        assert_eq!(
            (delivered.seq, delivered.client_id.as_deref()),
            (first.seq, Some(client_id.as_str()))
        );
    }
    let texts = store
        .log(&id)
        .iter()
        .filter(|e| e.kind == EntryKind::Text)
        .count();
    assert_eq!(texts, 50, "one stored entry per client_id");
    // No duplicate was delivered in between: the watcher's next entry is
    // alice's leave.
    sender.leave().await.unwrap();
    let next = watcher.next_entry().await.unwrap();
    assert_eq!(
        (next.kind, next.sender.as_str()),
        (EntryKind::Leave, "alice"),
        "no duplicate delivery in between"
    );
    watcher.leave().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_during_an_outage_is_refused_then_retried_once() {
    let (engine, store) = engine().await;
    let id = stored_room(&engine, "outage", 10).await;
    let alice = user("alice");
    let mut m = join(&engine, &alice, &id).await;

    store.set_unavailable(true);
    let err = engine
        .send(&Principal::new(alice.clone()), &id, "c-1", "hello")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_temporary());
    assert!(
        !err.message().contains("memory store"),
        "backend text stays internal"
    );
    store.set_unavailable(false);

    let ack = engine
        .send(&Principal::new(alice.clone()), &id, "c-1", "hello")
        .await
        .unwrap();
    let again = engine
        .send(&Principal::new(alice.clone()), &id, "c-1", "hello")
        .await
        .unwrap();
    assert_eq!(ack.id, again.id);
    assert_eq!(m.next_entry().await.unwrap().id, ack.id);
    let texts = store
        .log(&id)
        .iter()
        .filter(|e| e.kind == EntryKind::Text)
        .count();
    assert_eq!(texts, 1);

    // A leave during an outage is kept and written once storage is back.
    store.set_unavailable(true);
    let leaving = tokio::spawn({
        let m = m;
        async move { m.leave().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    store.set_unavailable(false);
    leaving.await.unwrap().unwrap();
    for _ in 0..200 {
        if engine.stats().room_tasks == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_joins_matched(&store, &id);
}
