//! Edits, redactions, retention and read markers through the real server
//! (docs/contract.md §2 "Edits and redactions", "Retention", "Read
//! markers", §3, §4, §5): HTTP calls, raw WebSockets and the SQLite store,
//! as a client sees them.

use std::time::Duration;

use parlor_tests::{Forwarder, RawSocket, TestServer, join_raw, next_json, send, until};
use parlor_ws::client::{Client, ResumingRoom};
use serde_json::{Value, json};

const KEY: &str = "billing-secret-0123456789";

/// `method path` as `user` (or the service, for `None`) with `body`: the
/// status and the JSON answer.
async fn call(
    server: &TestServer,
    user: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = server
        .http()
        .request(method.parse().unwrap(), format!("{}{path}", server.base));
    req = match user {
        Some(user) => req.bearer_auth(format!("dev:{user}")),
        None => req.header("X-Api-Key", KEY),
    };
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// `owner` creates `room` and joins it on a raw socket; then each of
/// `others` joins on a socket of their own. The sockets, in that order.
async fn room_with(
    server: &TestServer,
    room: &str,
    owner: &str,
    others: &[&str],
) -> Vec<RawSocket> {
    server
        .client(owner)
        .reserve(room, Some(10))
        .await
        .expect("create");
    let mut sockets = Vec::new();
    for user in std::iter::once(&owner).chain(others) {
        let mut ws = server.raw_as(user).await;
        let joined = join_raw(server, &mut ws, user, room, None).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        sockets.push(ws);
    }
    sockets
}

/// The next `entry` frame of `ws` whose seq is `seq` (earlier ones skipped).
async fn entry_at(ws: &mut RawSocket, seq: u64) -> Value {
    loop {
        let (entry, _) = until(ws, "entry").await;
        if entry["seq"] == seq {
            return entry;
        }
        assert!(
            entry["seq"].as_u64().unwrap() < seq,
            "passed {seq}: {entry}"
        );
    }
}

fn find(page: &Value, seq: u64) -> Value {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == seq)
        .unwrap_or_else(|| panic!("no {seq} in {page}"))
        .clone()
}

