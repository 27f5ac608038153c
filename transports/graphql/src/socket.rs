//! `/graphql/ws`: GraphQL over WebSocket, both `graphql-transport-ws` and the
//! legacy `graphql-ws` sub-protocol (async-graphql speaks both).
//!
//! async-graphql runs the protocol; this module adds what a chat needs around
//! it. The incoming stream is watched, so that when it ends we know *how*: a
//! close with 1000 is a leave of every room, anything else a loss (grace).
//! async-graphql writes into a bounded channel drained by our own writer, so
//! that we can still close the socket ourselves: 4408 when no
//! `connection_init` arrives in time, 4409 when the client stays unable to
//! take frames, 1001 at shutdown.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket},
    },
    response::Response,
};
use futures_channel::mpsc;
use futures_util::{SinkExt, Stream, StreamExt};
use parlor_engine::{Authenticator, ErrorKind};
use serde_json::Value;
use tokio::time::{sleep, timeout};

use crate::{
    GraphqlState,
    schema::{SocketState, Viewer},
};

/// Bytes of frames the writer gathers before the socket write is forced.
const WRITE_BUFFER: usize = 4 * 1024;
/// Messages the writer takes from its queue for one flush: a fan-out hands
/// a socket several events at once, and one write each made the send
/// syscall the server's largest cost.
const BURST: usize = 64;

/// How long the writer tries to deliver a close frame.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub(crate) async fn upgrade(
    State(state): State<Arc<GraphqlState>>,
    protocol: GraphQLProtocol,
    ws: WebSocketUpgrade,
) -> Response {
    ws.protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| serve(state, socket, protocol))
}

/// The incoming half, watched: records `connection_init`, and marks the
/// socket lost unless it ends with a close frame carrying 1000.
struct Watched<S> {
    inner: S,
    socket: Arc<SocketState>,
    initialized: Arc<AtomicBool>,
}

impl<S> Stream for Watched<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(Message::Text(text)))) if text.contains("connection_init") => {
                self.initialized.store(true, Ordering::Release);
            }
            Poll::Ready(Some(Ok(Message::Close(Some(frame))))) if frame.code == 1000 => {}
            Poll::Ready(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => {
                self.socket.lost.store(true, Ordering::Release);
            }
            _ => {}
        }
        polled
    }
}

async fn authenticate(auth: Arc<dyn Authenticator>, payload: Value) -> async_graphql::Result<Data> {
    let header = ["authorization", "Authorization"]
        .iter()
        .find_map(|k| payload.get(k).and_then(Value::as_str))
        .unwrap_or_default();
    let token = header.strip_prefix("Bearer ").unwrap_or(header).trim();
    match auth.authenticate(token).await {
        Ok(principal) => {
            let mut data = Data::default();
            data.insert(Viewer(principal.user));
            Ok(data)
        }
        Err(err) => Err(crate::errors::gql(
            if err.kind() == ErrorKind::Unauthenticated {
                err
            } else {
                ErrorKind::Unauthenticated.into()
            },
        )),
    }
}

async fn serve(state: Arc<GraphqlState>, socket: WebSocket, protocol: GraphQLProtocol) {
    let _connection = state.connections.enter();
    let (mut sink, stream) = socket.split();
    let socket_state = Arc::new(SocketState::default());
    let initialized = Arc::new(AtomicBool::new(false));
    let watched = Watched {
        inner: stream,
        socket: Arc::clone(&socket_state),
        initialized: Arc::clone(&initialized),
    };
    let (to_client, mut outgoing) = mpsc::channel::<Message>(64);
    let mut data = Data::default();
    data.insert(Arc::clone(&socket_state));
    let auth = Arc::clone(&state.auth);
    let protocol_task = GraphQLWebSocket::new_with_pair(
        to_client.sink_map_err(|_| ()),
        watched,
        state.schema.clone(),
        protocol,
    )
    .with_data(data)
    .on_connection_init(move |payload| authenticate(auth, payload))
    .serve();

    let init_deadline = {
        let initialized = Arc::clone(&initialized);
        let wait = state.config.init_timeout;
        async move {
            sleep(wait).await;
            if initialized.load(Ordering::Acquire) {
                std::future::pending::<()>().await;
            }
        }
    };
    let patience = state.config.slow_client_patience;
    let mut shutdown = state.shutdown.clone();
    let stopping = async move {
        while !*shutdown.borrow_and_update() {
            if shutdown.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let close = {
        let writer = async {
            let mut acknowledged = false;
            while let Some(first) = outgoing.next().await {
                let burst = async {
                    sink.feed(rewrite(first, &mut acknowledged)).await?;
                    for _ in 1..BURST {
                        match outgoing.try_recv() {
                            Ok(message) => {
                                sink.feed(rewrite(message, &mut acknowledged)).await?;
                            }
                            Err(_) => break,
                        }
                    }
                    sink.flush().await
                };
                match timeout(patience, burst).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return None,
                    Err(_) => return Some((4409, "too slow: resume with afterSeq")),
                }
            }
            None
        };
        tokio::pin!(writer, protocol_task);
        tokio::select! {
            closed = &mut writer => closed,
            // The protocol ended (it may have queued a close of its own,
            // such as 4403 for a bad init): deliver what it queued.
            _ = &mut protocol_task => writer.await,
            _ = init_deadline => Some((4408, "connection initialisation timeout")),
            _ = stopping => Some((1001, "server shutting down")),
        }
    };
    if let Some((code, reason)) = close {
        // Ours, not the client's doing: their seats go to grace.
        socket_state.lost.store(true, Ordering::Release);
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    let _ = timeout(CLOSE_GRACE, sink.close()).await;
}

/// What async-graphql queued, as the client should see it. `acknowledged`
/// records the `connection_ack`.
fn rewrite(message: Message, acknowledged: &mut bool) -> Message {
    match message {
        Message::Text(text) if !*acknowledged => {
            *acknowledged = text.contains("connection_ack");
            Message::Text(text)
        }
        // async-graphql closes a refused connection_init with 1002;
        // graphql-transport-ws says 4403 Forbidden, which clients take as
        // final rather than retrying.
        Message::Close(Some(frame)) if frame.code == 1002 && !*acknowledged => {
            Message::Close(Some(CloseFrame {
                code: 4403,
                reason: Utf8Bytes::from_static("Forbidden"),
            }))
        }
        other => other,
    }
}
