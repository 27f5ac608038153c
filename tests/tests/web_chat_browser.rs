//! The web chat in headless Chromium, driven by playwright-core:
//! `tests/js/web_chat.mjs`, `tests/js/cors.mjs`, `tests/js/liveness.mjs`
//! and `tests/js/token_renewal.mjs` (see each for what it checks). Needs Node, `npm ci` in `tests/js` and
//! Debian's `chromium` (`.ci/run` installs all three); without them each
//! test says it was skipped. Screenshots go to `target/e2e/`.

use std::path::Path;

use parlor_tests::{JWT_SECRET, TestServer, chromium_ready, run_node};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_a_browser_through_an_outage() {
    let Some(chromium) = chromium_ready("two_people_chat_in_a_browser_through_an_outage") else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e");
    // Grace outlasts the outage even on a slow machine, so bob resumes his seat.
    let server = TestServer::start(&["--reconnect-grace", "60s"]).await;
    let shots = shots.display().to_string();
    let (ok, said) = run_node(
        "web_chat.mjs",
        vec![server.base.clone(), shots],
        vec![("PARLOR_CHROMIUM".into(), chromium)],
    )
    .await;
    eprintln!("{said}");
    assert!(ok, "the browser test failed:\n{said}");
    assert!(said.contains("web chat: ok"), "{said}");
    server.stop().await;
}

/// The page of `cors.mjs`, served from another origin than the server's.
const OTHER_ORIGIN_PAGE: &str = "<!doctype html><meta charset=utf-8><title>Another origin</title><p>A page on another origin.</p>";

/// A static site on `127.0.0.1:0`: `/` and `/parlor.js`, one request per
/// connection. Returns its port and the task serving it.
async fn static_site() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/");
                let (status, content_type, body) = match path {
                    "/" => ("200 OK", "text/html; charset=utf-8", OTHER_ORIGIN_PAGE),
                    "/parlor.js" => (
                        "200 OK",
                        "text/javascript; charset=utf-8",
                        include_str!("../../examples/web-chat/client/parlor.js"),
                    ),
                    _ => ("404 Not Found", "text/plain", "not here"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_calls_the_api() {
    let Some(chromium) = chromium_ready("a_page_on_another_origin_calls_the_api") else {
        return;
    };
    let (port, site) = static_site().await;
    let page_origin = format!("http://localhost:{port}");
    let server = TestServer::start(&["--allowed-origin", &page_origin]).await;
    let closed = TestServer::start(&[]).await;
    let (ok, said) = run_node(
        "cors.mjs",
        vec![server.base.clone(), closed.base.clone(), page_origin],
        vec![("PARLOR_CHROMIUM".into(), chromium)],
    )
    .await;
    eprintln!("{said}");
    assert!(ok, "the browser test failed:\n{said}");
    assert!(said.contains("cors: ok"), "{said}");
    site.abort();
    server.stop().await;
    closed.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_notices_a_silent_server_and_resumes() {
    let Some(chromium) = chromium_ready("the_page_notices_a_silent_server_and_resumes") else {
        return;
    };
    // Short heartbeat settings (the welcome passes them to parlor.js); a
    // grace that outlasts the outage, so ann resumes her seat.
    let server = TestServer::start(&[
        "--ping-interval",
        "1s",
        "--ping-timeout",
        "1s",
        "--reconnect-grace",
        "120s",
    ])
    .await;
    let (ok, said) = run_node(
        "liveness.mjs",
        vec![server.base.clone()],
        vec![("PARLOR_CHROMIUM".into(), chromium)],
    )
    .await;
    eprintln!("{said}");
    assert!(ok, "the browser test failed:\n{said}");
    assert!(said.contains("liveness: ok"), "{said}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_renews_its_token_and_resumes_after_expiry() {
    let Some(chromium) = chromium_ready("the_page_renews_its_token_and_resumes_after_expiry")
    else {
        return;
    };
    // The script signs 5 s JWTs with the server's secret; a grace that
    // outlasts the wait between expiry and the fresh token, so the seat
    // resumes (no `leave`).
    let server = TestServer::start(&["--reconnect-grace", "120s"]).await;
    let (ok, said) = run_node(
        "token_renewal.mjs",
        vec![server.base.clone(), JWT_SECRET.into()],
        vec![("PARLOR_CHROMIUM".into(), chromium)],
    )
    .await;
    eprintln!("{said}");
    assert!(ok, "the browser test failed:\n{said}");
    assert!(said.contains("token renewal: ok"), "{said}");
    server.stop().await;
}
