//! [`Forwarder`]: a TCP hop between a client and the server that can be
//! frozen, the way a phone whose network vanished looks to the server.

use std::net::SocketAddr;

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
/// everything.
pub struct Forwarder {
    /// Where clients connect: `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    frozen: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Forwarder {
    /// Listens on `127.0.0.1:0` and forwards to `target`.
    pub async fn start(target: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (frozen, watching) = watch::channel(false);
        let task = tokio::spawn(async move {
            // Owned here: when the forwarder is dropped, this task is
            // aborted and the set with it, closing every socket.
            let mut pumps = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (client_in, client_out) = client.into_split();
                let (server_in, server_out) = server.into_split();
                pumps.spawn(pump(client_in, server_out, watching.clone()));
                pumps.spawn(pump(server_in, client_out, watching.clone()));
            }
        });
        Forwarder { addr, frozen, task }
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

    /// Stops all traffic, both ways, for good; sockets stay open.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until either ends (passing the end on as a FIN) or
/// the forwarder freezes (then holds both halves open forever).
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut frozen: watch::Receiver<bool>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buf) => read,
            _ = frozen.wait_for(|f| *f) => break,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        // Bytes read just as the freeze came are held, not delivered.
        if *frozen.borrow() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if *frozen.borrow() {
        let _held = (from, to);
        std::future::pending::<()>().await;
    }
}
