//! `storm`: a reconnect storm. N clients (5 000) in R rooms with live
//! traffic; the server (a child process, on SQLite) is stopped — SIGTERM,
//! and in a second pass SIGKILL — and started again on the same address and
//! database. Every client resumes by itself with the project's own client
//! logic ([`parlor_ws::client::ResumingRoom`]: backoff with jitter, re-join
//! with `after_seq`), while publishers keep sending (re-sending what was not
//! acked under the same `client_id`). Measured: the time from the restart to
//! the last client resumed, messages lost or duplicated, and a `/healthz`
//! probe's latency during the storm.
//!
//! - `lost`: over every subscriber, the acked messages of its room it never
//!   received (every subscriber joined before the first message);
//! - `duplicated`: over every subscriber, messages it received more than
//!   once (one `client_id` at two seqs: the server stored a re-send twice),
//!   plus seqs received twice;
//! - `resumed_all_secs`: from the restarted server listening to the last
//!   client's first entry on its new connection (traffic goes on in every
//!   room, so a resumed client hears from it soon).

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use parlor_ws::client::{Client, ResumingRoom};
use tokio::sync::watch;

use crate::{
    latency::Latencies,
    report::{Line, Report},
    server::{ChildServer, Stop},
};

pub(crate) struct Params {
    pub(crate) clients: usize,
    pub(crate) rooms: usize,
    /// Messages a second, in all rooms together.
    pub(crate) rate: u32,
    /// How long traffic flows before the stop, and after the last client
    /// resumed.
    pub(crate) seconds: f64,
    pub(crate) stops: Vec<Stop>,
}

/// How long the bench waits for every client to resume.
const RESUME_DEADLINE: Duration = Duration::from_secs(60);

pub(crate) async fn run(p: &Params, report: &mut Report) {
    for &stop in &p.stops {
        let line = once(p, stop).await;
        let resumed = line.get("resumed_all_secs");
        let lost = line.get("lost").unwrap_or(f64::MAX);
        let duplicated = line.get("duplicated").unwrap_or(f64::MAX);
        let probe = line.get("probe_p99_ms").unwrap_or(f64::MAX);
        report.emit(&line);
        let name = stop.name();
        // A publisher or client that failed leaves messages uncounted: no
        // verdict of "nothing lost" then.
        let failures = line.get("publisher_errors").unwrap_or(f64::MAX)
            + line.get("client_errors").unwrap_or(f64::MAX);
        report.target(
            &format!("storm {name}: acked messages lost (with no client or publisher failed)"),
            lost,
            "0",
            lost == 0.0 && failures == 0.0,
        );
        report.target(
            &format!("storm {name}: messages duplicated"),
            duplicated,
            "0",
            duplicated == 0.0,
        );
        report.target(
            &format!(
                "storm {name}, {} clients: every client resumed within (s)",
                p.clients
            ),
            resumed.unwrap_or(f64::MAX),
            "≤ 10",
            resumed.is_some_and(|s| s <= 10.0),
        );
        report.target(
            &format!("storm {name}: /healthz p99 during the storm (ms)"),
            probe,
            "≤ 1000",
            probe <= 1000.0,
        );
    }
}

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    /// Texts by `client_id`, each once.
    messages: HashSet<String>,
    duplicated: u64,
    /// When its first entry on a new connection came after the restart.
    resumed_at: Option<Instant>,
    error: Option<String>,
}

