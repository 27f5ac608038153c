//! # parlor-bench
//!
//! Parlor's benchmark suite: a program that puts load on the engine or a
//! real server and prints what it measured — one JSON line per result on
//! stdout (`{"scenario", "params", "metrics"}`, plus `"baseline": true` on
//! the raw baseline's lines) and a table with the targets on stderr.
//! Numbers come from here, never from timed assertions in tests.
//!
//! Run with: `cargo run --release -p parlor-bench -- <scenario> [flags]`
//!
//! | scenario | measures |
//! |---|---|
//! | `append` | acked msgs/s and send→ack latency, engine on SQLite (and Postgres) |
//! | `join-storm` | K concurrent reserves on capacity C: admitted, reserves/s |
//! | `fanout` | deliveries/s and publish→deliver latency over ws or graphql, vs a raw baseline |
//! | `idle` | the server's RSS per idle joined connection |
//! | `churn` | what is left after many reserve/commit/leave/drop cycles |
//! | `signal` | send→receive latency of `typing` signals in one room, ws or graphql |
//!
//! `docs/benchmarks.md` has the commands and this machine's numbers.

// The program's output is its product: JSON on stdout, the table on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod append;
mod churn;
mod fanout;
mod idle;
mod join_storm;
mod latency;
mod load;
mod raw_baseline;
mod report;
mod rss;
mod server;
mod signal;
mod store;
mod storm;

use clap::{Parser, Subcommand, ValueEnum};

// The same allocator as `parlor-server`, so in-process numbers match it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "parlor-bench",
    about = "Parlor's benchmark suite: JSON lines on stdout, a table on stderr"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Clone, Copy, ValueEnum)]
enum Transport {
    Ws,
    Graphql,
}

