//! [`Config`]: the server's flags, each also a `PARLOR_*` environment variable.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use parlor_auth::JwtRules;
use parlor_engine::Retention;

/// Parlor's reference server.
#[derive(Debug, Clone, Parser)]
#[command(name = "parlor-server", version, about)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PARLOR_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Storage: `sqlite://file.db?mode=rwc` (embedded) or `postgres://…`.
    #[arg(
        long,
        env = "PARLOR_DATABASE_URL",
        default_value = "sqlite://parlor.db?mode=rwc"
    )]
    pub database_url: String,

    /// Accept `dev:<user>` tokens. For development only.
    #[arg(long, env = "PARLOR_DEV_AUTH")]
    pub dev_auth: bool,

    /// Secret for HS256 JWTs (claims `sub` and `exp`).
    #[arg(long, env = "PARLOR_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// A PEM public key for JWTs an identity provider signs: RSA (RS256,
    /// RS384, RS512, PS256, PS384, PS512), EC P-256 (ES256) or P-384 (ES384);
    /// the key's type fixes the algorithms.
    #[arg(long, env = "PARLOR_JWT_PUBLIC_KEY", value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,

    /// A JWK Set file (`{"keys": [...]}`, as an identity provider publishes
    /// it): the token's `kid` picks the key.
    #[arg(long, env = "PARLOR_JWT_JWKS", value_name = "FILE")]
    pub jwt_jwks: Option<PathBuf>,

    /// Accept only JWTs whose `aud` holds this audience (repeatable); then
    /// `aud` is required. Without it `aud` is not checked.
    #[arg(
        long = "jwt-audience",
        env = "PARLOR_JWT_AUDIENCE",
        value_delimiter = ',',
        value_name = "AUDIENCE"
    )]
    pub jwt_audiences: Vec<String>,

    /// Accept only JWTs whose `iss` is this issuer (repeatable); then `iss`
    /// is required. Without it `iss` is not checked.
    #[arg(
        long = "jwt-issuer",
        env = "PARLOR_JWT_ISSUER",
        value_delimiter = ',',
        value_name = "ISSUER"
    )]
    pub jwt_issuers: Vec<String>,

    /// How far ahead of this server's clock a JWT's `nbf` may be (clock
    /// skew with the identity provider). `exp` gets no leeway.
    #[arg(long, env = "PARLOR_JWT_LEEWAY", default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub jwt_leeway: Duration,

    /// How long a reservation waits for its commit.
    #[arg(long, env = "PARLOR_RESERVATION_TTL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub reservation_ttl: Duration,

    /// How long a lost connection's seat is kept for a reconnect.
    #[arg(long, env = "PARLOR_RECONNECT_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub reconnect_grace: Duration,

    /// Largest message body, in bytes.
    #[arg(long, env = "PARLOR_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Largest `data` of a message (the app's JSON object), in bytes of
    /// serialized JSON.
    #[arg(long, env = "PARLOR_MAX_DATA_BYTES", default_value_t = 4096)]
    pub max_data_bytes: usize,

    /// A service credential `NAME=SECRET` for the integrator's backend
    /// (repeatable; the environment variable takes them comma-separated).
    /// A request with header `X-Api-Key: SECRET` acts as the service NAME:
    /// every action in every room, no seat; its messages are `system`
    /// entries. SECRET is at least 16 bytes; NAME cannot be a user's id.
    #[arg(
        long = "api-key",
        env = "PARLOR_API_KEYS",
        value_delimiter = ',',
        value_name = "NAME=SECRET",
        hide_env_values = true
    )]
    pub api_keys: Vec<String>,

    /// Largest room capacity.
    #[arg(long, env = "PARLOR_MAX_CAPACITY", default_value_t = 10_000)]
    pub max_capacity: u32,

    /// Retention: keep each room's newest N entries (at least 1); older
    /// ones are pruned. Without it (and without `--retention-max-age`)
    /// every entry is kept. A room's own retention (`PATCH
    /// /v1/rooms/{id}`) replaces this one.
    #[arg(long, env = "PARLOR_RETENTION_MAX_ENTRIES", value_name = "N")]
    pub retention_max_entries: Option<u64>,

    /// Retention: keep the entries younger than this (`30d`, `12h`, `90s`;
    /// at least 1s); older ones are pruned. With `--retention-max-entries`
    /// too, an entry goes when either bound lets it go.
    #[arg(long, env = "PARLOR_RETENTION_MAX_AGE", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retention_max_age: Option<Duration>,

    /// How often the pruner looks for rooms over their retention.
    #[arg(long, env = "PARLOR_RETENTION_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub retention_interval: Duration,

    /// The most entries one prune transaction deletes: appends to the room
    /// wait at most one batch.
    #[arg(
        long,
        env = "PARLOR_PRUNE_BATCH",
        default_value_t = 1000,
        value_name = "N"
    )]
    pub prune_batch: u32,

    /// An origin allowed to call the API and open sockets from a browser
    /// page, with CORS (repeatable; `*`: any). The server's own origin is
    /// always allowed.
    #[arg(
        long = "allowed-origin",
        env = "PARLOR_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Sends per second per user, over every transport together.
    #[arg(long, env = "PARLOR_RATE_LIMIT", default_value_t = 20.0)]
    pub rate_limit: f64,

    /// Burst of sends a user may make at once.
    #[arg(long, env = "PARLOR_RATE_BURST", default_value_t = 40.0)]
    pub rate_burst: f64,

    /// Reservations per second per user (HTTP, GraphQL and SSE alike).
    #[arg(long, env = "PARLOR_RESERVATION_RATE", default_value_t = 5.0)]
    pub reservation_rate: f64,

    /// Burst of reservations a user may make at once.
    #[arg(long, env = "PARLOR_RESERVATION_BURST", default_value_t = 20.0)]
    pub reservation_burst: f64,

    /// Room creations per second per user.
    #[arg(long, env = "PARLOR_CREATE_RATE", default_value_t = 1.0)]
    pub create_rate: f64,

    /// Burst of room creations a user may make at once.
    #[arg(long, env = "PARLOR_CREATE_BURST", default_value_t = 10.0)]
    pub create_burst: f64,

    /// Signals (typing…) per second per user: their own bucket, apart from
    /// sends.
    #[arg(long, env = "PARLOR_SIGNAL_RATE", default_value_t = 5.0)]
    pub signal_rate: f64,

    /// Burst of signals a user may send at once.
    #[arg(long, env = "PARLOR_SIGNAL_BURST", default_value_t = 10.0)]
    pub signal_burst: f64,

    /// Rooms one user may have pending (created, not yet committed) at once.
    #[arg(long, env = "PARLOR_MAX_PENDING_ROOMS", default_value_t = 10)]
    pub max_pending_rooms: u32,

    /// Who may do what in which room: `open` (any signed-in user, public
    /// rooms; private rooms for their owner and invited users), `claims`
    /// (grants in the token's `rooms` claim) or `hook` (ask
    /// `--authz-hook-url`). docs/contract.md §2.
    #[arg(long, env = "PARLOR_AUTHORIZATION", value_enum, default_value_t = Authorization::Open)]
    pub authorization: Authorization,

    /// For `--authorization hook`: the integrator's endpoint (plain HTTP)
    /// that answers `{"allow", "ttl_ms"}` for each question.
    #[arg(long, env = "PARLOR_AUTHZ_HOOK_URL")]
    pub authz_hook_url: Option<String>,

    /// How long to wait for the hook; past it the question is refused with
    /// `UNAVAILABLE` (fail closed).
    #[arg(long, env = "PARLOR_AUTHZ_HOOK_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub authz_hook_timeout: std::time::Duration,

    /// A webhook: room events are POSTed to this URL (plain HTTP), in
    /// batches, signed with `--webhook-secret` (docs/contract.md §10).
    /// Repeat the flag for several; in the environment, separate them
    /// with commas. Every node of a cluster needs the same list.
    #[arg(long = "webhook", env = "PARLOR_WEBHOOKS", value_delimiter = ',')]
    pub webhooks: Vec<String>,

    /// The secret the webhooks' `Parlor-Signature` is an HMAC-SHA256 with.
    #[arg(long, env = "PARLOR_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// How long a webhook request may take before it counts as failed
    /// (and is retried).
    #[arg(long, env = "PARLOR_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub webhook_timeout: std::time::Duration,

    /// Largest WebSocket text frame, in bytes (larger closes with 1009).
    #[arg(long, env = "PARLOR_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub max_frame_bytes: usize,

    /// Answers (acks, errors, joined, left) queued for one WebSocket
    /// connection; a queue that stays full for 2 s closes it with 4409.
    #[arg(long, env = "PARLOR_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,

    /// Answer GraphQL introspection (on by default with --dev-auth).
    #[arg(long, env = "PARLOR_GRAPHQL_INTROSPECTION")]
    pub graphql_introspection: bool,

    /// Print the GraphQL schema (SDL) and exit.
    #[arg(long)]
    pub print_schema: bool,

    /// Cluster mode: Redis for fan-out across nodes and pending-room claims
    /// (`redis://host:6379`). Needs a Postgres database and
    /// `--cluster-secret`; without it the server is a single node.
    #[arg(long, env = "PARLOR_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Cluster mode: the secret every node signs tickets with, so a ticket
    /// reserved on one node commits on any.
    #[arg(long, env = "PARLOR_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,

    /// Cluster mode: this node's name, unique in the cluster (default: a
    /// random one). A node restarted under its old name frees its old seats
    /// at once instead of after the lease ttl.
    #[arg(long, env = "PARLOR_NODE_ID")]
    pub node_id: Option<String>,

    /// Cluster mode: how long a node's seats outlive its last lease renewal
    /// (it renews every third of this).
    #[arg(long, env = "PARLOR_LEASE_TTL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,

    /// Time a new socket has to say hello (raw WebSocket) or send
    /// `connection_init` (GraphQL).
    #[arg(long, env = "PARLOR_HELLO_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, hide = true)]
    pub hello_timeout: Duration,

    /// How often every WebSocket gets a ping frame (raw and GraphQL), so
    /// that dead peers are found and proxies keep quiet sockets open.
    #[arg(long, env = "PARLOR_PING_INTERVAL", default_value = "25s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// How long past a ping interval a silent socket is kept before it is
    /// closed as lost (its seats go to grace).
    #[arg(long, env = "PARLOR_PING_TIMEOUT", default_value = "20s", value_parser = humantime::parse_duration)]
    pub ping_timeout: Duration,

    /// Behind a reverse proxy: take the server's own origin (for the
    /// same-origin check) from the proxy's `Forwarded` / `X-Forwarded-Host`
    /// / `X-Forwarded-Proto` headers. Only with a proxy that sets them: a
    /// client could forge them otherwise.
    #[arg(long, env = "PARLOR_TRUST_FORWARDED")]
    pub trust_forwarded: bool,
}