async fn once(p: &Params, stop: Stop) -> Line {
    let mut server = ChildServer::start().await;
    let base = server.base.clone();
    let rooms = p.rooms.max(1);
    let room = |r: usize| format!("storm{r}");
    let per_room = p.clients.div_ceil(rooms) as u32 + 2;
    // Publishers first: each creates its room.
    let mut publishers = Vec::new();
    for r in 0..rooms {
        let client = Client::new(&base, &format!("dev:pub{r}"));
        match ResumingRoom::join(client, &room(r), Some(per_room)).await {
            Ok(joined) => publishers.push(joined),
            Err(e) => return failed(p, stop, &format!("publisher {r}: {e}")),
        }
    }
    let joined: Vec<_> = stream::iter(0..p.clients)
        .map(|i| {
            let (base, room) = (base.clone(), room(i % rooms));
            async move {
                let client = Client::new(&base, &format!("dev:c{i}"));
                (i, ResumingRoom::join(client, &room, None).await)
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut subscribers = Vec::new();
    // (In the order they joined, not of `i`.)
    for (i, joined) in joined {
        match joined {
            Ok(joined) => subscribers.push((i % rooms, joined)),
            Err(e) => return failed(p, stop, &format!("client {i} could not join: {e}")),
        }
    }

    // Phases the tasks watch: whether the stop began, and the end of
    // traffic; and how many clients resumed since the stop.
    let (stopping_tx, stopping) = watch::channel(false);
    let (end_tx, end) = watch::channel(false);
    // Once the publishers are done: how many messages of each room were
    // acked (a reader stops once it has them all), and the reader's
    // deadline.
    let (acked_tx, acked_rx) = watch::channel(None::<Arc<Vec<u64>>>);
    let (give_up_tx, give_up) = watch::channel(false);
    let resumed = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for (r, mut sub) in subscribers {
        let (stopping, resumed) = (stopping.clone(), Arc::clone(&resumed));
        let (mut acked, mut give_up) = (acked_rx.clone(), give_up.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut seqs = HashSet::new();
            let mut connections = sub.reconnects();
            loop {
                let done = acked
                    .borrow()
                    .as_ref()
                    .is_some_and(|acked| seen.messages.len() as u64 >= acked[r]);
                if done {
                    break;
                }
                let next = tokio::select! {
                    next = sub.next_entry() => next,
                    _ = acked.changed() => continue,
                    _ = give_up.wait_for(|g| *g) => break,
                };
                let entry = match next {
                    Ok(entry) => entry,
                    Err(e) => {
                        seen.error = Some(e.to_string());
                        break;
                    }
                };
                if sub.reconnects() > connections {
                    connections = sub.reconnects();
                    if *stopping.borrow() && seen.resumed_at.is_none() {
                        seen.resumed_at = Some(Instant::now());
                        resumed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if !seqs.insert(entry.seq) {
                    seen.duplicated += 1;
                }
                if entry.kind == "text"
                    && let Some(id) = entry.client_id
                    && !seen.messages.insert(id)
                {
                    seen.duplicated += 1;
                }
            }
            (r, seen)
        }));
    }
    let pace = Duration::from_secs_f64(rooms as f64 / f64::from(p.rate.max(1)));
    let mut writers = Vec::new();
    for (r, mut publisher) in publishers.into_iter().enumerate() {
        let mut end = end.clone();
        writers.push(tokio::spawn(async move {
            let mut sent = 0u64;
            let mut next_send = tokio::time::Instant::now();
            // Sends at a pace until the end, then reads until every send is
            // acked (a re-send after the restart included).
            loop {
                let ended = *end.borrow();
                if ended && publisher.unacked() == 0 {
                    break;
                }
                if !ended && tokio::time::Instant::now() >= next_send {
                    publisher.send(&format!("m{r}-{sent}"), "storm").await;
                    sent += 1;
                    next_send += pace;
                    continue;
                }
                // Reading takes the acks, and reconnects after the stop:
                // entries keep coming while it is connected (its own among
                // them), so sends keep their pace; a reconnect is given time
                // to finish rather than cut short by the next send.
                tokio::select! {
                    next = tokio::time::timeout(Duration::from_secs(2), publisher.next_entry()) => {
                        if let Ok(Err(e)) = next {
                            return (r, sent, publisher.unacked(), Some(e.to_string()));
                        }
                    }
                    _ = end.changed(), if !ended => {}
                }
            }
            (r, sent, publisher.unacked(), None)
        }));
    }

    tokio::time::sleep(Duration::from_secs_f64(p.seconds)).await;
    let _ = stopping_tx.send(true);
    let stopped_at = Instant::now();
    let restart = server.restart(stop).await;
    let restarted_at = Instant::now();
    if let Err(e) = restart {
        let _ = end_tx.send(true);
        return failed(p, stop, &format!("restart: {e}"));
    }
    // The probe: /healthz every 50 ms while the clients come back.
    let probe = tokio::spawn(probe(base.clone(), end.clone()));
    // Traffic goes on until every client resumed (or the deadline), then
    // for `seconds` more.
    let deadline = restarted_at + RESUME_DEADLINE;
    while resumed.load(Ordering::Relaxed) < p.clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(p.seconds)).await;
    let _ = end_tx.send(true);

    let mut acked: Vec<u64> = vec![0; rooms];
    let (mut unacked, mut publisher_errors) = (0usize, 0usize);
    for writer in writers {
        match tokio::time::timeout(Duration::from_secs(30), writer).await {
            Ok(Ok((r, sent, left, error))) => {
                acked[r] = sent - left as u64;
                unacked += left;
                publisher_errors += usize::from(error.is_some());
            }
            _ => publisher_errors += 1,
        }
    }
    // Every reader gets until it has every acked message of its room, or
    // 20 s (a message that never comes is lost).
    let _ = acked_tx.send(Some(Arc::new(acked.clone())));
    let readers_done = async {
        let mut outcomes = Vec::new();
        for reader in readers {
            outcomes.push(reader.await);
        }
        outcomes
    };
    tokio::pin!(readers_done);
    let outcomes = tokio::select! {
        outcomes = &mut readers_done => outcomes,
        () = tokio::time::sleep(Duration::from_secs(20)) => {
            let _ = give_up_tx.send(true);
            readers_done.await
        }
    };
    let (mut lost, mut duplicated, mut not_resumed, mut errors) = (0u64, 0u64, 0usize, 0usize);
    let mut received = 0u64;
    let mut resumed_after = Latencies::default();
    for outcome in outcomes {
        let Ok((r, seen)) = outcome else {
            errors += 1;
            continue;
        };
        // The publisher's first `acked[r]` messages were acked (acks come
        // in order of sending, re-sends included).
        lost += (0..acked[r])
            .filter(|i| !seen.messages.contains(&format!("m{r}-{i}")))
            .count() as u64;
        duplicated += seen.duplicated;
        received += seen.messages.len() as u64;
        errors += usize::from(seen.error.is_some());
        match seen.resumed_at {
            Some(at) => {
                let after = at.saturating_duration_since(restarted_at);
                resumed_after.push_micros(after.as_micros() as u64);
            }
            None => not_resumed += 1,
        }
    }
    let mut probes = probe.await.unwrap_or_default();
    server.stop().await;
    let (_, probe_p99, _) = probes.latencies.summary();
    // (Latencies summarize in ms.)
    let (resumed_p50_ms, _, resumed_max_ms) = resumed_after.summary();
    let resumed_all_secs = (not_resumed == 0).then(|| resumed_max_ms / 1000.0);
    Line::new("storm")
        .param("stop", stop.name())
        .param("clients", p.clients)
        .param("rooms", rooms)
        .param("rate", p.rate)
        .metric(
            "resumed_all_secs",
            resumed_all_secs.map(|s| (s * 1000.0).round() / 1000.0),
        )
        .metric("resumed_p50_secs", (resumed_p50_ms / 10.0).round() / 100.0)
        .metric("not_resumed", not_resumed)
        .metric(
            "down_secs",
            ((restarted_at - stopped_at).as_secs_f64() * 100.0).round() / 100.0,
        )
        .metric("acked", acked.iter().sum::<u64>())
        .metric("unacked", unacked)
        .metric("received", received)
        .metric("lost", lost)
        .metric("duplicated", duplicated)
        .metric("client_errors", errors)
        .metric("publisher_errors", publisher_errors)
        .metric("probes", probes.answered)
        .metric("probe_failures", probes.failed)
        .metric("probe_p99_ms", probe_p99)
}

/// What the `/healthz` probe saw.
#[derive(Default)]
struct Probes {
    latencies: Latencies,
    answered: u64,
    failed: u64,
}

/// `GET /healthz` every 50 ms until `end`; a failed probe counts as failed
/// and as 1 s late.
async fn probe(base: String, mut end: watch::Receiver<bool>) -> Probes {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client");
    let mut probes = Probes::default();
    let mut every = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = end.wait_for(|e| *e) => return probes,
        }
        let started = Instant::now();
        let ok = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let took = started.elapsed();
        if ok {
            probes.answered += 1;
            probes.latencies.push_micros(took.as_micros() as u64);
        } else {
            probes.failed += 1;
            probes
                .latencies
                .push_micros(took.max(Duration::from_secs(1)).as_micros() as u64);
        }
    }
}

/// The line of a storm that could not be run to the end: the reason, and
/// no figures.
fn failed(p: &Params, stop: Stop, why: &str) -> Line {
    eprintln!("storm {}: {why}", stop.name());
    Line::new("storm")
        .param("stop", stop.name())
        .param("clients", p.clients)
        .param("rooms", p.rooms)
        .metric("error", why)
}
