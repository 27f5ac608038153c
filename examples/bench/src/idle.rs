//! `idle`: N connections that said hello and joined a room, then do nothing.
//! The server runs in a child process, so its resident memory growth per
//! connection can be read from `/proc` apart from the load's.

use std::time::Duration;

use futures_util::{StreamExt, stream};

use crate::{
    load::{Protocol, Target},
    report::{Line, Report},
    rss::rss_bytes,
    server::ChildServer,
};

pub(crate) struct Params {
    pub(crate) connections: usize,
    pub(crate) rooms: usize,
    /// Only say hello, join nothing: what a bare connection costs.
    pub(crate) hello_only: bool,
}

pub(crate) async fn run(p: &Params, report: &mut Report) {
    let server = ChildServer::start().await;
    let target = Target::new(&server.base, Protocol::Ws);
    let per_room = p.connections.div_ceil(p.rooms) as u32;
    // Create the rooms, and warm the server up (allocator arenas, pools).
    let mut held = Vec::new();
    for r in 0..p.rooms {
        let ticket = target
            .reserve(&format!("idle{r}"), "owner", Some(per_room + 1))
            .await
            .expect("create");
        held.push(target.join("owner", &ticket).await.expect("owner joins"));
    }
    settle().await;
    let before = rss_bytes(Some(server.pid)).expect("server rss");
    let hello_only = p.hello_only;
    let sockets: Vec<_> = stream::iter(0..p.connections)
        .map(|i| {
            let target = target.clone();
            let room = format!("idle{}", i % p.rooms);
            async move {
                let user = format!("u{i}");
                if hello_only {
                    return target.hello(&user).await;
                }
                let ticket = target.reserve(&room, &user, None).await?;
                target.join(&user, &ticket).await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let failed = sockets.iter().filter(|s| s.is_err()).count();
    if let Some(Err(e)) = sockets.iter().find(|s| s.is_err()) {
        eprintln!("idle: a connection failed: {e}");
    }
    settle().await;
    let after = rss_bytes(Some(server.pid)).expect("server rss");
    let open = p.connections - failed;
    let per_conn = after.saturating_sub(before) as f64 / open.max(1) as f64;
    report.emit(
        &Line::new("idle")
            .param("connections", p.connections)
            .param("rooms", p.rooms)
            .param("joined", !p.hello_only)
            .metric("open", open)
            .metric("rss_before_bytes", before)
            .metric("rss_after_bytes", after)
            .metric("rss_per_conn_bytes", per_conn.round()),
    );
    if p.connections >= 10_000 && !p.hello_only {
        report.target(
            &format!(
                "idle, {} joined connections in rooms of {per_room}, server RSS per connection (bytes)",
                p.connections
            ),
            per_conn.round(),
            "≤ 16384",
            per_conn <= 16_384.0 && failed == 0,
        );
    }
    drop(sockets);
    drop(held);
    server.stop().await;
}

/// Lets the server finish what the last joins started before RSS is read.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}
