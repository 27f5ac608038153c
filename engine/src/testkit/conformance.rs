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
    entry::{Data, LeaveReason, Message, Timestamp},
    entry::{EntryKind, NewEntry, SeqRange},
    error::ErrorKind,
    ids::{RoomId, UserId},
    ports::{Appended, CreateOutcome, Store},
    room::{Ban, RoomPatch, StoredRoom},
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
    messages_carry_data_and_system_entries_are_idempotent(store.as_ref(), p).await;
    leave_reasons_round_trip(store.as_ref(), p).await;
    rooms_page_by_id_with_a_prefix(store.as_ref(), p).await;
    updates_change_only_what_they_name(store.as_ref(), p).await;
    close_keeps_the_log_and_purge_deletes_everything(store.as_ref(), p).await;
    moderators_and_bans_are_sets_per_room(store.as_ref(), p).await;
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
        closed: false,
        first_seq: 1,
        retention: None,
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
        closed: false,
        first_seq: 1,
        retention: None,
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
    assert_eq!(
        err.kind(),
        ErrorKind::RoomNotFound,
        "a room that is not stored (never created, or purged) is named as such"
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
        closed: false,
        first_seq: 1,
        retention: None,
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

fn data(json: &str) -> Data {
    serde_json::from_str(json).expect("a JSON object")
}

async fn messages_carry_data_and_system_entries_are_idempotent(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "data").await;
    let attached = data(r#"{"mentions":["bob"],"reply_to":3,"nested":{"ok":true,"n":1.5}}"#);
    let with_data = NewEntry::message(
        r.clone(),
        EntryKind::Text,
        user("ann"),
        "t1",
        Message::text("hi @bob").with_data(attached.clone()),
    );
    let system = NewEntry::message(
        r.clone(),
        EntryKind::System,
        user("billing"),
        "s1",
        Message {
            body: None,
            data: Some(data(r#"{"event":"paid"}"#)),
        },
    );
    let out = store
        .append(&[with_data.clone(), system.clone()])
        .await
        .unwrap();
    assert!(out.iter().all(Appended::is_new));
    let got = store.entries(&r, SeqRange::after(0, 10)).await.unwrap();
    assert_eq!(got, vec![with_data.at(1), system.clone().at(2)]);
    let again = NewEntry::message(
        r.clone(),
        EntryKind::System,
        user("billing"),
        "s1",
        Message::text("a different body"),
    );
    let out = store.append(&[again]).await.unwrap();
    assert_eq!(
        out,
        vec![Appended::Existing(system.at(2))],
        "a system entry is idempotent by (room, sender, client_id) as a text is"
    );
}

async fn leave_reasons_round_trip(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "reasons").await;
    let join = NewEntry::membership(r.clone(), user("kim"), EntryKind::Join);
    let kicked =
        NewEntry::membership(r.clone(), user("kim"), EntryKind::Leave).because(LeaveReason::Kicked);
    let out = store.append(&[join.clone(), kicked.clone()]).await.unwrap();
    assert!(out.iter().all(Appended::is_new));
    let got = store.entries(&r, SeqRange::after(0, 10)).await.unwrap();
    assert_eq!(got, vec![join.at(1), kicked.at(2)]);
    assert_eq!(got[1].reason, Some(LeaveReason::Kicked));
}

async fn rooms_page_by_id_with_a_prefix(store: &dyn Store, p: &str) {
    // Ids chosen so that `_` and `-` must match literally (a LIKE pattern
    // would read `_` as any character) and ASCII order decides.
    let list = format!("{p}-list");
    let names = ["b", "a_1", "a-2", "A", "ab", "a1"];
    for name in names {
        new_room(store, &list, name).await;
    }
    new_room(store, p, "listx").await; // shares the prefix up to "list"
    let mut want: Vec<String> = names.iter().map(|n| format!("{list}-{n}")).collect();
    want.sort();
    let prefix = format!("{list}-");
    let all = store.rooms(&prefix, None, 100).await.unwrap();
    let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, want, "every room of the prefix, ascending by id");
    let mut paged = Vec::new();
    let mut after: Option<RoomId> = None;
    loop {
        let page = store.rooms(&prefix, after.as_ref(), 4).await.unwrap();
        assert!(page.len() <= 4);
        paged.extend(page.iter().map(|r| r.id.to_string()));
        if page.len() < 4 {
            break;
        }
        after = page.last().map(|r| r.id.clone());
    }
    assert_eq!(paged, want, "pages meet with no room missing or repeated");
    let underscore = store.rooms(&format!("{list}-a_"), None, 100).await.unwrap();
    let ids: Vec<&str> = underscore.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec![format!("{list}-a_1")], "`_` matches itself only");
    let first = &all[0];
    assert_eq!(first.title.as_deref(), Some("room A"), "facts come along");
}

