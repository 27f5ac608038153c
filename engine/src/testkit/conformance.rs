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

use std::{collections::HashSet, sync::Arc, time::Duration};

use crate::{
    entry::{Data, Entry, LeaveReason, Message, Seq, Timestamp},
    entry::{EntryKind, NewEntry, SeqRange},
    error::ErrorKind,
    events::ControlEvent,
    ids::{RoomId, UserId},
    ports::{Appended, CreateOutcome, CursorMove, PruneBound, Pruned, Store, WebhookCursor},
    room::{Ban, ReadState, Retention, RoomPatch, StoredRoom},
};

/// Runs every check against `store`.
pub async fn run(store: Arc<dyn Store>) {
    let prefix = format!("conf{:08x}", rand::random::<u32>());
    let p = prefix.as_str();
    // A hook left registered in a shared database (by a suite that was
    // killed, say) would hold retention back: the suite starts with none.
    store.set_webhooks(&[]).await.expect("no webhooks");
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
    edits_replace_their_target(store.as_ref(), p).await;
    redactions_erase_the_message_and_its_edits(store.as_ref(), p).await;
    amendments_follow_the_batch_order(store.as_ref(), p).await;
    prune_deletes_a_prefix_and_never_reuses_seqs(store.as_ref(), p).await;
    prune_stops_at_the_first_entry_the_bound_keeps(store.as_ref(), p).await;
    prune_erases_the_edits_of_pruned_messages(store.as_ref(), p).await;
    prune_spares_a_room_created_again_since_its_bound(store.as_ref(), p).await;
    prune_rooms_leaves_each_room_a_suffix_within_the_budget(store.as_ref(), p).await;
    retained_rooms_are_the_candidates_for_pruning(store.as_ref(), p).await;
    retention_is_set_and_cleared_by_update(store.as_ref(), p).await;
    read_markers_are_monotone_and_count_what_others_said(store.as_ref(), p).await;
    // Last: it registers hooks, which the other checks must not see.
    webhook_streams_merge_the_log_and_the_outbox(store.as_ref(), p).await;
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
    assert_eq!(
        (stored.first_seq, stored.retention),
        (1, None),
        "a new log starts at 1 and follows the server's retention"
    );
    let numbered = StoredRoom {
        last_seq: 9,
        first_seq: 5,
        ..StoredRoom::new(room_id(p, "create-numbered"), 2)
    };
    store.create_room(&numbered).await.expect("create");
    let got = store.room(&numbered.id).await.unwrap().expect("stored");
    assert_eq!(
        (got.first_seq, got.last_seq),
        (1, 0),
        "whatever the caller says, a new log is empty"
    );

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
    let amendment = NewEntry::redaction(ghost.clone(), user("u1"), 1, None);
    let err = store
        .append(&[amendment])
        .await
        .expect_err("an amendment in a missing room fails the batch");
    assert_eq!(err.kind(), ErrorKind::RoomNotFound);
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
    store.set_read_marker(&r, &user("lu"), 2).await.unwrap();
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
    assert_eq!(
        store
            .read_states(&user("lu"), std::slice::from_ref(&r))
            .await
            .unwrap(),
        vec![ReadState::default()]
    );
    assert!(!store.close_room(&r, true).await.unwrap(), "gone");
    // The id is free again: a new room starts a new log at seq 1.
    let again = new_room(store, p, "close").await;
    let out = store
        .append(&[text(&again, "lu", "c1", "hi")])
        .await
        .unwrap();
    assert_eq!(out[0].entry().map(|e| e.seq), Some(1));
    assert_eq!(
        store.read_states(&user("lu"), &[again]).await.unwrap(),
        vec![ReadState::default()],
        "no marker outlives a purge"
    );
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

/// The whole log of `room` (at most 500 entries), ascending.
async fn log(store: &dyn Store, room: &RoomId) -> Vec<Entry> {
    store
        .entries(room, SeqRange::after(0, 500))
        .await
        .expect("entries")
}

/// The entry at `seq` of `room`.
async fn entry_at(store: &dyn Store, room: &RoomId, seq: Seq) -> Entry {
    log(store, room)
        .await
        .into_iter()
        .find(|e| e.seq == seq)
        .unwrap_or_else(|| panic!("no entry at {seq}"))
}

/// Appends `entry` alone and answers its outcome.
async fn one(store: &dyn Store, entry: NewEntry) -> Appended {
    let mut out = store.append(&[entry]).await.expect("append");
    assert_eq!(out.len(), 1, "one outcome per entry");
    out.remove(0)
}

fn edit(room: &RoomId, sender: &str, target: Seq, client_id: &str, body: &str) -> NewEntry {
    NewEntry::edit(
        room.clone(),
        user(sender),
        target,
        Some(client_id),
        Message::text(body),
    )
}

fn redaction(room: &RoomId, sender: &str, target: Seq, reason: Option<&str>) -> NewEntry {
    NewEntry::redaction(
        room.clone(),
        user(sender),
        target,
        reason.map(str::to_owned),
    )
}

fn system(room: &RoomId, client_id: &str, body: &str) -> NewEntry {
    NewEntry::message(
        room.clone(),
        EntryKind::System,
        user("svc"),
        client_id,
        Message::text(body),
    )
}

fn membership(room: &RoomId, who: &str, kind: EntryKind) -> NewEntry {
    NewEntry::membership(room.clone(), user(who), kind)
}

async fn last_seq(store: &dyn Store, room: &RoomId) -> Seq {
    store.room(room).await.unwrap().expect("stored").last_seq
}

async fn edits_replace_their_target(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "edits").await;
    let first = text(&r, "ann", "m1", "first");
    store
        .append(&[
            first.clone(),
            membership(&r, "bob", EntryKind::Join),
            system(&r, "s1", "from the service"),
            text(&r, "ann", "m2", "second"),
        ])
        .await
        .unwrap();

    // An edit is an entry of its own; its target reads back with the new
    // body and data, and edited_at = the edit's created_at.
    let mut fix = NewEntry::edit(
        r.clone(),
        user("ann"),
        1,
        Some("e1"),
        Message::text("first, fixed").with_data(data(r#"{"k":1}"#)),
    );
    fix.created_at = Timestamp(1_800_000_000_123);
    let out = one(store, fix.clone()).await;
    assert_eq!(
        out,
        Appended::New(fix.clone().at(5)),
        "the edit, at the next seq"
    );
    let target = entry_at(store, &r, 1).await;
    assert_eq!(
        target,
        Entry {
            body: Some("first, fixed".into()),
            data: Some(data(r#"{"k":1}"#)),
            edited_at: Some(Timestamp(1_800_000_000_123)),
            ..first.clone().at(1)
        },
        "the target keeps its seq, id, client_id and time; body and data are the edit's"
    );
    assert_eq!(
        entry_at(store, &r, 5).await,
        fix.clone().at(5),
        "the edit as written"
    );

    // Idempotent by (room, sender, client_id): a repeat answers the first
    // edit, later or within one batch, and writes nothing.
    let repeat = edit(&r, "ann", 1, "e1", "a repeat's body is ignored");
    assert_eq!(
        one(store, repeat).await,
        Appended::Existing(fix.clone().at(5))
    );
    let out = store
        .append(&[
            edit(&r, "ann", 4, "e2", "second, fixed"),
            edit(&r, "ann", 4, "e2", "the same edit again"),
        ])
        .await
        .unwrap();
    assert!(out[0].is_new());
    assert_eq!(
        out[1],
        Appended::Existing(out[0].entry().unwrap().clone()),
        "a repeat within the batch answers its twin"
    );
    assert_eq!(last_seq(store, &r).await, 6);
    assert_eq!(
        entry_at(store, &r, 4).await.body.as_deref(),
        Some("second, fixed")
    );
    assert_eq!(
        entry_at(store, &r, 1).await.body.as_deref(),
        Some("first, fixed"),
        "a repeat changes nothing"
    );

    // A client id is one entry's: an edit naming a text's answers the text.
    match one(store, edit(&r, "ann", 4, "m1", "collides")).await {
        Appended::Existing(e) => assert_eq!((e.kind, e.seq), (EntryKind::Text, 1)),
        other => panic!("a client id used by a text must answer it, got {other:?}"),
    }

    // A later edit wins.
    let mut again = edit(&r, "ann", 1, "e3", "first, again");
    again.created_at = Timestamp(1_800_000_000_999);
    assert!(one(store, again).await.is_new());
    let target = entry_at(store, &r, 1).await;
    assert_eq!(
        (target.body.as_deref(), target.data, target.edited_at),
        (
            Some("first, again"),
            None,
            Some(Timestamp(1_800_000_000_999))
        ),
        "the latest edit's body and data, wholly"
    );

    // Only a stored text entry can be edited.
    let head = last_seq(store, &r).await;
    for (target, why, want) in [
        (2, "a join", ErrorKind::InvalidInput),
        (3, "a system entry", ErrorKind::InvalidInput),
        (5, "an edit", ErrorKind::InvalidInput),
        (0, "seq 0", ErrorKind::EntryNotFound),
        (head + 1, "beyond the head", ErrorKind::EntryNotFound),
    ] {
        assert_eq!(
            one(store, edit(&r, "ann", target, "refused", "no")).await,
            Appended::Refused(want),
            "an edit of {why}"
        );
    }
    assert_eq!(last_seq(store, &r).await, head, "a refusal writes nothing");
    assert!(
        one(store, edit(&r, "ann", 4, "refused", "yes"))
            .await
            .is_new(),
        "a refused edit leaves its client id free"
    );
}

async fn redactions_erase_the_message_and_its_edits(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "redactions").await;
    let secret = NewEntry::message(
        r.clone(),
        EntryKind::Text,
        user("ann"),
        "m1",
        Message::text("secret").with_data(data(r#"{"card":"4111"}"#)),
    );
    let svc = system(&r, "s1", "a service's words");
    store
        .append(&[
            secret.clone(),
            edit(&r, "ann", 1, "e1", "secret v2"),
            edit(&r, "ann", 1, "e2", "secret v3"),
            svc.clone(),
            membership(&r, "bob", EntryKind::Join),
            membership(&r, "bob", EntryKind::Leave),
        ])
        .await
        .unwrap();

    let first = redaction(&r, "mod", 1, Some("spam — «again»"));
    assert_eq!(
        one(store, first.clone()).await,
        Appended::New(first.clone().at(7))
    );
    let got = log(store, &r).await;
    for seq in [1, 2, 3] {
        let e = &got[seq - 1];
        assert_eq!(
            (e.body.as_ref(), e.data.as_ref(), e.redacted),
            (None, None, true),
            "seq {seq}: the message and its edits are erased"
        );
    }
    assert_eq!(got[0].seq, 1);
    assert_eq!(
        (got[0].id, got[0].sender.as_str(), got[0].created_at),
        (secret.id, "ann", secret.created_at),
        "the row stays with its seq, sender and time"
    );
    assert_eq!(got[1].target_seq, Some(1), "an edit keeps its target");
    assert_eq!(got[3], svc.clone().at(4), "other messages are untouched");
    assert_eq!(got[6], first.clone().at(7), "the redaction and its note");
    assert_eq!(got[6].redaction_reason.as_deref(), Some("spam — «again»"));
    assert_eq!(got[6].reason, None, "a redaction's note is no leave reason");

    // Redacting it again answers the first redaction, and writes nothing.
    let again = redaction(&r, "svc", 1, Some("again"));
    assert_eq!(
        one(store, again).await,
        Appended::Existing(first.clone().at(7))
    );
    assert_eq!(last_seq(store, &r).await, 7);

    // An edit of a redacted message is refused, but a repeat of an edit
    // made before answers it (as stored now: erased).
    assert_eq!(
        one(store, edit(&r, "ann", 1, "e9", "back")).await,
        Appended::Refused(ErrorKind::InvalidInput)
    );
    match one(store, edit(&r, "ann", 1, "e1", "secret v2")).await {
        Appended::Existing(e) => {
            assert_eq!((e.seq, e.body, e.redacted), (2, None, true));
        }
        other => panic!("a repeated edit answers the first, got {other:?}"),
    }

    // A system entry can be redacted (an empty note is a note).
    let note = redaction(&r, "svc", 4, Some(""));
    assert_eq!(
        one(store, note.clone()).await,
        Appended::New(note.clone().at(8))
    );
    assert_eq!(
        entry_at(store, &r, 8).await.redaction_reason.as_deref(),
        Some("")
    );
    let four = entry_at(store, &r, 4).await;
    assert_eq!((four.body, four.redacted), (None, true));

    // Joins, leaves, edits and redactions cannot be; nor what is not stored.
    let head = last_seq(store, &r).await;
    for (target, why, want) in [
        (5, "a join", ErrorKind::InvalidInput),
        (6, "a leave", ErrorKind::InvalidInput),
        (2, "an edit", ErrorKind::InvalidInput),
        (7, "a redaction", ErrorKind::InvalidInput),
        (0, "seq 0", ErrorKind::EntryNotFound),
        (head + 1, "beyond the head", ErrorKind::EntryNotFound),
    ] {
        assert_eq!(
            one(store, redaction(&r, "mod", target, None)).await,
            Appended::Refused(want),
            "a redaction of {why}"
        );
    }
    assert_eq!(last_seq(store, &r).await, head, "a refusal writes nothing");
}

async fn amendments_follow_the_batch_order(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "batch-order").await;
    store
        .append(&[text(&r, "ann", "a", "a"), text(&r, "ann", "b", "b")])
        .await
        .unwrap();

    // An edit then a redaction of one target: both written, and what the
    // edit wrote is erased too. After them, an edit is refused and a
    // redaction answers the batch's own.
    let out = store
        .append(&[
            edit(&r, "ann", 1, "x1", "a2"),
            redaction(&r, "ann", 1, None),
            edit(&r, "ann", 1, "x2", "a3"),
            redaction(&r, "mod", 1, None),
        ])
        .await
        .unwrap();
    let seqs: Vec<_> = out.iter().map(|o| o.entry().map(|e| e.seq)).collect();
    assert_eq!(seqs[..2], [Some(3), Some(4)]);
    assert_eq!(out[2], Appended::Refused(ErrorKind::InvalidInput));
    assert_eq!(out[3], Appended::Existing(out[1].entry().unwrap().clone()));
    for seq in [1, 3] {
        let e = entry_at(store, &r, seq).await;
        assert_eq!((e.body, e.redacted), (None, true), "seq {seq}");
    }
    assert_eq!(last_seq(store, &r).await, 4);

    // A redaction then an edit of one target: the edit is refused.
    let out = store
        .append(&[
            redaction(&r, "ann", 2, None),
            edit(&r, "ann", 2, "y1", "b2"),
        ])
        .await
        .unwrap();
    assert_eq!(out[0].entry().map(|e| e.seq), Some(5));
    assert_eq!(out[1], Appended::Refused(ErrorKind::InvalidInput));
    let two = entry_at(store, &r, 2).await;
    assert_eq!((two.body, two.redacted, two.edited_at), (None, true, None));

    // A refusal takes no seq, and an amendment may name an entry written
    // earlier in its batch.
    let out = store
        .append(&[
            edit(&r, "ann", 99, "z1", "nothing there"),
            text(&r, "ann", "c", "c"),
            edit(&r, "ann", 6, "z2", "c2"),
        ])
        .await
        .unwrap();
    assert_eq!(out[0], Appended::Refused(ErrorKind::EntryNotFound));
    let seqs: Vec<_> = out[1..].iter().map(|o| o.entry().map(|e| e.seq)).collect();
    assert_eq!(seqs, [Some(6), Some(7)], "gap-free");
    let six = entry_at(store, &r, 6).await;
    assert_eq!(six.body.as_deref(), Some("c2"));
    assert!(six.edited_at.is_some());
}

fn bound(below_seq: Seq, older_than: Option<Timestamp>) -> PruneBound {
    PruneBound {
        below_seq,
        older_than,
        seen_last_seq: 0,
    }
}

/// A base time for entries whose age a check sets.
const T0: i64 = 1_700_000_000_000;

async fn prune_deletes_a_prefix_and_never_reuses_seqs(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "prune").await;
    let batch: Vec<_> = (1..=10)
        .map(|i| {
            let mut e = text(&r, "ann", &format!("c{i}"), &format!("m{i}"));
            e.created_at = Timestamp(T0 + i * 1_000);
            e
        })
        .collect();
    store.append(&batch).await.unwrap();
    let seqs = |v: Vec<Entry>| v.into_iter().map(|e| e.seq).collect::<Vec<_>>();

    // The count bound: below seq 4 goes.
    let got = store.prune(&r, bound(4, None), 100).await.unwrap();
    assert_eq!(
        got,
        Pruned {
            deleted: 3,
            first_seq: 4
        }
    );
    let stored = store.room(&r).await.unwrap().unwrap();
    assert_eq!(
        (stored.first_seq, stored.last_seq),
        (4, 10),
        "last_seq stays"
    );
    assert_eq!(seqs(log(store, &r).await), (4..=10).collect::<Vec<_>>());
    let newest = SeqRange {
        after: None,
        before: Some(6),
        limit: 100,
    };
    assert_eq!(
        seqs(store.entries(&r, newest).await.unwrap()),
        [4, 5],
        "reads start at first_seq"
    );

    // At most max_rows per call.
    let got = store.prune(&r, bound(9, None), 2).await.unwrap();
    assert_eq!((got.deleted, got.first_seq), (2, 6));
    let got = store.prune(&r, bound(9, None), 100).await.unwrap();
    assert_eq!((got.deleted, got.first_seq), (3, 9));
    for keeps_all in [bound(0, None), bound(1, None), bound(9, None)] {
        let got = store.prune(&r, keeps_all, 100).await.unwrap();
        assert_eq!((got.deleted, got.first_seq), (0, 9), "{keeps_all:?}");
    }

    // The age bound: entries stored before the time go.
    let got = store
        .prune(&r, bound(0, Some(Timestamp(T0 + 9_500))), 100)
        .await
        .unwrap();
    assert_eq!((got.deleted, got.first_seq), (1, 10));

    // Amendments of what was pruned find nothing.
    for pruned in [
        edit(&r, "ann", 9, "late", "no"),
        redaction(&r, "ann", 1, None),
    ] {
        assert_eq!(
            one(store, pruned).await,
            Appended::Refused(ErrorKind::EntryNotFound)
        );
    }

    // Numbering goes on; idempotency holds while the first entry is stored.
    assert_eq!(
        one(store, text(&r, "ann", "new", "n"))
            .await
            .entry()
            .unwrap()
            .seq,
        11
    );
    assert_eq!(
        one(store, text(&r, "ann", "c1", "c1 was pruned"))
            .await
            .entry()
            .map(|e| (e.seq, e.body.clone())),
        Some((12, Some("c1 was pruned".into()))),
        "a pruned message's client id is free again"
    );
    match one(store, text(&r, "ann", "c10", "still stored")).await {
        Appended::Existing(e) => assert_eq!(e.seq, 10),
        other => panic!("a stored message stays idempotent, got {other:?}"),
    }

    // Everything: first_seq = last_seq + 1, and no room to prune.
    let got = store.prune(&r, bound(Seq::MAX, None), 100).await.unwrap();
    assert_eq!((got.deleted, got.first_seq), (3, 13));
    let stored = store.room(&r).await.unwrap().unwrap();
    assert_eq!((stored.first_seq, stored.last_seq), (13, 12));
    assert!(log(store, &r).await.is_empty());
    let got = store.prune(&r, bound(Seq::MAX, None), 100).await.unwrap();
    assert_eq!((got.deleted, got.first_seq), (0, 13));
    assert_eq!(
        one(store, text(&r, "ann", "after", "a"))
            .await
            .entry()
            .unwrap()
            .seq,
        13
    );
    assert_eq!(store.room(&r).await.unwrap().unwrap().first_seq, 13);

    let absent = room_id(p, "prune-absent");
    let got = store
        .prune(&absent, bound(Seq::MAX, None), 100)
        .await
        .unwrap();
    assert_eq!(got.deleted, 0, "a room that is not stored");
}

async fn prune_stops_at_the_first_entry_the_bound_keeps(store: &dyn Store, p: &str) {
    // Clocks of several nodes need not agree: times are not in seq order.
    let r = new_room(store, p, "prune-clock").await;
    let times = [T0, T0 + 60_000, T0, T0];
    let batch: Vec<_> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let mut e = membership(&r, &format!("u{i}"), EntryKind::Join);
            e.created_at = Timestamp(t);
            e
        })
        .collect();
    store.append(&batch).await.unwrap();
    let got = store
        .prune(&r, bound(0, Some(Timestamp(T0 + 1_000))), 100)
        .await
        .unwrap();
    assert_eq!(
        (got.deleted, got.first_seq),
        (1, 2),
        "a prefix only, of every kind: the entry the bound keeps stops it"
    );
    // Either bound lets an entry go.
    let got = store
        .prune(&r, bound(3, Some(Timestamp(T0 + 1_000))), 100)
        .await
        .unwrap();
    assert_eq!((got.deleted, got.first_seq), (3, 5));
    assert!(
        store
            .open_members()
            .await
            .unwrap()
            .iter()
            .any(|(room, _)| *room == r),
        "pruning a join leaves its member open"
    );
}

/// What pruning room `r` to `bound` deletes, by `prune` or, `together`,
/// by `prune_rooms` (a store may prune several rooms its own way).
async fn deleted_by(store: &dyn Store, r: &RoomId, bound: PruneBound, together: bool) -> u64 {
    if together {
        let pruned = store.prune_rooms(&[(r.clone(), bound)], 100).await;
        pruned.unwrap().iter().map(|(_, p)| p.deleted).sum()
    } else {
        store.prune(r, bound, 100).await.unwrap().deleted
    }
}

async fn prune_erases_the_edits_of_pruned_messages(store: &dyn Store, p: &str) {
    for (name, together) in [("prune-edits", false), ("prune-rooms-edits", true)] {
        let r = new_room(store, p, name).await;
        let text = NewEntry::text(r.clone(), user("ann"), "c1", "typo");
        let sent = one(store, text).await.entry().unwrap().seq;
        let fixed = one(store, edit(&r, "ann", sent, "e1", "fixed")).await;
        let fixed = fixed.entry().unwrap().seq;
        let deleted = deleted_by(store, &r, bound(fixed, None), together).await;
        assert_eq!(deleted, fixed - 1, "{name}");
        let kept = entry_at(store, &r, fixed).await;
        assert_eq!(kept.kind, EntryKind::Edit);
        assert!(
            kept.redacted && kept.body.is_none() && kept.data.is_none(),
            "{name}: an edit does not keep a pruned message's text: {kept:?}"
        );
    }
}

/// A bound worked out for a room that was purged and created again
/// since (its `last_seq` was higher) deletes nothing of the new room.
async fn prune_spares_a_room_created_again_since_its_bound(store: &dyn Store, p: &str) {
    for (name, together) in [("prune-again", false), ("prune-rooms-again", true)] {
        let r = new_room(store, p, name).await;
        for i in 0..6 {
            one(store, text(&r, "ann", &format!("old{i}"), "hi")).await;
        }
        // Keep 2 of the old room's 6.
        let old = PruneBound {
            below_seq: 5,
            older_than: None,
            seen_last_seq: 6,
        };
        assert!(store.close_room(&r, true).await.unwrap(), "purged");
        let again = new_room(store, p, name).await;
        assert_eq!(again, r);
        for i in 0..4 {
            one(store, text(&r, "bob", &format!("new{i}"), "hi")).await;
        }
        let deleted = deleted_by(store, &r, old, together).await;
        assert_eq!(deleted, 0, "{name}: not the new room's bound");
        let log = store.entries(&r, SeqRange::after(0, 10)).await.unwrap();
        assert_eq!(log.len(), 4, "{name}: the new room's log is whole");
        assert_eq!(store.room(&r).await.unwrap().unwrap().first_seq, 1);
    }
}

async fn prune_rooms_leaves_each_room_a_suffix_within_the_budget(store: &dyn Store, p: &str) {
    // Seven rooms, six with entries to let go: more than the budget of 5.
    let mut rooms = Vec::new();
    for name in ["a", "b", "c", "d", "e", "f", "g"] {
        rooms.push(new_room(store, p, &format!("prunes-{name}")).await);
    }
    // Stored interleaved, as live rooms are: one entry of each per round.
    for i in 1..=12 {
        let batch: Vec<_> = rooms
            .iter()
            .map(|r| {
                let mut e = text(r, "ann", &format!("c{i}"), &format!("m{i}"));
                e.created_at = Timestamp(T0 + i * 1_000);
                e
            })
            .collect();
        store.append(&batch).await.unwrap();
    }
    let b = rooms[1].clone();
    let fixed = one(store, edit(&b, "ann", 2, "e1", "fixed")).await;
    let fixed = fixed.entry().unwrap().seq;
    let absent = room_id(p, "prunes-absent");
    let bounds = [
        bound(9, None),                         // a: 1..=8 go
        bound(0, Some(Timestamp(T0 + 5_500))),  // b: 1..=5 go (an age alone)
        bound(0, None),                         // c: keeps all
        bound(Seq::MAX, Some(Timestamp(T0))),   // d: a count past the log: all go
        bound(4, Some(Timestamp(T0 + 6_500))),  // e: either bound: 1..=6 go
        bound(11, Some(Timestamp(T0 + 1_500))), // f: 1..=10 go
        bound(3, Some(Timestamp(T0 + 20_000))), // g: all are old: 1..=13 go
    ];
    let mut asked: Vec<(RoomId, PruneBound)> = rooms.iter().cloned().zip(bounds).collect();
    asked.push((absent, bound(Seq::MAX, None)));
    let mut total = 0;
    for call in 1.. {
        assert!(call <= 60, "the rooms never came within their bounds");
        let got = store.prune_rooms(&asked, 5).await.unwrap();
        let deleted: u64 = got.iter().map(|(_, p)| p.deleted).sum();
        assert!(deleted <= 5, "call {call}: {deleted} over a budget of 5");
        for (room, pruned) in &got {
            let Some(stored) = store.room(room).await.unwrap() else {
                assert_eq!(pruned.deleted, 0, "a room that is not stored");
                continue;
            };
            assert_eq!(pruned.first_seq, stored.first_seq, "{room}");
            assert!(
                stored.first_seq <= stored.last_seq + 1,
                "{room}: past the log"
            );
            let seqs: Vec<Seq> = log(store, room).await.iter().map(|e| e.seq).collect();
            let suffix: Vec<Seq> = (stored.first_seq..=stored.last_seq).collect();
            assert_eq!(seqs, suffix, "{room}: a prefix went, nothing else");
        }
        total += deleted;
        // A store may leave budget unused; nothing deleted means done.
        if deleted == 0 {
            break;
        }
    }
    // d and g lose all 12; b keeps its edit (made now, so not old).
    assert_eq!(total, 8 + 5 + 12 + 6 + 10 + 12);
    for (room, first) in rooms.iter().zip([9, 6, 1, 13, 7, 11, 13]) {
        assert_eq!(
            store.room(room).await.unwrap().unwrap().first_seq,
            first,
            "{room}"
        );
    }
    let kept = entry_at(store, &b, fixed).await;
    assert!(
        kept.redacted && kept.body.is_none(),
        "the edit of a pruned message is erased with it: {kept:?}"
    );
}

async fn retained_rooms_are_the_candidates_for_pruning(store: &dyn Store, p: &str) {
    let own = Retention {
        max_entries: Some(5),
        max_age: None,
    };
    let with_retention = |retention: Option<Retention>| RoomPatch {
        retention: Some(retention),
        ..RoomPatch::default()
    };
    let mut rooms = Vec::new();
    for (name, retention, entries, closed) in [
        ("reta", Some(own), true, false),
        ("retb", None, true, false),
        ("retc", Some(own), false, false),
        ("retd", Some(own), true, true),
        ("rete", Some(Retention::default()), true, false),
        ("retf", None, true, false),
    ] {
        let r = new_room(store, p, name).await;
        store
            .update_room(&r, &with_retention(retention))
            .await
            .unwrap()
            .unwrap();
        if entries {
            store.append(&[text(&r, "ann", "c", "hi")]).await.unwrap();
        }
        if closed {
            assert!(store.close_room(&r, false).await.unwrap());
        }
        rooms.push(r);
    }
    // retf held entries once: pruned whole, it holds none.
    store
        .prune(&rooms[5], bound(Seq::MAX, None), 100)
        .await
        .unwrap();

    let start = room_id(p, "ret");
    let prefix = start.as_str();
    let list = move |all: bool, after: Option<RoomId>, limit: u32| async move {
        let got = store
            .retained_rooms(after.as_ref(), limit, all)
            .await
            .unwrap();
        got.into_iter()
            .filter(|r| r.id.as_str().starts_with(prefix))
            .collect::<Vec<_>>()
    };
    let names = |rooms: Vec<StoredRoom>| {
        rooms
            .iter()
            .map(|r| r.id.as_str().rsplit('-').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let own_only = list(false, Some(start.clone()), 500).await;
    assert_eq!(
        names(own_only.clone()),
        ["reta", "retd", "rete"],
        "rooms with entries and a retention of their own, closed ones too"
    );
    assert_eq!(own_only[0].retention, Some(own), "the room comes whole");
    assert_eq!(own_only[2].retention, Some(Retention::default()));
    assert_eq!(
        names(list(true, Some(start.clone()), 500).await),
        ["reta", "retb", "retd", "rete"],
        "every room with entries"
    );
    assert_eq!(
        names(list(false, Some(rooms[0].clone()), 1).await),
        ["retd"],
        "pages by id after `after`"
    );
}

async fn retention_is_set_and_cleared_by_update(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "retention").await;
    let month = Retention {
        max_entries: Some(100_000),
        max_age: Some(Duration::from_secs(30 * 86_400)),
    };
    let patch = |retention: Option<Option<Retention>>, capacity: Option<u32>| RoomPatch {
        title: None,
        capacity,
        retention,
    };
    let got = store
        .update_room(&r, &patch(Some(Some(month)), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.retention, Some(month));
    assert_eq!(
        got.title.as_deref(),
        Some("room retention"),
        "only what it names"
    );
    assert_eq!(
        store.room(&r).await.unwrap().unwrap(),
        got,
        "stored as returned"
    );

    let got = store
        .update_room(&r, &patch(None, Some(4)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.capacity, got.retention), (4, Some(month)), "kept");

    let keep_all = Retention::default();
    let got = store
        .update_room(&r, &patch(Some(Some(keep_all)), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.retention,
        Some(keep_all),
        "a retention of its own that keeps everything is not the server's"
    );
    let ages = Retention {
        max_entries: None,
        max_age: Some(Duration::from_secs(90)),
    };
    let got = store
        .update_room(&r, &patch(Some(Some(ages)), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.retention, Some(ages));

    let got = store
        .update_room(&r, &patch(Some(None), None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.retention, None, "back to the server's");
    assert_eq!(store.room(&r).await.unwrap().unwrap().retention, None);
}

async fn read_markers_are_monotone_and_count_what_others_said(store: &dyn Store, p: &str) {
    let r = new_room(store, p, "read").await;
    let quiet = new_room(store, p, "read-quiet").await;
    store
        .append(&[
            text(&r, "ann", "a1", "mine"),           // 1
            text(&r, "bob", "b1", "hello"),          // 2
            membership(&r, "cat", EntryKind::Join),  // 3
            system(&r, "s1", "a service says"),      // 4
            text(&r, "bob", "b2", "typo"),           // 5
            edit(&r, "bob", 5, "b3", "no typo"),     // 6
            text(&r, "bob", "b4", "oops"),           // 7
            redaction(&r, "bob", 7, None),           // 8
            membership(&r, "cat", EntryKind::Leave), // 9
            text(&r, "ann", "a2", "mine again"),     // 10
        ])
        .await
        .unwrap();
    let (ann, bob) = (user("ann"), user("bob"));
    let state = |last_read_seq, unread| ReadState {
        last_read_seq,
        unread,
    };
    assert_eq!(
        store
            .read_states(&ann, std::slice::from_ref(&r))
            .await
            .unwrap(),
        vec![state(0, 3)],
        "others' text and system entries, unredacted (2, 4, 5)"
    );
    assert_eq!(
        store
            .read_states(&bob, std::slice::from_ref(&r))
            .await
            .unwrap(),
        vec![state(0, 3)],
        "(1, 4, 10)"
    );

    assert_eq!(store.set_read_marker(&r, &ann, 4).await.unwrap(), 4);
    assert_eq!(
        store
            .read_states(&ann, std::slice::from_ref(&r))
            .await
            .unwrap(),
        vec![state(4, 1)]
    );
    assert_eq!(
        store.set_read_marker(&r, &ann, 2).await.unwrap(),
        4,
        "monotone: a lower seq answers the stored marker"
    );
    assert_eq!(store.set_read_marker(&r, &ann, 4).await.unwrap(), 4);
    assert_eq!(store.set_read_marker(&r, &ann, 10).await.unwrap(), 10);
    assert_eq!(
        store
            .read_states(&bob, std::slice::from_ref(&r))
            .await
            .unwrap(),
        vec![state(0, 3)],
        "per user"
    );
    store.set_read_marker(&quiet, &ann, 0).await.unwrap();

    // One state per room asked, in the order asked; unknown rooms read as
    // no marker and nothing unread.
    let unknown = room_id(p, "read-unknown");
    let asked = [quiet.clone(), unknown.clone(), r.clone(), quiet.clone()];
    assert_eq!(
        store.read_states(&ann, &asked).await.unwrap(),
        vec![state(0, 0), state(0, 0), state(10, 0), state(0, 0)]
    );
    assert!(store.read_states(&ann, &[]).await.unwrap().is_empty());
    store
        .append(&[text(&quiet, "bob", "q", "psst")])
        .await
        .unwrap();
    assert_eq!(
        store
            .read_states(&ann, &[quiet.clone(), r.clone()])
            .await
            .unwrap(),
        vec![state(0, 1), state(10, 0)]
    );
    assert_eq!(
        store
            .set_read_marker(&unknown, &ann, 1)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::RoomNotFound
    );
}

/// `room`'s outbox rows up to `upto`, as (kind, after_seq).
async fn outbox_kinds(store: &dyn Store, room: &RoomId, upto: Seq) -> Vec<(&'static str, Seq)> {
    store
        .outbox(room, 0, upto, 100)
        .await
        .unwrap()
        .iter()
        .map(|o| (o.event.type_name(), o.after_seq))
        .collect()
}

/// Moves one cursor; whether it moved.
async fn advance(
    store: &dyn Store,
    hook: &str,
    room: &RoomId,
    from: Option<WebhookCursor>,
    to: WebhookCursor,
) -> bool {
    let moves = [CursorMove {
        room: room.clone(),
        from,
        to,
    }];
    store.advance_webhook(hook, &moves).await.unwrap() == [true]
}

/// Whether `hook` has events of `room` to deliver.
async fn behind(store: &dyn Store, hook: &str, room: &RoomId) -> bool {
    // Other suites' rooms may be behind too: page until past `room`.
    let mut after = None;
    loop {
        let page = store.webhook_rooms(hook, after.as_ref(), 50).await.unwrap();
        if page.contains(room) {
            return true;
        }
        if page.len() < 50 || page.last().is_some_and(|r| r.as_str() > room.as_str()) {
            return false;
        }
        after = page.last().cloned();
    }
}

async fn webhook_streams_merge_the_log_and_the_outbox(store: &dyn Store, p: &str) {
    let (h1, h2) = (format!("http://{p}/one"), format!("http://{p}/two"));
    let earlier = new_room(store, p, "hooked-earlier").await;
    one(store, text(&earlier, "ann", "e1", "before any hook")).await;
    store.set_webhooks(&[h1.clone(), h2.clone()]).await.unwrap();
    // A new hook hears what happens from now on: it starts at the head.
    let at = store.webhook_cursor(&h1, &earlier).await.unwrap();
    assert_eq!(at.map(|c| c.seq), Some(1), "a new hook starts at the head");
    assert!(!behind(store, &h1, &earlier).await);
    one(store, text(&earlier, "ann", "e2", "after")).await;
    assert!(behind(store, &h1, &earlier).await);
    store.set_webhooks(&[h1.clone(), h2.clone()]).await.unwrap();
    assert_eq!(
        store.webhook_cursor(&h1, &earlier).await.unwrap(),
        at,
        "registering again moves nothing"
    );

    // Control changes land in the outbox after the head they saw.
    let a = new_room(store, p, "hooked").await;
    for i in 1..=3 {
        one(store, text(&a, "ann", &format!("h{i}"), "hi")).await;
    }
    let ban = Ban {
        until: Some(Timestamp(T0)),
        reason: Some("spam".into()),
    };
    store.set_ban(&a, &user("bob"), Some(&ban)).await.unwrap();
    for i in 4..=5 {
        one(store, text(&a, "ann", &format!("h{i}"), "hi")).await;
    }
    assert!(store.close_room(&a, false).await.unwrap());
    assert!(store.close_room(&a, false).await.unwrap(), "closing again");
    assert_eq!(
        outbox_kinds(store, &a, Seq::MAX).await,
        [
            ("room.created", 0),
            ("member.banned", 3),
            ("room.closed", 5)
        ],
        "one row per change, a second close writes none"
    );
    assert_eq!(
        outbox_kinds(store, &a, 4).await,
        [("room.created", 0), ("member.banned", 3)],
        "only rows placed up to the asked seq"
    );
    let rows = store.outbox(&a, 0, Seq::MAX, 100).await.unwrap();
    assert!(rows.windows(2).all(|w| w[0].outbox_id < w[1].outbox_id));
    assert_eq!(
        rows[1].event,
        ControlEvent::MemberBanned {
            user: user("bob"),
            until: ban.until,
            reason: ban.reason.clone(),
        }
    );
    assert!(matches!(
        &rows[0].event,
        ControlEvent::RoomCreated { owner: Some(o), capacity: 10, private: false, .. } if o == &user("owner")
    ));
    let after_first = store
        .outbox(&a, rows[0].outbox_id, Seq::MAX, 1)
        .await
        .unwrap();
    assert_eq!(after_first, rows[1..2], "after an id, at most `limit`");

    // Cursors: absent at first, then moved only by compare-and-set.
    assert!(behind(store, &h1, &a).await && behind(store, &h2, &a).await);
    assert_eq!(store.webhook_cursor(&h1, &a).await.unwrap(), None);
    let done = WebhookCursor {
        seq: 5,
        outbox_id: rows[2].outbox_id,
        epoch: 0,
    };
    assert!(advance(store, &h1, &a, None, done).await);
    assert!(
        !advance(store, &h1, &a, None, done).await,
        "a cursor that exists is not created again"
    );
    let stale = WebhookCursor {
        seq: 4,
        outbox_id: 0,
        epoch: 0,
    };
    let ahead = WebhookCursor {
        seq: 9,
        outbox_id: 0,
        epoch: 0,
    };
    assert!(!advance(store, &h1, &a, Some(stale), ahead).await);
    assert_eq!(store.webhook_cursor(&h1, &a).await.unwrap(), Some(done));
    // Several rooms in one call: each moves or not on its own.
    let caught_up = WebhookCursor {
        seq: 2,
        ..at.unwrap()
    };
    let moves = [
        CursorMove {
            room: earlier.clone(),
            from: at,
            to: caught_up,
        },
        CursorMove {
            room: a.clone(),
            from: Some(stale),
            to: ahead,
        },
    ];
    assert_eq!(
        store.advance_webhook(&h1, &moves).await.unwrap(),
        [true, false]
    );
    assert_eq!(store.webhook_cursor(&h1, &a).await.unwrap(), Some(done));
    assert!(!behind(store, &h1, &earlier).await);
    assert!(!behind(store, &h1, &a).await, "h1 delivered everything");
    assert!(behind(store, &h2, &a).await, "h2 delivered nothing");

    // Retention keeps what a hook has not delivered: h2 nothing yet.
    let all = bound(Seq::MAX, None);
    assert_eq!(store.prune(&a, all, 100).await.unwrap().deleted, 0);
    let h2_at = WebhookCursor {
        seq: 2,
        outbox_id: rows[0].outbox_id,
        epoch: 0,
    };
    assert!(advance(store, &h2, &a, None, h2_at).await);
    let pruned: u64 = store
        .prune_rooms(&[(a.clone(), all)], 100)
        .await
        .unwrap()
        .iter()
        .map(|(_, p)| p.deleted)
        .sum();
    assert_eq!(pruned, 2, "up to the lowest cursor, not past it");
    assert_eq!(store.room(&a).await.unwrap().unwrap().first_seq, 3);
    assert_eq!(store.prune(&a, all, 100).await.unwrap().deleted, 0);
    // Rows both hooks passed are gone; the others stay.
    assert_eq!(
        outbox_kinds(store, &a, Seq::MAX).await,
        [("member.banned", 3), ("room.closed", 5)]
    );

    // A purge rewinds the room's stream to seq 0 for its next incarnation.
    let b = new_room(store, p, "hooked-purged").await;
    one(store, text(&b, "ann", "b1", "hi")).await;
    let created = store.outbox(&b, 0, Seq::MAX, 10).await.unwrap()[0].outbox_id;
    let b_at = WebhookCursor {
        seq: 1,
        outbox_id: created,
        epoch: 0,
    };
    assert!(advance(store, &h1, &b, None, b_at).await);
    assert!(store.close_room(&b, true).await.unwrap());
    assert_eq!(
        store.webhook_cursor(&h1, &b).await.unwrap(),
        Some(WebhookCursor {
            seq: 0,
            epoch: 1,
            ..b_at
        }),
        "the cursor's seq starts over in a new epoch, its place in the outbox stays"
    );
    // h2 had delivered nothing of the room: it gets a cursor too, so that a
    // delivery it read before the purge (from no cursor) cannot land.
    let h2_b = store.webhook_cursor(&h2, &b).await.unwrap();
    assert_eq!(
        h2_b,
        Some(WebhookCursor {
            seq: 0,
            outbox_id: 0,
            epoch: 1
        })
    );
    assert!(!advance(store, &h2, &b, None, b_at).await);
    let before_purge = WebhookCursor {
        epoch: 0,
        ..h2_b.unwrap()
    };
    assert!(
        !advance(store, &h2, &b, Some(before_purge), b_at).await,
        "the same seq and outbox row of an earlier epoch"
    );
    assert!(behind(store, &h1, &b).await, "the purge is to deliver");
    assert_eq!(
        store
            .outbox(&b, created, 0, 10)
            .await
            .unwrap()
            .iter()
            .map(|o| o.event.type_name())
            .collect::<Vec<_>>(),
        ["room.purged"]
    );
    assert!(
        !advance(store, &h1, &b, Some(b_at), b_at).await,
        "a delivery read before the purge cannot move the cursor back up"
    );
    let b = new_room(store, p, "hooked-purged").await;
    assert_eq!(
        outbox_kinds(store, &b, 0).await,
        [("room.created", 0), ("room.purged", 0), ("room.created", 0)],
        "the old incarnation's rows, then the new one's"
    );
    assert!(
        !advance(store, &h2, &b, None, b_at).await,
        "a purged room's cursors stay: a delivery read before the purge \
         cannot land in the next incarnation"
    );

    // Forgetting a hook forgets its cursors; with none, the outbox goes.
    store.set_webhooks(std::slice::from_ref(&h1)).await.unwrap();
    assert_eq!(store.webhook_cursor(&h2, &a).await.unwrap(), None);
    assert!(
        !advance(store, &h2, &a, None, done).await,
        "a forgotten hook's cursor is not written back"
    );
    assert_eq!(store.webhook_cursor(&h1, &a).await.unwrap(), Some(done));
    store.set_webhooks(&[]).await.unwrap();
    assert_eq!(store.webhook_cursor(&h1, &a).await.unwrap(), None);
    assert!(outbox_kinds(store, &a, Seq::MAX).await.is_empty());
    let quiet = new_room(store, p, "unhooked").await;
    assert!(
        outbox_kinds(store, &quiet, Seq::MAX).await.is_empty(),
        "no hook, no outbox row"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::MemoryStore;

    #[tokio::test]
    async fn memory_store_conforms() {
        run(Arc::new(MemoryStore::default())).await;
    }
}
