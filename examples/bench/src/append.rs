//! `append`: durable append throughput. The engine in-process on SQLite
//! (and Postgres with `--database-url`): R rooms × S senders, each sending
//! one message at a time and waiting for its ack (which comes only once the
//! entry is stored). Every `--batch-max` value runs in the same invocation;
//! `1` is the one-transaction-per-message baseline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parlor_engine::Principal;
use parlor_engine::{
    ChatEngine, EngineConfig, Retention, RoomId, RoomSpec, UserId, ports::EventSink,
};
use parlor_webhook::WebhookSink;

use crate::{
    latency::Latencies,
    report::{Line, Report},
    store,
};

pub(crate) struct Params {
    pub(crate) rooms: usize,
    pub(crate) senders: usize,
    pub(crate) seconds: f64,
    pub(crate) batch_max: Vec<usize>,
    pub(crate) database_url: Option<String>,
    pub(crate) client_ids: ClientIds,
    /// Keep each room's newest N entries (the pruner beside the appends).
    pub(crate) retention_max_entries: Option<u64>,
    /// How often the pruner looks, in ms.
    pub(crate) retention_interval_ms: u64,
    /// The most entries one prune transaction deletes.
    pub(crate) prune_batch: u32,
    /// Messages per second offered in all, spread evenly over the senders
    /// (open loop: a send's latency counts from when it was due, so a
    /// stall is not hidden by the sends it delayed); `None`: each sender
    /// sends again as soon as its ack comes (closed loop, the most the
    /// store takes).
    pub(crate) rate: Option<f64>,
    /// A webhook beside the appends: none, a receiver that is down, or
    /// one that takes everything.
    pub(crate) webhook: Webhook,
}

/// The webhook an append run delivers to (docs/contract.md §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Webhook {
    /// No webhook.
    None,
    /// A URL where nothing listens: every request fails at once and is
    /// retried with backoff, as with a receiver that is down.
    Down,
    /// A receiver in this process that answers 200 to everything.
    Up,
}

impl Webhook {
    fn name(self) -> &'static str {
        match self {
            Webhook::None => "none",
            Webhook::Down => "down",
            Webhook::Up => "up",
        }
    }

    /// The sinks for the engine: none, or one to a dead port or to a
    /// receiver started here.
    async fn sinks(self) -> Vec<Arc<dyn EventSink>> {
        let url = match self {
            Webhook::None => return Vec::new(),
            Webhook::Down => {
                // Bound and dropped: the port refuses connections.
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                format!("http://{}/hook", listener.local_addr().unwrap())
            }
            Webhook::Up => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}/hook", listener.local_addr().unwrap());
                let app = axum::Router::new().route("/hook", axum::routing::post(|| async {}));
                tokio::spawn(async move { axum::serve(listener, app).await });
                url
            }
        };
        let sink = WebhookSink::new(&url, b"bench-secret", Duration::from_secs(10)).unwrap();
        vec![Arc::new(sink)]
    }
}

/// How senders make their client ids. What storage pays for its
/// idempotency index depends on it: ids that grow together share index
/// pages, random ones scatter over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ClientIds {
    /// Each sender counts: c0, c1, …
    Counter,
    /// Time-ordered UUIDs (version 7), ordered as the web chat's ids are.
    Uuid7,
    /// Random UUIDs (version 4).
    Uuid4,
}

