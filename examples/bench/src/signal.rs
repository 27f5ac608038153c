//! `signal`: M members joined to one room over a protocol (raw WebSocket or
//! GraphQL), T of them typing — each sends `typing` every `interval_ms`
//! (within the server's signal rate) with its send time in the data — and
//! every other member records how long each signal took to reach it
//! (docs/contract.md §2, "Signals"). The server runs in this process on a
//! runtime of its own; sender and receivers read one clock.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt, stream};
use serde_json::json;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    latency::Latencies,
    load::{Joined, Protocol, Target, next_text, now_micros, number_after},
    report::{Line, Report},
    server::InProcess,
};

pub(crate) struct Params {
    pub(crate) members: usize,
    pub(crate) typists: usize,
    pub(crate) interval_ms: u64,
    pub(crate) seconds: f64,
    pub(crate) transports: Vec<Protocol>,
}

const ROOM: &str = "typing";

pub(crate) async fn run(p: &Params, report: &mut Report) {
    for &protocol in &p.transports {
        let server = InProcess::parlor();
        let target = Target::new(&server.base, protocol);
        let line = once(p, &target).await;
        drop(server);
        let p99 = line.get("p99_ms").unwrap_or(f64::MAX);
        let complete = line.get("delivered") == line.get("expected");
        report.emit(&line);
        report.target(
            &format!(
                "signal {}, {} members, {} typing: every other member gets each, p99 (ms)",
                protocol.name(),
                p.members,
                p.typists
            ),
            p99,
            "≤ 50, all delivered",
            p99 <= 50.0 && complete,
        );
    }
}

async fn once(p: &Params, target: &Target) -> Line {
    // Join everyone first (the first member creates the room).
    let capacity = p.members as u32;
    let joined: Vec<Result<Joined, String>> = stream::iter(0..p.members)
        .then(|i| async move {
            let user = format!("m{i}");
            let ticket = target
                .reserve(ROOM, &user, (i == 0).then_some(capacity))
                .await?;
            target.join(&user, &ticket).await
        })
        .collect()
        .await;
    let failed_joins = joined.iter().filter(|j| j.is_err()).count();
    if let Some(Err(e)) = joined.iter().find(|j| j.is_err()) {
        eprintln!("signal: a join failed: {e}");
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(p.seconds);
    let drain_until = deadline + Duration::from_secs(1);
    let interval = Duration::from_millis(p.interval_ms.max(1));
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for (i, member) in joined.into_iter().enumerate() {
        let Ok(Joined {
            mut sink,
            mut stream,
        }) = member
        else {
            continue;
        };
        let user = format!("m{i}");
        // Receivers: the latency of every signal that is not their own.
        readers.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut refused = 0usize;
            while let Ok(Ok(text)) =
                tokio::time::timeout_at(drain_until, next_text(&mut stream)).await
            {
                if text.contains("RATE_LIMITED") {
                    refused += 1;
                } else if let Some(sent) = sent_at(&text) {
                    latencies.push_micros(now_micros().saturating_sub(sent));
                }
            }
            (latencies, refused)
        }));
        if i >= p.typists {
            continue;
        }
        let target = target.clone();
        // Typists: spread over the interval, each on its own beat.
        let phase = interval.mul_f64(i as f64 / p.typists.max(1) as f64);
        writers.push(tokio::spawn(async move {
            let mut sent = 0usize;
            let mut next = started + phase;
            while next < deadline {
                tokio::time::sleep_until(next).await;
                next += interval;
                let data = json!({"t": now_micros()});
                let ok = match target.protocol {
                    Protocol::Graphql => {
                        target.signal_over_http(&user, ROOM, "typing", data);
                        true
                    }
                    _ => {
                        let frame = json!({"type": "signal", "room_id": ROOM, "name": "typing", "data": data});
                        sink.send(Message::text(frame.to_string())).await.is_ok()
                    }
                };
                sent += usize::from(ok);
            }
            // Held until the end: the socket's sink stays open while others read.
            (sent, sink)
        }));
    }
    let mut sent = 0;
    let mut sinks = Vec::new();
    for w in writers {
        let (n, sink) = w.await.expect("typist");
        sent += n;
        sinks.push(sink);
    }
    let mut latencies = Latencies::default();
    let mut refused = 0;
    for r in readers {
        let (l, n) = r.await.expect("reader");
        latencies.extend(l);
        refused += n;
    }
    drop(sinks);
    let joined = p.members - failed_joins;
    let expected = sent * joined.saturating_sub(1);
    let delivered = latencies.len();
    let (p50, p99, max) = latencies.summary();
    Line::new("signal")
        .param("transport", target.protocol.name())
        .param("members", p.members)
        .param("typists", p.typists)
        .param("interval_ms", p.interval_ms)
        .param("seconds", p.seconds)
        .metric("failed_joins", failed_joins)
        .metric("sent", sent)
        .metric("refused", refused)
        // GraphQL's `sendSignal` over HTTP, not waited for: what failed.
        .metric("failed_sends", target.failed_sends())
        .metric("expected", expected)
        .metric("delivered", delivered)
        .metric("p50_ms", p50)
        .metric("p99_ms", p99)
        .metric("max_ms", max)
}

/// The send time a typist put in a signal's data (`"data":{"t":<micros>}`),
/// from a raw `signal` frame or a GraphQL `Signal` event; `None` for
/// anything else. A string scan, as the fan-out's, to keep the load cheap.
fn sent_at(frame: &str) -> Option<u64> {
    if !frame.contains("ignal") {
        return None;
    }
    number_after(frame, "\"t\":")
}

#[cfg(test)]
mod tests {
    use super::sent_at;

    #[test]
    fn reads_the_send_time_of_signals_only() {
        let raw = r#"{"type":"signal","room_id":"typing","user_id":"m1","name":"typing","data":{"t":1234},"at":"…"}"#;
        let gql = r#"{"id":"1","type":"next","payload":{"data":{"joinRoom":{"__typename":"Signal","data":{"t":99}}}}}"#;
        assert_eq!(sent_at(raw), Some(1234));
        assert_eq!(sent_at(gql), Some(99));
        assert_eq!(
            sent_at(r#"{"type":"entry","body":"t:5","data":{"t":7}}"#),
            None
        );
    }
}