impl Transport {
    fn protocol(self) -> load::Protocol {
        match self {
            Transport::Ws => load::Protocol::Ws,
            Transport::Graphql => load::Protocol::Graphql,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Baseline {
    Raw,
}

#[derive(Subcommand)]
enum Scenario {
    /// Durable append throughput, engine in-process.
    Append {
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// Concurrent senders per room, each waiting for its ack.
        #[arg(long, default_value_t = 10)]
        senders: usize,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Batch sizes to run, in this run; 1 is one transaction per message.
        #[arg(long, value_delimiter = ',', default_value = "256,1")]
        batch_max: Vec<usize>,
        /// Also run on this database (Postgres), besides a temporary SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// How senders make their client ids: `counter` (c0, c1, …),
        /// `uuid7` (time-ordered), `uuid4` (random).
        #[arg(long, value_enum, default_value_t = append::ClientIds::Counter)]
        client_ids: append::ClientIds,
        /// Keep only each room's newest N entries while sending: the pruner
        /// runs beside the appends (off by default).
        #[arg(long)]
        retention_max_entries: Option<u64>,
        /// How often the pruner looks, in ms (with `--retention-max-entries`).
        #[arg(long, default_value_t = 1000)]
        retention_interval_ms: u64,
        /// The most entries one prune transaction deletes (with
        /// `--retention-max-entries`).
        #[arg(long, default_value_t = 1000)]
        prune_batch: u32,
        /// Messages per second offered in all, spread over the senders
        /// (open loop: latency from when each send was due). Default: as
        /// fast as acks come (closed loop).
        #[arg(long)]
        rate: Option<f64>,
        /// A webhook beside the appends: `none`, `down` (nothing listens:
        /// every try fails and backs off) or `up` (a receiver in this
        /// process takes everything).
        #[arg(long, value_enum, default_value_t = append::Webhook::None)]
        webhook: append::Webhook,
    },
    /// Concurrent reserves on one room.
    JoinStorm {
        #[arg(long, default_value_t = 10_000)]
        reserves: usize,
        #[arg(long, default_value_t = 100)]
        capacity: u32,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// One room, many subscribers, publishers at a set rate, over loopback.
    Fanout {
        /// Subscriber counts to run, in this run (`1000,4000,8000`).
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        subscribers: Vec<usize>,
        /// Rooms the subscribers are spread over; the rate is shared by
        /// them (the raw baseline has one room: compare it at 1).
        #[arg(long, default_value_t = 1)]
        rooms: usize,
        /// Publishers per room.
        #[arg(long, default_value_t = 4)]
        publishers: usize,
        /// Total publish rates (msgs/s) to run, in this run.
        #[arg(long, value_delimiter = ',', default_value = "100,200,400")]
        rate: Vec<u32>,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Transports to run, each at every rate (`ws,graphql` compares them).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "ws")]
        transport: Vec<Transport>,
        /// Also drive a minimal broadcast server with the same load.
        #[arg(long, value_enum)]
        baseline: Option<Baseline>,
        /// Drive the server at this URL (`http://host:port`) instead of starting one.
        #[arg(long)]
        url: Option<String>,
        /// Also run a cluster of this many nodes (Postgres + Redis), the
        /// subscribers and publishers spread over them, beside one node.
        #[arg(long, default_value_t = 1)]
        nodes: usize,
        /// The cluster's shared Postgres (with `--nodes`).
        #[arg(long, env = "PARLOR_BENCH_DATABASE_URL")]
        database_url: Option<String>,
        /// The cluster's Redis (with `--nodes`).
        #[arg(long, env = "PARLOR_BENCH_REDIS_URL")]
        redis_url: Option<String>,
    },
    /// Server memory per idle joined connection (server in a child process).
    Idle {
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Rooms the connections are spread over (100 → 100 members each).
        #[arg(long, default_value_t = 100)]
        rooms: usize,
        /// Connections only say hello and join nothing.
        #[arg(long)]
        hello_only: bool,
    },
    /// Typing signals in one room: M members, T typing; latency to every
    /// other member.
    Signal {
        #[arg(long, default_value_t = 20)]
        members: usize,
        /// Members that type (each sends `typing` every `--interval-ms`).
        #[arg(long, default_value_t = 1)]
        typists: usize,
        /// A typist's pace, in ms (the server allows 5/s with bursts of 10).
        #[arg(long, default_value_t = 250)]
        interval_ms: u64,
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Transports to run (each on a fresh server).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "ws,graphql")]
        transport: Vec<Transport>,
    },
    /// A reconnect storm: clients in rooms with live traffic, the server
    /// (a child process) stopped and started again; every client resumes.
    Storm {
        #[arg(long, default_value_t = 5000)]
        clients: usize,
        #[arg(long, default_value_t = 50)]
        rooms: usize,
        /// Messages a second, in all rooms together.
        #[arg(long, default_value_t = 200)]
        rate: u32,
        /// Traffic before the stop, and after the last client resumed.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// How the server is stopped; each runs in turn.
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "sigterm,sigkill"
        )]
        stop: Vec<server::Stop>,
    },
    /// Reserve/commit/leave/drop cycles; what remains afterwards.
    Churn {
        #[arg(long, default_value_t = 100_000)]
        cycles: u64,
        #[arg(long, default_value_t = 64)]
        workers: usize,
        #[arg(long, default_value_t = 100)]
        rooms: usize,
    },
    /// (internal) `parlor-server` for a scenario that measures it from outside.
    #[command(name = "__serve", hide = true)]
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let mut report = report::Report::default();
        match cli.scenario {
            Scenario::Append {
                rooms,
                senders,
                seconds,
                batch_max,
                database_url,
                client_ids,
                retention_max_entries,
                retention_interval_ms,
                prune_batch,
                rate,
                webhook,
            } => {
                append::run(
                    &append::Params {
                        rooms,
                        senders,
                        seconds,
                        batch_max,
                        database_url,
                        client_ids,
                        retention_max_entries,
                        retention_interval_ms,
                        prune_batch,
                        rate,
                        webhook,
                    },
                    &mut report,
                )
                .await;
            }
            Scenario::JoinStorm {
                reserves,
                capacity,
                rounds,
            } => {
                join_storm::run(
                    &join_storm::Params {
                        reserves,
                        capacity,
                        rounds,
                    },
                    &mut report,
                )
                .await;
            }
            Scenario::Fanout {
                subscribers,
                rooms,
                publishers,
                rate,
                seconds,
                transport,
                baseline,
                url,
                nodes,
                database_url,
                redis_url,
            } => {
                let cluster = match (nodes, database_url, redis_url) {
                    (0 | 1, _, _) => None,
                    (nodes, Some(postgres), Some(redis)) => Some(fanout::ClusterParams {
                        nodes,
                        postgres,
                        redis,
                    }),
                    _ => {
                        eprintln!(
                            "--nodes needs --database-url postgres://… and --redis-url redis://…"
                        );
                        std::process::exit(2);
                    }
                };
                let transports = transport.into_iter().map(Transport::protocol).collect();
                let params = fanout::Params {
                    subscribers,
                    rooms,
                    publishers,
                    rates: rate,
                    seconds,
                    transports,
                    raw_baseline: baseline.is_some(),
                    url,
                    cluster,
                };
                fanout::run(&params, &mut report).await;
            }
            Scenario::Signal {
                members,
                typists,
                interval_ms,
                seconds,
                transport,
            } => {
                let transports = transport.into_iter().map(Transport::protocol).collect();
                signal::run(
                    &signal::Params {
                        members,
                        typists,
                        interval_ms,
                        seconds,
                        transports,
                    },
                    &mut report,
                )
                .await;
            }
            Scenario::Idle {
                connections,
                rooms,
                hello_only,
            } => {
                idle::run(
                    &idle::Params {
                        connections,
                        rooms,
                        hello_only,
                    },
                    &mut report,
                )
                .await;
            }
            Scenario::Storm {
                clients,
                rooms,
                rate,
                seconds,
                stop,
            } => {
                let params = storm::Params {
                    clients,
                    rooms,
                    rate,
                    seconds,
                    stops: stop,
                };
                storm::run(&params, &mut report).await;
            }
            Scenario::Churn {
                cycles,
                workers,
                rooms,
            } => {
                churn::run(
                    &churn::Params {
                        cycles,
                        workers,
                        rooms,
                    },
                    &mut report,
                )
                .await;
            }
            Scenario::Serve { args } => {
                server::serve_child(args).await;
                return;
            }
        }
        report.finish();
    });
}
