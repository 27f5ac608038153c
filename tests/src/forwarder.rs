//! [`Forwarder`]: a TCP hop between a client and the server that can be
//! frozen, the way a phone whose network vanished looks to the server.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpListener, TcpStream,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
    sync::watch,
    task::{JoinHandle, JoinSet},
};

/// Forwards every connection made to [`addr`](Forwarder::addr) to a target,
/// both ways, until [`freeze`](Forwarder::freeze): then nothing moves in
/// either direction and no socket is closed — no FIN, no RST — as when the
/// forwarding process is stopped with SIGSTOP. Dropping the forwarder closes
/// everything. [`freeze_current`](Forwarder::freeze_current) freezes only
/// the connections made so far, as when a phone's old network vanished and
/// it reconnects over a new one.
pub struct Forwarder {
    /// Where clients connect: `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    /// Connections numbered below this are frozen (`u64::MAX`: all,
    /// future ones included).
    frozen: watch::Sender<u64>,
    /// Connections accepted so far.
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on `127.0.0.1:0` and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (frozen, watching) = watch::channel(0);
        let accepted = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            // Owned here: when the forwarder is dropped, this task is
            // aborted and the set with it, closing every socket.
            let mut pumps = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let number = counter.fetch_add(1, Ordering::SeqCst);
                let (client_in, client_out) = client.into_split();
                let (server_in, server_out) = server.into_split();
                pumps.spawn(pump(client_in, server_out, number, watching.clone()));
                pumps.spawn(pump(server_in, client_out, number, watching.clone()));
            }
        });
        Forwarder {
            addr,
            frozen,
            accepted,
            task,
        }
    }

    /// Starts forwarding to the server at `base` (`http://127.0.0.1:<port>`).
    pub async fn to(base: &str) -> Forwarder {
        let target = base
            .trim_start_matches("http://")
            .parse()
            .expect("base is http://ip:port");
        Forwarder::start(target).await
    }

    /// `http://<addr>`: the server's base URL, through the forwarder.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops all traffic, both ways, for good; sockets stay open. New
    /// connections are accepted and frozen at once.
    pub fn freeze(&self) {
        self.frozen.send_replace(u64::MAX);
    }

    /// Stops the traffic of every connection made so far, for good (their
    /// sockets stay open); connections made later pass as before.
    pub fn freeze_current(&self) {
        let upto = self.accepted.load(Ordering::SeqCst);
        self.frozen.send_if_modified(|below| {
            let raise = upto > *below;
            if raise {
                *below = upto;
            }
            raise
        });
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until either ends (passing the end on as a FIN) or
/// connection `number` freezes (then holds both halves open forever).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    number: u64,
    mut frozen: watch::Receiver<u64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            _ = frozen.wait_for(|below| number < *below) => break,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        // Bytes read just as the freeze came are held, not delivered.
        if number < *frozen.borrow() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if number < *frozen.borrow() {
        let _held = (from, to);
        std::future::pending::<()>().await;
    }
}
