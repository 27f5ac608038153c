//! A cluster node's own duties, on test doubles of the cluster ports (the
//! real ones are tested on Postgres and Redis in `examples/server/tests/
//! cluster.rs`): the database decides capacity, seat rows are dropped when
//! seats end, and a node that learns its lease lapsed ends every seat it held
//! (their streams end, each with one `leave`) instead of keeping seats that
//! other nodes may have given away.

mod common;

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use common::{join, room, user};
use parlor_engine::Principal;
use parlor_engine::{
    ChatEngine, Cluster, Engine, EngineConfig, Entry, EntryKind, ErrorKind, InProcessBus,
    PendingClaims, Result, RoomId, RoomSpec, SeatId, SeatLeases, Timestamp, UserId, ports::Seated,
    testkit::MemoryStore,
};

/// Seat rows in memory: (room, user, seat). Capacity is a fixed number here;
/// what is tested is how the engine uses the answers.
#[derive(Default)]
struct Leases {
    rows: Mutex<HashSet<(RoomId, UserId, SeatId)>>,
    capacity: Mutex<usize>,
    /// The next renewal reports a lapsed lease.
    lapse: AtomicBool,
}

impl Leases {
    fn rows(&self) -> usize {
        self.rows.lock().unwrap().len()
    }
}

#[async_trait]
impl SeatLeases for Leases {
    async fn renew_node(&self, _node: &str, _ttl: Duration) -> Result<bool> {
        Ok(!self.lapse.swap(false, Ordering::SeqCst))
    }

    async fn reset_node(&self, _node: &str) -> Result<()> {
        Ok(())
    }

    async fn take(&self, room: &RoomId, user: &UserId, _node: &str, seat: SeatId) -> Result<()> {
        let mut rows = self.rows.lock().unwrap();
        if rows.len() >= *self.capacity.lock().unwrap() {
            return Err(ErrorKind::RoomFull.into());
        }
        rows.insert((room.clone(), user.clone(), seat));
        Ok(())
    }

    async fn adopt(&self, _: &RoomId, _: &UserId, _: &str, _: SeatId) -> Result<bool> {
        Ok(false)
    }

    async fn release(&self, room: &RoomId, user: &UserId, _node: &str, seat: SeatId) -> Result<()> {
        self.rows
            .lock()
            .unwrap()
            .remove(&(room.clone(), user.clone(), seat));
        Ok(())
    }

    async fn seated(&self, _room: &RoomId) -> Result<Seated> {
        Ok(Seated {
            occupancy: self.rows() as u32,
            ..Seated::default()
        })
    }

    async fn is_seated(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        let rows = self.rows.lock().unwrap();
        Ok(rows.iter().any(|(r, u, _)| r == room && u == user))
    }

    async fn use_ticket(&self, _key: &[u8], _expires_at: Timestamp) -> Result<bool> {
        Ok(true)
    }

    async fn close_orphans(&self, _limit: u32) -> Result<Vec<Entry>> {
        Ok(Vec::new())
    }

    async fn evict(&self, room: &RoomId, user: Option<&UserId>) -> Result<()> {
        self.rows
            .lock()
            .unwrap()
            .retain(|(r, u, _)| r != room || user.is_some_and(|user| user != u));
        Ok(())
    }

    async fn hold_webhook(&self, _hook: &str, _node: &str) -> Result<bool> {
        // These tests start no webhook.
        Ok(true)
    }
}

struct Claims;

#[async_trait]
impl PendingClaims for Claims {
    async fn claim(&self, _: &RoomId, _: &UserId, _: Duration) -> Result<bool> {
        Ok(true)
    }
}

/// A node whose database seats at most `capacity` users.
async fn node(capacity: usize) -> (Engine, Arc<MemoryStore>, Arc<Leases>) {
    let leases = Arc::new(Leases::default());
    *leases.capacity.lock().unwrap() = capacity;
    let store = Arc::new(MemoryStore::default());
    let cluster = Cluster {
        node_id: "n1".into(),
        leases: Arc::clone(&leases) as Arc<dyn SeatLeases>,
        claims: Arc::new(Claims),
        lease_ttl: Duration::from_millis(300),
    };
    let bus = Arc::new(InProcessBus::new(64));
    let engine = Engine::builder(store.clone())
        .bus(bus)
        .cluster(cluster)
        .config(EngineConfig::default())
        .start()
        .await
        .unwrap();
    (engine, store, leases)
}

#[tokio::test(start_paused = true)]
async fn the_database_decides_capacity_and_seat_rows_follow_seats() {
    let (engine, _store, leases) = node(2).await; // the cluster has room for 2
    let r = room("r");
    let t = engine
        .reserve(
            &Principal::new((user("ann")).clone()),
            &r,
            Some(RoomSpec::with_capacity(10)),
        )
        .await
        .unwrap();
    let ann = engine
        .commit(&Principal::new((user("ann")).clone()), &t.ticket, None)
        .await
        .unwrap();
    assert_eq!(
        leases.rows(),
        1,
        "the creator is seated in the database at commit"
    );

    engine
        .reserve(&Principal::new((user("bob")).clone()), &r, None)
        .await
        .unwrap();
    let refused = engine
        .reserve(&Principal::new((user("cat")).clone()), &r, None)
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        ErrorKind::RoomFull,
        "full by the database's count"
    );
    assert_eq!(
        engine.stats().seats_reserved,
        1,
        "cat's local seat was dropped again"
    );

    ann.leave().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(
        leases.rows(),
        1,
        "ann's row is gone; bob's reservation holds his"
    );
}

#[tokio::test(start_paused = true)]
async fn a_node_whose_lease_lapsed_ends_every_seat_it_held() {
    let (engine, store, leases) = node(10).await;
    let r = room("r");
    let t = engine
        .reserve(
            &Principal::new((user("ann")).clone()),
            &r,
            Some(RoomSpec::with_capacity(10)),
        )
        .await
        .unwrap();
    let mut ann = engine
        .commit(&Principal::new((user("ann")).clone()), &t.ticket, None)
        .await
        .unwrap();
    let mut bob = join(&engine, &user("bob"), &r).await;
    assert_eq!(leases.rows(), 2);

    leases.lapse.store(true, Ordering::SeqCst);
    // The keeper renews every third of the ttl; both streams end.
    for stream in [&mut ann, &mut bob] {
        let ended = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Err(err) = stream.next_entry().await {
                    return err;
                }
            }
        })
        .await
        .expect("the stream ends");
        assert_eq!(ended.kind(), ErrorKind::NotAMember);
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let stats = engine.stats();
    assert_eq!((stats.seats_joined, stats.seats_grace), (0, 0));
    assert_eq!(leases.rows(), 0, "every row dropped");
    let log: Vec<_> = store
        .log(&r)
        .iter()
        .map(|e| (e.kind, e.sender.to_string()))
        .collect();
    let join = |u: &str| (EntryKind::Join, u.to_owned());
    let leave = |u: &str| (EntryKind::Leave, u.to_owned());
    assert_eq!(log[..2], [join("ann"), join("bob")]);
    let mut leaves = log[2..].to_vec();
    leaves.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(leaves, [leave("ann"), leave("bob")], "one leave each");
    // A new reserve is counted afresh.
    engine
        .reserve(&Principal::new((user("ann")).clone()), &r, None)
        .await
        .unwrap();
    assert_eq!(leases.rows(), 1);
}
