//! Servers under test: the real `parlor-server` (its `serve`, on a runtime
//! of its own in this process, or in a child process when its memory is
//! measured), or the raw baseline.

use std::{process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpListener,
    process::{Child, Command},
    sync::oneshot,
};

use crate::raw_baseline;

/// Flags for a server that the bench, not a rate limiter, sets the pace of.
pub(crate) fn server_flags(database_url: &str) -> Vec<String> {
    [
        "--dev-auth",
        "--database-url",
        database_url,
        "--rate-limit",
        "1000000000",
        "--rate-burst",
        "1000000000",
        "--reservation-rate",
        "1000000000",
        "--reservation-burst",
        "1000000000",
        "--create-rate",
        "1000000000",
        "--create-burst",
        "1000000000",
        "--max-capacity",
        "100000",
        "--bind",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A server on a runtime of its own (2 workers, like a small box), so the
/// load's tasks do not share its scheduler.
pub(crate) struct InProcess {
    pub(crate) base: String,
    stop: Option<oneshot::Sender<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: Option<tempfile::TempDir>,
}

impl InProcess {
    /// `parlor-server` on a fresh SQLite file.
    pub(crate) fn parlor() -> InProcess {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("server.db").display()
        );
        let mut args = vec!["parlor-server".to_owned()];
        args.extend(server_flags(&url));
        let config = parlor_server::Config::from_args(args).expect("server flags");
        let mut server = InProcess::start(|listener, stopped| async move {
            parlor_server::serve(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("parlor-server");
        });
        server._dir = Some(dir);
        server
    }

    /// `parlor-server` as node `index` of a cluster on `postgres` and `redis`.
    pub(crate) fn cluster_node(postgres: &str, redis: &str, index: usize) -> InProcess {
        let mut args = vec!["parlor-server".to_owned()];
        args.extend(server_flags(postgres));
        let node = format!("bench-{}-{index}", std::process::id());
        for (flag, value) in [
            ("--redis-url", redis),
            ("--cluster-secret", "parlor-bench"),
            ("--node-id", node.as_str()),
        ] {
            args.extend([flag.to_owned(), value.to_owned()]);
        }
        let config = parlor_server::Config::from_args(args).expect("server flags");
        InProcess::start(|listener, stopped| async move {
            parlor_server::serve(config, listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("parlor-server node");
        })
    }

    /// The raw tokio-tungstenite broadcast server.
    pub(crate) fn raw() -> InProcess {
        InProcess::start(|listener, stopped| async move {
            tokio::select! {
                () = raw_baseline::serve(listener) => {}
                _ = stopped => {}
            }
        })
    }

    fn start<F, Fut>(run: F) -> InProcess
    where
        F: FnOnce(TcpListener, oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("server")
            .enable_all()
            .build()
            .expect("server runtime");
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let base = format!("http://{}", std_listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(std_listener).expect("listener");
            run(listener, stopped).await;
        });
        InProcess {
            base,
            stop: Some(stop),
            runtime: Some(runtime),
            _dir: None,
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            // A runtime cannot be shut down from inside another's task.
            let _ =
                std::thread::spawn(move || runtime.shutdown_timeout(Duration::from_secs(5))).join();
        }
    }
}

/// `parlor-server` in a child process (this binary's hidden `__serve`), so
/// its memory can be read apart from the load's, and so it can be stopped
/// with a signal and started again on the same address and database.
pub(crate) struct ChildServer {
    pub(crate) base: String,
    pub(crate) pid: u32,
    child: Child,
    /// The flags it was started with (its `--bind` the address it got).
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

/// How a [`ChildServer`] is stopped before it starts again (`storm
/// --stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Stop {
    /// SIGTERM: the server shuts down gracefully.
    Sigterm,
    /// SIGKILL: the process ends at once, as in a crash.
    Sigkill,
}

impl Stop {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stop::Sigterm => "sigterm",
            Stop::Sigkill => "sigkill",
        }
    }
}

impl ChildServer {
    pub(crate) async fn start() -> ChildServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("server.db").display()
        );
        let args = server_flags(&url);
        let (child, addr) = spawn(&args).await.expect("the server starts");
        let mut args = args;
        // Started again, it listens where it did (the clients' URL).
        if let Some(at) = args.iter().position(|a| a == "--bind") {
            args[at + 1] = addr.clone();
        }
        ChildServer {
            base: format!("http://{addr}"),
            pid: child.id().expect("pid"),
            child,
            args,
            _dir: dir,
        }
    }

    /// Stops the server with `stop`, waits for the process to end, and
    /// starts it again on the same address and database; returns once it
    /// listens again. Errors: the process did not end within 30 s, or the
    /// new one did not start.
    pub(crate) async fn restart(&mut self, stop: Stop) -> Result<(), String> {
        match stop {
            Stop::Sigkill => self.child.start_kill().map_err(|e| e.to_string())?,
            Stop::Sigterm => {
                let status = std::process::Command::new("kill")
                    .args(["-TERM", &self.pid.to_string()])
                    .status()
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err(format!("kill -TERM {}: {status}", self.pid));
                }
            }
        }
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .map_err(|_| "the server did not stop within 30 s".to_owned())?
            .map_err(|e| e.to_string())?;
        let (child, _) = spawn(&self.args).await?;
        self.pid = child.id().ok_or("no pid")?;
        self.child = child;
        Ok(())
    }

    pub(crate) async fn stop(mut self) {
        drop(self.child.stdin.take()); // EOF on stdin: the child shuts down
        let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
    }
}

/// Starts `__serve` with `args`; the child and the address it listens on.
/// Errors: it could not be spawned, or ended without saying where it
/// listens (it could not bind, say).
async fn spawn(args: &[String]) -> Result<(Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .arg("__serve")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn the server: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let addr = lines
        .next_line()
        .await
        .map_err(|e| e.to_string())?
        .and_then(|l| l.strip_prefix("listening ").map(str::to_owned))
        .ok_or("the server ended without its address")?;
    Ok((child, addr))
}

/// The child side of [`ChildServer`]: serve until stdin closes or a
/// SIGTERM comes (then shut down gracefully, as `parlor-server` does).
pub(crate) async fn serve_child(args: Vec<String>) {
    let mut argv = vec!["parlor-server".to_owned()];
    argv.extend(args);
    let config = parlor_server::Config::from_args(argv).expect("server flags");
    let listener = TcpListener::bind(config.bind).await.expect("bind");
    // The one line the parent reads; stdout is this child's protocol.
    println!("listening {}", listener.local_addr().expect("addr"));
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        tokio::select! {
            _ = term.recv() => {}
            () = async { while let Ok(Some(_)) = stdin.next_line().await {} } => {}
        }
    };
    parlor_server::serve(config, listener, stop)
        .await
        .expect("parlor-server");
}
