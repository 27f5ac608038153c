//! A webhook receiver on `127.0.0.1:0` for the webhook suites, and the
//! checks of what it got against the rooms' stored logs.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use parlor_ws::client::Client;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{API_KEY, ServerProcess};

/// The binary on `database_url` with dev tokens, generous send limits and
/// the webhook `hook` (signed with [`SECRET`]), plus `extra` flags.
pub fn hooked_server(database_url: &str, hook: &str, extra: &[&str]) -> ServerProcess {
    let flags = [
        "--dev-auth",
        "--bind",
        "127.0.0.1:0",
        "--rate-limit",
        "100000",
        "--rate-burst",
        "100000",
        "--database-url",
        database_url,
        "--webhook",
        hook,
        "--webhook-secret",
        SECRET,
    ];
    ServerProcess::start(flags.iter().chain(extra))
}

pub const SECRET: &str = "hook-secret-for-tests";

/// What the receiver got, request by request.
#[derive(Default)]
pub struct Received {
    /// Each request's events, in order.
    pub requests: Vec<Vec<Value>>,
    /// Requests whose signature did not verify.
    pub bad_signatures: usize,
    /// Answer 500 until then.
    pub refuse_until: Option<Instant>,
    /// Requests answered 500.
    pub refused: usize,
    /// How long each request takes to answer (a slow receiver, so that a
    /// kill finds a request in flight).
    pub delay: Duration,
}

pub type Shared = Arc<Mutex<Received>>;

async fn hook(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = match take(&shared, &headers, &body) {
        Ok(delay) => delay,
        Err(refusal) => return refusal,
    };
    // Taken, then answered late: a sender killed meanwhile never sees the
    // 2xx, and delivers the batch again.
    tokio::time::sleep(delay).await;
    StatusCode::OK
}

/// Records a request (or refuses it); the delay to answer after.
fn take(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Duration, StatusCode> {
    let mut got = shared.lock().unwrap();
    if got.refuse_until.is_some_and(|t| Instant::now() < t) {
        got.refused += 1;
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signature = headers
        .get(parlor_webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !parlor_webhook::verify(SECRET.as_bytes(), signature, body, now, 300) {
        got.bad_signatures += 1;
        return Err(StatusCode::BAD_REQUEST);
    }
    let batch: Value = serde_json::from_slice(body).unwrap();
    got.requests
        .push(batch["events"].as_array().unwrap().clone());
    Ok(got.delay)
}

/// A receiver on `127.0.0.1:0`: its URL and what it got.
pub async fn receiver() -> (String, Shared) {
    let got = Shared::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(Arc::clone(&got));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), got)
}

/// Creates `room` with ann's first commit (a `room.created` and her join).
pub async fn create_room(base: &str, room: &str) {
    let ann = Client::new(base, "dev:ann");
    let ticket = ann.reserve(room, Some(10)).await.unwrap();
    let mut socket = ann.connect().await.unwrap();
    socket.join(&ticket.ticket, None).await.unwrap();
    // The socket goes: ann leaves (or is in grace at a kill).
}

/// The service's message `i` in `room`, retried (same `client_id`) until
/// stored, on whichever server `base` names by then.
pub async fn send_until_stored(base: &watch::Receiver<String>, room: &str, i: usize) {
    let http = reqwest::Client::new();
    loop {
        let url = format!("{}/v1/rooms/{room}/messages", base.borrow().clone());
        let sent = http
            .post(url)
            .header("X-Api-Key", API_KEY)
            .json(&json!({ "client_id": format!("m{i}"), "body": format!("message {i}") }))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        if sent.is_ok_and(|r| r.status() == 201) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every stored entry of `room`, read as the service.
pub async fn stored(base: &str, room: &str) -> Vec<Value> {
    let http = reqwest::Client::new();
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |e: &Value| e["seq"].as_u64().unwrap());
        let page: Value = http
            .get(format!(
                "{base}/v1/rooms/{room}/messages?after_seq={after}&limit=500"
            ))
            .header("X-Api-Key", API_KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let got = page["messages"].as_array().unwrap().clone();
        if got.is_empty() {
            return all;
        }
        all.extend(got);
    }
}

/// Checks what `got` received of the rooms of `logs` against their stored
/// logs: every
/// stored seq arrived as an event of its kind, with one id per seq; each
/// room's events came in order — an event is either the next seq or one
/// seen before (a redelivery, same id) — with `room.created` before seq 1.
/// Returns how many events arrived, duplicates included.
pub fn check_stream(got: &Received, logs: &BTreeMap<String, Vec<Value>>) -> usize {
    assert_eq!(got.bad_signatures, 0, "every request was signed");
    let mut ids: HashMap<(String, u64), String> = HashMap::new();
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut total = 0;
    for events in &got.requests {
        for e in events {
            let room = e["room_id"].as_str().unwrap().to_owned();
            if !logs.contains_key(&room) {
                // Another suite's room in a shared database.
                continue;
            }
            total += 1;
            let ty = e["type"].as_str().unwrap();
            assert!(e["id"].as_str().is_some_and(|id| id.len() == 36), "{e}");
            assert!(e["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
            let Some(seq) = e["seq"].as_u64() else {
                assert_eq!(ty, "room.created", "{e}");
                created.insert(room);
                continue;
            };
            assert!(created.contains(&room), "room.created before {e}");
            let want = next.entry(room.clone()).or_insert(1);
            assert!(seq <= *want, "{room}: seq {seq} arrived before {want}: {e}");
            if seq == *want {
                *want += 1;
            }
            let id = e["id"].as_str().unwrap().to_owned();
            let first = ids.entry((room.clone(), seq)).or_insert_with(|| id.clone());
            assert_eq!(*first, id, "{room}/{seq}: a redelivery keeps its id");
        }
    }
    for (room, log) in logs {
        let last = log.last().unwrap()["seq"].as_u64().unwrap();
        // (ann's `leave` may come after the log was read: more is fine.)
        assert!(
            next.get(room).is_some_and(|&n| n > last),
            "{room}: every seq up to {last} arrived"
        );
        for entry in log {
            let seq = entry["seq"].as_u64().unwrap();
            assert_eq!(
                ids.get(&(room.clone(), seq)).map(String::as_str),
                entry["id"].as_str(),
                "{room}/{seq}: the event's id is the entry's"
            );
        }
    }
    total
}

/// Waits until `got` has every seq of `logs`, or `limit` passes.
pub async fn wait_for_all(got: &Shared, logs: &BTreeMap<String, Vec<Value>>, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let have: BTreeMap<String, BTreeSet<u64>> = {
            let got = got.lock().unwrap();
            let mut have: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
            for e in got.requests.iter().flatten() {
                if let Some(seq) = e["seq"].as_u64() {
                    have.entry(e["room_id"].as_str().unwrap().to_owned())
                        .or_default()
                        .insert(seq);
                }
            }
            have
        };
        let done = logs.iter().all(|(room, log)| {
            log.iter().all(|e| {
                have.get(room)
                    .is_some_and(|h| h.contains(&e["seq"].as_u64().unwrap()))
            })
        });
        if done {
            return;
        }
        if Instant::now() >= deadline {
            panic!("events still missing after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
