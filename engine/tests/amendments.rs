//! Edits and redactions (docs/contract.md §2, "Edits and redactions"):
//! who may, what they do to history, and — under concurrent sends, edits,
//! redactions and resumes — that every subscriber and every resumed client
//! ends with the same view as storage, gap-free and without duplicates.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::*;
use parlor_engine::{
    ChatEngine, Engine, EngineConfig, Entry, EntryKind, ErrorKind, Membership, Message, Principal,
    RoomId, SeqRange, UserId,
};
use rand::{Rng, seq::IndexedRandom};

fn who(name: &str) -> Principal {
    Principal::new(user(name))
}

async fn history(engine: &Engine, room: &RoomId) -> Vec<Entry> {
    engine
        .history(
            &Principal::service(user("ops")),
            room,
            SeqRange::after(0, 500),
        )
        .await
        .unwrap()
        .entries
}

#[tokio::test]
async fn a_sender_edits_and_history_shows_the_latest_body() {
    let (engine, _) = engine().await;
    let id = stored_room(&engine, "r", 10).await;
    let mut ann = join(&engine, &user("ann"), &id).await;
    let _bob = join(&engine, &user("bob"), &id).await;
    let sent = engine.send(&who("ann"), &id, "c1", "helo").await.unwrap();

    let edit = engine
        .edit(
            &who("ann"),
            &id,
            sent.seq,
            Some("e1"),
            Message::text("hello"),
        )
        .await
        .unwrap();
    assert_eq!(edit.kind, EntryKind::Edit);
    assert_eq!(edit.target_seq, Some(sent.seq));
    assert_eq!(edit.body.as_deref(), Some("hello"));
    assert!(edit.seq > sent.seq);

    // Idempotent by client_id: the first edit, nothing appended.
    let again = engine
        .edit(
            &who("ann"),
            &id,
            sent.seq,
            Some("e1"),
            Message::text("other"),
        )
        .await
        .unwrap();
    assert_eq!(
        (again.seq, again.body.as_deref()),
        (edit.seq, Some("hello"))
    );
    // A client_id of another entry is refused, not taken for an edit, and
    // the other way round: a send under an edit's client_id is not lost
    // silently.
    let err = engine
        .edit(&who("ann"), &id, sent.seq, Some("c1"), Message::text("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = engine
        .send(&who("ann"), &id, "e1", "new")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    let log = history(&engine, &id).await;
    let target = log.iter().find(|e| e.seq == sent.seq).unwrap();
    assert_eq!(target.body.as_deref(), Some("hello"));
    assert_eq!(target.edited_at, Some(edit.created_at));
    assert_eq!(log.last().unwrap().seq, edit.seq, "one edit appended");

    // Live: the text, then the edit.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = ann.next_entry().await.unwrap();
        if e.kind != EntryKind::Join {
            seen.push((e.kind, e.seq));
        }
    }
    assert_eq!(
        seen,
        [(EntryKind::Text, sent.seq), (EntryKind::Edit, edit.seq)]
    );
}

#[tokio::test]
async fn only_the_sender_edits_by_default_and_only_text() {
    let (engine, _) = engine().await;
    let id = stored_room(&engine, "r", 10).await;
    let _ann = join(&engine, &user("ann"), &id).await;
    let _bob = join(&engine, &user("bob"), &id).await;
    let sent = engine.send(&who("ann"), &id, "c1", "mine").await.unwrap();

    for (caller, code) in [
        (who("bob"), ErrorKind::Forbidden),
        // The owner runs the room; it does not rewrite what people said.
        (who("owner"), ErrorKind::Forbidden),
    ] {
        let err = engine
            .edit(&caller, &id, sent.seq, None, Message::text("theirs"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), code, "{}", caller.user);
    }
    // A service may.
    engine
        .edit(
            &Principal::service(user("ops")),
            &id,
            sent.seq,
            None,
            Message::text("fixed"),
        )
        .await
        .unwrap();
    // Not a join, not beyond the log, not an absent room.
    let join_seq = history(&engine, &id)
        .await
        .iter()
        .find(|e| e.kind == EntryKind::Join)
        .unwrap()
        .seq;
    let err = engine
        .edit(&who("ann"), &id, join_seq, None, Message::text("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = engine
        .edit(&who("ann"), &id, 10_000, None, Message::text("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::EntryNotFound);
    let err = engine
        .edit(&who("ann"), &room("nowhere"), 1, None, Message::text("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RoomNotFound);
    // A send's body rules.
    let err = engine
        .edit(&who("ann"), &id, sent.seq, None, Message::text("  "))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let big = "x".repeat(engine.config().max_message_bytes + 1);
    let err = engine
        .edit(&who("ann"), &id, sent.seq, None, Message::text(big))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MessageTooLarge);
}

#[tokio::test]
async fn a_redaction_erases_the_message_and_its_edits() {
    let (engine, store) = engine().await;
    let id = stored_room(&engine, "r", 10).await;
    let _ann = join(&engine, &user("ann"), &id).await;
    let _bob = join(&engine, &user("bob"), &id).await;
    let sent = engine
        .send(&who("ann"), &id, "c1", "secret one")
        .await
        .unwrap();
    engine
        .edit(
            &who("ann"),
            &id,
            sent.seq,
            None,
            Message::text("secret two"),
        )
        .await
        .unwrap();

    let err = engine
        .redact(&who("bob"), &id, sent.seq, None)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Forbidden,
        "not bob's, bob no moderator"
    );

    let redaction = engine
        .redact(&who("owner"), &id, sent.seq, Some("spam"))
        .await
        .unwrap();
    assert_eq!(redaction.kind, EntryKind::Redaction);
    assert_eq!(redaction.target_seq, Some(sent.seq));
    assert_eq!(redaction.redaction_reason.as_deref(), Some("spam"));

    // Nothing of it is stored any more, anywhere in the log.
    for e in store.log(&id) {
        for text in [e.body.as_deref(), e.data.as_ref().map(|_| "data")] {
            assert!(
                text.is_none_or(|t| !t.contains("secret")),
                "{} at {} still holds it",
                e.kind,
                e.seq
            );
        }
        if e.seq == sent.seq || e.kind == EntryKind::Edit {
            assert!(e.redacted, "{} at {} is marked", e.kind, e.seq);
        }
    }
    // A second redaction answers the first; an edit is refused now.
    let again = engine
        .redact(&Principal::service(user("ops")), &id, sent.seq, None)
        .await
        .unwrap();
    assert_eq!(again.seq, redaction.seq);
    let err = engine
        .edit(&who("ann"), &id, sent.seq, None, Message::text("back"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // Membership entries and amendments are not messages.
    let err = engine
        .redact(&who("owner"), &id, redaction.seq, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = engine
        .redact(&who("owner"), &id, 1, Some(&"x".repeat(501)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "reason too long");
}

#[tokio::test]
async fn a_closed_room_still_takes_a_redaction_but_no_edit() {
    let (engine, _) = engine().await;
    let id = stored_room(&engine, "r", 10).await;
    let ann = join(&engine, &user("ann"), &id).await;
    let sent = engine.send(&who("ann"), &id, "c1", "bye").await.unwrap();
    drop(ann);
    engine
        .close_room(&Principal::service(user("ops")), &id, false)
        .await
        .unwrap();
    let err = engine
        .edit(&who("ann"), &id, sent.seq, None, Message::text("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RoomClosed);
    engine
        .redact(&who("ann"), &id, sent.seq, None)
        .await
        .unwrap();
}

/// What a client shows: each message's body (None once redacted), folded
/// from the entries it received, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct View {
    messages: BTreeMap<u64, Option<String>>,
}

impl View {
    fn apply(&mut self, e: &Entry) {
        match e.kind {
            EntryKind::Text | EntryKind::System => {
                self.messages
                    .insert(e.seq, if e.redacted { None } else { e.body.clone() });
            }
            EntryKind::Edit => {
                let target = e.target_seq.unwrap();
                if let Some(Some(body)) = self.messages.get_mut(&target)
                    && !e.redacted
                {
                    *body = e.body.clone().unwrap();
                }
            }
            EntryKind::Redaction => {
                self.messages.insert(e.target_seq.unwrap(), None);
            }
            _ => {}
        }
    }

    /// The view storage holds now.
    fn of(log: &[Entry]) -> View {
        let mut view = View::default();
        for e in log.iter().filter(|e| e.kind.is_message()) {
            view.apply(e);
        }
        view
    }
}

/// Reads `m` until it has delivered `last`, checking seqs are consecutive.
async fn drain(m: &mut Membership, from: u64, last: u64) -> View {
    let mut view = View::default();
    let mut expect = from + 1;
    while expect <= last {
        let e = tokio::time::timeout(Duration::from_secs(10), m.next_entry())
            .await
            .expect("stream stalled")
            .unwrap();
        assert_eq!(e.seq, expect, "gap or duplicate");
        expect += 1;
        view.apply(&e);
    }
    view
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_edits_redactions_and_resumes_end_with_one_view() {
    for round in 0..3 {
        let mut rng = rng(&format!("amendments round {round}"));
        let (engine, _) = engine_with(EngineConfig::default().live_buffer(16)).await;
        let id = stored_room(&engine, "r", 50).await;
        let users: Vec<UserId> = (0..6).map(|i| user(format!("u{i}"))).collect();
        let mut seats = Vec::new();
        for u in &users {
            seats.push(join(&engine, u, &id).await);
        }
        // Subscribers from before the first message: each must end with
        // storage's view, whether it read live or fell back to storage.
        let mut watching = Vec::new();
        for i in 0..3 {
            let name = user(format!("w{i}"));
            watching.push((join(&engine, &name, &id).await, name));
        }

        let writers: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let engine = engine.clone();
                let id = id.clone();
                let u = u.clone();
                let seed: u64 = rng.random();
                tokio::spawn(async move {
                    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
                    let me = Principal::new(u.clone());
                    let mut mine: Vec<u64> = Vec::new();
                    for n in 0..40 {
                        match rng.random_range(0..10) {
                            0..5 => {
                                let e = engine
                                    .send(&me, &id, &format!("{i}-{n}"), &format!("{u} says {n}"))
                                    .await
                                    .unwrap();
                                mine.push(e.seq);
                            }
                            5..8 if !mine.is_empty() => {
                                let target = *mine.choose(&mut rng).unwrap();
                                let r = engine
                                    .edit(
                                        &me,
                                        &id,
                                        target,
                                        None,
                                        Message::text(format!("{u} edits {n}")),
                                    )
                                    .await;
                                // A redaction may have won the race.
                                if let Err(err) = r {
                                    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
                                }
                            }
                            _ if !mine.is_empty() => {
                                let target = *mine.choose(&mut rng).unwrap();
                                engine.redact(&me, &id, target, None).await.unwrap();
                            }
                            // (`mine` may hold messages the moderator redacted:
                            // editing those is refused, as asserted above.)
                            _ => {}
                        }
                    }
                })
            })
            .collect();
        // A moderator (the service) redacts others' messages meanwhile: its
        // redactions race the senders' own edits, which the store refuses
        // once the redaction is in.
        let moderator = {
            let engine = engine.clone();
            let id = id.clone();
            let seed: u64 = rng.random();
            tokio::spawn(async move {
                let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(seed);
                let ops = Principal::service(user("ops"));
                for _ in 0..30 {
                    let page = engine
                        .history(&ops, &id, SeqRange::default())
                        .await
                        .unwrap()
                        .entries;
                    let texts: Vec<u64> = page
                        .iter()
                        .filter(|e| e.kind == EntryKind::Text)
                        .map(|e| e.seq)
                        .collect();
                    if let Some(&target) = texts.choose(&mut rng) {
                        engine.redact(&ops, &id, target, Some("mod")).await.unwrap();
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        // Resumers: join mid-way from the start of the log, while it changes.
        let resumers: Vec<_> = (0..3)
            .map(|i| {
                let engine = engine.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(5 * i)).await;
                    let name = user(format!("r{i}"));
                    let t = engine
                        .reserve(&Principal::new(name.clone()), &id, None)
                        .await
                        .unwrap();
                    engine
                        .commit(&Principal::new(name), &t.ticket, Some(0))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        moderator.await.unwrap();
        let mut resumed = Vec::new();
        for r in resumers {
            resumed.push(r.await.unwrap());
        }
        let last = engine
            .room(&who("u0"), &id)
            .await
            .unwrap()
            .unwrap()
            .last_seq;
        let log = history_all(&engine, &id).await;
        assert_eq!(log.len() as u64, last, "gap-free from 1");
        assert!(log.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
        let stored = View::of(&log);
        assert!(
            stored.messages.values().any(Option::is_none),
            "some redacted"
        );

        for (m, name) in &mut watching {
            let from = m.joined().last_seq;
            let view = drain(m, from, last).await;
            assert_eq!(view, stored, "watcher {name} (joined at {from})");
        }
        for m in &mut resumed {
            let view = drain(m, 0, last).await;
            assert_eq!(view, stored, "a client resumed from 0");
        }
    }
}

/// Every entry of the log (paging by 500).
async fn history_all(engine: &Engine, room: &RoomId) -> Vec<Entry> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |e: &Entry| e.seq);
        let page = engine
            .history(
                &Principal::service(user("ops")),
                room,
                SeqRange::after(after, 500),
            )
            .await
            .unwrap()
            .entries;
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}
