//! The Store conformance suite: what every [`Store`] must do, checked the
//! same way for every backend (memory, SQLite, Postgres).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn parlor_engine::Store>) {
//! parlor_engine::testkit::conformance::run(store).await;
//! # }
//! ```
//!
//! Each check uses room ids with a fresh random prefix, so the suite can run
//! against a database that outlives the test (Postgres in CI) and alongside
//! other tests. A failed check panics with what it expected.

use std::{collections::HashSet, sync::Arc};

use crate::{
    entry::{EntryKind, NewEntry, SeqRange},
    error::ErrorKind,
    ids::{RoomId, UserId},
    ports::{Appended, CreateOutcome, Store},
    room::StoredRoom,
};

/// Runs every check against `store`.
pub async fn run(store: Arc<dyn Store>) {
    let prefix = format!("conf{:08x}", rand::random::<u32>());
    let p = prefix.as_str();
    create_is_an_insert(store.as_ref(), p).await;
    append_assigns_gap_free_seqs(store.as_ref(), p).await;
    text_is_idempotent_by_sender_and_client_id(store.as_ref(), p).await;
    a_failed_batch_writes_nothing(store.as_ref(), p).await;
    ranges_read_ascending(store.as_ref(), p).await;
    open_members_follow_the_log(store.as_ref(), p).await;
    fields_round_trip(store.as_ref(), p).await;
    concurrent_appends_stay_gap_free(Arc::clone(&store), p).await;
    owner_and_privacy_round_trip(store.as_ref(), p).await;
    invitations_are_a_set_per_room(store.as_ref(), p).await;
}

fn room_id(prefix: &str, name: &str) -> RoomId {
    RoomId::new(&format!("{prefix}-{name}")).expect("valid room id")
}

fn user(name: &str) -> UserId {
    UserId::new(name).expect("valid user id")
}

async fn new_room(store: &dyn Store, prefix: &str, name: &str) -> RoomId {
    let id = room_id(prefix, name);
    let room = StoredRoom {
        id: id.clone(),
        capacity: 10,
        title: Some(format!("room {name}")),
        last_seq: 0,
        owner: Some(user("owner")),
        private: false,
    };
    assert_eq!(
        store.create_room(&room).await.expect("create"),
        CreateOutcome::Created
    );
    id
}

fn text(room: &RoomId, sender: &str, client_id: &str, body: &str) -> NewEntry {
    NewEntry::text(room.clone(), user(sender), client_id, body)
}

async fn create_is_an_insert(store: &dyn Store, p: &str) {
    let id = new_room(store, p, "create").await;
    let stored = store.room(&id).await.expect("room").expect("stored");
    assert_eq!((stored.capacity, stored.last_seq), (10, 0));
    assert_eq!(stored.title.as_deref(), Some("room create"));

    // A second create with other values must not merge into the first.
    let again = StoredRoom {
        id: id.clone(),
        capacity: 99,
        title: None,
        last_seq: 0,
        owner: Some(user("intruder")),
        private: true,
    };
    match store
        .create_room(&again)
        .await
        .expect("second create answers")
    {
        CreateOutcome::AlreadyExists(existing) => assert_eq!(existing, stored),
        other => panic!("a duplicate create must be reported, got {other:?}"),
    }
    assert_eq!(store.room(&id).await.unwrap().unwrap(), stored, "unchanged");
    assert!(store.room(&room_id(p, "absent")).await.unwrap().is_none());
}

async fn append_assigns_gap_free_seqs(store: &dyn Store, p: &str) {
    let a = new_room(store, p, "seq-a").await;
    let b = new_room(store, p, "seq-b").await;
    let batch = vec![
        NewEntry::membership(a.clone(), user("u1"), EntryKind::Join),
        text(&a, "u1", "c1", "one"),
        text(&b, "u2", "c1", "other room"),
        text(&a, "u1", "c2", "two"),
    ];
    let out = store.append(&batch).await.expect("append");
    let seqs: Vec<_> = out
        .iter()
        .map(|o| (o.is_new(), o.entry().expect("stored").seq))
        .collect();
    assert_eq!(
        seqs,
        vec![(true, 1), (true, 2), (true, 1), (true, 3)],
        "per-room seqs in batch order"
    );
    let out = store
        .append(&[text(&a, "u1", "c3", "three")])
        .await
        .unwrap();
    assert_eq!(
        out[0].entry().expect("stored").seq,
        4,
        "continues after the last batch"
    );
    assert_eq!(store.room(&a).await.unwrap().unwrap().last_seq, 4);
    assert_eq!(store.room(&b).await.unwrap().unwrap().last_seq, 1);
}

