//! docs/contract.md §2 ("Edits and redactions", "Retention", "Read
//! markers") and §6 through the real server's GraphQL: `editMessage` and
//! `redactMessage` seen live by every `joinRoom` subscriber as `EDIT` and
//! `REDACTION` entries and by history as the latest body or erased;
//! `markRead` as a `Receipt` at the other members and not at the reader;
//! `Room.lastReadSeq`/`unread` and `readMarker`; the refusals (another
//! user's edit `FORBIDDEN`, seqs beyond 32 bits `INVALID_INPUT`); and a
//! resume after pruning with `Joined.resumed` false.

use std::time::Duration;

use parlor_tests::{
    RawSocket, TestServer, gql_code, gql_http, gql_socket_as, gql_ticket, next_json, send,
};
use serde_json::{Value, json};

const KEY: &str = "backend-secret-0123456789";

const JOIN: &str = "subscription($t: String!, $a: Int) { joinRoom(ticket: $t, afterSeq: $a) { __typename \
    ... on Joined { roomId lastSeq firstSeq resumed members } \
    ... on Entry { seq kind sender clientId body reason targetSeq editedAt redacted } \
    ... on Receipt { roomId userId seq at } } }";
const SEND: &str = "mutation($r: ID!, $c: String!, $b: String!) { sendMessage(roomId: $r, clientId: $c, body: $b) { seq } }";
const EDIT: &str = "mutation($r: ID!, $s: Int!, $b: String, $c: String) { editMessage(roomId: $r, seq: $s, body: $b, clientId: $c) { seq kind sender body targetSeq redacted } }";
const REDACT: &str = "mutation($r: ID!, $s: Int!, $why: String) { redactMessage(roomId: $r, seq: $s, reason: $why) { seq kind sender targetSeq reason } }";
const MARK: &str = "mutation($r: ID!, $s: Int!) { markRead(roomId: $r, seq: $s) { roomId userId lastReadSeq unread } }";
const MESSAGES: &str =
    "query($r: ID!) { messages(roomId: $r) { seq kind body editedAt redacted targetSeq reason } }";
const ROOM: &str = "query($r: ID!) { room(id: $r) { lastSeq firstSeq retention { maxEntries maxAge } lastReadSeq unread } }";
const MARKER: &str = "query($r: ID!, $u: ID!) { readMarker(roomId: $r, userId: $u) { roomId userId lastReadSeq unread } }";

/// `query` as `user` (dev token), the whole response.
async fn as_user(server: &TestServer, user: &str, query: &str, variables: Value) -> Value {
    gql_http(server, Some(&format!("dev:{user}")), query, variables).await
}

