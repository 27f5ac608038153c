//! # parlor-server
//!
//! The reference Parlor server: the engine on SeaORM storage (SQLite by
//! default, Postgres with a `postgres://` URL), the WebSocket + HTTP and
//! GraphQL transports side by side, the web chat page at `/`, and `/healthz`,
//! `/readyz`, `/metrics`. The binary is a thin
//! `main` over [`serve`]; tests start the same [`serve`] on `127.0.0.1:0`.
//!
//! Run with: `cargo run --release -p parlor-server -- --dev-auth`
//!
//! ```no_run
//! # async fn demo() -> Result<(), parlor_server::StartError> {
//! let config = parlor_server::Config::from_args(["parlor-server", "--dev-auth"]).unwrap();
//! let listener = tokio::net::TcpListener::bind(config.bind).await.unwrap();
//! parlor_server::serve(config, listener, async { /* until Ctrl-C */ }).await
//! # }
//! ```

mod config;
mod metrics;

use std::{future::Future, sync::Arc, time::Duration};

use axum::{
    Router, extract::State, http::StatusCode, response::IntoResponse, routing::get,
    serve::ListenerExt,
};
use parlor_auth::{AnyOf, DevTokens, HookPolicy, JwtAuthenticator, KeyError, ServiceKeys};
use parlor_engine::{
    Authenticator, Bus, Cluster, Engine, EngineConfig, EventSink, RateLimit, RoomPolicy,
    policies::{ClaimsPolicy, OpenPolicy},
};
use parlor_graphql::{GraphqlConfig, GraphqlTransport};
use parlor_redis::{Redis, RedisBus};
use parlor_seaorm::SeaOrmStore;
use parlor_webhook::WebhookSink;
use parlor_ws::{WsConfig, WsTransport};
use tokio::net::TcpListener;

pub use config::{Authorization, Config};

