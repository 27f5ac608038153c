//! The burst write: how a socket's only writer sends what is ready, shared
//! by the raw WebSocket and the GraphQL sockets.
//!
//! A writer waits for one frame, then takes whatever else is ready without
//! waiting (up to [`BURST`] frames in all) and flushes them with one write.
//! Why: a fan-out hands a socket several frames at once, and one write per
//! frame made the send syscall the server's largest cost; a lone frame still
//! goes out at once. A burst that cannot be written within the patience
//! (the client stopped reading) is [`Burst::Stalled`]: the transport closes
//! the socket as too slow (raw WebSocket 4409, GraphQL 1013).
//!
//! Generic over any [`Sink`], so a session can be driven over in-memory
//! channels in tests.

use futures_util::{Sink, SinkExt};
use tokio::time::{Duration, timeout};

/// Frames one write takes at most: the one waited for and up to 63 more
/// that are ready.
pub const BURST: usize = 64;

/// Bytes of frames the socket's write buffer gathers before a write is
/// forced (4 KiB; tungstenite's default is 128 KiB): what the transports
/// give `WebSocketUpgrade::write_buffer_size`, so an idle socket costs
/// little and a burst still fits.
pub const WRITE_BUFFER: usize = 4 * 1024;

/// How long a closing writer keeps trying to deliver each last frame (5 s)
/// to a client that is not reading, before it drops the socket.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// How long a socket write may stall before the client counts as too slow
/// (2 s, docs/contract.md §3): the transports' default patience.
pub const SLOW_CLIENT_PATIENCE: Duration = Duration::from_secs(2);

/// What a writer's source has ready now, without waiting.
#[derive(Debug)]
pub enum Ready<M> {
    /// A frame to add to the burst.
    Frame(M),
    /// An item that needs no frame (it was acted on); look again.
    Nothing,
    /// Nothing more now, or the burst must end here: flush.
    Done,
}

/// How a burst went.
#[derive(Debug)]
#[must_use]
pub enum Burst<E> {
    /// Every frame was written and flushed.
    Written,
    /// The sink failed (the peer is gone): no close frame can follow.
    Failed(E),
    /// The write did not finish within the patience: the client is too slow.
    Stalled,
}

/// Writes `first`, then what `more` has ready (at most [`BURST`] frames in
/// all), and flushes once; all within `patience`. The timer starts only if
/// the write does not finish at once (the write is polled first).
///
/// Cancel-safe in the sense the writers need: dropped half-way (a close was
/// asked for meanwhile), frames already fed may or may not have gone out.
pub async fn write_burst<S, M>(
    sink: &mut S,
    patience: Duration,
    first: M,
    mut more: impl FnMut() -> Ready<M>,
) -> Burst<S::Error>
where
    S: Sink<M> + Unpin,
{
    let burst = async {
        sink.feed(first).await?;
        for _ in 1..BURST {
            match more() {
                Ready::Frame(message) => sink.feed(message).await?,
                Ready::Nothing => {}
                Ready::Done => break,
            }
        }
        sink.flush().await
    };
    match timeout(patience, burst).await {
        Ok(Ok(())) => Burst::Written,
        Ok(Err(err)) => Burst::Failed(err),
        Err(_) => Burst::Stalled,
    }
}

/// Ends a socket's writing: delivers `last` in order, then `close` (the
/// close frame, if there is one to send), then closes the sink — each step
/// within [`CLOSE_GRACE`]. A frame of `last` that cannot be delivered ends
/// it there: the peer is gone or not reading, and nothing more is tried.
pub async fn finish<S, M>(sink: &mut S, last: impl IntoIterator<Item = M>, close: Option<M>)
where
    S: Sink<M> + Unpin,
{
    for message in last {
        if !matches!(timeout(CLOSE_GRACE, sink.send(message)).await, Ok(Ok(()))) {
            return;
        }
    }
    if let Some(close) = close {
        let _ = timeout(CLOSE_GRACE, sink.send(close)).await;
    }
    let _ = timeout(CLOSE_GRACE, sink.close()).await;
}

#[cfg(test)]
mod tests {
    use futures_channel::mpsc;
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_burst_takes_what_is_ready_up_to_its_size() {
        let (mut sink, mut out) = mpsc::channel::<u32>(256);
        let mut ready = (1..200).collect::<Vec<_>>().into_iter();
        let burst = write_burst(&mut sink, SLOW_CLIENT_PATIENCE, 0, || match ready.next() {
            Some(n) if n % 10 == 5 => Ready::Nothing,
            Some(n) => Ready::Frame(n),
            None => Ready::Done,
        })
        .await;
        assert!(matches!(burst, Burst::Written));
        drop(sink);
        let written: Vec<u32> = out.by_ref().collect().await;
        let want: Vec<u32> = (0..BURST as u32).filter(|n| n % 10 != 5).collect();
        assert_eq!(written, want, "{BURST} looks, skipped items included");
        assert_eq!(ready.next(), Some(BURST as u32), "the rest waits");
    }

    #[tokio::test]
    async fn done_ends_the_burst_and_a_lone_frame_goes_at_once() {
        let (mut sink, mut out) = mpsc::channel::<u32>(8);
        let burst = write_burst(&mut sink, SLOW_CLIENT_PATIENCE, 7, || Ready::Done).await;
        assert!(matches!(burst, Burst::Written));
        assert_eq!(out.try_recv().unwrap(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sink_that_takes_nothing_stalls_after_the_patience() {
        // Room for one frame (a futures channel adds a slot per sender).
        let (mut sink, mut out) = mpsc::channel::<u32>(0);
        let started = tokio::time::Instant::now();
        let mut n = 0;
        let burst = write_burst(&mut sink, Duration::from_secs(2), 0, || {
            n += 1;
            Ready::Frame(n)
        })
        .await;
        assert!(matches!(burst, Burst::Stalled));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(out.try_recv().unwrap(), 0);

        drop(out);
        let burst = write_burst(&mut sink, Duration::from_secs(2), 9, || Ready::Done).await;
        assert!(matches!(burst, Burst::Failed(_)), "the peer is gone");
    }

    #[tokio::test(start_paused = true)]
    async fn finish_delivers_the_last_frames_then_the_close() {
        let (mut sink, out) = mpsc::channel::<u32>(8);
        finish(&mut sink, [1, 2], Some(99)).await;
        assert_eq!(out.collect::<Vec<_>>().await, [1, 2, 99]);

        // A peer that reads nothing: the first frame is never taken, so
        // after one grace the rest (the close frame too) is given up.
        let (mut sink, mut out) = mpsc::channel::<u32>(0);
        let started = tokio::time::Instant::now();
        finish(&mut sink, [1, 2, 3], Some(99)).await;
        assert_eq!(started.elapsed(), CLOSE_GRACE);
        assert_eq!(out.try_recv().unwrap(), 1);
        assert!(out.try_recv().is_err(), "nothing after it");
    }
}
