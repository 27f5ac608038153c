//! [`Config`]: the server's flags, each also a `PARLOR_*` environment variable.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;

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

    /// How long a reservation waits for its commit.
    #[arg(long, env = "PARLOR_RESERVATION_TTL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub reservation_ttl: Duration,

    /// How long a lost connection's seat is kept for a reconnect.
    #[arg(long, env = "PARLOR_RECONNECT_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub reconnect_grace: Duration,

    /// Largest message body, in bytes.
    #[arg(long, env = "PARLOR_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    pub max_message_bytes: usize,

    /// Largest room capacity.
    #[arg(long, env = "PARLOR_MAX_CAPACITY", default_value_t = 10_000)]
    pub max_capacity: u32,

    /// An origin allowed to call the API and open sockets from a browser
    /// page, with CORS (repeatable; `*`: any). The server's own origin is
    /// always allowed.
    #[arg(
        long = "allowed-origin",
        env = "PARLOR_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Sends per second per user.
    #[arg(long, env = "PARLOR_RATE_LIMIT", default_value_t = 20.0)]
    pub rate_limit: f64,

    /// Burst of sends a user may make at once.
    #[arg(long, env = "PARLOR_RATE_BURST", default_value_t = 40.0)]
    pub rate_burst: f64,

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
}
