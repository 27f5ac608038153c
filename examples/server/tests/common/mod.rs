//! The `parlor-server` binary as a child process, for the process and
//! cluster tests: started with flags, found by its "listening" log line, its
//! log kept, killed on drop.

#![allow(dead_code, unreachable_pub)] // each test binary uses its own part

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

pub mod webhook_receiver;

/// The `X-Api-Key` of the service `ops` every test server knows.
pub const API_KEY: &str = "ops-secret-0123456789abcdef";

pub struct ServerProcess {
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its log lines so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts the binary with `args` and waits for its "listening" line.
    pub fn start<I, S>(args: I) -> ServerProcess
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut child = Command::new(env!("CARGO_BIN_EXE_parlor-server"))
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            // These suites test crashes and clusters, not the per-user
            // limits (tests/tests/authorization.rs does): generous ones.
            .env("PARLOR_RESERVATION_RATE", "100000")
            .env("PARLOR_RESERVATION_BURST", "100000")
            .env("PARLOR_CREATE_RATE", "100000")
            .env("PARLOR_CREATE_BURST", "100000")
            .env("PARLOR_MAX_PENDING_ROOMS", "100000")
            // The integrator's backend, for the control surface's suites.
            .env("PARLOR_API_KEYS", format!("ops={API_KEY}"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn parlor-server");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(at) = line.find("addr=") {
                    let addr = line[at + 5..].split_whitespace().next().unwrap().to_owned();
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server said it is listening");
        ServerProcess {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Whether a log line so far contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// SIGKILL, and reap it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