/// Why the server did not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration cannot work (the message says why).
    Config(String),
    /// Storage could not be opened or migrated.
    Storage(parlor_engine::Error),
    /// The listener failed.
    Io(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(m) => f.write_str(m),
            StartError::Storage(e) => {
                write!(f, "storage: {e} ({:?})", std::error::Error::source(e))
            }
            StartError::Io(e) => write!(f, "listener: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// How long shutdown waits for sockets to close and appends to finish.
const DRAIN: Duration = Duration::from_secs(10);

fn authenticator(config: &Config) -> Result<Arc<dyn Authenticator>, StartError> {
    let jwt = config.jwt().map_err(StartError::Config)?;
    let mut chain: Vec<Arc<dyn Authenticator>> = Vec::new();
    if let Some(secret) = &jwt.secret {
        let auth = JwtAuthenticator::hs256(secret.as_bytes()).with_rules(jwt.rules.clone());
        tracing::info!("JWTs: HS256 with the --jwt-secret");
        chain.push(Arc::new(auth));
    }
    // Key files are read once, here: one that cannot be read or holds no
    // usable key stops the start, naming the flag and the file.
    type Load = fn(&str) -> Result<JwtAuthenticator, KeyError>;
    let files: [(&str, Option<&std::path::Path>, Load); 2] = [
        (
            "--jwt-public-key",
            jwt.public_key.as_deref(),
            JwtAuthenticator::public_key_pem,
        ),
        ("--jwt-jwks", jwt.jwks.as_deref(), JwtAuthenticator::jwks),
    ];
    for (flag, path, load) in files {
        let Some(path) = path else { continue };
        let fail = |why: String| StartError::Config(format!("{flag} {}: {why}", path.display()));
        let text =
            std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let auth = load(&text)
            .map_err(|e| fail(e.to_string()))?
            .with_rules(jwt.rules.clone());
        tracing::info!(file = %path.display(), keys = %auth.describe(), "JWTs: {flag}");
        chain.push(Arc::new(auth));
    }
    if !chain.is_empty() {
        tracing::info!(rules = ?jwt.rules, "JWT claim rules");
    }
    if config.dev_auth {
        tracing::warn!(
            "--dev-auth is on: any client can be any user with a `dev:<user>` token; never use it in production"
        );
        chain.push(Arc::new(DevTokens));
    }
    let users: Arc<dyn Authenticator> = match chain.len() {
        0 => return Err(StartError::Config(
            "no authentication configured: pass --jwt-secret <secret>, --jwt-public-key <file> or --jwt-jwks <file> (or PARLOR_JWT_SECRET, PARLOR_JWT_PUBLIC_KEY, PARLOR_JWT_JWKS), or --dev-auth for development".into(),
        )),
        1 => chain.remove(0),
        _ => Arc::new(AnyOf(chain)),
    };
    let keys = ServiceKeys::parse(&config.api_keys)
        .map_err(|e| StartError::Config(format!("--api-key: {e}")))?;
    if keys.is_empty() {
        return Ok(users);
    }
    // Names only: a secret is never logged.
    tracing::info!(services = ?keys, "API keys");
    Ok(Arc::new(keys.guarding(users)))
}

/// The room policy `--authorization` names.
fn room_policy(config: &Config) -> Result<Arc<dyn RoomPolicy>, StartError> {
    Ok(match config.authorization {
        Authorization::Open => Arc::new(OpenPolicy),
        Authorization::Claims => Arc::new(ClaimsPolicy),
        Authorization::Hook => {
            // `check_authorization` made sure it is there.
            let url = config.authz_hook_url.clone().unwrap_or_default();
            let hook = HookPolicy::new(url, config.authz_hook_timeout)
                .map_err(|e| StartError::Config(e.message().to_owned()))?;
            Arc::new(hook)
        }
    })
}

/// A sink per `--webhook` (`check_webhooks` checked the flags).
fn webhooks(config: &Config) -> Result<Vec<Arc<dyn EventSink>>, StartError> {
    let secret = config.webhook_secret.as_deref().unwrap_or_default();
    config
        .webhooks
        .iter()
        .map(|url| {
            let sink = WebhookSink::new(url, secret.as_bytes(), config.webhook_timeout)
                .map_err(|e| StartError::Config(format!("--webhook: {}", e.message())))?;
            // The label hides credentials and queries: never the secret.
            tracing::info!(hook = %sink.label(), "webhook");
            Ok(Arc::new(sink) as Arc<dyn EventSink>)
        })
        .collect()
}

/// Starts the engine as one node of a cluster (Postgres + Redis).
async fn start_node(
    store: &SeaOrmStore,
    settings: config::ClusterSettings,
    engine_config: EngineConfig,
    policy: Arc<dyn RoomPolicy>,
    hooks: Vec<Arc<dyn EventSink>>,
) -> parlor_engine::Result<(Engine, Arc<RedisBus>)> {
    tracing::info!(node = %settings.node_id, redis = %config::redacted(&settings.redis_url), "joining the cluster");
    let redis = Redis::connect(&settings.redis_url).await?;
    let bus = Arc::new(
        redis
            .bus(&settings.node_id, engine_config.live_buffer)
            .await?,
    );
    let cluster = Cluster {
        node_id: settings.node_id,
        leases: Arc::new(store.clone()),
        claims: Arc::new(redis.claims()),
        lease_ttl: settings.lease_ttl,
    };
    let engine_config = engine_config.ticket_secret(settings.secret);
    let engine = Engine::builder(Arc::new(store.clone()))
        .bus(Arc::clone(&bus) as Arc<dyn Bus>)
        .cluster(cluster)
        .config(engine_config)
        .policy(policy)
        .webhooks(hooks)
        .start()
        .await?;
    Ok((engine, bus))
}

#[derive(Clone)]
struct Ops {
    engine: Engine,
    store: SeaOrmStore,
    transport: Arc<WsTransport>,
    graphql: Arc<GraphqlTransport>,
    /// A cluster node's bus, for its metrics.
    bus: Option<Arc<RedisBus>>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    match ops.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable"),
    }
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        metrics::render(
            &ops.engine,
            &ops.transport,
            &ops.graphql,
            ops.bus.as_deref(),
        ),
    )
}

