//! docs/contract.md §2 ticket rules: single use, the user's own, unforgeable,
//! expired told apart from invalid, and a leave invalidates unused tickets.
//! Plus the input rules of §3 (ids, bodies, ranges) and NOT_A_MEMBER.

mod common;

use std::time::Duration;

use common::*;
use parlor_engine::Principal;
use parlor_engine::{ChatEngine, EngineConfig, ErrorKind, RoomSpec, SeqRange};

#[tokio::test(start_paused = true)]
async fn tickets_are_single_use_personal_and_unforgeable() {
    let (engine, _) = engine().await;
    let id = stored_room(&engine, "tix", 5).await;
    let (ann, bob) = (user("ann"), user("bob"));
    let code = |r: Result<parlor_engine::Membership, parlor_engine::Error>| r.unwrap_err().kind();

    let t = engine
        .reserve(&Principal::new(ann.clone()), &id, None)
        .await
        .unwrap();
    assert_eq!(
        code(
            engine
                .commit(&Principal::new(bob.clone()), &t.ticket, None)
                .await
        ),
        ErrorKind::TicketInvalid,
        "another user's"
    );
    let m = engine
        .commit(&Principal::new(ann.clone()), &t.ticket, None)
        .await
        .unwrap();
    assert_eq!(
        code(
            engine
                .commit(&Principal::new(ann.clone()), &t.ticket, None)
                .await
        ),
        ErrorKind::TicketInvalid,
        "reused"
    );
    let mut forged = t.ticket.clone().into_bytes();
    forged[3] = if forged[3] == b'x' { b'y' } else { b'x' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(
        code(
            engine
                .commit(&Principal::new(ann.clone()), &forged, None)
                .await
        ),
        ErrorKind::TicketInvalid,
        "forged"
    );
    assert_eq!(
        code(
            engine
                .commit(&Principal::new(ann.clone()), "garbage", None)
                .await
        ),
        ErrorKind::TicketInvalid
    );
    assert!(t.ticket.len() >= 22, "at least 128 bits");

    // A leave invalidates the user's unused tickets for the room.
    let unused = engine
        .reserve(&Principal::new(ann.clone()), &id, None)
        .await
        .unwrap();
    m.leave().await.unwrap();
    assert_eq!(
        code(
            engine
                .commit(&Principal::new(ann.clone()), &unused.ticket, None)
                .await
        ),
        ErrorKind::TicketInvalid
    );

    // Expired is told apart, before and after the sweep.
    let late = engine
        .reserve(&Principal::new(bob.clone()), &id, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        code(
            engine
                .commit(&Principal::new(bob.clone()), &late.ticket, None)
                .await
        ),
        ErrorKind::TicketExpired
    );
    let late = engine
        .reserve(&Principal::new(bob.clone()), &id, None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(20)).await;
    engine.run_maintenance().await;
    assert_eq!(
        code(
            engine
                .commit(&Principal::new(bob.clone()), &late.ticket, None)
                .await
        ),
        ErrorKind::TicketExpired
    );
    settle().await;
    assert_nothing_held(&engine.stats());
}

#[tokio::test(start_paused = true)]
async fn tickets_from_another_engine_secret_are_invalid() {
    let (a, _) = engine_with(EngineConfig::default().ticket_secret(*b"one")).await;
    let (b, _) = engine_with(EngineConfig::default().ticket_secret(*b"two")).await;
    let ann = user("ann");
    let id = room("x");
    let t = a
        .reserve(
            &Principal::new(ann.clone()),
            &id,
            Some(RoomSpec::with_capacity(1)),
        )
        .await
        .unwrap();
    assert_eq!(
        b.commit(&Principal::new(ann.clone()), &t.ticket, None)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::TicketInvalid
    );
}

#[tokio::test(start_paused = true)]
async fn bad_input_is_refused_with_the_contract_codes() {
    let (engine, store) = engine_with(
        EngineConfig::default()
            .max_capacity(50)
            .max_message_bytes(16),
    )
    .await;
    let ann = user("ann");
    let id = room("inputs");
    let bad = |spec: RoomSpec| {
        let engine = engine.clone();
        let (ann, id) = (ann.clone(), id.clone());
        async move {
            engine
                .reserve(&Principal::new(ann.clone()), &id, Some(spec))
                .await
                .unwrap_err()
                .kind()
        }
    };
    assert_eq!(
        bad(RoomSpec::with_capacity(0)).await,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        bad(RoomSpec::with_capacity(51)).await,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        bad(RoomSpec {
            capacity: 2,
            title: Some("t".repeat(201)),
            private: false,
        })
        .await,
        ErrorKind::InvalidInput
    );
    assert_eq!(
        engine.stats().pending_rooms,
        0,
        "a refused create holds nothing"
    );

    let t = engine
        .reserve(
            &Principal::new(ann.clone()),
            &id,
            Some(RoomSpec {
                capacity: 2,
                title: Some("é".repeat(200)),
                private: false,
            }),
        )
        .await
        .unwrap();
    let mut m = engine
        .commit(&Principal::new(ann.clone()), &t.ticket, None)
        .await
        .unwrap();
    let send = |client_id: &'static str, body: String| {
        let engine = engine.clone();
        let (ann, id) = (ann.clone(), id.clone());
        async move {
            engine
                .send(&Principal::new(ann.clone()), &id, client_id, &body)
                .await
                .map(|e| e.seq)
                .map_err(|e| e.kind())
        }
    };
    assert_eq!(
        send("c", "x".repeat(17)).await,
        Err(ErrorKind::MessageTooLarge)
    );
    assert_eq!(
        send("c", "é".repeat(9)).await,
        Err(ErrorKind::MessageTooLarge),
        "bytes, not chars"
    );
    assert_eq!(
        send("c", " \n\t ".into()).await,
        Err(ErrorKind::InvalidInput)
    );
    assert_eq!(send("c", String::new()).await, Err(ErrorKind::InvalidInput));
    assert_eq!(send("", "hi".into()).await, Err(ErrorKind::InvalidInput));
    assert_eq!(
        send("c", "a\0b".into()).await,
        Err(ErrorKind::InvalidInput),
        "no storage keeps U+0000"
    );
    assert_eq!(send("c\0", "hi".into()).await, Err(ErrorKind::InvalidInput));
    assert_eq!(
        send(Box::leak("k".repeat(65).into_boxed_str()), "hi".into()).await,
        Err(ErrorKind::InvalidInput)
    );
    assert_eq!(
        send("c", "x".repeat(16)).await,
        Ok(2),
        "exactly the limit is fine"
    );
    assert_eq!(m.next_entry().await.unwrap().seq, 2);
    assert_eq!(store.log(&id).len(), 2, "refused sends stored nothing");

    // Not a member: no seat at all, or a seat that is only reserved.
    let bob = user("bob");
    assert_eq!(
        engine
            .send(&Principal::new(bob.clone()), &id, "c", "hi")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotAMember
    );
    assert_eq!(
        engine
            .history(&Principal::new(bob.clone()), &id, SeqRange::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotAMember
    );
    engine
        .reserve(&Principal::new(bob.clone()), &id, None)
        .await
        .unwrap();
    assert_eq!(
        engine
            .send(&Principal::new(bob.clone()), &id, "c", "hi")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotAMember
    );
    // docs/contract.md §3 (issue 20): history needs a member's seat; a
    // reservation alone is not enough.
    assert_eq!(
        engine
            .history(&Principal::new(bob.clone()), &id, SeqRange::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotAMember,
        "history needs a member, not a reservation"
    );
    assert_eq!(
        engine
            .send(&Principal::new(ann.clone()), &room("nowhere"), "c", "hi")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotAMember
    );

    let limit = |limit| SeqRange {
        limit,
        ..SeqRange::default()
    };
    assert_eq!(
        engine
            .history(&Principal::new(ann.clone()), &id, limit(0))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        engine
            .history(&Principal::new(ann.clone()), &id, limit(501))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        engine
            .history(&Principal::new(ann.clone()), &id, limit(500))
            .await
            .unwrap()
            .entries
            .len(),
        2
    );

    // after_seq beyond the log is refused, and holds nothing.
    let t = engine
        .reserve(&Principal::new(ann.clone()), &id, None)
        .await
        .unwrap();
    assert_eq!(
        engine
            .commit(&Principal::new(ann.clone()), &t.ticket, Some(99))
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    m.leave().await.unwrap();
}