/// An edit and a redaction over HTTP reach a member's raw WebSocket live,
/// in seq order; history and a resumed socket show the message edited, then
/// erased — the text appears nowhere after the redaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_redactions_over_http_are_seen_live_and_in_history() {
    let server = TestServer::start(&["--api-key", &format!("billing={KEY}")]).await;
    let mut sockets = room_with(&server, "notes", "alice", &["bob"]).await;
    let mut bob = sockets.pop().unwrap();
    let _alice = sockets.pop().unwrap();
    let alice = server.client("alice");

    let sent = alice.send("notes", "a-1", "teh plan").await.unwrap();
    let live = entry_at(&mut bob, sent.seq).await;
    assert_eq!(live["body"], "teh plan");

    let edit = alice.edit("notes", sent.seq, "the plan").await.unwrap();
    assert_eq!(
        (edit.kind.as_str(), edit.target_seq, edit.body.as_deref()),
        ("edit", Some(sent.seq), Some("the plan"))
    );
    let live = entry_at(&mut bob, edit.seq).await;
    assert_eq!(
        (
            &live["kind"],
            &live["target_seq"],
            &live["body"],
            &live["sender"]
        ),
        (
            &json!("edit"),
            &json!(sent.seq),
            &json!("the plan"),
            &json!("alice")
        )
    );
    let page = server
        .client("bob")
        .history_page("notes", 0, 100)
        .await
        .unwrap();
    assert_eq!(page.first_seq, 1);
    let shown = page.messages.iter().find(|e| e.seq == sent.seq).unwrap();
    assert_eq!(shown.body.as_deref(), Some("the plan"));
    assert_eq!(shown.edited_at.as_deref(), Some(edit.created_at.as_str()));
    assert!(!shown.redacted);

    // Bob may not edit alice's words, nor redact them.
    let (status, refused) = call(
        &server,
        Some("bob"),
        "PATCH",
        &format!("/v1/rooms/notes/messages/{}", sent.seq),
        Some(json!({"body": "bob's plan"})),
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (403, &json!("FORBIDDEN"))
    );
    let (status, refused) = call(
        &server,
        Some("bob"),
        "DELETE",
        &format!("/v1/rooms/notes/messages/{}", sent.seq),
        None,
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (403, &json!("FORBIDDEN"))
    );
    // Seqs: not a number, past 2^63-1, beyond the log.
    for (path, status_code) in [
        ("/v1/rooms/notes/messages/x", (400, "INVALID_INPUT")),
        (
            "/v1/rooms/notes/messages/9223372036854775808",
            (400, "INVALID_INPUT"),
        ),
        (
            "/v1/rooms/notes/messages/9223372036854775807",
            (404, "ENTRY_NOT_FOUND"),
        ),
    ] {
        let (status, refused) = call(&server, Some("alice"), "DELETE", path, None).await;
        assert_eq!(
            (status, refused["error"]["code"].as_str().unwrap()),
            status_code,
            "{path}: {refused}"
        );
    }

    let redaction = alice
        .redact("notes", sent.seq, Some("wrong room"))
        .await
        .unwrap();
    assert_eq!(redaction.kind, "redaction");
    assert_eq!(redaction.reason.as_deref(), Some("wrong room"));
    let live = entry_at(&mut bob, redaction.seq).await;
    assert_eq!(
        (&live["kind"], &live["target_seq"], &live["reason"]),
        (&json!("redaction"), &json!(sent.seq), &json!("wrong room"))
    );

    // History, and a socket resuming from the start: erased everywhere.
    let (status, page) = call(
        &server,
        Some("bob"),
        "GET",
        "/v1/rooms/notes/messages?after_seq=0",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(!page.to_string().contains("plan"), "{page}");
    let erased = find(&page, sent.seq);
    assert_eq!(erased["redacted"], true, "{erased}");
    assert!(erased["body"].is_null() && erased.get("data").is_none());
    assert_eq!(find(&page, edit.seq)["redacted"], true);
    let mut resumed = server.raw_as("bob").await;
    let joined = join_raw(&server, &mut resumed, "bob", "notes", Some(0)).await;
    assert_eq!(joined["resumed"], true);
    let mut replay = Vec::new();
    while replay.len() < usize::try_from(redaction.seq).unwrap() {
        replay.push(until(&mut resumed, "entry").await.0);
    }
    assert!(!json!(replay).to_string().contains("plan"), "{replay:?}");
    assert_eq!(
        replay[usize::try_from(sent.seq - 1).unwrap()]["redacted"],
        true
    );
}

/// With a retention of 5 entries pruned every 100 ms, a client that comes
/// back after more than that was written is told `"resumed": false` and
/// streams from `first_seq`; history and the room's facts agree on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_after_pruning_says_resumed_false_and_goes_on_from_first_seq() {
    let server = TestServer::start(&[
        "--retention-max-entries",
        "5",
        "--retention-interval",
        "100ms",
        "--reconnect-grace",
        "60s",
    ])
    .await;
    let mut sockets = room_with(&server, "busy", "alice", &["bob"]).await;
    let _bob = sockets.pop().unwrap();
    let alice_ws = sockets.pop().unwrap();
    let seen = server
        .client("alice")
        .send("busy", "a-1", "before I go")
        .await
        .unwrap()
        .seq;
    // alice's connection drops (a loss: her seat waits in grace).
    drop(alice_ws);
    let bob = server.client("bob");
    let mut last = 0;
    for i in 0..20 {
        last = bob
            .send("busy", &format!("b-{i}"), "while away")
            .await
            .unwrap()
            .seq;
    }
    // Pruned within a few intervals.
    let mut first_seq = 0;
    for _ in 0..100 {
        first_seq = bob.history_page("busy", 0, 100).await.unwrap().first_seq;
        if first_seq == last - 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(first_seq, last - 4, "the newest 5 are kept");
    let page = bob.history_page("busy", 0, 100).await.unwrap();
    let seqs: Vec<u64> = page.messages.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (last - 4..=last).collect::<Vec<_>>());
    let (_, facts) = call(&server, Some("bob"), "GET", "/v1/rooms/busy", None).await;
    assert_eq!(
        (&facts["first_seq"], &facts["last_seq"]),
        (&json!(first_seq), &json!(last))
    );

    let mut ws = server.raw_as("alice").await;
    let joined = join_raw(&server, &mut ws, "alice", "busy", Some(seen)).await;
    assert_eq!(joined["resumed"], false, "{joined}");
    assert_eq!(joined["first_seq"], first_seq, "{joined}");
    assert_eq!(joined["last_seq"], last, "same seat, no new join: {joined}");
    for want in first_seq..=last {
        let (entry, _) = until(&mut ws, "entry").await;
        assert_eq!(entry["seq"], want, "from first_seq, in order");
    }
    // A resume that lost nothing still says so.
    let mut again = server.raw_as("alice").await;
    let joined = join_raw(&server, &mut again, "alice", "busy", Some(last)).await;
    assert_eq!(
        (&joined["resumed"], &joined["first_seq"]),
        (&json!(true), &json!(first_seq))
    );
    // A pruned message can no longer be edited.
    let (status, refused) = call(
        &server,
        Some("alice"),
        "PATCH",
        &format!("/v1/rooms/busy/messages/{seen}"),
        Some(json!({"body": "too late"})),
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (404, &json!("ENTRY_NOT_FOUND"))
    );
    server.stop().await;
}