/// Runs the server on `listener` until `shutdown` resolves, then stops
/// accepting, closes sockets with 1001, finishes the appends in flight (every
/// acked entry is stored) and returns.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let auth = authenticator(&config)?;
    let cluster = config.cluster().map_err(StartError::Config)?;
    config.check_heartbeat().map_err(StartError::Config)?;
    config.check_authorization().map_err(StartError::Config)?;
    config.check_webhooks().map_err(StartError::Config)?;
    let retention = config.retention().map_err(StartError::Config)?;
    tracing::info!(database = %config::redacted(&config.database_url), "opening storage");
    let mut store = SeaOrmStore::open(&config.database_url)
        .await
        .map_err(StartError::Storage)?;
    let engine_config = EngineConfig::default()
        .reservation_ttl(config.reservation_ttl)
        .reconnect_grace(config.reconnect_grace)
        .max_message_bytes(config.max_message_bytes)
        .max_data_bytes(config.max_data_bytes)
        .max_capacity(config.max_capacity)
        .send_rate(RateLimit::new(config.rate_limit, config.rate_burst))
        .reservation_rate(RateLimit::new(
            config.reservation_rate,
            config.reservation_burst,
        ))
        .create_rate(RateLimit::new(config.create_rate, config.create_burst))
        .signal_rate(RateLimit::new(config.signal_rate, config.signal_burst))
        .max_pending_rooms(config.max_pending_rooms)
        .retention(retention)
        .retention_interval(config.retention_interval)
        .prune_batch(config.prune_batch);
    if !retention.keeps_everything() {
        tracing::info!(?retention, every = ?config.retention_interval, "retention");
    }
    let policy = room_policy(&config)?;
    let hooks = webhooks(&config)?;
    let (engine, bus) = match cluster {
        None => Engine::builder(Arc::new(store.clone()))
            .config(engine_config)
            .policy(policy)
            .webhooks(hooks)
            .start()
            .await
            .map(|engine| (engine, None)),
        Some(settings) => {
            store = store.for_node(&settings.node_id);
            start_node(&store, settings, engine_config, policy, hooks)
                .await
                .map(|(engine, bus)| (engine, Some(bus)))
        }
    }
    .map_err(StartError::Storage)?;
    let mut ws_config = WsConfig::default()
        .hello_timeout(config.hello_timeout)
        .max_frame_bytes(config.max_frame_bytes)
        .outbound_queue(config.outbound_queue)
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .trust_forwarded(config.trust_forwarded);
    for origin in &config.allowed_origins {
        ws_config = ws_config.allow_origin(origin.clone());
    }
    let transport = Arc::new(WsTransport::new(
        Arc::new(engine.clone()),
        Arc::clone(&auth),
        ws_config,
    ));
    let graphql_config = GraphqlConfig::default()
        .introspection(config.dev_auth || config.graphql_introspection)
        .init_timeout(config.hello_timeout)
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .graphiql_token(config.dev_auth.then(|| "dev:guest".to_owned()));
    let graphql = Arc::new(GraphqlTransport::new(
        Arc::new(engine.clone()),
        auth,
        graphql_config,
    ));
    let ops = Ops {
        engine: engine.clone(),
        store: store.clone(),
        transport: Arc::clone(&transport),
        graphql: Arc::clone(&graphql),
        bus,
    };
    // One origin policy for every route a browser page calls: the raw
    // transport applies it to its own router; GraphQL gets the same layer.
    let origins = transport.origin_policy();
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(ops)
        .merge(transport.router())
        .merge(origins.protect(graphql.router()))
        .merge(parlor_web_chat::router());

    let addr = listener.local_addr().map_err(StartError::Io)?;
    tracing::info!(%addr, "parlor-server listening");
    let stopping = {
        let (transport, graphql) = (Arc::clone(&transport), Arc::clone(&graphql));
        async move {
            shutdown.await;
            tracing::info!("shutting down: closing sockets, finishing appends");
            transport.shutdown();
            graphql.shutdown();
        }
    };
    // TCP_NODELAY on every accepted socket: a chat frame is small, and with
    // Nagle's algorithm a frame written while the peer has not yet acked the
    // previous one waits for that ack — up to the peer's delayed-ack timer
    // (40 ms on Linux) — for every signal, entry and ack after the first.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(stopping)
        .await
        .map_err(StartError::Io)?;

    // Upgraded sockets are not tracked by axum's graceful shutdown: wait for
    // them, then for the appends they queued.
    let deadline = tokio::time::Instant::now() + DRAIN;
    while transport.connections() + graphql.connections() > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !engine.flush(DRAIN).await {
        tracing::warn!("appends still in flight at exit");
    }
    // SQLite: no file keeps an older copy of a page (a redacted message's
    // body) once the WAL is checkpointed and truncated.
    if let Err(err) = store.checkpoint().await {
        tracing::warn!(code = err.code(), "checkpoint at exit failed");
    }
    tracing::info!("stopped");
    Ok(())
}