async fn text_is_idempotent_by_sender_and_client_id(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "idem").await;
    let first = store
        .append(&[text(&r, "u1", "same", "original")])
        .await
        .unwrap();
    let Appended::New(original) = &first[0] else {
        panic!("first is new")
    };

    // Again later, and twice within one batch beside a new one.
    let batch = vec![
        text(&r, "u1", "same", "changed body is ignored"),
        text(&r, "u2", "same", "another sender's own client id"),
        text(&r, "u1", "fresh", "new"),
        text(&r, "u1", "fresh", "dup within the batch"),
    ];
    let out = store.append(&batch).await.unwrap();
    assert_eq!(
        out[0],
        Appended::Existing(original.clone()),
        "same seq, id and body as stored"
    );
    assert!(out[1].is_new(), "client ids are per sender");
    assert!(out[2].is_new());
    match &out[3] {
        Appended::Existing(e) => {
            assert_eq!(
                Some(e),
                out[2].entry(),
                "dup within a batch returns its twin"
            )
        }
        other => panic!("dup within a batch must be Existing, got {other:?}"),
    }
    let log = store.entries(&r, SeqRange::after(0, 100)).await.unwrap();
    assert_eq!(log.len(), 3, "duplicates write nothing");
    assert_eq!(store.room(&r).await.unwrap().unwrap().last_seq, 3);
}

async fn a_failed_batch_writes_nothing(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "atomic").await;
    let ghost = room_id(p, "never-created");
    let batch = vec![
        text(&r, "u1", "a", "would be 1"),
        text(&ghost, "u1", "b", "no room"),
    ];
    let err = store
        .append(&batch)
        .await
        .expect_err("append to a missing room fails");
    assert_ne!(
        err.kind(),
        ErrorKind::Unavailable,
        "not a temporary failure"
    );
    assert!(
        store
            .entries(&r, SeqRange::after(0, 10))
            .await
            .unwrap()
            .is_empty(),
        "all or nothing"
    );
    assert_eq!(store.room(&r).await.unwrap().unwrap().last_seq, 0);
    let out = store.append(&[text(&r, "u1", "a", "now")]).await.unwrap();
    assert_eq!(out[0].entry().expect("stored").seq, 1, "no seq was burnt");
}

async fn ranges_read_ascending(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "ranges").await;
    let batch: Vec<_> = (1..=30)
        .map(|i| text(&r, "u1", &format!("c{i}"), &format!("m{i}")))
        .collect();
    store.append(&batch).await.unwrap();
    let seqs = |v: Vec<crate::Entry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();
    let range = |after, before, limit| SeqRange {
        after,
        before,
        limit,
    };

    assert_eq!(
        seqs(store.entries(&r, range(Some(5), None, 3)).await.unwrap()),
        vec![6, 7, 8]
    );
    assert_eq!(
        seqs(store.entries(&r, range(None, Some(10), 3)).await.unwrap()),
        vec![7, 8, 9]
    );
    assert_eq!(
        seqs(
            store
                .entries(&r, range(Some(3), Some(7), 100))
                .await
                .unwrap()
        ),
        vec![4, 5, 6]
    );
    assert_eq!(
        seqs(store.entries(&r, range(None, None, 2)).await.unwrap()),
        vec![29, 30]
    );
    assert_eq!(
        seqs(store.entries(&r, range(Some(28), None, 100)).await.unwrap()),
        vec![29, 30]
    );
    assert!(
        store
            .entries(&r, range(Some(30), None, 100))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .entries(&room_id(p, "none"), range(None, None, 5))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn open_members_follow_the_log(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "members").await;
    let m = |kind, who: &str| NewEntry::membership(r.clone(), user(who), kind);
    store
        .append(&[
            m(EntryKind::Join, "ann"),
            m(EntryKind::Join, "bob"),
            m(EntryKind::Leave, "ann"),
        ])
        .await
        .unwrap();
    store
        .append(&[
            m(EntryKind::Join, "cat"),
            m(EntryKind::Leave, "cat"),
            m(EntryKind::Join, "cat"),
        ])
        .await
        .unwrap();
    let mine: HashSet<_> = store
        .open_members()
        .await
        .unwrap()
        .into_iter()
        .filter(|(room, _)| *room == r)
        .map(|(_, u)| u.to_string())
        .collect();
    assert_eq!(mine, HashSet::from(["bob".to_string(), "cat".to_string()]));

    // A join of an open member and a leave of a closed one change nothing:
    // whoever reports a membership change twice, it is logged once.
    let before = store.room(&r).await.unwrap().unwrap().last_seq;
    let out = store
        .append(&[
            m(EntryKind::Join, "bob"),
            m(EntryKind::Leave, "ann"),
            m(EntryKind::Leave, "dan"),
            m(EntryKind::Leave, "bob"),
            m(EntryKind::Leave, "bob"),
            m(EntryKind::Join, "ann"),
        ])
        .await
        .unwrap();
    let kinds: Vec<_> = out
        .iter()
        .map(|o| o.entry().map(|e| (e.kind, e.seq - before)))
        .collect();
    assert_eq!(
        kinds,
        vec![
            None,
            None,
            None,
            Some((EntryKind::Leave, 1)),
            None,
            Some((EntryKind::Join, 2)),
        ],
        "only real changes are logged, gap-free"
    );
}

