//! Cluster seats on Postgres ([`SeatLeases`]): capacity across nodes under
//! concurrent takes, adoption of a seat by another node, leaves that wait for
//! the last node, and dead nodes' seats freed with exactly one `leave` by
//! however many sweepers. Needs `PARLOR_TEST_POSTGRES_URL`; prints a skip line
//! otherwise.

#![cfg(feature = "postgres")]

use std::time::Duration;

use parlor_engine::{
    EntryKind, ErrorKind, NewEntry, RoomId, SeatId, SeatLeases, Store, StoredRoom, UserId,
    ports::{Appended, Seated},
};
use parlor_seaorm::SeaOrmStore;

#[allow(clippy::print_stderr)] // a skipped suite says so
async fn store() -> Option<SeaOrmStore> {
    let Ok(url) = std::env::var("PARLOR_TEST_POSTGRES_URL") else {
        eprintln!("SKIPPED cluster lease tests: PARLOR_TEST_POSTGRES_URL is not set");
        return None;
    };
    Some(SeaOrmStore::open(&url).await.expect("open postgres"))
}

fn fresh(name: &str) -> String {
    format!("{name}{:08x}", rand::random::<u32>())
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

async fn room(store: &SeaOrmStore, capacity: u32) -> RoomId {
    let id = RoomId::new(&fresh("lease")).unwrap();
    let room = StoredRoom {
        id: id.clone(),
        capacity,
        title: None,
        last_seq: 0,
        owner: None,
        private: false,
        closed: false,
        first_seq: 1,
        retention: None,
    };
    store.create_room(&room).await.unwrap();
    id
}

const TTL: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takes_on_three_nodes_admit_exactly_capacity() {
    let Some(store) = store().await else { return };
    let nodes: Vec<String> = (0..3).map(|_| fresh("node")).collect();
    for node in &nodes {
        assert!(store.renew_node(node, TTL).await.unwrap(), "a first start");
    }
    for round in 0..20u32 {
        let capacity = 1 + rand::random::<u32>() % 12;
        let id = room(&store, capacity).await;
        let users = capacity + 10;
        let mut tasks = Vec::new();
        for u in 0..users {
            let (store, id, node) = (store.clone(), id.clone(), nodes[(u % 3) as usize].clone());
            tasks.push(tokio::spawn(async move {
                store
                    .take(
                        &id,
                        &user(&format!("u{u}")),
                        &node,
                        SeatId::new(u64::from(u) + 1),
                    )
                    .await
            }));
        }
        let mut admitted = Vec::new();
        for (u, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(()) => admitted.push(user(&format!("u{u}"))),
                Err(err) => assert_eq!(err.kind(), ErrorKind::RoomFull, "round {round}"),
            }
        }
        assert_eq!(admitted.len() as u32, capacity, "round {round}");
        admitted.sort();
        let seated = store.seated(&id).await.unwrap();
        assert_eq!(seated.occupancy, capacity, "round {round}");
        assert!(seated.members.is_empty(), "nobody joined the log yet");
        // A seated user takes again (another node) without being counted twice.
        store
            .take(&id, &admitted[0], &nodes[2], SeatId::new(999))
            .await
            .unwrap();
        assert_eq!(store.seated(&id).await.unwrap().occupancy, capacity);
    }
}

// One test, two steps: a sweep frees *every* orphaned membership in the
// database, so it must not run beside a step that leaves one open on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_live_while_any_node_holds_them_and_die_with_their_node() {
    let Some(store) = store().await else { return };
    a_seat_lives_on_while_any_node_holds_it(&store).await;
    a_dead_nodes_seats_are_freed_once_by_concurrent_sweepers(&store).await;
}

