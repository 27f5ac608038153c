//! GraphiQL in headless Chromium (`tests/js/graphql_graphiql.mjs`): without
//! its CDN it says so instead of "Loading..." forever, and under `--dev-auth`
//! it opens with a working `Authorization` header. Needs `npm ci` in
//! `tests/js` and Chromium (`PARLOR_CHROMIUM`, default `/usr/bin/chromium`);
//! without them the test says it was skipped.

use std::path::Path;

use parlor_tests::{TestServer, run_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_says_when_its_cdn_is_missing_and_carries_the_dev_token() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let chromium = std::env::var("PARLOR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !js.join("node_modules/playwright-core").exists() || !Path::new(&chromium).exists() {
        eprintln!(
            "SKIPPED graphiql_says_when_its_cdn_is_missing_and_carries_the_dev_token: needs `npm ci` in tests/js and Chromium at {chromium} (PARLOR_CHROMIUM)"
        );
        return;
    }
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
