//! Webhooks in a cluster (docs/cluster.md, "Webhooks"): three nodes on one
//! Postgres and one Redis, messages sent through every node, one node at
//! a time delivers (the hook's lease row names it); the delivering node is
//! SIGKILLed mid-stream, another takes the lease over once the dead node's
//! lease lapses, and every event still arrives, each room's in order.
//!
//! A binary of its own: a node starting without this hook would forget
//! it (`Store::set_webhooks`), and the other cluster suites start nodes
//! without hooks. Needs `PARLOR_TEST_POSTGRES_URL`, `PARLOR_TEST_REDIS_URL`
//! and `psql` (to read the lease row); prints a skip line without them.

use std::{collections::BTreeMap, process::Command, time::Duration};

use tokio::sync::watch;

mod common;

use common::{
    ServerProcess,
    webhook_receiver::{
        check_stream, create_room, hooked_server, receiver, send_until_stored, stored, wait_for_all,
    },
};

/// A dead node's lease (and so its hold on the hook) lapses after this.
const LEASE_TTL: &str = "3s";

fn node(postgres: &str, redis: &str, id: &str, hook: &str) -> ServerProcess {
    let cluster = [
        "--redis-url",
        redis,
        "--cluster-secret",
        "cluster-test-secret",
        "--node-id",
        id,
        "--lease-ttl",
        LEASE_TTL,
    ];
    hooked_server(postgres, hook, &cluster)
}

/// The node that holds `hook`'s lease, read from Postgres.
fn leader(postgres: &str, hook: &str) -> Option<String> {
    let out = Command::new("psql")
        .args([postgres, "-tAc"])
        .arg(format!(
            // The hook's name is its URL, then ` #` and a hash.
            "SELECT node_id FROM parlor_webhook_leaders WHERE hook LIKE '{hook} #%'"
        ))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // a skipped suite says so
async fn a_killed_delivering_node_hands_the_hook_over_with_no_event_skipped() {
    let (Ok(postgres), Ok(redis)) = (
        std::env::var("PARLOR_TEST_POSTGRES_URL"),
        std::env::var("PARLOR_TEST_REDIS_URL"),
    ) else {
        eprintln!(
            "SKIPPED cluster webhooks: PARLOR_TEST_POSTGRES_URL and PARLOR_TEST_REDIS_URL are not both set"
        );
        return;
    };
    if Command::new("psql").arg("--version").output().is_err() {
        eprintln!("SKIPPED cluster webhooks: psql is not installed");
        return;
    }
    let (hook, got) = receiver().await;
    // Slow answers: the kill finds a request in flight.
    got.lock().unwrap().delay = Duration::from_millis(30);
    let cluster = format!("wh-{:08x}", rand::random::<u32>());
    let mut nodes: Vec<(String, ServerProcess)> = (0..3)
        .map(|i| {
            let id = format!("{cluster}-{i}");
            let process = node(&postgres, &redis, &id, &hook);
            (id, process)
        })
        .collect();
    let rooms: Vec<String> = (0..2).map(|r| format!("{cluster}-room-{r}")).collect();
    for (i, room) in rooms.iter().enumerate() {
        create_room(&nodes[i].1.base, room).await;
    }
    // Each room's sends go through the nodes in turn.
    let per_room = 300;
    let mut sends = Vec::new();
    let mut bases = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        let mut nodes_for_room = Vec::new();
        for n in 0..3 {
            let (tx, rx) = watch::channel(nodes[(r + n) % 3].1.base.clone());
            nodes_for_room.push(rx);
            bases.push((((r + n) % 3), tx));
        }
        let room = room.clone();
        sends.push(tokio::spawn(async move {
            for i in 0..per_room {
                send_until_stored(&nodes_for_room[i % 3], &room, i).await;
            }
        }));
    }
    // Wait for the lease and some deliveries, then kill its holder.
    let mut holder = None;
    for _ in 0..200 {
        holder = leader(&postgres, &hook);
        if holder.is_some() && got.lock().unwrap().requests.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let holder = holder.expect("one node holds the hook");
    let dead = nodes.iter().position(|(id, _)| *id == holder).unwrap();
    nodes[dead].1.kill();
    // Its senders move to the next node.
    let alive = nodes[(dead + 1) % 3].1.base.clone();
    for (n, tx) in &bases {
        if *n == dead {
            tx.send(alive.clone()).unwrap();
        }
    }
    for send in sends {
        send.await.unwrap();
    }
    let base = alive;
    let mut logs = BTreeMap::new();
    for room in &rooms {
        logs.insert(room.clone(), stored(&base, room).await);
    }
    wait_for_all(&got, &logs, Duration::from_secs(60)).await;
    let next = leader(&postgres, &hook).expect("the hook is held again");
    assert_ne!(next, holder, "another node took the hook over");
    // The hook goes with the test: the next suites on this database run
    // without it (a registered hook holds their retention back).
    for node in &mut nodes {
        let _ = node.1.child.kill();
    }
    let _ = Command::new("psql")
        .args([&postgres, "-tAc", "DELETE FROM parlor_webhooks"])
        .output();
    let got = got.lock().unwrap();
    let total = check_stream(&got, &logs);
    let stored_total: usize = logs.values().map(Vec::len).sum();
    eprintln!(
        "lease: {holder} killed, {next} took over; {} requests, {total} events for {stored_total} entries",
        got.requests.len()
    );
}