impl Config {
    /// Parses `args` (the first is the program name) and the environment.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Config::try_parse_from(args)
    }
}

/// Where JWT verification keys come from, and the claim rules, from the flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct JwtSettings {
    pub(crate) secret: Option<String>,
    pub(crate) public_key: Option<PathBuf>,
    pub(crate) jwks: Option<PathBuf>,
    pub(crate) rules: JwtRules,
}

impl Config {
    /// The JWT settings, or why they cannot work (`--jwt-audience`,
    /// `--jwt-issuer` without any JWT key: they would check nothing).
    pub(crate) fn jwt(&self) -> Result<JwtSettings, String> {
        let nonempty = |v: &Vec<String>| -> Vec<String> {
            v.iter().filter(|s| !s.is_empty()).cloned().collect()
        };
        let (audiences, issuers) = (nonempty(&self.jwt_audiences), nonempty(&self.jwt_issuers));
        let mut rules = JwtRules::default().leeway(self.jwt_leeway);
        for aud in &audiences {
            rules = rules.audience(aud.clone());
        }
        for iss in &issuers {
            rules = rules.issuer(iss.clone());
        }
        let settings = JwtSettings {
            secret: self.jwt_secret.clone().filter(|s| !s.is_empty()),
            public_key: self.jwt_public_key.clone(),
            jwks: self.jwt_jwks.clone(),
            rules,
        };
        let has_key =
            settings.secret.is_some() || settings.public_key.is_some() || settings.jwks.is_some();
        let has_rules = !audiences.is_empty() || !issuers.is_empty();
        if has_rules && !has_key {
            return Err(
                "--jwt-audience and --jwt-issuer check JWTs: pass a key too (--jwt-secret, --jwt-public-key or --jwt-jwks)".into(),
            );
        }
        Ok(settings)
    }
}

