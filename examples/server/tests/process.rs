//! The real `parlor-server` binary as a process: SIGKILL right after an ack
//! loses nothing; the Rust client resumes through a restart with no gap, no
//! duplicate, and its unacked sends delivered once; SIGTERM closes sockets
//! with 1001 and exits 0; the README's run command serves `/healthz`.

use std::{collections::HashMap, path::Path, process::Command, time::Duration};

use futures_util::{SinkExt, StreamExt};
use parlor_ws::client::{Client, ResumingRoom};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::ServerProcess;

/// The binary on the SQLite file `db`, at `bind` (`127.0.0.1:0` for any port).
fn start_server(db: &Path, bind: &str) -> ServerProcess {
    let url = format!("sqlite://{}?mode=rwc", db.display());
    ServerProcess::start([
        "--dev-auth",
        "--bind",
        bind,
        "--rate-limit",
        "100000",
        "--rate-burst",
        "100000",
        "--database-url",
        &url,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_right_after_an_ack_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("parlor.db");
    let mut server = start_server(&db, "127.0.0.1:0");
    let ann = Client::new(&server.base, "dev:ann");
    let t = ann.reserve("crash", Some(4)).await.unwrap();
    let mut socket = ann.connect().await.unwrap();
    socket.join(&t.ticket, None).await.unwrap();
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(
            ann.send("crash", &format!("c{i}"), &format!("m{i}"))
                .await
                .unwrap(),
        );
    }
    server.kill(); // right after the last ack

    let server = start_server(&db, "127.0.0.1:0");
    let ann = Client::new(&server.base, "dev:ann");
    let t = ann.reserve("crash", None).await.unwrap();
    let mut socket = ann.connect().await.unwrap();
    let joined = socket.join(&t.ticket, None).await.unwrap();
    let log = ann.history("crash", 0, 500).await.unwrap();
    for a in &acked {
        assert_eq!(
            log.get(a.seq as usize - 1),
            Some(a),
            "acked entry {} is there, unchanged",
            a.seq
        );
    }
    // After the 20 acked: the start-up leave for ann's lost seat, then her new join.
    let tail: Vec<_> = log[21..]
        .iter()
        .map(|e| (e.seq, e.kind.as_str(), e.sender.as_str()))
        .collect();
    assert_eq!(tail, vec![(22, "leave", "ann"), (23, "join", "ann")]);
    assert_eq!(joined.last_seq, 23, "the seq continues");
    let next = ann.send("crash", "after", "again").await.unwrap();
    assert_eq!(next.seq, 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_resumes_through_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("parlor.db");
    let mut server = start_server(&db, "127.0.0.1:0");
    let bind = format!("127.0.0.1:{}", server.port());
    let ann = Client::new(&server.base, "dev:ann");
    let mut room = ResumingRoom::join(ann, "resume", Some(4)).await.unwrap();
    let start = room.last_seq();

    let mut seen = Vec::new();
    for i in 0..10 {
        room.send(&format!("a{i}"), &format!("before {i}")).await;
    }
    for _ in 0..5 {
        seen.push(room.next_entry().await.unwrap());
    }
    // Kill while some sends may be unacked; queue more while it is down.
    server.kill();
    for i in 10..20 {
        room.send(&format!("a{i}"), &format!("during {i}")).await;
    }
    let server = start_server(&db, &bind);

    // Read until all 20 messages have come back.
    let mut texts = 0;
    for e in &seen {
        texts += usize::from(e.kind == "text");
    }
    while texts < 20 {
        let e = tokio::time::timeout(Duration::from_secs(60), room.next_entry())
            .await
            .expect("resumed")
            .unwrap();
        texts += usize::from(e.kind == "text");
        seen.push(e);
    }
    // An ack may trail its own entry: read on until every send is settled.
    let settle_by = tokio::time::Instant::now() + Duration::from_secs(10);
    while room.unacked() > 0 && tokio::time::Instant::now() < settle_by {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), room.next_entry()).await
        {
            seen.push(e);
        }
    }
    assert!(room.reconnects() >= 1);
    assert_eq!(room.unacked(), 0, "every send acknowledged");
    let seqs: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (start + 1..=start + seqs.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    let mut by_client: HashMap<&str, usize> = HashMap::new();
    for e in seen.iter().filter(|e| e.kind == "text") {
        *by_client
            .entry(e.client_id.as_deref().unwrap())
            .or_default() += 1;
    }
    assert_eq!(by_client.len(), 20);
    assert!(
        by_client.values().all(|&n| n == 1),
        "each message delivered once: {by_client:?}"
    );
    let log = Client::new(&server.base, "dev:ann")
        .history("resume", 0, 500)
        .await
        .unwrap();
    assert_eq!(
        log.iter().filter(|e| e.kind == "text").count(),
        20,
        "and stored once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1001_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("parlor.db"), "127.0.0.1:0");
    let health = reqwest::get(format!("{}/healthz", server.base))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the README's run command serves");
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("parlor_seats{state=\"joined\"}"),
        "{metrics}"
    );

    let ws_url = format!("{}/v1/ws", server.base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    ws.send(Message::text(
        json!({"type": "hello", "token": "dev:ann"}).to_string(),
    ))
    .await
    .unwrap();
    ws.next().await.unwrap().unwrap();

    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(f))) => break f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close, Some(1001));
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit 0, got {status:?}");
}