async fn a_seat_lives_on_while_any_node_holds_it(store: &SeaOrmStore) {
    let (a, b) = (fresh("node"), fresh("node"));
    store.renew_node(&a, TTL).await.unwrap();
    store.renew_node(&b, TTL).await.unwrap();
    let store_a = store.clone().for_node(&a);
    let id = room(store, 2).await;
    let ann = user("ann");

    assert!(
        !store.adopt(&id, &ann, &b, SeatId::new(7)).await.unwrap(),
        "nothing to adopt"
    );
    store.take(&id, &ann, &a, SeatId::new(1)).await.unwrap();
    assert!(
        store.adopt(&id, &ann, &b, SeatId::new(7)).await.unwrap(),
        "B commits A's ticket"
    );
    let join = NewEntry::membership(id.clone(), ann.clone(), EntryKind::Join);
    let leave = NewEntry::membership(id.clone(), ann.clone(), EntryKind::Leave);
    assert!(store_a.append(std::slice::from_ref(&join)).await.unwrap()[0].is_new());
    assert_eq!(
        store_a.append(&[join]).await.unwrap()[0],
        Appended::Unchanged,
        "the second node's join is not logged again"
    );

    // A lets go; B still holds the seat: no leave yet.
    store.release(&id, &ann, &a, SeatId::new(1)).await.unwrap();
    assert_eq!(
        store_a.append(std::slice::from_ref(&leave)).await.unwrap()[0],
        Appended::Unchanged
    );
    // A stale release (an older seat id) drops nothing.
    store.release(&id, &ann, &b, SeatId::new(6)).await.unwrap();
    assert_eq!(store.seated(&id).await.unwrap().members, vec![ann.clone()]);
    store.release(&id, &ann, &b, SeatId::new(7)).await.unwrap();
    let store_b = store.clone().for_node(&b);
    assert!(store_b.append(&[leave]).await.unwrap()[0].is_new());
    assert_eq!(store.seated(&id).await.unwrap(), Seated::default());
}

async fn a_dead_nodes_seats_are_freed_once_by_concurrent_sweepers(store: &SeaOrmStore) {
    let (dead, alive) = (fresh("node"), fresh("node"));
    store
        .renew_node(&dead, Duration::from_millis(300))
        .await
        .unwrap();
    store.renew_node(&alive, TTL).await.unwrap();
    let id = room(store, 10).await;
    let joins: Vec<_> = ["ann", "bob", "cat"]
        .iter()
        .enumerate()
        .map(|(i, u)| (user(u), i as u64 + 1))
        .collect();
    for (u, seat) in &joins {
        store.take(&id, u, &dead, SeatId::new(*seat)).await.unwrap();
        let join = NewEntry::membership(id.clone(), u.clone(), EntryKind::Join);
        store.append(&[join]).await.unwrap();
    }
    // cat comes back through the live node before the dead one lapses.
    store
        .take(&id, &user("cat"), &alive, SeatId::new(9))
        .await
        .unwrap();
    assert_eq!(store.seated(&id).await.unwrap().occupancy, 3);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.seated(&id).await.unwrap().members, vec![user("cat")]);
    assert!(
        !store.renew_node(&dead, TTL).await.unwrap(),
        "a lapsed node learns it lapsed"
    );
    store.reset_node(&dead).await.unwrap();

    let sweepers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                // Until nothing is left: the database may hold other
                // tests' orphans too.
                let mut left = Vec::new();
                loop {
                    let round = store.close_orphans(500).await.unwrap();
                    if round.is_empty() {
                        return left;
                    }
                    left.extend(round);
                }
            })
        })
        .collect();
    let mut left = Vec::new();
    for s in sweepers {
        left.extend(s.await.unwrap().into_iter().filter(|e| e.room_id == id));
    }
    let mut who: Vec<_> = left.iter().map(|e| e.sender.to_string()).collect();
    who.sort();
    assert_eq!(
        who,
        vec!["ann", "bob"],
        "one leave each; cat is still seated"
    );
    let log = store
        .entries(&id, parlor_engine::SeqRange::after(0, 100))
        .await
        .unwrap();
    let leaves = log.iter().filter(|e| e.kind == EntryKind::Leave).count();
    assert_eq!(leaves, 2);
    assert!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1), "gap-free");
    assert!(
        store
            .close_orphans(500)
            .await
            .unwrap()
            .iter()
            .all(|e| e.room_id != id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_is_used_once_across_nodes() {
    let Some(store) = store().await else { return };
    let key: [u8; 16] = rand::random();
    let later = parlor_engine::Timestamp(parlor_engine::Timestamp::now().millis() + 60_000);
    let stores = [store.clone(), store.clone(), store];
    let tries = stores.iter().map(|s| s.use_ticket(&key, later));
    let firsts = futures_util::future::join_all(tries).await;
    assert_eq!(firsts.iter().filter(|r| *r.as_ref().unwrap()).count(), 1);
}