/// `query` as the service `backend` (`X-Api-Key`), the whole response.
async fn as_service(server: &TestServer, query: &str, variables: Value) -> Value {
    server
        .http()
        .post(format!("{}/graphql", server.base))
        .header("X-Api-Key", KEY)
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `user` joins `room` on a new socket (creating it with 10 seats when
/// `create`), operation id `1`: the socket and the `Joined` event.
async fn join(
    server: &TestServer,
    user: &str,
    room: &str,
    create: bool,
    after_seq: Option<u64>,
) -> (RawSocket, Value) {
    let ticket = gql_ticket(server, user, room, create.then_some(10)).await;
    let mut ws = gql_socket_as(server, user).await;
    send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": JOIN, "variables": {"t": ticket, "a": after_seq}}}),
    )
    .await;
    let joined = event(&mut ws).await;
    assert_eq!(joined["__typename"], "Joined", "{joined}");
    (ws, joined)
}

/// The next `joinRoom` event on the socket (panics on anything else).
async fn event(ws: &mut RawSocket) -> Value {
    let m = next_json(ws).await;
    assert_eq!((&m["type"], &m["id"]), (&json!("next"), &json!("1")), "{m}");
    assert!(m["payload"]["errors"].is_null(), "{m}");
    m["payload"]["data"]["joinRoom"].clone()
}

/// Nothing arrives on the socket for a while.
async fn quiet(ws: &mut RawSocket) {
    if let Ok(m) = tokio::time::timeout(Duration::from_millis(300), next_json(ws)).await {
        panic!("unexpected message: {m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_redactions_and_receipts_over_graphql() {
    let server = TestServer::start(&["--api-key", &format!("backend={KEY}")]).await;
    let (mut ann, _) = join(&server, "ann", "am1", true, None).await;
    let (mut bob, joined) = join(&server, "bob", "am1", false, None).await;
    assert_eq!(
        (&joined["firstSeq"], &joined["resumed"], &joined["lastSeq"]),
        (&json!(1), &json!(true), &json!(2))
    );
    assert_eq!(event(&mut ann).await["kind"], "JOIN", "bob's join");
    let sent = as_user(
        &server,
        "ann",
        SEND,
        json!({"r": "am1", "c": "c1", "b": "helo"}),
    )
    .await;
    let seq = sent["data"]["sendMessage"]["seq"].as_u64().unwrap();
    assert_eq!(seq, 3, "{sent}");
    for ws in [&mut ann, &mut bob] {
        assert_eq!(event(ws).await["body"], "helo");
    }

    // An edit: the sender's only.
    let refused = as_user(
        &server,
        "bob",
        EDIT,
        json!({"r": "am1", "s": seq, "b": "mine"}),
    )
    .await;
    assert_eq!(gql_code(&refused), "FORBIDDEN", "{refused}");
    let edit = as_user(
        &server,
        "ann",
        EDIT,
        json!({"r": "am1", "s": seq, "b": "hello", "c": "e1"}),
    )
    .await;
    assert_eq!(
        edit["data"]["editMessage"],
        json!({"seq": 4, "kind": "EDIT", "sender": "ann", "body": "hello", "targetSeq": 3, "redacted": false}),
        "{edit}"
    );
    for ws in [&mut ann, &mut bob] {
        assert_eq!(
            event(ws).await,
            json!({"__typename": "Entry", "seq": 4, "kind": "EDIT", "sender": "ann", "clientId": "e1",
                   "body": "hello", "reason": null, "targetSeq": 3, "editedAt": null, "redacted": false})
        );
    }
    let history = as_user(&server, "bob", MESSAGES, json!({"r": "am1"})).await;
    let target = &history["data"]["messages"][2];
    assert_eq!(
        (&target["seq"], &target["body"], &target["redacted"]),
        (&json!(3), &json!("hello"), &json!(false)),
        "history shows the latest edit: {history}"
    );
    assert!(
        target["editedAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{history}"
    );

    // A redaction, with its note: erased everywhere after.
    let redaction = as_user(
        &server,
        "ann",
        REDACT,
        json!({"r": "am1", "s": seq, "why": "wrong room"}),
    )
    .await;
    assert_eq!(
        redaction["data"]["redactMessage"],
        json!({"seq": 5, "kind": "REDACTION", "sender": "ann", "targetSeq": 3, "reason": "wrong room"}),
        "{redaction}"
    );
    for ws in [&mut ann, &mut bob] {
        let live = event(ws).await;
        assert_eq!(
            (
                &live["seq"],
                &live["kind"],
                &live["targetSeq"],
                &live["reason"],
                &live["body"]
            ),
            (
                &json!(5),
                &json!("REDACTION"),
                &json!(3),
                &json!("wrong room"),
                &Value::Null
            ),
            "{live}"
        );
    }
    let history = as_user(&server, "bob", MESSAGES, json!({"r": "am1"})).await;
    let messages = history["data"]["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 5, "{history}");
    for erased in &messages[2..4] {
        assert_eq!(
            (&erased["redacted"], &erased["body"]),
            (&json!(true), &Value::Null),
            "the message and its edit: {history}"
        );
    }
    assert!(
        !history.to_string().contains("helo") && !history.to_string().contains("hello"),
        "no erased text comes back: {history}"
    );

    // Seqs are 32-bit Ints: beyond, or negative, is INVALID_INPUT; within
    // range but beyond the log, ENTRY_NOT_FOUND.
    for (query, vars) in [
        (EDIT, json!({"r": "am1", "s": 3_000_000_000_u64, "b": "x"})),
        (EDIT, json!({"r": "am1", "s": -1, "b": "x"})),
        (REDACT, json!({"r": "am1", "s": 2_147_483_648_u64})),
        (MARK, json!({"r": "am1", "s": -1})),
        (MARK, json!({"r": "am1", "s": 4_294_967_296_u64})),
    ] {
        let r = as_user(&server, "ann", query, vars.clone()).await;
        assert_eq!(gql_code(&r), "INVALID_INPUT", "{vars}: {r}");
    }
    let missing = as_user(&server, "ann", REDACT, json!({"r": "am1", "s": i32::MAX})).await;
    assert_eq!(gql_code(&missing), "ENTRY_NOT_FOUND", "{missing}");

    // Read markers: bob reads; ann gets a receipt, bob does not.
    let room = as_user(&server, "bob", ROOM, json!({"r": "am1"})).await;
    assert_eq!(
        room["data"]["room"],
        json!({"lastSeq": 5, "firstSeq": 1, "retention": null, "lastReadSeq": 0, "unread": 0}),
        "ann's only message was redacted: {room}"
    );
    as_user(
        &server,
        "ann",
        SEND,
        json!({"r": "am1", "c": "c2", "b": "again"}),
    )
    .await;
    for ws in [&mut ann, &mut bob] {
        assert_eq!(event(ws).await["seq"], 6);
    }
    let room = as_user(&server, "bob", ROOM, json!({"r": "am1"})).await;
    assert_eq!(
        (
            &room["data"]["room"]["lastReadSeq"],
            &room["data"]["room"]["unread"]
        ),
        (&json!(0), &json!(1)),
        "{room}"
    );
    let marked = as_user(&server, "bob", MARK, json!({"r": "am1", "s": 6})).await;
    assert_eq!(
        marked["data"]["markRead"],
        json!({"roomId": "am1", "userId": "bob", "lastReadSeq": 6, "unread": 0}),
        "{marked}"
    );
    let receipt = event(&mut ann).await;
    assert_eq!(
        (
            &receipt["__typename"],
            &receipt["roomId"],
            &receipt["userId"],
            &receipt["seq"]
        ),
        (&json!("Receipt"), &json!("am1"), &json!("bob"), &json!(6)),
        "{receipt}"
    );
    assert!(
        receipt["at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{receipt}"
    );
    quiet(&mut bob).await;
    let room = as_user(&server, "bob", ROOM, json!({"r": "am1"})).await;
    assert_eq!(
        (
            &room["data"]["room"]["lastReadSeq"],
            &room["data"]["room"]["unread"]
        ),
        (&json!(6), &json!(0)),
        "{room}"
    );
    let lower = as_user(&server, "bob", MARK, json!({"r": "am1", "s": 2})).await;
    assert_eq!(lower["data"]["markRead"]["lastReadSeq"], 6, "monotone");
    quiet(&mut ann).await;
    let beyond = as_user(&server, "bob", MARK, json!({"r": "am1", "s": 7})).await;
    assert_eq!(gql_code(&beyond), "INVALID_INPUT", "{beyond}");

    // The service reads anyone's marker and has none itself.
    let read = as_service(&server, MARKER, json!({"r": "am1", "u": "bob"})).await;
    assert_eq!(
        read["data"]["readMarker"],
        json!({"roomId": "am1", "userId": "bob", "lastReadSeq": 6, "unread": 0}),
        "{read}"
    );
    let room = as_service(&server, ROOM, json!({"r": "am1"})).await;
    assert_eq!(
        (
            &room["data"]["room"]["lastReadSeq"],
            &room["data"]["room"]["unread"]
        ),
        (&Value::Null, &Value::Null),
        "{room}"
    );
    let refused = as_user(&server, "ann", MARKER, json!({"r": "am1", "u": "bob"})).await;
    assert_eq!(gql_code(&refused), "FORBIDDEN", "{refused}");
    let refused = as_service(&server, MARK, json!({"r": "am1", "s": 1})).await;
    assert_eq!(gql_code(&refused), "FORBIDDEN", "{refused}");

    // The owner (a moderator) redacts another's message.
    let bobs = as_user(
        &server,
        "bob",
        SEND,
        json!({"r": "am1", "c": "b1", "b": "spam"}),
    )
    .await;
    let bobs = bobs["data"]["sendMessage"]["seq"].as_u64().unwrap();
    let by_owner = as_user(&server, "ann", REDACT, json!({"r": "am1", "s": bobs})).await;
    assert_eq!(
        by_owner["data"]["redactMessage"]["targetSeq"], bobs,
        "{by_owner}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_past_pruned_entries_says_it_did_not_resume() {
    // The room's own retention (`updateRoom`) and the server's default
    // pruning period (5 s).
    let server = TestServer::start(&[]).await;
    let (mut ann, joined) = join(&server, "ann", "am2", true, None).await;
    assert_eq!(joined["resumed"], true);
    for i in 0..10 {
        as_user(
            &server,
            "ann",
            SEND,
            json!({"r": "am2", "c": format!("c{i}"), "b": "m"}),
        )
        .await;
    }
    for seq in 2..=11 {
        assert_eq!(event(&mut ann).await["seq"], seq);
    }
    const KEEP: &str = "mutation($r: ID!) { updateRoom(roomId: $r, retention: {maxEntries: 3, maxAge: \"1h\"}) { retention { maxEntries maxAge } } }";
    let kept = as_user(&server, "ann", KEEP, json!({"r": "am2"})).await;
    assert_eq!(
        kept["data"]["updateRoom"]["retention"],
        json!({"maxEntries": 3, "maxAge": "1h"}),
        "{kept}"
    );
    let mut room = Value::Null;
    for _ in 0..150 {
        room = as_user(&server, "ann", ROOM, json!({"r": "am2"})).await;
        if room["data"]["room"]["firstSeq"] != 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (
            &room["data"]["room"]["lastSeq"],
            &room["data"]["room"]["firstSeq"]
        ),
        (&json!(11), &json!(9)),
        "pruned within the period: {room}"
    );
    let history = as_user(&server, "ann", MESSAGES, json!({"r": "am2"})).await;
    let seqs: Vec<_> = history["data"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [9, 10, 11], "{history}");
    // Back to the server's retention (keeps everything): nothing more is
    // pruned while the rest runs.
    const BACK: &str = "mutation($r: ID!) { updateRoom(roomId: $r, retention: null) { retention { maxEntries } } }";
    let back = as_user(&server, "ann", BACK, json!({"r": "am2"})).await;
    assert_eq!(
        back["data"]["updateRoom"]["retention"],
        Value::Null,
        "{back}"
    );

    // The live subscriber was never behind: it goes on.
    as_user(
        &server,
        "ann",
        SEND,
        json!({"r": "am2", "c": "c10", "b": "m"}),
    )
    .await;
    assert_eq!(event(&mut ann).await["seq"], 12);

    // A second connection resumes from seq 1: entries 2..=9 are gone.
    let (mut again, joined) = join(&server, "ann", "am2", false, Some(1)).await;
    assert_eq!(
        (&joined["resumed"], &joined["firstSeq"], &joined["lastSeq"]),
        (&json!(false), &json!(9), &json!(12)),
        "{joined}"
    );
    assert_eq!(event(&mut again).await["seq"], 9, "from firstSeq on");
    // From within what is stored, it is a resume.
    let (_fresh, joined) = join(&server, "ann", "am2", false, Some(8)).await;
    assert_eq!(joined["resumed"], true, "{joined}");
    server.stop().await;
}
