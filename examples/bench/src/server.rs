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
/// its memory can be read apart from the load's.
pub(crate) struct ChildServer {
    pub(crate) base: String,
    pub(crate) pid: u32,
    child: Child,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    pub(crate) async fn start() -> ChildServer {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("server.db").display()
        );
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .arg("__serve")
            .args(server_flags(&url))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = lines
            .next_line()
            .await
            .expect("server output")
            .and_then(|l| l.strip_prefix("listening ").map(str::to_owned))
            .expect("the server's address");
        ChildServer {
            base: format!("http://{addr}"),
            pid: child.id().expect("pid"),
            child,
            _dir: dir,
        }
    }

    pub(crate) async fn stop(mut self) {
        drop(self.child.stdin.take()); // EOF on stdin: the child shuts down
        let _ = tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await;
    }
}

/// The child side of [`ChildServer`]: serve until stdin closes.
pub(crate) async fn serve_child(args: Vec<String>) {
    let mut argv = vec!["parlor-server".to_owned()];
    argv.extend(args);
    let config = parlor_server::Config::from_args(argv).expect("server flags");
    let listener = TcpListener::bind(config.bind).await.expect("bind");
    // The one line the parent reads; stdout is this child's protocol.
    println!("listening {}", listener.local_addr().expect("addr"));
    let stdin_closed = async {
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(_)) = stdin.next_line().await {}
    };
    parlor_server::serve(config, listener, stdin_closed)
        .await
        .expect("parlor-server");
}
