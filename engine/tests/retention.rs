//! Retention (docs/contract.md §2, "Retention"): the pruner keeps a room
//! within its bound, seqs are never reused, history says where the log
//! starts, a resume from before it says `resumed: false`, and a live stream
//! overtaken by pruning ends with `HISTORY_PRUNED` instead of a silent gap.

mod common;

use std::time::{Duration, Instant};

use common::*;
use parlor_engine::{
    ChatEngine, EngineConfig, EntryKind, ErrorKind, Message, Principal, Retention, RoomPatch,
    SeqRange,
};

fn keep(n: u64) -> Retention {
    Retention {
        max_entries: Some(n),
        max_age: None,
    }
}

/// Retention on, pruned only when the test says (`prune_now`): the
/// background pass would first run an hour after start.
fn manual(retention: Retention) -> EngineConfig {
    EngineConfig::default()
        .retention(retention)
        .retention_interval(Duration::from_secs(3600))
}

fn ann() -> Principal {
    Principal::new(user("ann"))
}

#[tokio::test]
async fn a_room_keeps_its_newest_entries_and_never_reuses_a_seq() {
    let (engine, store) = engine_with(manual(keep(10))).await;
    let id = stored_room(&engine, "r", 10).await;
    let _seat = join(&engine, &user("ann"), &id).await;
    for i in 0..50 {
        engine
            .send(&ann(), &id, &format!("c{i}"), "hi")
            .await
            .unwrap();
    }
    let last = engine.room(&ann(), &id).await.unwrap().unwrap().last_seq;
    let pruned = engine.prune_now().await.unwrap();
    assert_eq!(pruned, last - 10);
    let log = store.log(&id);
    assert_eq!(log.len(), 10);
    assert_eq!(log[0].seq, last - 9);

    let info = engine.room(&ann(), &id).await.unwrap().unwrap();
    assert_eq!((info.first_seq, info.last_seq), (last - 9, last));
    let page = engine
        .history(&ann(), &id, SeqRange::after(0, 100))
        .await
        .unwrap();
    assert_eq!(page.first_seq, last - 9);
    assert_eq!(page.entries.first().unwrap().seq, last - 9);

    let next = engine.send(&ann(), &id, "after", "hi").await.unwrap();
    assert_eq!(next.seq, last + 1, "numbering goes on");
    assert_eq!(engine.prune_now().await.unwrap(), 1);
}

#[tokio::test]
async fn a_resume_from_before_the_log_says_it_was_not_resumed() {
    let (engine, _) = engine_with(manual(keep(5))).await;
    let id = stored_room(&engine, "r", 10).await;
    let _seat = join(&engine, &user("ann"), &id).await;
    for i in 0..20 {
        engine
            .send(&ann(), &id, &format!("c{i}"), "hi")
            .await
            .unwrap();
    }
    engine.prune_now().await.unwrap();
    let first = engine.room(&ann(), &id).await.unwrap().unwrap().first_seq;

    let bob = Principal::new(user("bob"));
    let t = engine.reserve(&bob, &id, None).await.unwrap();
    let mut m = engine.commit(&bob, &t.ticket, Some(5)).await.unwrap();
    assert!(!m.joined().resumed);
    assert_eq!(m.joined().first_seq, first);
    assert_eq!(m.next_entry().await.unwrap().seq, first, "from first_seq");
    drop(m);

    // From just before the log starts nothing is missed.
    let t = engine.reserve(&bob, &id, None).await.unwrap();
    let m = engine
        .commit(&bob, &t.ticket, Some(first - 1))
        .await
        .unwrap();
    assert!(m.joined().resumed);
    drop(m);
    let t = engine.reserve(&bob, &id, None).await.unwrap();
    let m = engine.commit(&bob, &t.ticket, None).await.unwrap();
    assert!(m.joined().resumed, "no after_seq: nothing asked for");
}

