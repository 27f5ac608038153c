//! The embedded app answers GraphQL: a reservation over HTTP, a `joinRoom`
//! subscription over `graphql-transport-ws`, and a message that comes back
//! through it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next()).await;
        if let Some(Ok(Message::Text(text))) = frame.expect("a frame within 10 s") {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graphql_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("embed.db").display()
    );
    let app = parlor_embed::app(&url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let graphql = |query: &str| {
        http.post(format!("http://{addr}/graphql"))
            .bearer_auth("dev:alice")
            .json(&json!({ "query": query }))
            .send()
    };
    let reserved: Value =
        graphql(r#"mutation { reserveSeat(roomId: "lobby", create: {capacity: 2}) { ticket } }"#)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let ticket = reserved["data"]["reserveSeat"]["ticket"]
        .as_str()
        .expect("a ticket");

    let mut request = format!("ws://{addr}/graphql/ws")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = json!({"type": "connection_init", "payload": {"authorization": "Bearer dev:alice"}});
    ws.send(Message::text(init.to_string())).await.unwrap();
    let subscribe = json!({"id": "1", "type": "subscribe", "payload": {"query": format!(
        r#"subscription {{ joinRoom(ticket: "{ticket}") {{ __typename ... on Joined {{ lastSeq members }} ... on Entry {{ seq body clientId }} }} }}"#
    )}});
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
    let joined = &next_json(&mut ws).await["payload"]["data"]["joinRoom"];
    assert_eq!(
        (joined["__typename"].as_str(), joined["lastSeq"].as_u64()),
        (Some("Joined"), Some(1))
    );
    assert_eq!(joined["members"], json!(["alice"]));

    let sent: Value = graphql(
        r#"mutation { sendMessage(roomId: "lobby", clientId: "c-1", body: "hello") { seq } }"#,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(sent["data"]["sendMessage"]["seq"], 2, "{sent}");
    let entry = next_json(&mut ws).await;
    assert_eq!(
        entry["payload"]["data"]["joinRoom"],
        json!({"__typename": "Entry", "seq": 2, "body": "hello", "clientId": "c-1"})
    );
}