/// Read markers: unread counts in the room's facts and the listing, a
/// `read` frame answered with `read_state`, a `receipt` on the other
/// member's raw socket (not the reader's), and a service reading a user's
/// marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_markers_unread_counts_and_receipts() {
    let server = TestServer::start(&["--api-key", &format!("billing={KEY}")]).await;
    let mut sockets = room_with(&server, "team-a", "alice", &["bob"]).await;
    let mut bob_ws = sockets.pop().unwrap();
    let mut alice_ws = sockets.pop().unwrap();
    // A second room, with no message in it.
    let _team_b = room_with(&server, "team-b", "alice", &[]).await;
    let alice = server.client("alice");
    let mut last = 0;
    for i in 0..3 {
        last = alice
            .send("team-a", &format!("a-{i}"), "news")
            .await
            .unwrap()
            .seq;
    }
    entry_at(&mut bob_ws, last).await;
    entry_at(&mut alice_ws, last).await;

    let (_, facts) = call(&server, Some("bob"), "GET", "/v1/rooms/team-a", None).await;
    assert_eq!(
        (&facts["last_read_seq"], &facts["unread"]),
        (&json!(0), &json!(3)),
        "{facts}"
    );
    let (_, facts) = call(&server, Some("alice"), "GET", "/v1/rooms/team-a", None).await;
    assert_eq!(facts["unread"], 0, "her own messages: {facts}");
    let (_, facts) = call(&server, None, "GET", "/v1/rooms/team-a", None).await;
    assert!(
        facts.get("unread").is_none(),
        "a service has no marker: {facts}"
    );

    // bob reads up to the second message on his socket.
    send(
        &mut bob_ws,
        json!({"type": "read", "room_id": "team-a", "seq": last - 1}),
    )
    .await;
    let (state, _) = until(&mut bob_ws, "read_state").await;
    assert_eq!(
        state,
        json!({"type": "read_state", "room_id": "team-a", "last_read_seq": last - 1, "unread": 1})
    );
    let (receipt, _) = until(&mut alice_ws, "receipt").await;
    assert_eq!(
        (&receipt["room_id"], &receipt["user_id"], &receipt["seq"]),
        (&json!("team-a"), &json!("bob"), &json!(last - 1))
    );
    assert!(receipt["at"].is_string(), "{receipt}");

    let (status, listing) = call(&server, Some("bob"), "GET", "/v1/rooms?prefix=team-", None).await;
    assert_eq!(status, 200, "{listing}");
    let rooms = listing["rooms"].as_array().unwrap();
    let a = rooms.iter().find(|r| r["room_id"] == "team-a").unwrap();
    let b = rooms.iter().find(|r| r["room_id"] == "team-b").unwrap();
    assert_eq!(
        (&a["last_read_seq"], &a["unread"]),
        (&json!(last - 1), &json!(1)),
        "{a}"
    );
    assert_eq!(
        (&b["last_read_seq"], &b["unread"]),
        (&json!(0), &json!(0)),
        "{b}"
    );

    // Over HTTP too; then the service reads bob's marker.
    let (status, state) = call(
        &server,
        Some("bob"),
        "PUT",
        "/v1/rooms/team-a/read",
        Some(json!({"seq": last})),
    )
    .await;
    assert_eq!((status, &state["unread"]), (200, &json!(0)), "{state}");
    let (receipt, _) = until(&mut alice_ws, "receipt").await;
    assert_eq!(receipt["seq"], last);
    let (status, marker) = call(&server, None, "GET", "/v1/rooms/team-a/read/bob", None).await;
    assert_eq!(status, 200, "{marker}");
    assert_eq!(
        marker,
        json!({"user_id": "bob", "last_read_seq": last, "unread": 0})
    );
    let (status, refused) = call(
        &server,
        Some("alice"),
        "GET",
        "/v1/rooms/team-a/read/bob",
        None,
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (403, &json!("FORBIDDEN"))
    );
    let (status, refused) = call(
        &server,
        None,
        "PUT",
        "/v1/rooms/team-a/read",
        Some(json!({"seq": 1})),
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (403, &json!("FORBIDDEN"))
    );

    // bob's own socket got no receipt of his reads: the next frame there
    // is the next entry.
    alice.send("team-a", "a-9", "later").await.unwrap();
    let next = next_json(&mut bob_ws).await;
    assert_eq!(
        (&next["type"], &next["body"]),
        (&json!("entry"), &json!("later")),
        "{next}"
    );
    server.stop().await;
}