#[tokio::test]
async fn a_rooms_own_retention_replaces_the_servers() {
    let (engine, store) = engine_with(manual(Retention::default())).await; // keeps everything
    let id = stored_room(&engine, "r", 10).await;
    let _seat = join(&engine, &user("ann"), &id).await;
    for i in 0..30 {
        engine
            .send(&ann(), &id, &format!("c{i}"), "hi")
            .await
            .unwrap();
    }
    assert_eq!(engine.prune_now().await.unwrap(), 0, "nothing to prune");
    let owner = Principal::new(user("owner"));
    let patch = RoomPatch {
        retention: Some(Some(keep(7))),
        ..RoomPatch::default()
    };
    let info = engine.update_room(&owner, &id, &patch).await.unwrap();
    assert_eq!(info.retention, Some(keep(7)));
    engine.prune_now().await.unwrap();
    assert_eq!(store.log(&id).len(), 7);

    let instant = Retention {
        max_entries: None,
        max_age: Some(Duration::from_millis(999)),
    };
    for bad in [keep(0), instant] {
        let bad = RoomPatch {
            retention: Some(Some(bad)),
            ..RoomPatch::default()
        };
        let err = engine.update_room(&owner, &id, &bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }

    let clear = RoomPatch {
        retention: Some(None),
        ..RoomPatch::default()
    };
    let info = engine.update_room(&owner, &id, &clear).await.unwrap();
    assert_eq!(info.retention, None);
}

#[tokio::test]
async fn an_edit_does_not_keep_the_text_of_a_pruned_message() {
    // join, leave (the owner's), join, text, edit, text: keep the last two.
    let (engine, store) = engine_with(manual(keep(2))).await;
    let id = stored_room(&engine, "r", 10).await;
    let _seat = join(&engine, &user("ann"), &id).await;
    let sent = engine.send(&ann(), &id, "c", "typo").await.unwrap();
    let edit = engine
        .edit(&ann(), &id, sent.seq, None, Message::text("fixed"))
        .await
        .unwrap();
    engine.send(&ann(), &id, "d", "next").await.unwrap();
    engine.prune_now().await.unwrap();
    let log = store.log(&id);
    let kept = log
        .iter()
        .find(|e| e.seq == edit.seq)
        .expect("the edit is kept");
    assert!(kept.redacted && kept.body.is_none(), "{kept:?}");
}

#[tokio::test]
async fn the_age_bound_prunes_what_is_older() {
    let max_age = Retention {
        max_entries: None,
        max_age: Some(Duration::from_secs(1)),
    };
    let (engine, store) = engine_with(manual(max_age)).await;
    let id = stored_room(&engine, "r", 10).await;
    let _seat = join(&engine, &user("ann"), &id).await;
    for i in 0..5 {
        engine
            .send(&ann(), &id, &format!("old{i}"), "hi")
            .await
            .unwrap();
    }
    // `created_at` is the wall clock: wait it out for real.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let fresh = engine.send(&ann(), &id, "new", "hi").await.unwrap();
    engine.prune_now().await.unwrap();
    let log = store.log(&id);
    assert_eq!(log.first().map(|e| e.seq), Some(fresh.seq));
}

#[tokio::test]
async fn the_background_task_prunes_within_its_period() {
    let config = EngineConfig::default()
        .retention(keep(20))
        .retention_interval(Duration::from_millis(50))
        .prune_batch(7);
    let (engine, store) = engine_with(config).await;
    let id = stored_room(&engine, "r", 10).await;
    let _seat = join(&engine, &user("ann"), &id).await;
    for i in 0..200 {
        engine
            .send(&ann(), &id, &format!("c{i}"), "hi")
            .await
            .unwrap();
    }
    let started = Instant::now();
    while store.log(&id).len() > 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not pruned within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        store.log(&id).len(),
        20,
        "in batches of 7, down to the bound"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pass_spreads_what_the_last_one_deleted_over_nine_tenths_of_its_period() {
    let start = tokio::time::Instant::now();
    let config = EngineConfig::default()
        .retention(keep(10))
        .retention_interval(Duration::from_secs(10))
        .prune_batch(100);
    let (engine, store) = engine_with(config).await;
    let id = stored_room(&engine, "r", 10).await;
    let _seat = join(&engine, &user("ann"), &id).await;
    let send = |from: usize, count: usize| {
        let (engine, id) = (engine.clone(), id.clone());
        async move {
            for i in from..from + count {
                let client_id = format!("c{i}");
                engine.send(&ann(), &id, &client_id, "hi").await.unwrap();
            }
        }
    };
    send(0, 1_000).await;
    let first = store.log(&id).len() - 10;
    // The first pass (10 s) has no last pass to go by: only the duty cap,
    // and the in-memory store's calls take no time.
    tokio::time::sleep_until(start + Duration::from_millis(10_001)).await;
    assert_eq!(store.log(&id).len(), 10, "pruned at once");
    send(1_000, 1_500).await;
    // The second (20 s) expects `first` again and spreads them over 9 s,
    // 100 a call: call n (from 0) starts at 20 s + 9 s × 100 n / `first`.
    let after = |n: f64| {
        start + Duration::from_secs(20) + Duration::from_secs(9).mul_f64(100.0 * n / first as f64)
    };
    tokio::time::sleep_until(after(4.5)).await;
    assert_eq!(
        store.log(&id).len(),
        10 + 1_500 - 500,
        "calls 0 to 4 so far"
    );
    // Call 9 reaches what the last pass deleted (1 000 ≥ `first`); the 500
    // past it go at once, not spread over the rest of the 9 s.
    assert!((901..1_000).contains(&first), "{first}");
    tokio::time::sleep_until(after(9.0) + Duration::from_millis(5)).await;
    assert_eq!(store.log(&id).len(), 10);
}

#[tokio::test]
async fn a_stream_overtaken_by_pruning_ends_instead_of_skipping() {
    let config = manual(keep(10)).live_buffer(4);
    let (engine, _) = engine_with(config).await;
    let id = stored_room(&engine, "r", 10).await;
    let _seat = join(&engine, &user("ann"), &id).await;
    let mut slow = join(&engine, &user("bob"), &id).await;
    let from = slow.joined().last_seq;
    for i in 0..100 {
        engine
            .send(&ann(), &id, &format!("c{i}"), "hi")
            .await
            .unwrap();
    }
    engine.prune_now().await.unwrap();
    let mut delivered = from;
    let err = loop {
        match slow.next_entry().await {
            Ok(e) => {
                assert_eq!(e.seq, delivered + 1, "never a gap");
                delivered = e.seq;
            }
            Err(err) => break err,
        }
    };
    assert_eq!(err.kind(), ErrorKind::HistoryPruned);
    assert!(delivered < 100, "it could not have read everything");
}

#[tokio::test]
async fn pruning_spares_rooms_and_kinds_alike_and_history_starts_at_first_seq() {
    let (engine, store) = engine_with(manual(keep(3))).await;
    let id = stored_room(&engine, "r", 10).await;
    let seat = join(&engine, &user("ann"), &id).await;
    engine.send(&ann(), &id, "a", "one").await.unwrap();
    seat.leave().await.unwrap();
    let last = store.log(&id).last().unwrap().seq;
    engine.prune_now().await.unwrap();
    let kinds: Vec<_> = store.log(&id).iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EntryKind::Join, EntryKind::Text, EntryKind::Leave]);
    // Asked from before the log: what is stored, from first_seq.
    let owner = Principal::new(user("owner"));
    let page = engine
        .history(&owner, &id, SeqRange::after(1, 10))
        .await
        .unwrap();
    assert_eq!(page.first_seq, last - 2);
    assert_eq!(page.entries.len(), 3);
}
