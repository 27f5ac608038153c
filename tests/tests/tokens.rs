//! Issue 18 §5, tokens, over the real server: `nbf` with its leeway,
//! `aud`/`iss` when configured, RS256 from a PEM key and ES256 from a JWK Set
//! (the `kid` picks the key), algorithm confusion and unknown `kid`s refused,
//! and key files that stop the start. Test keys: `tests/fixtures/make.sh`.

use std::sync::atomic::{AtomicU32, Ordering};

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use parlor_tests::{
    Frame, JWT_SECRET, TestServer, gql_socket, next_frame, next_json, reserve_raw, send,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn rsa_private() -> EncodingKey {
    EncodingKey::from_rsa_der(&std::fs::read(fixture("rsa_private.der")).unwrap())
}

fn ec_private(name: &str) -> EncodingKey {
    EncodingKey::from_ec_der(&std::fs::read(fixture(name)).unwrap())
}

fn hs256() -> EncodingKey {
    EncodingKey::from_secret(JWT_SECRET.as_bytes())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `{"sub": user, "exp": now + 600}` plus `extra`.
fn claims(user: &str, extra: Value) -> Value {
    let mut c = json!({"sub": user, "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, &claims, key).unwrap()
}

/// A server with exactly the `auth` flags over a fresh SQLite file (the
/// directory lives as long as the returned guard).
async fn start(auth: &[&str]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("parlor.db").display()
    );
    (TestServer::start_on(&url, auth, &[]).await, dir)
}

/// `POST /v1/rooms/<fresh room>/reservations` with `token`: the status and
/// the error code (`""` on success).
async fn reserve(server: &TestServer, token: &str) -> (u16, String) {
    static ROOM: AtomicU32 = AtomicU32::new(0);
    let room = format!("t{}", ROOM.fetch_add(1, Ordering::Relaxed));
    let (status, body) = reserve_raw(
        server,
        Some(token),
        &room,
        json!({"create": {"capacity": 2}}),
    )
    .await;
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

/// The raw WebSocket's answer to `hello` with `token`: `Ok(user)` on
/// `welcome`, or the error code and the close code that followed.
async fn hello(server: &TestServer, token: &str) -> Result<String, (String, Option<u16>)> {
    let mut ws = server.raw().await;
    send(&mut ws, json!({"type": "hello", "token": token})).await;
    let answer = next_json(&mut ws).await;
    match answer["type"].as_str() {
        Some("welcome") => Ok(answer["user_id"].as_str().unwrap().to_owned()),
        Some("error") => {
            let close = match next_frame(&mut ws).await {
                Frame::Closed(code) => code,
                Frame::Json(v) => panic!("expected the close after {answer}, got {v}"),
            };
            Err((answer["code"].as_str().unwrap().to_owned(), close))
        }
        _ => panic!("unexpected answer to hello: {answer}"),
    }
}

/// Accepted everywhere: 201 on HTTP and `welcome` as `user` on the raw WS.
async fn accepted(server: &TestServer, token: &str, user: &str, what: &str) {
    assert_eq!(reserve(server, token).await, (201, String::new()), "{what}");
    assert_eq!(hello(server, token).await, Ok(user.to_owned()), "{what}");
}

/// Refused everywhere: 401 `UNAUTHENTICATED` on HTTP, and an
/// `UNAUTHENTICATED` error then close 4401 at the raw WS `hello`.
async fn refused(server: &TestServer, token: &str, what: &str) {
    assert_eq!(
        reserve(server, token).await,
        (401, "UNAUTHENTICATED".to_owned()),
        "{what}"
    );
    assert_eq!(
        hello(server, token).await,
        Err(("UNAUTHENTICATED".to_owned(), Some(4401))),
        "{what}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nbf_ahead_is_refused_beyond_the_leeway() {
    let (server, _dir) = start(&["--jwt-secret", JWT_SECRET]).await;
    let nbf = |ahead: i64| {
        sign(
            Algorithm::HS256,
            None,
            &hs256(),
            claims("ann", json!({"nbf": now() + ahead})),
        )
    };

    refused(&server, &nbf(3600), "nbf an hour ahead").await;
    // GraphQL refuses it at connection_init too (graphql-transport-ws: 4403).
    let mut ws = gql_socket(&server, "graphql-transport-ws").await;
    let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {}", nbf(3600))}});
    send(&mut ws, init).await;
    assert!(matches!(
        next_frame(&mut ws).await,
        Frame::Closed(Some(4403))
    ));

    // Within the default 5 s leeway, and in the past: accepted.
    accepted(&server, &nbf(2), "ann", "nbf 2 s ahead").await;
    accepted(&server, &nbf(-60), "ann", "nbf a minute ago").await;
    // 30 s ahead is beyond the default leeway...
    refused(&server, &nbf(30), "nbf 30 s ahead, leeway 5 s").await;
    server.stop().await;

    // ... and within a leeway of a minute.
    let (server, _dir) = start(&["--jwt-secret", JWT_SECRET, "--jwt-leeway", "1m"]).await;
    accepted(&server, &nbf(30), "ann", "nbf 30 s ahead, leeway 1 min").await;
    refused(&server, &nbf(3600), "nbf an hour ahead, leeway 1 min").await;
    // The leeway is for nbf only: an expired token stays expired.
    let expired = sign(
        Algorithm::HS256,
        None,
        &hs256(),
        json!({"sub": "ann", "exp": now() - 2}),
    );
    refused(&server, &expired, "expired 2 s ago, leeway 1 min").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aud_and_iss_are_checked_when_configured() {
    let (open, _dir) = start(&["--jwt-secret", JWT_SECRET]).await;
    let token = |extra: Value| sign(Algorithm::HS256, None, &hs256(), claims("ann", extra));
    // Not configured: a token naming some audience and issuer is accepted.
    accepted(
        &open,
        &token(json!({"aud": "elsewhere", "iss": "anyone"})),
        "ann",
        "no rules",
    )
    .await;
    open.stop().await;

    let (server, _dir) = start(&[
        "--jwt-secret",
        JWT_SECRET,
        "--jwt-audience",
        "parlor",
        "--jwt-issuer",
        "https://id.example",
    ])
    .await;
    let good = json!({"aud": "parlor", "iss": "https://id.example"});
    accepted(&server, &token(good), "ann", "right aud and iss").await;
    let aud_list = json!({"aud": ["other", "parlor"], "iss": "https://id.example"});
    accepted(&server, &token(aud_list), "ann", "aud list holding parlor").await;
    let cases = [
        (
            json!({"aud": "other", "iss": "https://id.example"}),
            "wrong aud",
        ),
        (json!({"iss": "https://id.example"}), "missing aud"),
        (json!({"aud": "parlor"}), "missing iss"),
        (
            json!({"aud": "parlor", "iss": "https://evil.example"}),
            "wrong iss",
        ),
    ];
    for (extra, what) in cases {
        refused(&server, &token(extra), what).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_from_a_pem_key_and_no_algorithm_confusion() {
    let pem_path = fixture("rsa_public.pem");
    let (server, _dir) = start(&["--jwt-public-key", &pem_path]).await;
    let rs256 = sign(
        Algorithm::RS256,
        None,
        &rsa_private(),
        claims("bea", json!({})),
    );
    accepted(&server, &rs256, "bea", "RS256").await;

    // The classic forgery: HS256 "signed" with the server's public key as
    // the secret, in every form an attacker may try.
    let pem = std::fs::read(&pem_path).unwrap();
    let trimmed = String::from_utf8(pem.clone())
        .unwrap()
        .trim()
        .as_bytes()
        .to_vec();
    for secret in [pem, trimmed] {
        let forged = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(&secret),
            claims("mallory", json!({})),
        );
        refused(&server, &forged, "HS256 with the public key as secret").await;
    }
    // alg none, and another key's RS256 signature.
    // `{"alg":"none","typ":"JWT"}` over a real token's claims, unsigned.
    let payload = rs256.split('.').nth(1).unwrap();
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    refused(&server, &none, "alg none").await;
    let es256 = sign(
        Algorithm::ES256,
        None,
        &ec_private("ec_private.der"),
        claims("bea", json!({})),
    );
    refused(&server, &es256, "ES256 against an RSA key").await;
    let expired = sign(
        Algorithm::RS256,
        None,
        &rsa_private(),
        json!({"sub": "bea", "exp": now() - 1}),
    );
    refused(&server, &expired, "an expired RS256 token").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_from_a_jwk_set_picked_by_kid() {
    let (server, _dir) = start(&["--jwt-jwks", &fixture("jwks.json")]).await;
    let (ec1, ec2) = (ec_private("ec_private.der"), ec_private("ec2_private.der"));
    let token = |kid: Option<&str>, key: &EncodingKey| {
        sign(Algorithm::ES256, kid, key, claims("cyd", json!({})))
    };
    accepted(
        &server,
        &token(Some("ec-2"), &ec2),
        "cyd",
        "ES256, kid ec-2",
    )
    .await;
    accepted(
        &server,
        &token(Some("ec-1"), &ec1),
        "cyd",
        "ES256, kid ec-1",
    )
    .await;
    let rs256 = sign(
        Algorithm::RS256,
        Some("rsa-1"),
        &rsa_private(),
        claims("cyd", json!({})),
    );
    accepted(&server, &rs256, "cyd", "RS256, kid rsa-1").await;

    refused(
        &server,
        &token(Some("ec-1"), &ec2),
        "ec-2's signature under kid ec-1",
    )
    .await;
    refused(&server, &token(Some("ec-9"), &ec1), "unknown kid").await;
    refused(&server, &token(None, &ec1), "no kid, several keys").await;
    let pem = std::fs::read(fixture("rsa_public.pem")).unwrap();
    let forged = sign(
        Algorithm::HS256,
        Some("rsa-1"),
        &EncodingKey::from_secret(&pem),
        claims("mallory", json!({})),
    );
    refused(&server, &forged, "HS256 with rsa-1's public key as secret").await;
    let enc = sign(
        Algorithm::RS256,
        Some("enc-1"),
        &rsa_private(),
        claims("cyd", json!({})),
    );
    refused(&server, &enc, "kid of an encryption key").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_pem_key_jwks_and_dev_tokens_combine() {
    let (pem, jwks) = (fixture("rsa_public.pem"), fixture("jwks.json"));
    let (server, _dir) = start(&[
        "--jwt-secret",
        JWT_SECRET,
        "--jwt-public-key",
        &pem,
        "--jwt-jwks",
        &jwks,
        "--dev-auth",
    ])
    .await;
    let hs = sign(Algorithm::HS256, None, &hs256(), claims("dee", json!({})));
    accepted(&server, &hs, "dee", "HS256").await;
    let rs = sign(
        Algorithm::RS256,
        None,
        &rsa_private(),
        claims("dee", json!({})),
    );
    accepted(&server, &rs, "dee", "RS256 from the PEM key").await;
    let es = sign(
        Algorithm::ES256,
        Some("ec-2"),
        &ec_private("ec2_private.der"),
        claims("dee", json!({})),
    );
    accepted(&server, &es, "dee", "ES256 from the JWK Set").await;
    accepted(&server, "dev:dee", "dee", "dev token").await;
    let nbf = sign(
        Algorithm::ES256,
        Some("ec-2"),
        &ec_private("ec2_private.der"),
        claims("dee", json!({"nbf": now() + 3600})),
    );
    refused(&server, &nbf, "ES256 with nbf an hour ahead").await;
    server.stop().await;
}

/// `serve`'s start error for `args`.
async fn start_error(args: &[&str]) -> String {
    let mut all = vec!["parlor-server", "--database-url", "sqlite::memory:"];
    all.extend_from_slice(args);
    let config = parlor_server::Config::from_args(all).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    match parlor_server::serve(config, listener, async {}).await {
        Err(e) => e.to_string(),
        Ok(()) => panic!("{args:?} started"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_or_invalid_key_files_stop_the_start() {
    let message = start_error(&["--jwt-public-key", "/no/such/key.pem"]).await;
    assert!(
        message.starts_with("--jwt-public-key /no/such/key.pem: cannot read it"),
        "{message}"
    );
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .unwrap();
    let junk = junk.to_str().unwrap();
    let message = start_error(&["--jwt-public-key", junk]).await;
    assert!(message.contains("not a PEM public key"), "{message}");
    let message = start_error(&["--jwt-jwks", junk, "--jwt-secret", JWT_SECRET]).await;
    assert!(
        message.contains("--jwt-jwks") && message.contains("not a JWK Set"),
        "{message}"
    );
    let message = start_error(&["--dev-auth", "--jwt-audience", "parlor"]).await;
    assert!(message.contains("pass a key too"), "{message}");
}