impl Config {
    /// The server's retention from the flags, or why it cannot work
    /// (`--retention-max-entries 0`, a `--retention-max-age` under 1s, a
    /// zero `--retention-interval` or `--prune-batch`).
    pub(crate) fn retention(&self) -> Result<Retention, String> {
        let retention = Retention {
            max_entries: self.retention_max_entries,
            max_age: self.retention_max_age,
        };
        retention.validate().map_err(|_| {
            "--retention-max-entries must be at least 1 and --retention-max-age at least 1s"
                .to_owned()
        })?;
        if self.retention_interval.is_zero() {
            return Err("--retention-interval must be above zero (default 5s)".into());
        }
        if self.prune_batch == 0 {
            return Err("--prune-batch must be at least 1 (default 1000)".into());
        }
        Ok(retention)
    }
}

impl Config {
    /// Why the heartbeat flags cannot work, if they cannot: a zero
    /// `--ping-timeout` would close every socket whose pong is a moment
    /// late, and a zero interval would ping without pause.
    pub(crate) fn check_heartbeat(&self) -> Result<(), String> {
        if self.ping_interval.is_zero() || self.ping_timeout.is_zero() {
            return Err(
                "--ping-interval and --ping-timeout must be above zero (defaults 25s and 20s)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Why the limit and authorization flags cannot work, if they cannot: a
    /// rate that is not a positive number would panic or refuse everything,
    /// a burst below 1 refuses every action, and a hook URL must be plain
    /// HTTP (this build has no TLS client) and go with `--authorization
    /// hook`.
    pub(crate) fn check_authorization(&self) -> Result<(), String> {
        let rates = [
            (
                "--rate-limit",
                self.rate_limit,
                "--rate-burst",
                self.rate_burst,
            ),
            (
                "--reservation-rate",
                self.reservation_rate,
                "--reservation-burst",
                self.reservation_burst,
            ),
            (
                "--create-rate",
                self.create_rate,
                "--create-burst",
                self.create_burst,
            ),
            (
                "--signal-rate",
                self.signal_rate,
                "--signal-burst",
                self.signal_burst,
            ),
        ];
        for (rate_flag, rate, burst_flag, burst) in rates {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(format!("{rate_flag} must be a number above zero"));
            }
            if !(burst.is_finite() && burst >= 1.0) {
                return Err(format!("{burst_flag} must be a number of at least 1"));
            }
        }
        match (&self.authorization, &self.authz_hook_url) {
            (Authorization::Hook, None) => {
                Err("--authorization hook needs --authz-hook-url".into())
            }
            (Authorization::Hook, Some(url)) if !url.starts_with("http://") => Err(
                "--authz-hook-url must be an http:// URL (put TLS in front of it on the backend's side)".into(),
            ),
            (Authorization::Open | Authorization::Claims, Some(_)) => {
                Err("--authz-hook-url is only used with --authorization hook".into())
            }
            _ => Ok(()),
        }
    }
}

impl Config {
    /// Why the webhook flags cannot work, if they cannot: each URL plain
    /// HTTP (this build has no TLS client), listed once, and a non-empty
    /// secret exactly when there is a webhook.
    pub(crate) fn check_webhooks(&self) -> Result<(), String> {
        let secret = self.webhook_secret.as_deref().filter(|s| !s.is_empty());
        match (self.webhooks.is_empty(), secret) {
            (false, None) => {
                return Err("--webhook needs --webhook-secret (requests are signed)".into());
            }
            (true, Some(_)) => return Err("--webhook-secret is only used with --webhook".into()),
            _ => {}
        }
        for (i, url) in self.webhooks.iter().enumerate() {
            if !url.starts_with("http://") || url.len() <= "http://".len() {
                return Err("--webhook must be an http:// URL (put TLS in front of it on the receiver's side)".into());
            }
            if self.webhooks[..i].contains(url) {
                return Err("--webhook lists the same URL twice".into());
            }
        }
        Ok(())
    }
}

/// What makes this server one node of a cluster.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSettings {
    pub(crate) redis_url: String,
    pub(crate) secret: String,
    pub(crate) node_id: String,
    pub(crate) lease_ttl: Duration,
}

impl Config {
    /// The cluster settings, `None` for a single node, or why they cannot work.
    pub(crate) fn cluster(&self) -> Result<Option<ClusterSettings>, String> {
        let secret = self.cluster_secret.as_deref().filter(|s| !s.is_empty());
        let (redis_url, secret) = match (self.redis_url.as_deref(), secret) {
            (None, None) => return Ok(None),
            (Some(url), Some(secret)) => (url, secret),
            _ => {
                return Err(
                    "cluster mode needs both --redis-url and --cluster-secret (or PARLOR_REDIS_URL and PARLOR_CLUSTER_SECRET)".into(),
                );
            }
        };
        if !self.database_url.starts_with("postgres") {
            return Err(
                "cluster mode needs a shared Postgres database: pass --database-url postgres://…"
                    .into(),
            );
        }
        let node_id = match &self.node_id {
            Some(id) if (1..=64).contains(&id.len()) => id.clone(),
            Some(_) => return Err("--node-id must be 1-64 characters".into()),
            None => format!("node-{:08x}", rand::random::<u32>()),
        };
        Ok(Some(ClusterSettings {
            redis_url: redis_url.to_owned(),
            secret: secret.to_owned(),
            node_id,
            lease_ttl: self.lease_ttl,
        }))
    }
}

/// The database URL with any password replaced, for logs.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_headers_are_trusted_only_when_asked() {
        assert!(!Config::from_args(["x"]).unwrap().trust_forwarded);
        assert!(
            Config::from_args(["x", "--trust-forwarded"])
                .unwrap()
                .trust_forwarded
        );
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(
            redacted("postgres://u:hunter2@db/x"),
            "postgres://u:***@db/x"
        );
        assert_eq!(redacted("postgres://u@db/x"), "postgres://u@db/x");
        assert_eq!(
            redacted("sqlite://parlor.db?mode=rwc"),
            "sqlite://parlor.db?mode=rwc"
        );
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::from_args(["parlor-server"]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.reservation_ttl, Duration::from_secs(15));
        assert_eq!(c.reconnect_grace, Duration::from_secs(10));
        assert_eq!((c.max_message_bytes, c.max_capacity), (4096, 10_000));
        let c = Config::from_args([
            "x",
            "--allowed-origin",
            "https://a",
            "--allowed-origin",
            "https://b",
        ])
        .unwrap();
        assert_eq!(c.allowed_origins, vec!["https://a", "https://b"]);
    }

    #[test]
    fn retention_keeps_everything_unless_told() {
        let parse = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(args);
            Config::from_args(all).unwrap()
        };
        let c = parse(&[]);
        assert!(c.retention().unwrap().keeps_everything());
        assert_eq!(
            (c.retention_interval, c.prune_batch),
            (Duration::from_secs(5), 1000)
        );
        let c = parse(&[
            "--retention-max-entries",
            "500",
            "--retention-max-age",
            "30d",
            "--retention-interval",
            "250ms",
            "--prune-batch",
            "50",
        ]);
        assert_eq!(
            c.retention().unwrap(),
            Retention {
                max_entries: Some(500),
                max_age: Some(Duration::from_secs(30 * 24 * 3600)),
            }
        );
        assert_eq!(
            (c.retention_interval, c.prune_batch),
            (Duration::from_millis(250), 50)
        );
        assert_eq!(
            parse(&["--retention-max-age", "12h 30m"]).retention_max_age,
            Some(Duration::from_secs(12 * 3600 + 30 * 60))
        );
        for bad in [
            &["--retention-max-entries", "0"][..],
            &["--retention-max-age", "500ms"],
            &["--retention-interval", "0s"],
            &["--prune-batch", "0"],
        ] {
            assert!(parse(bad).retention().is_err(), "{bad:?}");
        }
        for unparsable in [
            &["--retention-max-age", "soon"][..],
            &["--retention-max-entries", "-1"],
        ] {
            let mut all = vec!["x"];
            all.extend_from_slice(unparsable);
            assert!(Config::from_args(all).is_err(), "{unparsable:?}");
        }
    }

    #[test]
    fn heartbeat_flags_must_be_above_zero() {
        let parse = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(args);
            Config::from_args(all).unwrap().check_heartbeat()
        };
        assert!(parse(&[]).is_ok());
        assert!(parse(&["--ping-interval", "1s", "--ping-timeout", "1s"]).is_ok());
        assert!(parse(&["--ping-timeout", "0s"]).is_err());
        assert!(parse(&["--ping-interval", "0s"]).is_err());
    }

    #[test]
    fn limit_and_authorization_flags_are_checked_at_start() {
        let parse = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(args);
            Config::from_args(all).unwrap().check_authorization()
        };
        assert!(parse(&[]).is_ok());
        assert!(parse(&["--authorization", "claims"]).is_ok());
        for bad in [
            &["--rate-limit", "NaN"][..],
            &["--rate-limit", "0"],
            &["--reservation-burst", "0.5"],
            &["--create-rate=-1"],
            &["--authorization", "hook"],
            &[
                "--authorization",
                "hook",
                "--authz-hook-url",
                "https://x/authz",
            ],
            &["--authz-hook-url", "http://x/authz"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let hook = [
            "--authorization",
            "hook",
            "--authz-hook-url",
            "http://127.0.0.1:9/a",
        ];
        assert!(parse(&hook).is_ok());
    }

    #[test]
    fn cluster_mode_needs_redis_a_secret_and_postgres() {
        let parse = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(args);
            Config::from_args(all).unwrap().cluster()
        };
        assert!(parse(&[]).unwrap().is_none(), "single node by default");
        assert!(parse(&["--redis-url", "redis://r"]).is_err());
        assert!(parse(&["--cluster-secret", "s"]).is_err());
        let sqlite = ["--redis-url", "redis://r", "--cluster-secret", "s"];
        assert!(parse(&sqlite).unwrap_err().contains("Postgres"));
        let pg = [
            "--redis-url",
            "redis://r",
            "--cluster-secret",
            "s",
            "--database-url",
            "postgres://db/x",
            "--node-id",
            "a",
        ];
        let c = parse(&pg).unwrap().unwrap();
        assert_eq!(
            (c.node_id.as_str(), c.lease_ttl),
            ("a", Duration::from_secs(10))
        );
    }

    #[test]
    fn jwt_flags_build_the_claim_rules() {
        let c = Config::from_args(["x"]).unwrap();
        assert_eq!(c.jwt_leeway, Duration::from_secs(5));
        let jwt = c.jwt().unwrap();
        assert_eq!(jwt.rules, JwtRules::default());
        assert!(jwt.secret.is_none() && jwt.public_key.is_none() && jwt.jwks.is_none());

        let c = Config::from_args([
            "x",
            "--jwt-secret",
            "s",
            "--jwt-audience",
            "a",
            "--jwt-audience",
            "b,c",
            "--jwt-issuer",
            "https://id.example",
            "--jwt-leeway",
            "30s",
            "--jwt-public-key",
            "k.pem",
            "--jwt-jwks",
            "k.json",
        ])
        .unwrap();
        let jwt = c.jwt().unwrap();
        let want = JwtRules::default()
            .leeway(Duration::from_secs(30))
            .audience("a")
            .audience("b")
            .audience("c")
            .issuer("https://id.example");
        assert_eq!(jwt.rules, want);
        assert_eq!(jwt.secret.as_deref(), Some("s"));
        assert_eq!(jwt.public_key, Some(PathBuf::from("k.pem")));
        assert_eq!(jwt.jwks, Some(PathBuf::from("k.json")));
    }

    #[test]
    fn audience_or_issuer_without_a_jwt_key_is_refused() {
        for flag in ["--jwt-audience", "--jwt-issuer"] {
            let c = Config::from_args(["x", "--dev-auth", flag, "v"]).unwrap();
            assert!(c.jwt().unwrap_err().contains("pass a key too"), "{flag}");
        }
        let c = Config::from_args(["x", "--jwt-jwks", "k.json", "--jwt-issuer", "i"]).unwrap();
        assert!(c.jwt().is_ok());
    }

    fn fixture(name: &str) -> String {
        format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    fn start_error(args: &[&str]) -> String {
        let mut all = vec!["x"];
        all.extend_from_slice(args);
        match crate::authenticator(&Config::from_args(all).unwrap()) {
            Ok(_) => panic!("{args:?} should not start"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn key_files_that_cannot_be_used_stop_the_start() {
        let message = start_error(&["--jwt-public-key", "/no/such/key.pem"]);
        assert!(
            message.starts_with("--jwt-public-key /no/such/key.pem: cannot read it"),
            "{message}"
        );
        let message = start_error(&["--jwt-jwks", "/no/such/jwks.json"]);
        assert!(
            message.starts_with("--jwt-jwks /no/such/jwks.json: cannot read it"),
            "{message}"
        );

        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a key").unwrap();
        let junk = junk.to_str().unwrap();
        let message = start_error(&["--jwt-public-key", junk]);
        assert!(message.contains("not a PEM public key"), "{message}");
        let message = start_error(&["--jwt-jwks", junk]);
        assert!(message.contains("not a JWK Set"), "{message}");
        // A JWK Set is not a PEM key, nor the reverse.
        let message = start_error(&["--jwt-public-key", &fixture("jwks.json")]);
        assert!(message.contains("not a PEM public key"), "{message}");
        let message = start_error(&["--jwt-jwks", &fixture("rsa_public.pem")]);
        assert!(message.contains("not a JWK Set"), "{message}");
        // One bad file stops the start even beside good ones.
        let message = start_error(&[
            "--jwt-secret",
            "s",
            "--jwt-public-key",
            &fixture("rsa_public.pem"),
            "--jwt-jwks",
            junk,
        ]);
        assert!(message.starts_with("--jwt-jwks"), "{message}");
        assert!(start_error(&[]).contains("no authentication configured"));
    }

    #[test]
    fn secret_public_key_and_jwks_combine() {
        let args = [
            "x",
            "--jwt-secret",
            "s",
            "--jwt-public-key",
            &fixture("rsa_public.pem"),
            "--jwt-jwks",
            &fixture("jwks.json"),
        ];
        assert!(crate::authenticator(&Config::from_args(args).unwrap()).is_ok());
        let ec = fixture("ec_public.pem");
        assert!(
            crate::authenticator(&Config::from_args(["x", "--jwt-public-key", &ec]).unwrap())
                .is_ok()
        );
    }
}

/// The room policies `--authorization` chooses from (fixed names: tests and
/// deployments outside the project use them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Authorization {
    /// `parlor_engine::policies::OpenPolicy`.
    Open,
    /// `parlor_engine::policies::ClaimsPolicy`.
    Claims,
    /// `parlor_auth::HookPolicy` on `--authz-hook-url`.
    Hook,
}
