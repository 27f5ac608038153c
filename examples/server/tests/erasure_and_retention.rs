//! The real `parlor-server` binary on SQLite: a redacted message's text is
//! in no database file once the server stopped on SIGTERM
//! (docs/contract.md §2, "Edits and redactions"), and with
//! `--retention-max-entries 100` a room that received 10 000 messages keeps
//! about 100, while a resume from seq 5 is told `resumed: false` and
//! `first_seq` (§2, "Retention").

use std::{path::Path, process::Command, time::Duration};

use parlor_ws::client::Client;
use serde_json::{Value, json};

mod common;

use common::ServerProcess;

fn start_server(db: &Path, extra: &[&str]) -> ServerProcess {
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let mut args = vec![
        "--dev-auth",
        "--bind",
        "127.0.0.1:0",
        "--rate-limit",
        "100000",
        "--rate-burst",
        "100000",
        "--database-url",
        &url,
    ];
    args.extend_from_slice(extra);
    ServerProcess::start(args)
}

/// An HTTP call as `user` (a dev token).
async fn call(
    server: &ServerProcess,
    user: &str,
    method: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{}{path}", server.base))
        .bearer_auth(format!("dev:{user}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Whether any file in `dir` holds `needle`'s bytes.
fn found_in(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            hits.push(path.display().to_string());
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_message_is_in_no_database_file_after_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_server(&dir.path().join("parlor.db"), &[]);
    let ann = Client::new(&server.base, "dev:ann");
    let t = ann.reserve("erase", Some(4)).await.unwrap();
    let mut socket = ann.connect().await.unwrap();
    socket.join(&t.ticket, None).await.unwrap();

    let tag = format!("{:016x}", rand::random::<u64>());
    let (secret, edited, data, kept) = (
        format!("SECRET-{tag}"),
        format!("EDITED-{tag}"),
        format!("DATA-{tag}"),
        format!("KEPT-{tag}"),
    );
    let (status, sent) = call(
        &server,
        "ann",
        "POST",
        "/v1/rooms/erase/messages",
        json!({"client_id": "c1", "body": secret, "data": {"note": data}}),
    )
    .await;
    assert_eq!(status, 201, "{sent}");
    let seq = sent["seq"].as_u64().unwrap();
    let (status, edit) = call(
        &server,
        "ann",
        "PATCH",
        &format!("/v1/rooms/erase/messages/{seq}"),
        json!({"body": edited}),
    )
    .await;
    assert_eq!(status, 200, "{edit}");
    ann.send("erase", "c2", &kept).await.unwrap();
    // Enough traffic that the text has been written to pages, not just the WAL.
    for i in 0..200 {
        ann.send("erase", &format!("filler{i}"), &"x".repeat(200))
            .await
            .unwrap();
    }
    let (status, redaction) = call(
        &server,
        "ann",
        "DELETE",
        &format!("/v1/rooms/erase/messages/{seq}"),
        json!({"reason": "gdpr"}),
    )
    .await;
    assert_eq!(status, 200, "{redaction}");
    assert_eq!(redaction["kind"], "redaction");

    // Gone from history at once.
    let history = ann.history("erase", 0, 500).await.unwrap();
    let text = serde_json::to_string(&history.iter().map(|e| &e.body).collect::<Vec<_>>()).unwrap();
    assert!(
        !text.contains(&secret) && !text.contains(&edited),
        "history"
    );

    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit 0 on SIGTERM, got {status:?}");

    for erased in [&secret, &edited, &data] {
        let hits = found_in(dir.path(), erased);
        assert!(hits.is_empty(), "{erased} is still in {hits:?}");
    }
    // The scan finds what was not erased: it would have found the rest.
    assert!(!found_in(dir.path(), &kept).is_empty(), "control: {kept}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_about_its_bound_and_a_stale_resume_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(
        &dir.path().join("parlor.db"),
        &[
            "--retention-max-entries",
            "100",
            "--retention-interval",
            "500ms",
        ],
    );
    let ann = Client::new(&server.base, "dev:ann");
    let t = ann.reserve("bounded", Some(4)).await.unwrap();
    let mut socket = ann.connect().await.unwrap();
    socket.join(&t.ticket, None).await.unwrap();

    // 10 000 messages from 8 senders at once.
    let tasks: Vec<_> = (0..8)
        .map(|s| {
            let ann = ann.clone();
            tokio::spawn(async move {
                for i in 0..1250 {
                    ann.send("bounded", &format!("s{s}-{i}"), "hi")
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Within 10 s of the last send the pruner has caught up.
    let started = std::time::Instant::now();
    let (first, last) = loop {
        let facts = ann.room("bounded").await.unwrap();
        let (first, last) = (
            facts["first_seq"].as_u64().unwrap(),
            facts["last_seq"].as_u64().unwrap(),
        );
        if last + 1 - first <= 100 {
            break (first, last);
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{} stored after 10 s",
            last + 1 - first
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(last > 10_000, "every send stored: last_seq {last}");
    let stored = ann.history("bounded", 0, 500).await.unwrap();
    assert_eq!(stored.len() as u64, last + 1 - first);
    assert_eq!(stored[0].seq, first);

    // A resume from seq 5: joined, not resumed, from first_seq.
    let bob = Client::new(&server.base, "dev:bob");
    let t = bob.reserve("bounded", None).await.unwrap();
    let mut socket = bob.connect().await.unwrap();
    let joined = socket.join(&t.ticket, Some(5)).await.unwrap();
    assert!(!joined.resumed, "{joined:?}");
    assert!(joined.first_seq >= first, "{joined:?}");
}