async fn fields_round_trip(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "fields").await;
    let body = "héllo 👋 — \"quotes\" \\ and\nnewlines, \t\u{1}\u{7f} controls, [\"json\", {}]";
    let sent = text(&r, "user.name@example-1", "c-ünï", body);
    store.append(std::slice::from_ref(&sent)).await.unwrap();
    let got = store.entries(&r, SeqRange::after(0, 10)).await.unwrap();
    assert_eq!(got, vec![sent.at(1)], "every field comes back as written");
}

async fn concurrent_appends_stay_gap_free(store: Arc<dyn Store>, p: &str) {
    let r = new_room(store.as_ref(), p, "concurrent").await;
    let writers = 8;
    let per = 25;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (store, r) = (Arc::clone(&store), r.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let e = text(&r, &format!("w{w}"), &format!("c{i}"), "x");
                loop {
                    match store.append(std::slice::from_ref(&e)).await {
                        Ok(_) => break,
                        Err(err) if err.is_temporary() => tokio::task::yield_now().await,
                        Err(err) => panic!("append failed: {err}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let log = store.entries(&r, SeqRange::after(0, 500)).await.unwrap();
    let seqs: Vec<_> = log.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (1..=(writers * per) as u64).collect::<Vec<_>>(),
        "gap-free under concurrent writers"
    );
}

async fn owner_and_privacy_round_trip(store: &dyn Store, p: &str) {
    let id = room_id(p, "private");
    let room = StoredRoom {
        id: id.clone(),
        capacity: 3,
        title: None,
        last_seq: 0,
        owner: Some(user("olga")),
        private: true,
    };
    store.create_room(&room).await.expect("create");
    let stored = store.room(&id).await.unwrap().expect("stored");
    assert_eq!(stored.owner, Some(user("olga")));
    assert!(stored.private);
    let public = new_room(store, p, "public").await;
    assert!(!store.room(&public).await.unwrap().unwrap().private);
    let ownerless = StoredRoom {
        id: room_id(p, "ownerless"),
        owner: None,
        ..room
    };
    store.create_room(&ownerless).await.expect("create");
    assert_eq!(
        store.room(&ownerless.id).await.unwrap().unwrap().owner,
        None
    );
}

async fn invitations_are_a_set_per_room(store: &dyn Store, p: &str) {
    let a = new_room(store, p, "invite-a").await;
    let b = new_room(store, p, "invite-b").await;
    let (ivy, jo) = (user("ivy"), user("jo"));
    assert!(!store.is_invited(&a, &ivy).await.unwrap());
    store.set_invite(&a, &ivy, true).await.expect("invite");
    store
        .set_invite(&a, &ivy, true)
        .await
        .expect("invite twice");
    assert!(store.is_invited(&a, &ivy).await.unwrap());
    assert!(!store.is_invited(&b, &ivy).await.unwrap(), "per room");
    assert!(!store.is_invited(&a, &jo).await.unwrap(), "per user");
    store.set_invite(&a, &ivy, false).await.expect("withdraw");
    store
        .set_invite(&a, &ivy, false)
        .await
        .expect("withdraw twice");
    assert!(!store.is_invited(&a, &ivy).await.unwrap());
    let absent = room_id(p, "invite-absent");
    assert_eq!(
        store
            .set_invite(&absent, &ivy, true)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::RoomNotFound
    );
}
