//! Read markers (docs/contract.md §2, "Read markers"): monotone, unread
//! counts exact under concurrent sends and marks from several connections
//! of one user, receipts to the others and never to oneself.

mod common;

use std::time::Duration;

use common::*;
use parlor_engine::{
    ChatEngine, EntryKind, ErrorKind, Live, NoticeKind, Principal, RoomQuery, RoomSpec, SeqRange,
};
use rand::Rng;

fn who(name: &str) -> Principal {
    Principal::new(user(name))
}

#[tokio::test]
async fn a_marker_only_moves_forward_and_counts_what_others_sent() {
    let (engine, _) = engine().await;
    let id = stored_room(&engine, "r", 10).await;
    let _ann = join(&engine, &user("ann"), &id).await;
    let _bob = join(&engine, &user("bob"), &id).await;
    let mut seqs = Vec::new();
    for i in 0..4 {
        seqs.push(
            engine
                .send(&who("bob"), &id, &format!("b{i}"), "hi")
                .await
                .unwrap()
                .seq,
        );
    }
    engine.send(&who("ann"), &id, "a0", "mine").await.unwrap();

    let fresh = engine.room(&who("ann"), &id).await.unwrap().unwrap();
    let read = fresh.read.unwrap();
    assert_eq!(
        (read.last_read_seq, read.unread),
        (0, 4),
        "own and joins not counted"
    );

    let state = engine.mark_read(&who("ann"), &id, seqs[1]).await.unwrap();
    assert_eq!((state.last_read_seq, state.unread), (seqs[1], 2));
    let state = engine.mark_read(&who("ann"), &id, seqs[0]).await.unwrap();
    assert_eq!(state.last_read_seq, seqs[1], "a lower seq is ignored");

    // A redacted message is not unread any more.
    engine
        .redact(&who("bob"), &id, seqs[3], None)
        .await
        .unwrap();
    let state = engine
        .read_marker(&who("ann"), &id, &user("ann"))
        .await
        .unwrap();
    assert_eq!(state.unread, 1);

    // The listing carries it per room; a service has none.
    let page = engine
        .rooms(
            &who("ann"),
            RoomQuery {
                prefix: "",
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.rooms[0].read.unwrap().unread, 1);
    let svc = Principal::service(user("ops"));
    assert!(
        engine
            .room(&svc, &id)
            .await
            .unwrap()
            .unwrap()
            .read
            .is_none()
    );
    assert_eq!(
        engine
            .read_marker(&svc, &id, &user("ann"))
            .await
            .unwrap()
            .last_read_seq,
        seqs[1]
    );

    for (caller, seq, code) in [
        (svc.clone(), 1, ErrorKind::Forbidden),
        (who("ann"), 10_000, ErrorKind::InvalidInput),
    ] {
        let err = engine.mark_read(&caller, &id, seq).await.unwrap_err();
        assert_eq!(err.kind(), code);
    }
    let err = engine
        .read_marker(&who("bob"), &id, &user("ann"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Forbidden,
        "only a service reads others'"
    );
    let err = engine
        .mark_read(&who("ann"), &room("nowhere"), 0)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RoomNotFound);
}

#[tokio::test]
async fn a_private_room_stays_hidden_from_its_marker_route() {
    let (engine, _) = engine().await;
    let id = room("secret");
    let owner = who("owner");
    let t = engine
        .reserve(&owner, &id, Some(RoomSpec::with_capacity(4).private()))
        .await
        .unwrap();
    let _seat = engine.commit(&owner, &t.ticket, None).await.unwrap();
    let err = engine
        .read_marker(&who("eve"), &id, &user("eve"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RoomNotFound);
    let err = engine.mark_read(&who("eve"), &id, 0).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RoomNotFound);
}

#[tokio::test]
async fn a_receipt_reaches_the_others_and_not_the_reader() {
    let (engine, _) = engine().await;
    let id = stored_room(&engine, "r", 10).await;
    let ann = join(&engine, &user("ann"), &id).await;
    let bob = join(&engine, &user("bob"), &id).await;
    let sent = engine.send(&who("bob"), &id, "b", "hi").await.unwrap();
    let (_, mut ann_stream, _ann_seat) = ann.into_parts();
    let (_, mut bob_stream, _bob_seat) = bob.into_parts();
    engine.mark_read(&who("ann"), &id, sent.seq).await.unwrap();

    // Bob: the text, then the receipt.
    let notice = loop {
        match bob_stream.next_live().await.unwrap() {
            Live::Entry(_) => continue,
            Live::Notice(n) => break n,
        }
    };
    assert_eq!(notice.sender, user("ann"));
    assert_eq!(notice.kind, NoticeKind::Receipt { seq: sent.seq });
    // Ann: entries only.
    let mut kinds = Vec::new();
    while let Ok(next) =
        tokio::time::timeout(Duration::from_millis(100), ann_stream.next_live()).await
    {
        match next.unwrap() {
            Live::Entry(e) => kinds.push(e.kind),
            Live::Notice(n) => panic!("ann got her own receipt: {n:?}"),
        }
    }
    assert!(kinds.contains(&EntryKind::Text));
    // A receipt is not in the log.
    let log = engine
        .history(&who("ann"), &id, SeqRange::after(0, 100))
        .await
        .unwrap();
    assert_eq!(log.entries.last().unwrap().seq, sent.seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_counts_stay_exact_under_concurrent_sends_and_marks() {
    for round in 0..3 {
        let mut rng = rng(&format!("unread round {round}"));
        let (engine, _) = engine().await;
        let id = stored_room(&engine, "r", 20).await;
        let _reader = join(&engine, &user("ann"), &id).await;
        let senders: Vec<_> = (0..4).map(|i| user(format!("s{i}"))).collect();
        let mut seats = Vec::new();
        for s in &senders {
            seats.push(join(&engine, s, &id).await);
        }
        let sends: Vec<_> = senders
            .iter()
            .map(|s| {
                let engine = engine.clone();
                let id = id.clone();
                let me = Principal::new(s.clone());
                tokio::spawn(async move {
                    for n in 0..50 {
                        engine.send(&me, &id, &format!("{n}"), "hi").await.unwrap();
                    }
                })
            })
            .collect();
        // Several connections of one reader, marking what they have seen.
        let marks: Vec<_> = (0..4)
            .map(|_| {
                let engine = engine.clone();
                let id = id.clone();
                let seed: u64 = rng.random();
                tokio::spawn(async move {
                    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
                    let mut highest = 0;
                    for _ in 0..30 {
                        let head = engine
                            .room(&who("ann"), &id)
                            .await
                            .unwrap()
                            .unwrap()
                            .last_seq;
                        let seq = rng.random_range(0..=head);
                        let state = engine.mark_read(&who("ann"), &id, seq).await.unwrap();
                        assert!(state.last_read_seq >= seq, "monotone");
                        highest = highest.max(seq);
                        tokio::task::yield_now().await;
                    }
                    highest
                })
            })
            .collect();
        for s in sends {
            s.await.unwrap();
        }
        let mut highest = 0;
        for m in marks {
            highest = highest.max(m.await.unwrap());
        }
        let state = engine
            .read_marker(&who("ann"), &id, &user("ann"))
            .await
            .unwrap();
        assert_eq!(state.last_read_seq, highest, "the highest mark wins");
        let log = engine
            .history(
                &Principal::service(user("ops")),
                &id,
                SeqRange::after(highest, 500),
            )
            .await
            .unwrap()
            .entries;
        let expected = log
            .iter()
            .filter(|e| e.kind == EntryKind::Text && e.sender != user("ann"))
            .count() as u64;
        assert_eq!(state.unread, expected);
    }
}
