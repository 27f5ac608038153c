//! Token expiry on a live raw WebSocket (docs/contract.md §8): at the JWT's `exp`
//! without renewal the socket is closed with 4401 as a *lost* connection
//! (seats to grace, no `leave`), so a reconnect with a fresh token resumes;
//! `{"type":"refresh"}` renews in place, and a refresh for another user or
//! an invalid one is refused while the old expiry stands.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parlor_tests::{
    Frame, JWT_SECRET, RawSocket, TestServer, join_raw, jwt, next_frame, next_json, send, until,
};
use serde_json::{Value, json};

/// A raw socket that said hello with `token`; returns it and the welcome.
async fn hello(server: &TestServer, token: &str) -> (RawSocket, Value) {
    let mut ws = server.raw().await;
    send(&mut ws, json!({"type": "hello", "token": token})).await;
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// A JWT for `user` valid for 5 s (long enough for hello, reserve and join
/// on a loaded machine), and its `exp` as a time.
fn short_jwt(user: &str) -> (String, SystemTime) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = jwt(Some(user), 5, JWT_SECRET);
    (token, UNIX_EPOCH + Duration::from_secs(now + 5))
}

/// Sleeps until `at` (by the wall clock) plus `extra`.
async fn sleep_past(at: SystemTime, extra: Duration) {
    let left = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    tokio::time::sleep(left + extra).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_closes_4401_as_lost_and_a_fresh_one_resumes() {
    let server = TestServer::start(&["--reconnect-grace", "10s"]).await;
    server.client("bob").reserve("exp", Some(3)).await.unwrap();
    let mut bob = server.raw_as("bob").await;
    join_raw(&server, &mut bob, "bob", "exp", None).await;

    let (token, exp) = short_jwt("ann");
    let (mut ann, welcome) = hello(&server, &token).await;
    assert!(welcome["expires_at"].is_string(), "{welcome}");
    let joined = join_raw(&server, &mut ann, "ann", "exp", None).await;
    let mut last_seq = joined["last_seq"].as_u64().unwrap();

    // Refusals: another user's token, a bad token. The old expiry stands.
    let bobs = jwt(Some("bob"), 60, JWT_SECRET);
    for bad in [bobs.as_str(), "not-a-token"] {
        send(&mut ann, json!({"type": "refresh", "token": bad})).await;
        let (e, _) = until(&mut ann, "error").await;
        assert_eq!(e["code"], "UNAUTHENTICATED", "{e}");
    }

    // A send after exp is never acked: the socket closes with 4401.
    sleep_past(exp, Duration::from_millis(50)).await;
    let _ = futures_util::SinkExt::send(
        &mut ann,
        tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "send", "room_id": "exp", "client_id": "late", "body": "too late"})
                .to_string(),
        ),
    )
    .await;
    let closed_at = loop {
        match next_frame(&mut ann).await {
            Frame::Closed(code) => {
                assert_eq!(code, Some(4401));
                break SystemTime::now();
            }
            Frame::Json(v) => {
                assert_ne!(v["type"], "ack", "a send after exp was acked: {v}");
                if v["type"] == "entry" {
                    last_seq = v["seq"].as_u64().unwrap();
                }
            }
        }
    };
    assert!(
        closed_at.duration_since(exp).unwrap_or_default() < Duration::from_secs(3),
        "closed shortly after exp"
    );

    // Lost, not left: the seat is in grace, no leave entry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.count_entries("bob", "exp", "leave", "ann").await, 0);
    assert_eq!(
        server.client("bob").room("exp").await.unwrap()["occupancy"],
        2
    );

    // A fresh token resumes within the grace: no second join.
    let fresh = jwt(Some("ann"), 60, JWT_SECRET);
    let (mut ann, _) = hello(&server, &fresh).await;
    let rejoined = join_raw(&server, &mut ann, "ann", "exp", Some(last_seq)).await;
    assert_eq!(rejoined["members"], json!(["ann", "bob"]));
    assert_eq!(server.count_entries("bob", "exp", "join", "ann").await, 1);
    assert_eq!(server.count_entries("bob", "exp", "leave", "ann").await, 0);
    let log = server.client("bob").history("exp", 0, 500).await.unwrap();
    assert!(
        log.iter().all(|e| e.client_id.as_deref() != Some("late")),
        "the send after exp was not stored"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_before_exp_keeps_the_socket() {
    let server = TestServer::start(&[]).await;
    server
        .client("cat")
        .reserve("renew", Some(2))
        .await
        .unwrap();
    let (token, exp) = short_jwt("cat");
    let (mut cat, _) = hello(&server, &token).await;
    join_raw(&server, &mut cat, "cat", "renew", None).await;

    let fresh = jwt(Some("cat"), 60, JWT_SECRET);
    send(&mut cat, json!({"type": "refresh", "token": fresh})).await;
    let (refreshed, _) = until(&mut cat, "refreshed").await;
    assert!(refreshed["expires_at"].is_string(), "{refreshed}");

    sleep_past(exp, Duration::from_millis(1500)).await;
    send(
        &mut cat,
        json!({"type": "send", "room_id": "renew", "client_id": "c-1", "body": "still here"}),
    )
    .await;
    let (ack, _) = until(&mut cat, "ack").await;
    assert_eq!(ack["client_id"], "c-1");
    send(&mut cat, json!({"type": "ping"})).await;
    until(&mut cat, "pong").await;
    server.stop().await;
}

/// A token that "never" expires (an `exp` past the year 9999, as some
/// deployments mint) is welcomed with the last time RFC 3339 can write, and
/// the socket works: no panic formatting or arming the expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exp_past_the_year_9999_is_welcomed_and_works() {
    let server = TestServer::start(&[]).await;
    let forever = jwt(Some("eve"), 1_000_000_000_000, JWT_SECRET);
    let (mut ws, welcome) = hello(&server, &forever).await;
    assert_eq!(
        welcome["expires_at"], "9999-12-31T23:59:59.999Z",
        "{welcome}"
    );
    send(&mut ws, json!({"type": "refresh", "token": forever})).await;
    let refreshed = next_json(&mut ws).await;
    assert_eq!(refreshed["type"], "refreshed", "{refreshed}");
    assert_eq!(refreshed["expires_at"], "9999-12-31T23:59:59.999Z");
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(next_json(&mut ws).await["type"], "pong");
    server.stop().await;
}