impl ClientIds {
    fn make(self, i: u64) -> String {
        match self {
            ClientIds::Counter => format!("c{i}"),
            ClientIds::Uuid7 => uuid::Uuid::now_v7().to_string(),
            ClientIds::Uuid4 => uuid::Uuid::new_v4().to_string(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            ClientIds::Counter => "counter",
            ClientIds::Uuid7 => "uuid7",
            ClientIds::Uuid4 => "uuid4",
        }
    }
}

pub(crate) async fn run(p: &Params, report: &mut Report) {
    let mut backends: Vec<Option<String>> = vec![None];
    if let Some(url) = &p.database_url {
        backends.push(Some(url.clone()));
    }
    for url in &backends {
        let mut rates = Vec::new();
        for &batch_max in &p.batch_max {
            let line = once(p, url.as_deref(), batch_max).await;
            rates.push((
                batch_max,
                line.get("msgs_per_sec").unwrap_or(0.0),
                line.get("p99_ms"),
            ));
            report.emit(&line);
        }
        let backend = if url.is_some() { "postgres" } else { "sqlite" };
        let best = rates
            .iter()
            .filter(|r| r.0 > 1)
            .map(|r| r.1)
            .fold(0.0, f64::max);
        let one = rates.iter().find(|r| r.0 == 1).map(|r| r.1);
        if p.rooms == 100 && p.senders == 10 {
            let want = if backend == "sqlite" {
                50_000.0
            } else {
                20_000.0
            };
            report.target(
                &format!(
                    "append {backend}, 100 rooms × 10 senders ({} client ids), msgs/s",
                    p.client_ids.name()
                ),
                best,
                &format!("≥ {want}"),
                best >= want,
            );
        }
        if let (Some(one), true) = (one, backend == "sqlite") {
            let ratio = best / one.max(1.0);
            report.target(
                "append sqlite, batched ÷ --batch-max 1",
                ratio,
                "≥ 10",
                ratio >= 10.0,
            );
        }
    }
}

async fn once(p: &Params, url: Option<&str>, batch_max: usize) -> Line {
    let mut config = EngineConfig::default()
        .append_batch_max(batch_max)
        .max_capacity(p.senders as u32);
    if let Some(keep) = p.retention_max_entries {
        // Pruned while the senders run: appends share storage with it.
        config = config
            .retention(Retention {
                max_entries: Some(keep),
                max_age: None,
            })
            .retention_interval(Duration::from_millis(p.retention_interval_ms))
            .prune_batch(p.prune_batch);
    }
    let bench = store::engine_with(url, config, p.webhook.sinks().await).await;
    let engine = bench.engine.clone();
    let prefix = store::run_prefix();

    // Seat every sender: the first of each room creates it.
    let mut members = Vec::new();
    let mut senders = Vec::new();
    for r in 0..p.rooms {
        let room = RoomId::new(&format!("{prefix}-r{r}")).unwrap();
        for s in 0..p.senders {
            let user = UserId::new(&format!("u{r}-{s}")).unwrap();
            let create = (s == 0).then(|| RoomSpec::with_capacity(p.senders as u32));
            let ticket = engine
                .reserve(&Principal::new(user.clone()), &room, create)
                .await
                .expect("reserve");
            members.push(
                engine
                    .commit(&Principal::new(user.clone()), &ticket.ticket, None)
                    .await
                    .expect("commit"),
            );
            senders.push((user, room.clone()));
        }
    }
    let body = "x".repeat(64);
    let batches_before = engine.stats().append_batches;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(p.seconds);
    let count = senders.len();
    // Each sender's period at the offered rate, and its own phase in it.
    let period = p
        .rate
        .map(|rate| Duration::from_secs_f64(count as f64 / rate.max(1.0)));
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(n, (user, room))| {
            let (engine, body, client_ids) = (engine.clone(), body.clone(), p.client_ids);
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let sent = match period {
                        Some(period) => {
                            let phase = period.mul_f64(n as f64 / count as f64);
                            let due = started + phase + period.mul_f64(i as f64);
                            tokio::time::sleep_until(due.into()).await;
                            due
                        }
                        None => Instant::now(),
                    };
                    engine
                        .send(
                            &Principal::new(user.clone()),
                            &room,
                            &client_ids.make(i),
                            &body,
                        )
                        .await
                        .expect("send");
                    latencies.push_micros(sent.elapsed().as_micros() as u64);
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    for task in tasks {
        latencies.extend(task.await.expect("sender"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let acked = latencies.len();
    let (p50, p99, max) = latencies.summary();
    let batches = engine.stats().append_batches - batches_before;
    drop(members);
    // What the rooms hold when the senders stop (the pruner's effect).
    let mut stored = 0u64;
    for r in 0..p.rooms {
        let room = RoomId::new(&format!("{prefix}-r{r}")).unwrap();
        if let Ok(Some(info)) = engine
            .room(&Principal::service(UserId::new("bench").unwrap()), &room)
            .await
        {
            stored += info.last_seq + 1 - info.first_seq;
        }
    }
    Line::new("append")
        .param("backend", bench.backend)
        .param("rooms", p.rooms)
        .param("senders", p.senders)
        .param("batch_max", batch_max)
        .param("client_ids", p.client_ids.name())
        .param(
            "retention_max_entries",
            p.retention_max_entries.unwrap_or(0),
        )
        .param("prune_batch", p.prune_batch)
        .param("rate", p.rate.unwrap_or(0.0))
        .param("seconds", p.seconds)
        .param("webhook", p.webhook.name())
        .metric("acked", acked)
        .metric("msgs_per_sec", (acked as f64 / elapsed).round())
        .metric("p50_ms", p50)
        .metric("p99_ms", p99)
        .metric("max_ms", max)
        .metric("transactions", batches)
        .metric("mean_batch", acked as f64 / batches.max(1) as f64)
        .metric("stored_entries_at_end", stored)
        .metric(
            "webhook_events_delivered",
            engine.webhooks().first().map_or(0, |h| h.delivered),
        )
}
