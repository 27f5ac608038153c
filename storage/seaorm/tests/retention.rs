//! Beyond the conformance suite: on SQLite, pruning several rooms takes an
//! equal share of the budget from each (their oldest rows, stored about the
//! same time: whole pages of the table, not a page per room); in a cluster,
//! one node at a time prunes a room (docs/contract.md §2, "Retention").
//! On Postgres a prune takes a
//! transaction-scoped advisory lock on the room; a node that finds it taken
//! deletes nothing and answers the room's `first_seq` as it is. And an
//! engine on SQLite pruning every 20 ms under concurrent senders in many
//! rooms (seeded): every ack a distinct seq, every log a gap-free suffix
//! within its bound.

use std::{collections::HashSet, sync::Arc, time::Duration};

use parlor_engine::{
    ChatEngine, Engine, EngineConfig, EntryKind, NewEntry, Principal, Retention, RoomId, SeqRange,
    Store, StoredRoom, UserId,
    ports::{PruneBound, Pruned},
    testkit::seeded_rng,
};
use parlor_seaorm::SeaOrmStore;
use rand::Rng;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_prunes_beside_concurrent_sends_and_every_log_stays_a_gap_free_suffix() {
    const KEEP: u64 = 30;
    let mut rng = seeded_rng("sqlite pruning beside sends");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let store = SeaOrmStore::open(&url).await.expect("open sqlite");
    let config = EngineConfig::default()
        .retention(Retention {
            max_entries: Some(KEEP),
            max_age: None,
        })
        .retention_interval(Duration::from_millis(20))
        .prune_batch(rng.random_range(8..=200));
    let engine = Engine::builder(Arc::new(store.clone()))
        .config(config)
        .start()
        .await
        .unwrap();
    let rooms: Vec<RoomId> = (0..rng.random_range(3..=8))
        .map(|r| RoomId::new(&format!("busy-{r}")).unwrap())
        .collect();
    let mut tasks = Vec::new();
    for room in &rooms {
        store
            .create_room(&StoredRoom::new(room.clone(), 10))
            .await
            .unwrap();
        for s in 0..rng.random_range(2..=4) {
            let (engine, room) = (engine.clone(), room.clone());
            let (sends, pause) = (rng.random_range(40..=120), rng.random_range(0..=2));
            tasks.push(tokio::spawn(async move {
                let who = Principal::new(UserId::new(&format!("u{s}")).unwrap());
                let ticket = engine.reserve(&who, &room, None).await.unwrap();
                let seat = engine.commit(&who, &ticket.ticket, None).await.unwrap();
                let mut acked = Vec::new();
                for m in 0..sends {
                    let ack = engine.send(&who, &room, &format!("m{m}"), "hi").await;
                    acked.push((room.clone(), ack.unwrap().seq));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                // Held until the checks end: a seat dropped here would log
                // a `leave` when its grace ran out, mid-check.
                (acked, seat)
            }));
        }
    }
    let (mut acked, mut seats) = (HashSet::new(), Vec::new());
    for task in tasks {
        let (sent, seat) = task.await.unwrap();
        seats.push(seat);
        for ack in sent {
            assert!(acked.insert(ack.clone()), "{ack:?} acked twice");
        }
    }
    for room in &rooms {
        // Within its bound a few passes after the last send.
        let mut waited = 0;
        let stored = loop {
            let stored = store.room(room).await.unwrap().unwrap();
            if stored.last_seq + 1 - stored.first_seq <= KEEP {
                break stored;
            }
            assert!(waited < 500, "{room}: {stored:?} not pruned within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        };
        let log = store
            .entries(room, SeqRange::after(0, KEEP as u32 + 1))
            .await
            .unwrap();
        let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
        let suffix: Vec<u64> = (stored.first_seq..=stored.last_seq).collect();
        assert_eq!(seqs, suffix, "{room}: a gap-free suffix");
        // What is kept of the acked is all there, and nothing else is text.
        let texts: HashSet<u64> = log
            .iter()
            .filter(|e| e.kind == EntryKind::Text)
            .map(|e| e.seq)
            .collect();
        let kept: HashSet<u64> = acked
            .iter()
            .filter(|(r, seq)| r == room && *seq >= stored.first_seq)
            .map(|(_, seq)| *seq)
            .collect();
        assert_eq!(texts, kept, "{room}: the acked texts it keeps");
    }
    drop(seats);
}

#[tokio::test]
async fn sqlite_prunes_an_equal_share_of_every_room() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let store = SeaOrmStore::open(&url).await.expect("open sqlite");
    let ann = UserId::new("ann").unwrap();
    let rooms: Vec<RoomId> = ["a", "b", "c"]
        .iter()
        .map(|n| RoomId::new(n).unwrap())
        .collect();
    for room in &rooms {
        store
            .create_room(&StoredRoom::new(room.clone(), 4))
            .await
            .unwrap();
    }
    // Rounds of one entry per room: the table holds a1 b1 c1 a2 b2 c2 …
    for i in 0..10 {
        let round: Vec<_> = rooms
            .iter()
            .map(|r| NewEntry::text(r.clone(), ann.clone(), &format!("c{i}"), "hi"))
            .collect();
        store.append(&round).await.unwrap();
    }
    let keep_two = PruneBound {
        below_seq: 9,
        older_than: None,
        seen_last_seq: 10,
    };
    let all: Vec<_> = rooms.iter().map(|r| (r.clone(), keep_two)).collect();
    let mut got = store.prune_rooms(&all, 6).await.unwrap();
    got.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
    let two_each = Pruned {
        deleted: 2,
        first_seq: 3,
    };
    assert_eq!(
        got,
        rooms
            .iter()
            .map(|r| (r.clone(), two_each))
            .collect::<Vec<_>>(),
        "two of each room, not six of the first"
    );
}

/// SQLite works out its cuts on the read pool and moves `first_seq` in one
/// statement on the writer, which checks that `first_seq` is still what it
/// read: prunes racing each other over the same rooms (seeded) delete each
/// entry once, and together answer exactly what went.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_prunes_racing_over_the_same_rooms_count_every_entry_once() {
    const KEEP: u64 = 7;
    let mut rng = seeded_rng("sqlite prunes racing each other");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let store = SeaOrmStore::open(&url).await.expect("open sqlite");
    let ann = UserId::new("ann").unwrap();
    let rooms: Vec<RoomId> = (0..rng.random_range(2..=6))
        .map(|r| RoomId::new(&format!("race-{r}")).unwrap())
        .collect();
    let mut stored = 0;
    for room in &rooms {
        store
            .create_room(&StoredRoom::new(room.clone(), 4))
            .await
            .unwrap();
        let count = rng.random_range(20..=120);
        let batch: Vec<_> = (0..count)
            .map(|i| NewEntry::text(room.clone(), ann.clone(), &format!("c{i}"), "hi"))
            .collect();
        store.append(&batch).await.unwrap();
        stored += count as u64;
    }
    let mut bounds = Vec::new();
    for room in &rooms {
        let last = store.room(room).await.unwrap().unwrap().last_seq;
        let below_seq = last.saturating_sub(KEEP) + 1;
        bounds.push((
            room.clone(),
            PruneBound {
                below_seq,
                older_than: None,
                seen_last_seq: last,
            },
        ));
    }
    let racers: Vec<_> = (0..rng.random_range(3..=8))
        .map(|_| {
            let (store, bounds) = (store.clone(), bounds.clone());
            let budget = rng.random_range(1..=40);
            // A room left out for good would keep a racer calling: fail.
            let racer = tokio::time::timeout(Duration::from_secs(60), async move {
                let mut deleted = 0;
                loop {
                    let pruned = store.prune_rooms(&bounds, budget).await.unwrap();
                    let this_call: u64 = pruned.iter().map(|(_, p)| p.deleted).sum();
                    if this_call == 0 && pruned.len() == bounds.len() {
                        return deleted;
                    }
                    deleted += this_call;
                }
            });
            tokio::spawn(racer)
        })
        .collect();
    let mut reported = 0;
    for racer in racers {
        reported += racer.await.unwrap().expect("every racer ends");
    }
    let mut left = 0;
    for room in &rooms {
        let info = store.room(room).await.unwrap().unwrap();
        let log = store.entries(room, SeqRange::default()).await.unwrap();
        let seqs: Vec<u64> = log.iter().map(|e| e.seq).collect();
        let suffix: Vec<u64> = (info.last_seq - KEEP + 1..=info.last_seq).collect();
        assert_eq!(seqs, suffix, "{room}: its newest {KEEP}, gap-free");
        assert_eq!(info.first_seq, info.last_seq - KEEP + 1, "{room}");
        left += log.len() as u64;
    }
    assert_eq!(reported, stored - left, "every deleted entry counted once");
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the SKIPPED line
async fn postgres_prunes_a_room_on_one_node_at_a_time() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, TransactionTrait};

    let Ok(url) = std::env::var("PARLOR_TEST_POSTGRES_URL") else {
        eprintln!(
            "SKIPPED postgres_prunes_a_room_on_one_node_at_a_time: \
             PARLOR_TEST_POSTGRES_URL is not set"
        );
        return;
    };
    let store = SeaOrmStore::open(&url).await.expect("open postgres");
    // No webhook of an earlier suite holds retention back here.
    store.set_webhooks(&[]).await.unwrap();
    let room = RoomId::new(&format!("prune{:08x}", rand::random::<u32>())).unwrap();
    store
        .create_room(&StoredRoom::new(room.clone(), 4))
        .await
        .unwrap();
    let ann = UserId::new("ann").unwrap();
    let batch: Vec<_> = (0..5)
        .map(|i| NewEntry::text(room.clone(), ann.clone(), &format!("c{i}"), "hi"))
        .collect();
    store.append(&batch).await.unwrap();
    let bound = PruneBound {
        below_seq: 4,
        older_than: None,
        seen_last_seq: 5,
    };

    // Another node's prune holds the room's lock: the keys the store
    // derives, ("prun", the 32-bit FNV-1a hash of the room id).
    let hash = room.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    let other = Database::connect(&url).await.unwrap();
    let txn = other.begin().await.unwrap();
    let lock = Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1, $2)",
        [
            0x7072_756e_i32.into(),
            i32::from_ne_bytes(hash.to_ne_bytes()).into(),
        ],
    );
    txn.query_one_raw(lock).await.unwrap();
    assert_eq!(
        store.prune(&room, bound, 100).await.unwrap(),
        Pruned {
            deleted: 0,
            first_seq: 1
        },
        "the room is left to the node that holds it"
    );
    txn.commit().await.unwrap();
    assert_eq!(
        store.prune(&room, bound, 100).await.unwrap(),
        Pruned {
            deleted: 3,
            first_seq: 4
        },
        "free again once that node's transaction ended"
    );
}

#[cfg(not(feature = "postgres"))]
#[test]
#[allow(clippy::print_stderr)] // the SKIPPED line
fn postgres_prunes_a_room_on_one_node_at_a_time() {
    eprintln!(
        "SKIPPED postgres_prunes_a_room_on_one_node_at_a_time: built without the `postgres` feature"
    );
}
