//! Beyond the conformance suite: on SQLite, pruning several rooms takes an
//! equal share of the budget from each (their oldest rows, stored about the
//! same time: whole pages of the table, not a page per room); in a cluster,
//! one node at a time prunes a room (docs/contract.md §2, "Retention").
//! On Postgres a prune takes a
//! transaction-scoped advisory lock on the room; a node that finds it taken
//! deletes nothing and answers the room's `first_seq` as it is.

use parlor_engine::{
    NewEntry, RoomId, Store, StoredRoom, UserId,
    ports::{PruneBound, Pruned},
};
use parlor_seaorm::SeaOrmStore;

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