async fn updates_change_only_what_they_name(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "patch").await;
    let only_capacity = RoomPatch {
        title: None,
        capacity: Some(3),
        retention: None,
    };
    let got = store
        .update_room(&r, &only_capacity)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.capacity, got.title.as_deref()),
        (3, Some("room patch"))
    );
    let clear_title = RoomPatch {
        title: Some(None),
        capacity: None,
        retention: None,
    };
    let got = store.update_room(&r, &clear_title).await.unwrap().unwrap();
    assert_eq!((got.capacity, got.title.as_deref()), (3, None));
    assert_eq!(
        store.room(&r).await.unwrap().unwrap(),
        got,
        "stored as returned"
    );
    let absent = room_id(p, "patch-absent");
    assert_eq!(
        store.update_room(&absent, &clear_title).await.unwrap(),
        None
    );
}

async fn close_keeps_the_log_and_purge_deletes_everything(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "close").await;
    store
        .append(&[
            NewEntry::membership(r.clone(), user("lu"), EntryKind::Join),
            text(&r, "lu", "c1", "bye"),
        ])
        .await
        .unwrap();
    store.set_invite(&r, &user("ivy"), true).await.unwrap();
    store.set_moderator(&r, &user("mo"), true).await.unwrap();
    let ban = Ban {
        until: None,
        reason: None,
    };
    store.set_ban(&r, &user("bo"), Some(&ban)).await.unwrap();
    let listed = |rooms: Vec<StoredRoom>| rooms.iter().any(|x| x.id == r);
    assert!(listed(store.rooms(p, None, 500).await.unwrap()));

    assert!(store.close_room(&r, false).await.unwrap());
    assert!(store.close_room(&r, false).await.unwrap(), "closing twice");
    let closed = store.room(&r).await.unwrap().expect("still stored");
    assert!(closed.closed);
    assert_eq!(closed.last_seq, 2);
    assert_eq!(
        store
            .entries(&r, SeqRange::after(0, 10))
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        !listed(store.rooms(p, None, 500).await.unwrap()),
        "a closed room is not listed"
    );

    assert!(store.close_room(&r, true).await.unwrap());
    assert_eq!(store.room(&r).await.unwrap(), None);
    assert!(
        store
            .entries(&r, SeqRange::after(0, 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .open_members()
            .await
            .unwrap()
            .iter()
            .any(|(room, _)| *room == r)
    );
    assert!(!store.is_invited(&r, &user("ivy")).await.unwrap());
    assert!(!store.is_moderator(&r, &user("mo")).await.unwrap());
    assert_eq!(store.ban(&r, &user("bo")).await.unwrap(), None);
    assert!(!store.close_room(&r, true).await.unwrap(), "gone");
    // The id is free again: a new room starts a new log at seq 1.
    let again = new_room(store, p, "close").await;
    let out = store
        .append(&[text(&again, "lu", "c1", "hi")])
        .await
        .unwrap();
    assert_eq!(out[0].entry().map(|e| e.seq), Some(1));
}

async fn moderators_and_bans_are_sets_per_room(store: &dyn Store, p: &str) {
    let a = new_room(store, p, "mod-a").await;
    let b = new_room(store, p, "mod-b").await;
    let (mo, bo) = (user("mo"), user("bo"));
    assert!(!store.is_moderator(&a, &mo).await.unwrap());
    store.set_moderator(&a, &mo, true).await.unwrap();
    store.set_moderator(&a, &mo, true).await.unwrap();
    assert!(store.is_moderator(&a, &mo).await.unwrap());
    assert!(!store.is_moderator(&b, &mo).await.unwrap(), "per room");
    store.set_moderator(&a, &mo, false).await.unwrap();
    store.set_moderator(&a, &mo, false).await.unwrap();
    assert!(!store.is_moderator(&a, &mo).await.unwrap());

    assert_eq!(store.ban(&a, &bo).await.unwrap(), None);
    let first = Ban {
        until: Some(Timestamp(1_900_000_000_000)),
        reason: Some("spam — «again»".into()),
    };
    store.set_ban(&a, &bo, Some(&first)).await.unwrap();
    assert_eq!(store.ban(&a, &bo).await.unwrap(), Some(first));
    let forever = Ban {
        until: None,
        reason: None,
    };
    store.set_ban(&a, &bo, Some(&forever)).await.unwrap();
    assert_eq!(
        store.ban(&a, &bo).await.unwrap(),
        Some(forever),
        "a later ban replaces the earlier one"
    );
    assert_eq!(store.ban(&b, &bo).await.unwrap(), None, "per room");
    store.set_ban(&a, &bo, None).await.unwrap();
    store.set_ban(&a, &bo, None).await.unwrap();
    assert_eq!(store.ban(&a, &bo).await.unwrap(), None);

    let absent = room_id(p, "mod-absent");
    for err in [
        store.set_moderator(&absent, &mo, true).await.unwrap_err(),
        store
            .set_ban(&absent, &bo, Some(&forever_ban()))
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::RoomNotFound);
    }
}

fn forever_ban() -> Ban {
    Ban {
        until: None,
        reason: None,
    }
}
