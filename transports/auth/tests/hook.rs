//! `HookPolicy` against a real HTTP backend on 127.0.0.1:0: what it sends,
//! that each (user, room, action) is asked once within its ttl, and that a
//! backend that is gone fails closed with `UNAVAILABLE`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{Json, Router, extract::State, routing::post};
use parlor_auth::HookPolicy;
use parlor_engine::{
    Action, Decision, ErrorKind, PolicyRequest, Principal, RoomId, RoomPolicy, StoredRoom, UserId,
};
use serde_json::{Value, json};

#[derive(Default)]
struct Backend {
    asked: AtomicUsize,
    last: std::sync::Mutex<Value>,
    /// Set: the backend stops answering (each request hangs).
    down: AtomicBool,
}

/// Allows `bob` everything but `send`, for 60 s; everyone else nothing, for 60 s.
async fn decide(State(backend): State<Arc<Backend>>, Json(question): Json<Value>) -> Json<Value> {
    if backend.down.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    backend.asked.fetch_add(1, Ordering::SeqCst);
    let allow = question["user"] == "bob" && question["action"] != "send";
    *backend.last.lock().unwrap() = question;
    Json(json!({"allow": allow, "ttl_ms": 60_000}))
}

async fn start() -> (Arc<Backend>, String) {
    let backend = Arc::new(Backend::default());
    let app = Router::new()
        .route("/authz", post(decide))
        .with_state(Arc::clone(&backend));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/authz", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (backend, url)
}

async fn ask(policy: &HookPolicy, user: &str, room: &str, action: Action) -> Decision {
    let principal = Principal::new(UserId::new(user).unwrap());
    let room_id = RoomId::new(room).unwrap();
    let facts = StoredRoom {
        id: room_id.clone(),
        capacity: 10,
        title: Some("Team".into()),
        last_seq: 3,
        owner: Some(UserId::new("cara").unwrap()),
        private: true,
        closed: false,
        first_seq: 1,
        retention: None,
    };
    let request = PolicyRequest {
        principal: &principal,
        room_id: &room_id,
        room: Some(&facts),
        action,
    };
    policy.decide(&request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_decides_once_per_ttl_and_a_silent_one_denies() {
    let (backend, url) = start().await;
    let policy = HookPolicy::new(url, Duration::from_millis(500)).unwrap();

    // 20 concurrent identical questions: one request.
    let answers = futures_util::future::join_all(
        (0..20).map(|_| ask(&policy, "bob", "team-a", Action::Join)),
    )
    .await;
    assert!(answers.iter().all(|d| matches!(d, Decision::Allow)));
    assert_eq!(backend.asked.load(Ordering::SeqCst), 1);
    let question = backend.last.lock().unwrap().clone();
    assert_eq!(question["user"], "bob");
    assert_eq!(question["room_id"], "team-a");
    assert_eq!(question["action"], "join");
    assert_eq!(question["room"]["owner"], "cara");
    assert_eq!(question["room"]["private"], true);
    assert!(question["claims"].is_object());

    // Another action is another question; its refusal is FORBIDDEN.
    match ask(&policy, "bob", "team-a", Action::Send).await {
        Decision::Deny(e) => assert_eq!(e.kind(), ErrorKind::Forbidden),
        Decision::Allow => panic!("send is refused"),
    }
    ask(&policy, "bob", "team-a", Action::Send).await;
    assert_eq!(
        backend.asked.load(Ordering::SeqCst),
        2,
        "cached within its ttl"
    );

    // The backend stops answering: what is cached still holds, every new
    // question times out as UNAVAILABLE, never allowed.
    backend.down.store(true, Ordering::SeqCst);
    assert!(matches!(
        ask(&policy, "bob", "team-a", Action::Join).await,
        Decision::Allow
    ));
    for (user, action) in [("bob", Action::Read), ("eve", Action::Join)] {
        match ask(&policy, user, "team-a", action).await {
            Decision::Deny(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable);
                assert!(!e.message().contains("127.0.0.1"), "{}", e.message());
            }
            Decision::Allow => panic!("a silent hook never allows"),
        }
    }
}
