//! The web chat in headless Chromium, driven by playwright-core:
//! `tests/js/web_chat.mjs` (see there for what it checks). Needs Node, `npm
//! ci` in `tests/js` and Debian's `chromium` (`.ci/run` installs all three);
//! without them the test says it was skipped. Screenshots go to
//! `target/e2e/`.

use std::path::Path;

use parlor_tests::{TestServer, run_node};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_a_browser_through_an_outage() {
    let js = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let chromium = std::env::var("PARLOR_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !js.join("node_modules/playwright-core").exists() || !Path::new(&chromium).exists() {
        eprintln!(
            "SKIPPED two_people_chat_in_a_browser_through_an_outage: needs `npm ci` in tests/js and Chromium at {chromium} (PARLOR_CHROMIUM)"
        );
        return;
    }
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
