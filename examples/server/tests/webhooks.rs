//! Webhooks end to end (docs/contract.md §10), with the real binary and a
//! receiver on `127.0.0.1:0`: 3 rooms × 1 000 messages while the server is
//! SIGKILLed twice — every event arrives at least once, each room's in
//! seq order, no stored seq missing, every request signed; and a receiver
//! that answers 500 for 10 s gets everything once it recovers, while the
//! server stays ready.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::watch;

mod common;

use common::{
    ServerProcess,
    webhook_receiver::{
        check_stream, create_room, hooked_server, receiver, send_until_stored, stored, wait_for_all,
    },
};

fn start_server(db: &Path, hook: &str) -> ServerProcess {
    hooked_server(&format!("sqlite://{}?mode=rwc", db.display()), hook, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_rooms_through_two_sigkills_lose_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("parlor.db");
    let (hook_url, got) = receiver().await;
    got.lock().unwrap().delay = Duration::from_millis(30);
    let mut server = start_server(&db, &hook_url);
    let rooms = ["hooks-a", "hooks-b", "hooks-c"];
    for room in rooms {
        create_room(&server.base, room).await;
    }
    let (base_tx, base_rx) = watch::channel(server.base.clone());
    let sent = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for room in rooms {
        let base = base_rx.clone();
        let sent = Arc::clone(&sent);
        senders.push(tokio::spawn(async move {
            for i in 0..1000 {
                send_until_stored(&base, room, i).await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for kill_at in [1000, 2000] {
        while sent.load(Ordering::Relaxed) < kill_at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill();
        server = start_server(&db, &hook_url);
        base_tx.send(server.base.clone()).unwrap();
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let mut logs = BTreeMap::new();
    for room in rooms {
        let log = stored(&server.base, room).await;
        let texts = log.iter().filter(|e| e["kind"] == "system").count();
        assert_eq!(texts, 1000, "{room}: each message stored once");
        logs.insert(room.to_owned(), log);
    }
    wait_for_all(&got, &logs, Duration::from_secs(60)).await;
    let got = got.lock().unwrap();
    let total = check_stream(&got, &logs);
    let stored_total: usize = logs.values().map(Vec::len).sum();
    let redelivered = total - stored_total - rooms.len();
    eprintln!(
        "{} requests, {total} events for {stored_total} stored entries ({redelivered} redelivered)",
        got.requests.len(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_fails_for_10_s_gets_everything_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("parlor.db");
    let (hook_url, got) = receiver().await;
    got.lock().unwrap().refuse_until = Some(Instant::now() + Duration::from_secs(10));
    let server = start_server(&db, &hook_url);
    create_room(&server.base, "down").await;
    let (_base_tx, base) = watch::channel(server.base.clone());
    for i in 0..200 {
        send_until_stored(&base, "down", i).await;
    }
    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a failing hook does not make the server unready"
    );
    let failed: f64 = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .lines()
        .find(|l| l.starts_with("parlor_webhook_failed_requests_total{"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("the hook's failures in /metrics");
    assert!(failed >= 1.0, "{failed}");
    let log = stored(&server.base, "down").await;
    let logs = BTreeMap::from([("down".to_owned(), log)]);
    wait_for_all(&got, &logs, Duration::from_secs(40)).await;
    let got = got.lock().unwrap();
    assert!(got.refused >= 2, "retried while down: {}", got.refused);
    check_stream(&got, &logs);
}
