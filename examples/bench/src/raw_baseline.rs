//! The ceiling for `fanout --baseline raw`: a minimal tokio-tungstenite
//! broadcast server with no engine and no storage. It speaks the same frames
//! as the load (hello, join, send → ack + entry to everyone) so the same
//! load drives it; it stamps a seq and fans each entry out through one
//! `tokio::sync::broadcast` channel, encoded once, and writes what is
//! waiting for a socket with one flush, as Parlor's transports do.

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::broadcast};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes, protocol::WebSocketConfig};

/// Serves on `listener` until the runtime is dropped.
pub(crate) async fn serve(listener: TcpListener) {
    let (entries, _) = broadcast::channel::<Utf8Bytes>(1024);
    // Seq and broadcast under one lock, so entries go out in seq order.
    let seq = Arc::new(Mutex::new(0u64));
    while let Ok((tcp, _)) = listener.accept().await {
        let (entries, seq) = (entries.clone(), Arc::clone(&seq));
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let config = WebSocketConfig::default()
                .read_buffer_size(crate::load::READ_BUFFER)
                .write_buffer_size(4 * 1024);
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await
            else {
                return;
            };
            let (mut sink, mut stream) = ws.split();
            let mut feed: Option<broadcast::Receiver<Utf8Bytes>> = None;
            loop {
                let frame = tokio::select! {
                    entry = async { feed.as_mut().expect("guarded").recv().await }, if feed.is_some() => {
                        match entry {
                            Ok(text) => Message::Text(text),
                            Err(broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(broadcast::error::RecvError::Closed) => return,
                        }
                    }
                    incoming = stream.next() => {
                        let Some(Ok(Message::Text(text))) = incoming else {
                            if matches!(incoming, Some(Ok(_))) { continue }
                            return;
                        };
                        let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                        match frame["type"].as_str() {
                            Some("hello") => Message::text(json!({"type": "welcome"}).to_string()),
                            Some("join") => {
                                feed = Some(entries.subscribe());
                                let last_seq = *seq.lock().unwrap();
                                Message::text(json!({"type": "joined", "last_seq": last_seq}).to_string())
                            }
                            Some("send") => {
                                let n = {
                                    let mut seq = seq.lock().unwrap();
                                    *seq += 1;
                                    let entry = json!({"type": "entry", "room_id": frame["room_id"], "seq": *seq,
                                        "kind": "text", "client_id": frame["client_id"], "body": frame["body"]});
                                    let _ = entries.send(entry.to_string().into());
                                    *seq
                                };
                                Message::text(json!({"type": "ack", "client_id": frame["client_id"], "seq": n}).to_string())
                            }
                            _ => continue,
                        }
                    }
                };
                if sink.feed(frame).await.is_err() {
                    return;
                }
                while let Some(Ok(text)) = feed.as_mut().map(broadcast::Receiver::try_recv) {
                    if sink.feed(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        });
    }
}
