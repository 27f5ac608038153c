//! The GraphQL-over-HTTP spec's public audit suite — npm `graphql-http`'s
//! `auditServer`, code no one here wrote — against the real `/graphql`
//! (`tests/js/graphql_http_audit.mjs`). Right: 0 errors and 0 warnings.
//! Needs Node and `npm ci` in `tests/js`; without them the test says it was
//! skipped.

use parlor_tests::{TestServer, node_ready, run_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_over_http_passes_the_graphql_http_audit() {
    if !node_ready(
        "graphql_over_http_passes_the_graphql_http_audit",
        "graphql-http",
    ) {
        return;
    }
    let server = TestServer::start(&[]).await;
    // Anonymous, and with a user's token on every request.
    for token in [None, Some("dev:auditor")] {
        let mut args = vec![server.base.clone()];
        args.extend(token.map(str::to_owned));
        let (ok, said) = run_node("graphql_http_audit.mjs", args, Vec::new()).await;
        println!("token {token:?}:\n{said}");
        let summary = said
            .lines()
            .find(|l| l.starts_with("audit: "))
            .unwrap_or_else(|| panic!("no audit summary:\n{said}"));
        assert!(
            summary.ends_with(" 0 warnings, 0 errors"),
            "token {token:?}: {summary}\n{said}"
        );
        assert!(ok, "{said}");
    }
    server.stop().await;
}
