//! GraphiQL in headless Chromium (`tests/js/graphql_graphiql.mjs`): without
//! its CDN it says so instead of "Loading..." forever, and under `--dev-auth`
//! it opens with a working `Authorization` header. Needs `npm ci` in
//! `tests/js` and Chromium (`PARLOR_CHROMIUM`, default `/usr/bin/chromium`);
//! without them the test says it was skipped.

use parlor_tests::{TestServer, chromium_ready, run_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_says_when_its_cdn_is_missing_and_carries_the_dev_token() {
    let Some(chromium) =
        chromium_ready("graphiql_says_when_its_cdn_is_missing_and_carries_the_dev_token")
    else {
        return;
    };
    let server = TestServer::start(&[]).await;
    let (ok, said) = run_node(
        "graphql_graphiql.mjs",
        vec![server.base.clone()],
        vec![("PARLOR_CHROMIUM".into(), chromium)],
    )
    .await;
    println!("{said}");
    assert!(ok, "{said}");
    assert!(said.contains("hanging CDN: the page says"), "{said}");
    assert!(
        said.contains("Authorization: Bearer dev:guest, and it works"),
        "{said}"
    );
    server.stop().await;
}
