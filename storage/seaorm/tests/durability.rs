//! Must-show 8, on a real SQLite file: every acked entry is durable before
//! its ack (a second, independent connection sees it the moment the ack
//! arrives); a new engine over the same file sees every acked entry and
//! continues the seq; joins a stop left open get their `leave` exactly once,
//! at start-up. Then the engine over SQLite (and Postgres when
//! `PARLOR_TEST_POSTGRES_URL` is set) with many rooms and concurrent senders.

use std::{collections::HashMap, sync::Arc};

use parlor_engine::Principal;
use parlor_engine::{
    ChatEngine, Engine, EngineConfig, Entry, EntryKind, RoomId, RoomSpec, SeqRange, Store, UserId,
};
use parlor_seaorm::SeaOrmStore;

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

async fn all_entries(store: &SeaOrmStore, room: &RoomId) -> Vec<Entry> {
    let mut out = Vec::new();
    loop {
        let after = out.last().map_or(0, |e: &Entry| e.seq);
        let page = store
            .entries(room, SeqRange::after(after, 500))
            .await
            .unwrap();
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_entries_survive_and_open_joins_are_closed_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    let room = RoomId::new("durable").unwrap();
    let (alice, bob) = (user("alice"), user("bob"));

    // First life: two members, 200 acked messages, then a crash (no leave).
    let mut acked: HashMap<u64, Entry> = HashMap::new();
    {
        let engine = Engine::builder(Arc::new(SeaOrmStore::open(&url).await.unwrap()))
            .config(EngineConfig::default())
            .start()
            .await
            .unwrap();
        // An independent reader: what it sees is what is committed.
        let witness = SeaOrmStore::connect(&url).await.unwrap();
        let t = engine
            .reserve(
                &Principal::new(alice.clone()),
                &room,
                Some(RoomSpec::with_capacity(5)),
            )
            .await
            .unwrap();
        let ma = engine
            .commit(&Principal::new(alice.clone()), &t.ticket, None)
            .await
            .unwrap();
        let t = engine
            .reserve(&Principal::new(bob.clone()), &room, None)
            .await
            .unwrap();
        let mb = engine
            .commit(&Principal::new(bob.clone()), &t.ticket, None)
            .await
            .unwrap();

        let senders: Vec<_> = (0..10)
            .map(|s| {
                let (engine, room, witness) = (engine.clone(), room.clone(), witness.clone());
                let who = if s % 2 == 0 {
                    alice.clone()
                } else {
                    bob.clone()
                };
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    for m in 0..20 {
                        let ack = engine
                            .send(
                                &Principal::new(who.clone()),
                                &room,
                                &format!("s{s}-m{m}"),
                                &format!("body {s}/{m}"),
                            )
                            .await
                            .unwrap();
                        let seen = witness
                            .entries(&room, SeqRange::after(ack.seq - 1, 1))
                            .await
                            .unwrap();
                        assert_eq!(
                            seen.first(),
                            Some(&*ack),
                            "acked seq {} is committed",
                            ack.seq
                        );
                        mine.push((*ack).clone());
                    }
                    mine
                })
            })
            .collect();
        for s in senders {
            for e in s.await.unwrap() {
                acked.insert(e.seq, e);
            }
        }
        assert_eq!(acked.len(), 200);
        // The process "dies": no leave, no grace, no release.
        std::mem::forget(ma);
        std::mem::forget(mb);
    }

    // Second life on the same file.
    let store = SeaOrmStore::open(&url).await.unwrap();
    let engine = Engine::builder(Arc::new(store.clone()))
        .config(EngineConfig::default())
        .start()
        .await
        .unwrap();
    let log = all_entries(&store, &room).await;
    for (seq, e) in &acked {
        assert_eq!(
            log.get(*seq as usize - 1),
            Some(e),
            "acked entry {seq} survived as acked"
        );
    }
    let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=log.len() as u64).collect::<Vec<_>>(), "gap-free");
    let leaves: Vec<_> = log
        .iter()
        .filter(|e| e.kind == EntryKind::Leave)
        .map(|e| e.sender.to_string())
        .collect();
    assert_eq!(
        log.len(),
        2 + 200 + 2,
        "two joins, 200 texts, two leaves appended at start-up"
    );
    assert_eq!(leaves.len(), 2);
    assert!(
        log[202..].iter().all(|e| e.kind == EntryKind::Leave),
        "the leaves come at the end"
    );
    assert!(store.open_members().await.unwrap().is_empty());

    // The seq continues; a third start appends nothing more.
    let t = engine
        .reserve(&Principal::new(alice.clone()), &room, None)
        .await
        .unwrap();
    let m = engine
        .commit(&Principal::new(alice.clone()), &t.ticket, None)
        .await
        .unwrap();
    assert_eq!(
        m.joined().last_seq,
        205,
        "alice's new join continues the seq"
    );
    let ack = engine
        .send(
            &Principal::new(alice.clone()),
            &room,
            "after-restart",
            "hello again",
        )
        .await
        .unwrap();
    assert_eq!(ack.seq, 206);
    m.leave().await.unwrap();
    drop(engine);
    let _third = Engine::builder(Arc::new(SeaOrmStore::open(&url).await.unwrap()))
        .config(EngineConfig::default())
        .start()
        .await
        .unwrap();
    assert_eq!(
        all_entries(&store, &room).await.len(),
        207,
        "nothing appended by a clean restart"
    );
}

