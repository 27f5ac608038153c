//! The integrator's control surface over real HTTP, the raw WebSocket and
//! GraphQL (docs/contract.md §1 "Services", §2 "Presence and listing",
//! "Lifecycle", "Moderation", §4): API keys, system entries with `data`
//! in a full room, presence, listing, PATCH, kicks, bans, moderators and
//! closing a room.

use std::time::Duration;

use parlor_tests::{
    RawSocket, TestServer, gql_http, gql_join, gql_socket_as, gql_ticket, join_raw, next_json,
    until,
};
use serde_json::{Value, json};

const KEY: &str = "billing-secret-0123456789";

async fn server() -> TestServer {
    TestServer::start(&["--api-key", &format!("billing={KEY}")]).await
}

enum As<'a> {
    User(&'a str),
    Service,
    Key(&'a str),
}

async fn call(
    server: &TestServer,
    who: As<'_>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("{}{path}", server.base);
    let mut req = server.http().request(method.parse().unwrap(), url);
    req = match who {
        As::User(user) => req.bearer_auth(format!("dev:{user}")),
        As::Service => req.header("X-Api-Key", KEY),
        As::Key(key) => req.header("X-Api-Key", key),
    };
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

/// `user` creates `room` with `capacity` and joins it on a raw socket.
async fn create_and_join(server: &TestServer, user: &str, room: &str, capacity: u32) -> RawSocket {
    let (status, body) = call(
        server,
        As::User(user),
        "POST",
        &format!("/v1/rooms/{room}/reservations"),
        Some(json!({"create": {"capacity": capacity}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut ws = server.raw_as(user).await;
    parlor_tests::send(&mut ws, json!({"type": "join", "ticket": body["ticket"]})).await;
    until(&mut ws, "joined").await;
    ws
}

/// Must-show 1: a backend posts 1 000 `system` entries with `data` into a
/// full room without a seat; every member gets each once, in order, on the
/// raw WebSocket and GraphQL; retries answer the original entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_posts_into_a_full_room_and_every_member_gets_it() {
    const N: usize = 1_000;
    let server = server().await;
    let mut raw = create_and_join(&server, "alice", "full", 2).await;
    let mut gql = gql_socket_as(&server, "bob").await;
    let ticket = gql_ticket(&server, "bob", "full", None).await;
    gql_join(&mut gql, "1", &ticket, None).await;
    assert_eq!(
        parlor_tests::gql_next(&mut gql, "1").await["__typename"],
        "Joined"
    );
    let (status, full) = call(
        &server,
        As::User("carol"),
        "POST",
        "/v1/rooms/full/reservations",
        None,
    )
    .await;
    assert_eq!((status, code(&full)), (409, "ROOM_FULL"));

    let mut sent = Vec::with_capacity(N);
    for i in 0..N {
        let (status, entry) = call(
            &server,
            As::Service,
            "POST",
            "/v1/rooms/full/messages",
            Some(json!({"client_id": format!("s{i}"), "data": {"n": i, "to": ["alice"]}})),
        )
        .await;
        assert_eq!(status, 201, "{entry}");
        assert_eq!(
            (&entry["kind"], &entry["sender"]),
            (&json!("system"), &json!("billing"))
        );
        sent.push(entry);
    }
    for i in [0, N / 2, N - 1] {
        let (status, again) = call(
            &server,
            As::Service,
            "POST",
            "/v1/rooms/full/messages",
            Some(json!({"client_id": format!("s{i}"), "body": "retry"})),
        )
        .await;
        assert_eq!((status, &again), (201, &sent[i]), "a retry is the original");
    }
    for want in &sent {
        let got = loop {
            let (entry, _) = until(&mut raw, "entry").await;
            if entry["kind"] == "system" {
                break entry;
            }
        };
        assert_eq!(got["seq"], want["seq"], "raw WebSocket, in order, once");
        assert_eq!(got["data"], want["data"]);
    }
    let mut n = 0;
    while n < N {
        let e = parlor_tests::gql_next(&mut gql, "1").await;
        if e["kind"] != "SYSTEM" {
            continue;
        }
        assert_eq!(e["seq"], sent[n]["seq"], "GraphQL, in order, once");
        n += 1;
    }
    let (_, room) = call(&server, As::Service, "GET", "/v1/rooms/full", None).await;
    assert_eq!(
        (room["occupancy"].as_u64(), room["capacity"].as_u64()),
        (Some(2), Some(2))
    );

    // A user's send needs a body; data travels with it.
    let (status, entry) = call(
        &server,
        As::User("alice"),
        "POST",
        "/v1/rooms/full/messages",
        Some(json!({"client_id": "a1", "body": "hi", "data": {"reply_to": 3}})),
    )
    .await;
    assert_eq!((status, &entry["data"]), (201, &json!({"reply_to": 3})));
    let (status, err) = call(
        &server,
        As::User("alice"),
        "POST",
        "/v1/rooms/full/messages",
        Some(json!({"client_id": "a2", "data": {"x": "x".repeat(5000)}, "body": "hi"})),
    )
    .await;
    assert_eq!((status, code(&err)), (413, "MESSAGE_TOO_LARGE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_and_a_service_name_is_no_user() {
    let server = server().await;
    let _alice = create_and_join(&server, "alice", "k", 3).await;
    let (status, err) = call(
        &server,
        As::Key("wrong-key-0123456789"),
        "GET",
        "/v1/rooms",
        None,
    )
    .await;
    assert_eq!((status, code(&err)), (401, "UNAUTHENTICATED"));
    let (status, err) = call(&server, As::User("billing"), "GET", "/v1/rooms", None).await;
    assert_eq!(
        (status, code(&err)),
        (401, "UNAUTHENTICATED"),
        "a user named like a service"
    );
    let (status, err) = call(
        &server,
        As::Service,
        "POST",
        "/v1/rooms/k/reservations",
        None,
    )
    .await;
    assert_eq!(
        (status, code(&err)),
        (403, "FORBIDDEN"),
        "a service takes no seat"
    );
    let (status, page) = call(&server, As::Service, "GET", "/v1/rooms", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["rooms"][0]["room_id"], "k");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_listing() {
    let server = server().await;
    let _alice = create_and_join(&server, "alice", "p-1", 5).await;
    let (status, reservation) = call(
        &server,
        As::User("bob"),
        "POST",
        "/v1/rooms/p-1/reservations",
        None,
    )
    .await;
    assert_eq!(status, 201, "{reservation}");
    let (_, members) = call(
        &server,
        As::User("alice"),
        "GET",
        "/v1/rooms/p-1/members",
        None,
    )
    .await;
    let names: Vec<_> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["user_id"].clone(), m["state"].clone()))
        .collect();
    assert_eq!(names, vec![(json!("alice"), json!("joined"))], "{members}");
    assert!(
        members["members"][0]["since"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let (_, members) = call(&server, As::Service, "GET", "/v1/rooms/p-1/members", None).await;
    assert_eq!(
        members["members"][1],
        json!({"user_id": "bob", "state": "reserved", "since": members["members"][1]["since"]})
    );

    for i in 2..=7 {
        let (status, _) = call(
            &server,
            As::User("alice"),
            "POST",
            &format!("/v1/rooms/p-{i}/reservations"),
            Some(json!({"create": {"capacity": 2, "private": i == 4}})),
        )
        .await;
        assert_eq!(status, 201);
        // A room is stored (and listed) once its creator commits.
        let mut ws = server.raw_as("alice").await;
        let joined = join_raw(&server, &mut ws, "alice", &format!("p-{i}"), None).await;
        assert_eq!(joined["type"], "joined");
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/rooms?prefix=p-&limit=2&after={a}"),
            None => "/v1/rooms?prefix=p-&limit=2".to_owned(),
        };
        let (status, page) = call(&server, As::User("stranger"), "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        for room in page["rooms"].as_array().unwrap() {
            seen.push(room["room_id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["p-1", "p-2", "p-3", "p-5", "p-6", "p-7"],
        "private p-4 hidden"
    );
    let long_prefix = format!("prefix={}", "p".repeat(65));
    for bad in [
        "limit=0",
        "limit=501",
        "limit=",
        "after=",
        "after=a%20b",
        &long_prefix,
    ] {
        let (status, err) = call(
            &server,
            As::User("x"),
            "GET",
            &format!("/v1/rooms?{bad}"),
            None,
        )
        .await;
        assert_eq!((status, code(&err)), (400, "INVALID_INPUT"), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kicks_bans_moderators_and_patches_over_http_and_the_socket() {
    let server = server().await;
    let _alice = create_and_join(&server, "alice", "m", 5).await;
    let mut bob = server.raw_as("bob").await;
    join_raw(&server, &mut bob, "bob", "m", None).await;

    // The room's facts tell each caller whether they may moderate (a page
    // shows its kick and ban buttons by it); the listing does not say.
    for (who, may) in [
        (As::User("alice"), true),
        (As::User("bob"), false),
        (As::Service, true),
    ] {
        let (status, room) = call(&server, who, "GET", "/v1/rooms/m", None).await;
        assert_eq!(
            (status, &room["can_moderate"]),
            (200, &json!(may)),
            "{room}"
        );
    }
    let (_, listing) = call(
        &server,
        As::User("alice"),
        "GET",
        "/v1/rooms?prefix=m",
        None,
    )
    .await;
    assert!(
        listing["rooms"][0].get("can_moderate").is_none(),
        "{listing}"
    );

    let (status, err) = call(
        &server,
        As::User("bob"),
        "POST",
        "/v1/rooms/m/kicks/alice",
        None,
    )
    .await;
    assert_eq!((status, code(&err)), (403, "FORBIDDEN"));
    let (status, _) = call(
        &server,
        As::User("alice"),
        "POST",
        "/v1/rooms/m/kicks/bob",
        Some(json!({"reason": "spam"})),
    )
    .await;
    assert_eq!(status, 204);
    let (left, _) = until(&mut bob, "left").await;
    assert_eq!(
        left,
        json!({"type": "left", "room_id": "m", "reason": "kicked"})
    );
    join_raw(&server, &mut bob, "bob", "m", None).await; // may come back

    // A ban: kicked again, then refused; lifted, admitted. No body needed.
    let (status, _) = call(&server, As::Service, "PUT", "/v1/rooms/m/bans/bob", None).await;
    assert_eq!(status, 204);
    until(&mut bob, "left").await;
    let (status, err) = call(
        &server,
        As::User("bob"),
        "POST",
        "/v1/rooms/m/reservations",
        None,
    )
    .await;
    assert_eq!((status, code(&err)), (403, "FORBIDDEN"));
    let (status, _) = call(&server, As::Service, "DELETE", "/v1/rooms/m/bans/bob", None).await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &server,
        As::User("bob"),
        "POST",
        "/v1/rooms/m/reservations",
        None,
    )
    .await;
    assert_eq!(status, 201);
    let (status, err) = call(
        &server,
        As::Service,
        "PUT",
        "/v1/rooms/m/bans/bob",
        Some(json!({"until": "tomorrow"})),
    )
    .await;
    assert_eq!((status, code(&err)), (400, "INVALID_INPUT"));

    // Moderators: the owner names one, who may then kick and patch.
    let (status, _) = call(
        &server,
        As::User("alice"),
        "PUT",
        "/v1/rooms/m/moderators/dave",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, room) = call(
        &server,
        As::User("dave"),
        "PATCH",
        "/v1/rooms/m",
        Some(json!({"title": "Mod room", "capacity": 1})),
    )
    .await;
    assert_eq!(
        (status, &room["title"], &room["capacity"]),
        (200, &json!("Mod room"), &json!(1))
    );
    let (status, err) = call(
        &server,
        As::User("erin"),
        "POST",
        "/v1/rooms/m/reservations",
        None,
    )
    .await;
    assert_eq!(
        (status, code(&err)),
        (409, "ROOM_FULL"),
        "a lower capacity admits no one"
    );
    let (status, room) = call(
        &server,
        As::User("dave"),
        "PATCH",
        "/v1/rooms/m",
        Some(json!({"title": null})),
    )
    .await;
    assert_eq!(
        (status, &room["title"], &room["capacity"]),
        (200, &Value::Null, &json!(1))
    );
    let (status, _) = call(
        &server,
        As::Service,
        "DELETE",
        "/v1/rooms/m/moderators/dave",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, err) = call(
        &server,
        As::User("dave"),
        "PATCH",
        "/v1/rooms/m",
        Some(json!({"capacity": 9})),
    )
    .await;
    assert_eq!((status, code(&err)), (403, "FORBIDDEN"));

    // GraphQL: the same operations.
    let kick = "mutation { kickUser(roomId: \"m\", userId: \"nobody\") }";
    let r = gql_http(&server, Some("dev:alice"), kick, json!({})).await;
    assert_eq!(r["data"]["kickUser"], false, "{r}");
    let rooms =
        "{ rooms(prefix: \"m\") { rooms { id title capacity members { userId state } } next } }";
    let r = gql_http(&server, Some("dev:alice"), rooms, json!({})).await;
    assert_eq!(r["data"]["rooms"]["rooms"][0]["id"], "m", "{r}");
    assert_eq!(
        r["data"]["rooms"]["rooms"][0]["members"][0]["userId"], "alice",
        "{r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graphql_subscription_ends_with_kicked() {
    let server = server().await;
    let _alice = create_and_join(&server, "alice", "g", 5).await;
    let mut ws = gql_socket_as(&server, "bob").await;
    let ticket = gql_ticket(&server, "bob", "g", None).await;
    gql_join(&mut ws, "1", &ticket, None).await;
    assert_eq!(
        parlor_tests::gql_next(&mut ws, "1").await["__typename"],
        "Joined"
    );
    let r = gql_http(
        &server,
        Some("dev:alice"),
        "mutation { kickUser(roomId: \"g\", userId: \"bob\", reason: \"off topic\") }",
        json!({}),
    )
    .await;
    assert_eq!(r["data"]["kickUser"], true, "{r}");
    // The stream's last event carries the error, then it completes.
    let error = loop {
        let m = tokio::time::timeout(Duration::from_secs(5), next_json(&mut ws))
            .await
            .expect("the subscription ends in time");
        if m["type"] == "next" && m["payload"]["errors"].is_array() {
            break m;
        }
    };
    let code = &error["payload"]["errors"][0]["extensions"]["code"];
    assert_eq!(code, "KICKED", "{error}");
    let complete = tokio::time::timeout(Duration::from_secs(5), next_json(&mut ws))
        .await
        .expect("complete in time");
    assert_eq!(
        (&complete["type"], &complete["id"]),
        (&json!("complete"), &json!("1"))
    );
}

/// Must-show 4 over HTTP: members get `left` with `room_closed`, reserves
/// get `ROOM_CLOSED` (410), history stays, purge removes the room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_and_purging_a_room() {
    let server = server().await;
    let mut alice = create_and_join(&server, "alice", "c", 5).await;
    let mut bob = server.raw_as("bob").await;
    join_raw(&server, &mut bob, "bob", "c", None).await;
    let (status, _) = call(&server, As::User("bob"), "DELETE", "/v1/rooms/c", None).await;
    assert_eq!(status, 403);
    let (status, _) = call(&server, As::User("alice"), "DELETE", "/v1/rooms/c", None).await;
    assert_eq!(status, 204);
    for ws in [&mut alice, &mut bob] {
        let (left, _) = until(ws, "left").await;
        assert_eq!(left["reason"], "room_closed");
    }
    let (status, err) = call(
        &server,
        As::User("carol"),
        "POST",
        "/v1/rooms/c/reservations",
        None,
    )
    .await;
    assert_eq!((status, code(&err)), (410, "ROOM_CLOSED"));
    let (status, err) = call(
        &server,
        As::User("carol"),
        "POST",
        "/v1/rooms/c/reservations",
        Some(json!({"create": {"capacity": 3}})),
    )
    .await;
    assert_eq!(
        (status, code(&err)),
        (410, "ROOM_CLOSED"),
        "a closed id is taken"
    );
    let (status, page) = call(
        &server,
        As::User("alice"),
        "GET",
        "/v1/rooms/c/messages?after_seq=0",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let leaves: Vec<_> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "leave")
        .map(|e| (e["sender"].clone(), e["reason"].clone()))
        .collect();
    assert_eq!(leaves.len(), 2, "{page}");
    assert!(leaves.iter().all(|(_, r)| r == "room_closed"));
    let (status, _) = call(
        &server,
        As::Service,
        "DELETE",
        "/v1/rooms/c?purge=true",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, err) = call(&server, As::Service, "GET", "/v1/rooms/c/messages", None).await;
    assert_eq!((status, code(&err)), (404, "ROOM_NOT_FOUND"));
    let (status, err) = call(
        &server,
        As::Service,
        "DELETE",
        "/v1/rooms/c?purge=maybe",
        None,
    )
    .await;
    assert_eq!((status, code(&err)), (400, "INVALID_INPUT"));
}
