//! Schemathesis — a property-based tester that reads the OpenAPI document
//! and generates valid and invalid requests from it, code no one here
//! wrote — against a fresh server's `/v1/openapi.json`, with every check
//! (`--checks all`): no 5xx, every status, content type, header and body as
//! documented, valid data accepted, invalid data refused, 405 with `Allow`
//! for methods a path does not have, 401 without the token.
//!
//! Finds `st` (or `schemathesis`) at `PARLOR_SCHEMATHESIS`, on `PATH`, or in
//! `target/venv` (where `.ci/run` installs it); without it the test says it
//! was skipped — unless `PARLOR_REQUIRE_SCHEMATHESIS` is set (`.ci/run`
//! sets it once it installed the tool), when it fails instead.
//! `PARLOR_SCHEMATHESIS_SEED` replays a run (each report names its seed);
//! `PARLOR_SCHEMATHESIS_EXAMPLES` sets how many cases per operation.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use parlor_tests::{TestServer, next_json, read_in_background, send};
use serde_json::json;

/// Cases per operation and phase: enough to find shape and status faults,
/// small enough to finish in well under a minute on two cores.
const EXAMPLES: &str = "100";

/// A room alice (the tool's user) holds a joined seat in, which the tool is
/// given as `room_id` half the time, so that history, sends and presence
/// get past `ROOM_NOT_FOUND` and `NOT_A_MEMBER` to their answers.
const ROOM: &str = "lobby";

/// The tool's configuration: [`ROOM`] as a known `room_id`; and for the
/// routes whose well-formed requests may still be refused by the state of
/// the log, which no schema can say (docs/contract.md §2: a read marker
/// beyond the room's last seq; an edit or redaction of an entry that is
/// not a message, or of a redacted one; a send or an edit whose
/// `client_id` an entry of another kind already holds — the stateful phase
/// carries one request's `client_id` into the next), 400 among the answers
/// a valid request may get; for a signal, 413 (its data's size limit).
const CONFIG: &str = r#"
[dictionaries.rooms]
values = ["lobby"]

[parameters]
"path.room_id" = { dictionary = "rooms", probability = 0.5 }

[[operations]]
include-name = [
    "PUT /v1/rooms/{room_id}/read",
    "POST /v1/rooms/{room_id}/messages",
    "PATCH /v1/rooms/{room_id}/messages/{seq}",
    "DELETE /v1/rooms/{room_id}/messages/{seq}",
]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429", "5xx"]

# A signal's `data` is at most 256 bytes *serialized*, which JSON Schema
# cannot say (it bounds properties, not the text): 413 answers more.
[[operations]]
include-name = ["POST /v1/rooms/{room_id}/signals"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "413", "429", "5xx"]
"#;

/// The whole run's bound; past it the tool is killed and the test fails.
const DEADLINE: Duration = Duration::from_secs(240);

/// The tool, or `None` after a `SKIPPED` line (a panic under
/// `PARLOR_REQUIRE_SCHEMATHESIS`).
#[allow(clippy::print_stderr, reason = "the test's SKIPPED line, for CI logs")]
fn schemathesis(test: &str) -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("PARLOR_SCHEMATHESIS") {
        candidates.push(path.into());
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            candidates.push(dir.join("st"));
            candidates.push(dir.join("schemathesis"));
        }
    }
    candidates.push(workspace.join("target/venv/bin/st"));
    let found = candidates.into_iter().find(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    });
    if found.is_some() {
        return found;
    }
    let why = format!(
        "SKIPPED {test}: needs schemathesis (PARLOR_SCHEMATHESIS, `st` on PATH, or \
         target/venv/bin/st: `python3 -m venv target/venv && target/venv/bin/pip install \
         schemathesis`)"
    );
    assert!(
        std::env::var_os("PARLOR_REQUIRE_SCHEMATHESIS").is_none(),
        "{why}, and PARLOR_REQUIRE_SCHEMATHESIS is set"
    );
    eprintln!("{why}");
    None
}

/// Runs `tool` with `args` in `dir`, killing it past [`DEADLINE`]; returns
/// whether it exited 0 and all it printed.
fn run(tool: &Path, args: &[String], dir: &Path) -> (bool, String) {
    let out_path = dir.join("schemathesis.out");
    let out = std::fs::File::create(&out_path).expect("report file");
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("report file"))
        .stderr(out)
        .spawn()
        .expect("run schemathesis");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for schemathesis") {
            break Some(status);
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut said = std::fs::read_to_string(&out_path).unwrap_or_default();
    if status.is_none() {
        said.push_str(&format!("\n(killed after {DEADLINE:?})"));
    }
    (status.is_some_and(|s| s.success()), said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stdout, reason = "the tool's report, for CI logs")]
async fn the_http_api_passes_schemathesis() {
    let Some(tool) = schemathesis("the_http_api_passes_schemathesis") else {
        return;
    };
    // The harness raises the send, reservation and creation rates; pending
    // rooms too, since the tool creates rooms it never joins.
    let server = TestServer::start(&["--max-pending-rooms", "1000000"]).await;
    // olga owns the room, alice (the tool's user) is a member: so the tool
    // reads and sends there, but cannot close it (every later request would
    // answer 410 ROOM_CLOSED, which the tool counts as a valid request
    // refused) nor ban alice from it.
    let mut readers = Vec::new();
    for (user, create) in [("olga", Some(1000)), ("alice", None)] {
        let ticket = server
            .client(user)
            .reserve(ROOM, create)
            .await
            .expect("reserve");
        let mut ws = server.raw_as(user).await;
        send(&mut ws, json!({"type": "join", "ticket": ticket.ticket})).await;
        let joined = next_json(&mut ws).await;
        assert_eq!(joined["type"], "joined", "{joined}");
        // Read the room's entries as they come, so that the seat stays joined.
        let (mut frames, reader) = read_in_background(ws);
        tokio::spawn(async move { while frames.recv().await.is_some() {} });
        readers.push(reader);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(&config, CONFIG).expect("write the configuration");
    let mut args: Vec<String> = [
        "--config-file",
        &config.display().to_string(),
        "run",
        &format!("{}/v1/openapi.json", server.base),
        "--checks",
        "all",
        "-H",
        "Authorization: Bearer dev:alice",
        "--max-examples",
        &std::env::var("PARLOR_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| EXAMPLES.into()),
        "--request-timeout",
        "10",
    ]
    .map(str::to_owned)
    .to_vec();
    if let Ok(seed) = std::env::var("PARLOR_SCHEMATHESIS_SEED") {
        args.extend(["--seed".to_owned(), seed]);
    }
    let (ok, said) = {
        let dir = dir.path().to_owned();
        tokio::task::spawn_blocking(move || run(&tool, &args, &dir))
            .await
            .expect("schemathesis task")
    };
    println!("{said}");
    assert!(ok, "schemathesis found faults:\n{said}");
    server.stop().await;
}