/// The Rust client's `ResumingRoom` across a frozen network while retention
/// prunes what it had not seen: it reconnects, goes on from `first_seq`
/// (each entry once, in order) and says which seqs it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_resuming_client_goes_on_from_first_seq_and_says_what_it_missed() {
    let server = TestServer::start(&[
        "--retention-max-entries",
        "5",
        "--retention-interval",
        "100ms",
        "--ping-interval",
        "1s",
        "--ping-timeout",
        "1s",
        "--reconnect-grace",
        "60s",
    ])
    .await;
    let forwarder = Forwarder::to(&server.base).await;
    let alice = Client::new(&forwarder.base(), "dev:alice");
    let mut room = ResumingRoom::join(alice, "drift", Some(10)).await.unwrap();
    let mut bob_ws = server.raw_as("bob").await;
    join_raw(&server, &mut bob_ws, "bob", "drift", None).await;
    let bob = server.client("bob");
    let first = bob.send("drift", "b-0", "hello").await.unwrap().seq;
    let seen = loop {
        let entry = tokio::time::timeout(Duration::from_secs(10), room.next_entry())
            .await
            .unwrap()
            .unwrap();
        if entry.seq == first {
            break entry.seq;
        }
    };
    assert!(room.missed().is_empty());

    // The network freezes; the room moves on and is pruned meanwhile.
    forwarder.freeze_current();
    let mut last = 0;
    for i in 1..=20 {
        last = bob
            .send("drift", &format!("b-{i}"), "meanwhile")
            .await
            .unwrap()
            .seq;
    }
    for _ in 0..100 {
        if bob.history_page("drift", 0, 100).await.unwrap().first_seq > seen + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Silent for interval + timeout: the client reconnects and resumes.
    let next = tokio::time::timeout(Duration::from_secs(20), room.next_entry())
        .await
        .expect("an entry after the reconnect")
        .unwrap();
    assert!(room.reconnects() >= 1);
    let missed = room.missed().to_vec();
    assert_eq!(missed.len(), 1, "{missed:?}");
    assert_eq!(*missed[0].start(), seen + 1, "{missed:?}");
    assert_eq!(next.seq, missed[0].end() + 1, "goes on from first_seq");
    assert!(
        next.seq > seen + 1 && next.seq <= last - 4,
        "{} of {last}",
        next.seq
    );
    let mut seq = next.seq;
    while seq < last {
        let entry = tokio::time::timeout(Duration::from_secs(10), room.next_entry())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(entry.seq, seq + 1, "each once, in order");
        seq = entry.seq;
    }
}
