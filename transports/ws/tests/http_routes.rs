//! The HTTP routes of edits, redactions, read markers and retention
//! (docs/contract.md §2 "Edits and redactions", "Retention", "Read
//! markers", §4) over a real socket on 127.0.0.1:0: the transport's router
//! on the engine with the in-memory test store, dev tokens and one service
//! key. `tests/tests/edits_reads_retention.rs` checks the same rules through
//! the real server and its SQLite store.

use std::sync::Arc;

use parlor_auth::{DevTokens, ServiceKeys};
use parlor_engine::{
    ChatEngine, Engine, EngineConfig, Membership, Principal, Retention, RoomId, RoomSpec, UserId,
    testkit::MemoryStore,
};
use parlor_ws::{WsConfig, WsTransport};
use serde_json::{Value, json};

const KEY: &str = "billing-secret-0123456789";

struct Api {
    base: String,
    engine: Engine,
    http: reqwest::Client,
    _server: tokio::task::JoinHandle<()>,
}

enum As<'a> {
    User(&'a str),
    Service,
}

impl Api {
    async fn start(config: EngineConfig) -> Api {
        let engine = Engine::builder(Arc::new(MemoryStore::default()))
            .config(config)
            .start()
            .await
            .unwrap();
        let auth = ServiceKeys::parse(&[format!("billing={KEY}")])
            .unwrap()
            .guarding(Arc::new(DevTokens));
        let transport = WsTransport::new(
            Arc::new(engine.clone()),
            Arc::new(auth),
            WsConfig::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = transport.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Api {
            base,
            engine,
            http: reqwest::Client::new(),
            _server: server,
        }
    }

    /// `method path` as `who` with `body` (raw text, sent as JSON): the
    /// status and the JSON answer (null when there is none).
    async fn call(
        &self,
        who: As<'_>,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        req = match who {
            As::User(user) => req.bearer_auth(format!("dev:{user}")),
            As::Service => req.header("X-Api-Key", KEY),
        };
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// `user` seated in `room` (created with 8 seats if absent).
    async fn seat(&self, user: &str, room: &str) -> Membership {
        let who = Principal::new(UserId::new(user).unwrap());
        let room = RoomId::new(room).unwrap();
        let ticket = self
            .engine
            .reserve(&who, &room, Some(RoomSpec::with_capacity(8)))
            .await
            .unwrap()
            .ticket;
        self.engine.commit(&who, &ticket, None).await.unwrap()
    }

    /// `user` sends `body` over HTTP; the entry.
    async fn say(&self, user: &str, room: &str, client_id: &str, body: &str) -> Value {
        let (status, entry) = self
            .call(
                As::User(user),
                "POST",
                &format!("/v1/rooms/{room}/messages"),
                Some(&json!({"client_id": client_id, "body": body}).to_string()),
            )
            .await;
        assert_eq!(status, 201, "{entry}");
        entry
    }

    async fn history(&self, user: &str, room: &str) -> Value {
        let (status, page) = self
            .call(
                As::User(user),
                "GET",
                &format!("/v1/rooms/{room}/messages?after_seq=0&limit=500"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{page}");
        page
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// Edits: the sender's own, answered with the `edit` entry; history shows
/// the message edited; every refusal is the contract's JSON error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_over_http() {
    let api = Api::start(EngineConfig::default()).await;
    let _ann = api.seat("ann", "talk").await;
    let _bob = api.seat("bob", "talk").await;
    let message = api.say("ann", "talk", "a1", "helo").await;
    let seq = message["seq"].as_u64().unwrap();
    let path = format!("/v1/rooms/talk/messages/{seq}");

    let body = json!({"body": "hello", "data": {"k": 1}, "client_id": "e1"}).to_string();
    let (status, edit) = api.call(As::User("ann"), "PATCH", &path, Some(&body)).await;
    assert_eq!(status, 200, "{edit}");
    assert_eq!(
        (
            &edit["kind"],
            &edit["target_seq"],
            &edit["body"],
            &edit["data"],
            &edit["client_id"],
            &edit["sender"]
        ),
        (
            &json!("edit"),
            &json!(seq),
            &json!("hello"),
            &json!({"k": 1}),
            &json!("e1"),
            &json!("ann")
        )
    );
    // Idempotent by client_id: the first edit again.
    let again = json!({"body": "other", "client_id": "e1"}).to_string();
    let (status, repeat) = api
        .call(As::User("ann"), "PATCH", &path, Some(&again))
        .await;
    assert_eq!((status, &repeat), (200, &edit));

    let page = api.history("bob", "talk").await;
    let shown = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["seq"] == seq)
        .unwrap();
    assert_eq!(
        (&shown["body"], &shown["data"]),
        (&json!("hello"), &json!({"k": 1}))
    );
    assert_eq!(shown["edited_at"], edit["created_at"]);
    assert_eq!(page["first_seq"], 1);

    let join_seq = 1;
    for (who, path, body, status_code) in [
        // Another user's message: the open policy grants `edit` to no one.
        (
            As::User("bob"),
            path.clone(),
            json!({"body": "mine"}).to_string(),
            (403, "FORBIDDEN"),
        ),
        // Not a text message.
        (
            As::User("ann"),
            format!("/v1/rooms/talk/messages/{join_seq}"),
            json!({"body": "x"}).to_string(),
            (400, "INVALID_INPUT"),
        ),
        // Beyond the log.
        (
            As::User("ann"),
            "/v1/rooms/talk/messages/999".into(),
            json!({"body": "x"}).to_string(),
            (404, "ENTRY_NOT_FOUND"),
        ),
        // Seqs outside 0..=2^63-1, or not numbers.
        (
            As::User("ann"),
            "/v1/rooms/talk/messages/9223372036854775808".into(),
            json!({"body": "x"}).to_string(),
            (400, "INVALID_INPUT"),
        ),
        (
            As::User("ann"),
            "/v1/rooms/talk/messages/-1".into(),
            json!({"body": "x"}).to_string(),
            (400, "INVALID_INPUT"),
        ),
        (
            As::User("ann"),
            "/v1/rooms/talk/messages/1.0".into(),
            json!({"body": "x"}).to_string(),
            (400, "INVALID_INPUT"),
        ),
        // Bodies: unknown fields, neither body nor data, blank, not an object.
        (
            As::User("ann"),
            path.clone(),
            json!({"body": "x", "extra": 1}).to_string(),
            (400, "INVALID_INPUT"),
        ),
        (
            As::User("ann"),
            path.clone(),
            "{}".into(),
            (400, "INVALID_INPUT"),
        ),
        (
            As::User("ann"),
            path.clone(),
            json!({"body": "  "}).to_string(),
            (400, "INVALID_INPUT"),
        ),
        (
            As::User("ann"),
            path.clone(),
            "[]".into(),
            (400, "INVALID_INPUT"),
        ),
        (
            As::User("ann"),
            path.clone(),
            String::new(),
            (400, "INVALID_INPUT"),
        ),
        (
            As::User("ann"),
            "/v1/rooms/nowhere/messages/1".into(),
            json!({"body": "x"}).to_string(),
            (404, "ROOM_NOT_FOUND"),
        ),
    ] {
        let (status, refused) = api.call(who, "PATCH", &path, Some(&body)).await;
        assert_eq!(
            (status, code(&refused)),
            status_code,
            "PATCH {path} {body}: {refused}"
        );
        assert!(refused["error"]["message"].is_string(), "{refused}");
    }
    // A service may edit anyone's message.
    let (status, edit) = api
        .call(
            As::Service,
            "PATCH",
            &path,
            Some(&json!({"body": "fixed"}).to_string()),
        )
        .await;
    assert_eq!(
        (status, &edit["sender"]),
        (200, &json!("billing")),
        "{edit}"
    );
    // No GET on a message.
    let (status, refused) = api.call(As::User("ann"), "GET", &path, None).await;
    assert_eq!((status, code(&refused)), (405, "INVALID_INPUT"));
}

/// Redactions: the sender's, a moderator's (the owner) or a service's;
/// an empty body is `{}`; a repeat answers the first; history shows the
/// message erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redactions_over_http() {
    let api = Api::start(EngineConfig::default()).await;
    let _ann = api.seat("ann", "talk").await; // the owner
    let _bob = api.seat("bob", "talk").await;
    let _cat = api.seat("cat", "talk").await;
    let bobs = api.say("bob", "talk", "b1", "secret").await["seq"]
        .as_u64()
        .unwrap();
    let cats = api.say("cat", "talk", "c1", "hush").await["seq"]
        .as_u64()
        .unwrap();
    let path = |seq: u64| format!("/v1/rooms/talk/messages/{seq}");

    // Not bob's to redact: cat's message.
    let (status, refused) = api.call(As::User("bob"), "DELETE", &path(cats), None).await;
    assert_eq!((status, code(&refused)), (403, "FORBIDDEN"), "{refused}");
    // Bob's own, with no body at all.
    let (status, redaction) = api.call(As::User("bob"), "DELETE", &path(bobs), None).await;
    assert_eq!(status, 200, "{redaction}");
    assert_eq!(
        (
            &redaction["kind"],
            &redaction["target_seq"],
            &redaction["sender"]
        ),
        (&json!("redaction"), &json!(bobs), &json!("bob"))
    );
    assert!(redaction.get("reason").is_none() && redaction["body"].is_null());
    // Again: the first redaction, nothing new.
    let (status, again) = api
        .call(
            As::User("bob"),
            "DELETE",
            &path(bobs),
            Some(r#"{"reason":"twice"}"#),
        )
        .await;
    assert_eq!((status, &again), (200, &redaction));
    // The owner (a moderator) redacts cat's, with a note.
    let (status, moderated) = api
        .call(
            As::User("ann"),
            "DELETE",
            &path(cats),
            Some(r#"{"reason":"spam"}"#),
        )
        .await;
    assert_eq!(status, 200, "{moderated}");
    assert_eq!(moderated["reason"], "spam");

    let page = api.history("cat", "talk").await;
    let text = page.to_string();
    assert!(!text.contains("secret") && !text.contains("hush"), "{text}");
    for seq in [bobs, cats] {
        let erased = page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["seq"] == seq)
            .unwrap();
        assert_eq!(erased["redacted"], true, "{erased}");
        assert!(erased["body"].is_null() && erased.get("data").is_none());
    }

    let other = api.say("cat", "talk", "c2", "more").await["seq"]
        .as_u64()
        .unwrap();
    for (path, body, status_code) in [
        (
            path(other),
            Some(r#"{"why":"x"}"#.to_owned()),
            (400, "INVALID_INPUT"),
        ),
        (
            path(other),
            Some(json!({"reason": "r".repeat(501)}).to_string()),
            (400, "INVALID_INPUT"),
        ),
        (path(other), Some("[]".to_owned()), (400, "INVALID_INPUT")),
        // A join entry.
        (path(1), None, (400, "INVALID_INPUT")),
        (path(bobs + 100), None, (404, "ENTRY_NOT_FOUND")),
        (
            "/v1/rooms/talk/messages/18446744073709551616".to_owned(),
            None,
            (400, "INVALID_INPUT"),
        ),
    ] {
        let (status, refused) = api
            .call(As::User("cat"), "DELETE", &path, body.as_deref())
            .await;
        assert_eq!(
            (status, code(&refused)),
            status_code,
            "DELETE {path} {body:?}: {refused}"
        );
    }
    // A service redacts anything, in a closed room too.
    let (status, _) = api
        .call(As::Service, "DELETE", "/v1/rooms/talk", None)
        .await;
    assert_eq!(status, 204);
    let (status, redaction) = api
        .call(As::Service, "DELETE", &path(other), Some("{}"))
        .await;
    assert_eq!(
        (status, &redaction["sender"]),
        (200, &json!("billing")),
        "{redaction}"
    );
}

/// Read markers: `PUT …/read` answers the read state, monotone; the
/// room's facts and the listing carry it for a user (not a service); a
/// service reads anyone's marker, a user only their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_markers_over_http() {
    let api = Api::start(EngineConfig::default()).await;
    let _ann = api.seat("ann", "talk").await;
    let _bob = api.seat("bob", "talk").await;
    let mut last = 0;
    for i in 0..3 {
        last = api.say("ann", "talk", &format!("a{i}"), "hi").await["seq"]
            .as_u64()
            .unwrap();
    }
    api.say("bob", "talk", "b0", "mine").await;
    let api = &api;
    let room = |who| async move { api.call(who, "GET", "/v1/rooms/talk", None).await };

    let (_, facts) = room(As::User("bob")).await;
    assert_eq!(
        (&facts["last_read_seq"], &facts["unread"]),
        (&json!(0), &json!(3)),
        "{facts}"
    );
    let (_, facts) = room(As::Service).await;
    assert!(
        facts.get("last_read_seq").is_none() && facts.get("unread").is_none(),
        "{facts}"
    );

    let read = |seq: Value| json!({"seq": seq}).to_string();
    let (status, state) = api
        .call(
            As::User("bob"),
            "PUT",
            "/v1/rooms/talk/read",
            Some(&read(json!(last - 1))),
        )
        .await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(
        state,
        json!({"room_id": "talk", "last_read_seq": last - 1, "unread": 1})
    );
    // Lower: ignored, answered with the stored marker.
    let (status, state) = api
        .call(
            As::User("bob"),
            "PUT",
            "/v1/rooms/talk/read",
            Some(&read(json!(2))),
        )
        .await;
    assert_eq!((status, &state["last_read_seq"]), (200, &json!(last - 1)));

    let (_, facts) = room(As::User("bob")).await;
    assert_eq!(
        (&facts["last_read_seq"], &facts["unread"]),
        (&json!(last - 1), &json!(1))
    );
    let (status, listing) = api.call(As::User("bob"), "GET", "/v1/rooms", None).await;
    assert_eq!(status, 200);
    let listed = listing["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room_id"] == "talk")
        .unwrap();
    assert_eq!(
        (&listed["last_read_seq"], &listed["unread"]),
        (&json!(last - 1), &json!(1))
    );

    let (status, marker) = api
        .call(As::Service, "GET", "/v1/rooms/talk/read/bob", None)
        .await;
    assert_eq!(status, 200, "{marker}");
    assert_eq!(
        marker,
        json!({"user_id": "bob", "last_read_seq": last - 1, "unread": 1})
    );
    let (status, own) = api
        .call(As::User("bob"), "GET", "/v1/rooms/talk/read/bob", None)
        .await;
    assert_eq!((status, &own), (200, &marker));
    let (status, refused) = api
        .call(As::User("ann"), "GET", "/v1/rooms/talk/read/bob", None)
        .await;
    assert_eq!((status, code(&refused)), (403, "FORBIDDEN"), "{refused}");
    // A private room hides itself from a user who may not read it, marker
    // and all, as its facts do.
    let who = Principal::new(UserId::new("cat").unwrap());
    let ticket = api
        .engine
        .reserve(
            &who,
            &RoomId::new("den").unwrap(),
            Some(RoomSpec::with_capacity(2).private()),
        )
        .await
        .unwrap()
        .ticket;
    let _cat = api.engine.commit(&who, &ticket, None).await.unwrap();
    for path in ["/v1/rooms/den", "/v1/rooms/den/read/bob"] {
        let (status, refused) = api.call(As::User("bob"), "GET", path, None).await;
        assert_eq!(
            (status, code(&refused)),
            (404, "ROOM_NOT_FOUND"),
            "{path}: {refused}"
        );
    }
    let (status, _) = api
        .call(As::User("cat"), "GET", "/v1/rooms/den/read/cat", None)
        .await;
    assert_eq!(status, 200);

    let head = last + 1; // bob's own message
    for (who, body, status_code) in [
        (As::Service, read(json!(1)), (403, "FORBIDDEN")),
        (
            As::User("bob"),
            read(json!(head + 1)),
            (400, "INVALID_INPUT"),
        ),
        (
            As::User("bob"),
            read(json!(9_223_372_036_854_775_808u64)),
            (400, "INVALID_INPUT"),
        ),
        (As::User("bob"), read(json!(-1)), (400, "INVALID_INPUT")),
        (As::User("bob"), read(json!("3")), (400, "INVALID_INPUT")),
        (
            As::User("bob"),
            json!({"seq": 1, "room": "talk"}).to_string(),
            (400, "INVALID_INPUT"),
        ),
        (As::User("bob"), "{}".into(), (400, "INVALID_INPUT")),
        (As::User("bob"), String::new(), (400, "INVALID_INPUT")),
    ] {
        let (status, refused) = api
            .call(who, "PUT", "/v1/rooms/talk/read", Some(&body))
            .await;
        assert_eq!(
            (status, code(&refused)),
            status_code,
            "PUT read {body}: {refused}"
        );
    }
    let (status, refused) = api
        .call(
            As::User("bob"),
            "PUT",
            "/v1/rooms/nowhere/read",
            Some(&read(json!(0))),
        )
        .await;
    assert_eq!((status, code(&refused)), (404, "ROOM_NOT_FOUND"));
    // Up to the head: nothing unread (bob's own message never counts).
    let (_, state) = api
        .call(
            As::User("bob"),
            "PUT",
            "/v1/rooms/talk/read",
            Some(&read(json!(head))),
        )
        .await;
    assert_eq!(state["unread"], 0, "{state}");
}

/// Retention in `PATCH /v1/rooms/{id}`: the room's own (answered as
/// humantime prints it), null back to the server's; bad values refused;
/// history and the facts say where the log starts once it was pruned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_over_http() {
    let api = Api::start(
        EngineConfig::default().retention_interval(std::time::Duration::from_secs(3600)),
    )
    .await;
    let _ann = api.seat("ann", "talk").await; // the owner
    let api = &api;
    let patch = |body: Value| async move {
        api.call(
            As::User("ann"),
            "PATCH",
            "/v1/rooms/talk",
            Some(&body.to_string()),
        )
        .await
    };
    let (status, facts) = patch(json!({"retention": {"max_entries": 3, "max_age": "30d"}})).await;
    assert_eq!(status, 200, "{facts}");
    assert_eq!(
        facts["retention"],
        json!({"max_entries": 3, "max_age": "30days"})
    );
    let (_, facts) = patch(json!({"retention": {"max_age": "12h 30m"}})).await;
    assert_eq!(
        facts["retention"],
        json!({"max_entries": null, "max_age": "12h 30m"})
    );
    let (_, facts) = patch(json!({"title": "t"})).await;
    assert_eq!(
        facts["retention"]["max_age"], "12h 30m",
        "untouched when not named"
    );
    let (_, facts) = patch(json!({"retention": null})).await;
    assert!(facts["retention"].is_null(), "{facts}");
    let (_, facts) = patch(json!({"retention": {}})).await;
    assert_eq!(
        facts["retention"],
        json!({"max_entries": null, "max_age": null})
    );

    for bad in [
        json!({"retention": {"max_entries": 0}}),
        json!({"retention": {"max_entries": -1}}),
        json!({"retention": {"max_entries": 9_223_372_036_854_775_808u64}}),
        json!({"retention": {"max_age": "0s"}}),
        json!({"retention": {"max_age": "500ms"}}),
        json!({"retention": {"max_age": "soon"}}),
        json!({"retention": {"max_age": 30}}),
        json!({"retention": {"keep": 3}}),
        json!({"retention": []}),
        json!({"retention": 3}),
    ] {
        let (status, refused) = patch(bad.clone()).await;
        assert_eq!(
            (status, code(&refused)),
            (400, "INVALID_INPUT"),
            "{bad}: {refused}"
        );
    }
    // Not the owner.
    let (status, refused) = api
        .call(
            As::User("bob"),
            "PATCH",
            "/v1/rooms/talk",
            Some(r#"{"retention":null}"#),
        )
        .await;
    assert_eq!((status, code(&refused)), (403, "FORBIDDEN"));

    // Keep the newest 3, prune: history and the facts start past the cut.
    patch(json!({"retention": {"max_entries": 3}})).await;
    let mut last = 0;
    for i in 0..10 {
        last = api.say("ann", "talk", &format!("a{i}"), "x").await["seq"]
            .as_u64()
            .unwrap();
    }
    assert!(api.engine.prune_now().await.unwrap() > 0);
    let page = api.history("ann", "talk").await;
    assert_eq!(page["first_seq"], last - 2, "{page}");
    let seqs: Vec<u64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![last - 2, last - 1, last]);
    let (_, facts) = api
        .call(As::User("ann"), "GET", "/v1/rooms/talk", None)
        .await;
    assert_eq!(
        (&facts["first_seq"], &facts["last_seq"]),
        (&json!(last - 2), &json!(last))
    );
    // A pruned message can be neither edited nor redacted.
    let (status, refused) = api
        .call(
            As::User("ann"),
            "DELETE",
            &format!("/v1/rooms/talk/messages/{}", last - 3),
            None,
        )
        .await;
    assert_eq!((status, code(&refused)), (404, "ENTRY_NOT_FOUND"));

    // The server's own retention shows as null on a room without one.
    let api = Api::start(EngineConfig::default().retention(Retention {
        max_entries: Some(5),
        max_age: None,
    }))
    .await;
    let _ann = api.seat("ann", "other").await;
    let (_, facts) = api
        .call(As::User("ann"), "GET", "/v1/rooms/other", None)
        .await;
    assert!(facts["retention"].is_null(), "{facts}");
}