async fn many_rooms_stay_gap_free(store: SeaOrmStore, prefix: &str) {
    let engine = Engine::builder(Arc::new(store.clone()))
        .config(EngineConfig::default())
        .start()
        .await
        .unwrap();
    let rooms: Vec<RoomId> = (0..8)
        .map(|i| RoomId::new(&format!("{prefix}-r{i}")).unwrap())
        .collect();
    let mut tasks = Vec::new();
    for room in &rooms {
        for s in 0..5 {
            let (engine, room) = (engine.clone(), room.clone());
            tasks.push(tokio::spawn(async move {
                let who = user(&format!("w{s}"));
                let t = engine
                    .reserve(
                        &Principal::new(who.clone()),
                        &room,
                        Some(RoomSpec::with_capacity(10)),
                    )
                    .await;
                // The first reserve creates (pending); others wait for it.
                let t = match t {
                    Ok(t) => t,
                    Err(_) => loop {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        if let Ok(t) = engine
                            .reserve(&Principal::new(who.clone()), &room, None)
                            .await
                        {
                            break t;
                        }
                    },
                };
                let m = engine
                    .commit(&Principal::new(who.clone()), &t.ticket, None)
                    .await
                    .unwrap();
                for i in 0..40 {
                    engine
                        .send(&Principal::new(who.clone()), &room, &format!("c{i}"), "x")
                        .await
                        .unwrap();
                }
                m.leave().await.unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for room in &rooms {
        let log = all_entries(&store, room).await;
        let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=log.len() as u64).collect::<Vec<_>>(),
            "{room} gap-free"
        );
        assert_eq!(
            log.iter().filter(|e| e.kind == EntryKind::Text).count(),
            5 * 40
        );
        assert_eq!(log.iter().filter(|e| e.kind == EntryKind::Join).count(), 5);
        assert_eq!(log.iter().filter(|e| e.kind == EntryKind::Leave).count(), 5);
    }
    let stats = engine.stats();
    assert_eq!(stats.seats(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_on_sqlite_many_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    many_rooms_stay_gap_free(SeaOrmStore::open(&url).await.unwrap(), "sq").await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_on_postgres_many_rooms() {
    let Ok(url) = std::env::var("PARLOR_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED engine_on_postgres_many_rooms: PARLOR_TEST_POSTGRES_URL is not set");
        return;
    };
    let prefix = format!("pg{:08x}", rand_u32());
    many_rooms_stay_gap_free(SeaOrmStore::open(&url).await.unwrap(), &prefix).await;
}

#[cfg(feature = "postgres")]
fn rand_u32() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// Two stores on one SQLite file: each numbers new texts from the heads its
/// own appends left, which the other store's appends make stale. A stale
/// head must cost a retry, never a gap, a reused seq or a lost message; a
/// stored duplicate must still come back as the original. Randomized:
/// which store appends, how many, in which rooms, and whether two appends
/// race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_file_keep_every_log_gap_free() {
    use parlor_engine::{NewEntry, StoredRoom, ports::Appended};
    use rand::Rng;

    let mut rng =
        parlor_engine::testkit::seeded_rng("two_writers_on_one_file_keep_every_log_gap_free");

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("two.db").display());
    let stores = [
        Arc::new(SeaOrmStore::open(&url).await.unwrap()),
        Arc::new(SeaOrmStore::connect(&url).await.unwrap()),
    ];
    let rooms: Vec<RoomId> = (0..3)
        .map(|i| RoomId::new(&format!("r{i}")).unwrap())
        .collect();
    for room in &rooms {
        let new = StoredRoom {
            id: room.clone(),
            capacity: 10,
            title: None,
            last_seq: 0,
            owner: None,
            private: false,
            closed: false,
            first_seq: 1,
            retention: None,
        };
        stores[0].create_room(&new).await.unwrap();
    }

    let mut sent: Vec<NewEntry> = Vec::new();
    let mut answered: HashMap<(RoomId, String), Entry> = HashMap::new();
    for round in 0..60 {
        // One or two appends at once, each from either store.
        let racers = rng.random_range(1..=2);
        let mut tasks = Vec::new();
        for racer in 0..racers {
            let store = Arc::clone(&stores[rng.random_range(0..2)]);
            let mut batch: Vec<NewEntry> = (0..rng.random_range(1..=6))
                .map(|i| {
                    let room = rooms[rng.random_range(0..rooms.len())].clone();
                    let client_id = format!("c{round}-{racer}-{i}");
                    NewEntry::text(room, user("ann"), &client_id, "hi")
                })
                .collect();
            // Now and then, a message sent before (its retry).
            if !sent.is_empty() && rng.random_bool(0.2) {
                batch.push(sent[rng.random_range(0..sent.len())].clone());
            }
            tasks.push(tokio::spawn(async move {
                let out = store.append(&batch).await.expect("append");
                (batch, out)
            }));
        }
        for task in tasks {
            let (batch, out) = task.await.unwrap();
            assert_eq!(out.len(), batch.len());
            for (e, outcome) in batch.into_iter().zip(out) {
                let key = (e.room_id.clone(), e.client_id.clone().unwrap());
                let entry = outcome.entry().expect("a text is stored").clone();
                match (outcome, answered.get(&key)) {
                    (Appended::New(_), None) => {
                        answered.insert(key, entry);
                        sent.push(e);
                    }
                    (Appended::Existing(_), Some(original)) => {
                        assert_eq!(&entry, original, "a retry answers the original")
                    }
                    (outcome, original) => panic!("{outcome:?} for a send answered {original:?}"),
                }
            }
        }
    }

    for room in &rooms {
        let log = all_entries(&stores[1], room).await;
        let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=log.len() as u64).collect::<Vec<_>>(),
            "{room}: gap-free, each seq once"
        );
        for e in &log {
            let key = (room.clone(), e.client_id.clone().unwrap());
            assert_eq!(answered.get(&key), Some(e), "stored as answered");
        }
        let head = stores[0].room(room).await.unwrap().unwrap().last_seq;
        assert_eq!(head, log.len() as u64, "{room}: last_seq is the newest seq");
    }
    let stored: usize = answered.len();
    assert_eq!(stored, sent.len());
}
