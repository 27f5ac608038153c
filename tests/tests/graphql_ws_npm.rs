//! The npm `graphql-ws` client — code no one here wrote — against the real
//! server: `tests/js/graphql_ws.mjs` (see there for what it checks). Needs
//! Node and `npm ci` in `tests/js` (`.ci/run` does both); without them the
//! test says it was skipped.

use parlor_tests::{TestServer, node_ready, run_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_ws_npm_client_talks_to_parlor() {
    if !node_ready("the_graphql_ws_npm_client_talks_to_parlor", "graphql-ws") {
        return;
    }
    let server = TestServer::start(&[]).await;
    let (ok, said) = run_node("graphql_ws.mjs", vec![server.base.clone()], Vec::new()).await;
    assert!(ok, "graphql-ws client failed:\n{said}");
    assert!(said.contains("100 messages in order"), "{said}");
    server.stop().await;
}
