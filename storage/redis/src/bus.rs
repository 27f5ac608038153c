//! [`RedisBus`]: the engine's [`Bus`] across nodes, on Redis pub/sub.
//!
//! Publishing hands a room's new entries to this node's subscribers at once
//! (they never wait for Redis) and queues them, encoded, for the Redis
//! channel; every other node's receiver hands them to its own subscribers.
//! Notices (read receipts, signals) travel the same way, through the same
//! outbox and channel, so they keep their order with the entries a node
//! published; they are momentary, so nothing reads them back when one is
//! lost — and a full outbox drops a new notice rather than an entry.
//!
//! Pub/sub is at-most-once: a message is lost if Redis restarts or a
//! connection drops. The engine's entry streams tolerate that — a later entry
//! reveals the gap and they read it from storage — and two things here close
//! the remaining holes:
//! - the publisher keeps what it could not publish (a bounded queue, oldest
//!   dropped first) and retries after reconnecting, so the newest entries of
//!   a room always get out and reveal any gap behind them;
//! - the receiver, once it has subscribed again after losing Redis, closes
//!   every local feed: each entry stream takes a new feed and reads storage
//!   to its end, which covers whatever was published while it was away.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use async_trait::async_trait;
use futures_util::StreamExt;
use parlor_engine::{
    Bus, Entry, InProcessBus, Notice, RoomId,
    ports::{LiveEntries, LiveNotices},
};
use redis::{Client, aio::ConnectionManager};
use tokio::sync::Notify;

use crate::wire;

/// Messages kept for Redis while it is away; beyond it the oldest go (the
/// newest are what reveal a gap to receivers).
const OUTBOX_MAX: usize = 4096;
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Fan-out of stored entries, and of notices, across the nodes of a
/// cluster.
pub struct RedisBus {
    shared: Arc<Shared>,
}

struct Shared {
    node: String,
    channel: String,
    live_buffer: usize,
    /// This node's subscribers; replaced (closing every feed) after Redis
    /// was lost.
    local: Mutex<Arc<InProcessBus>>,
    outbox: Mutex<VecDeque<Vec<u8>>>,
    /// Wakes the publisher: something to publish, or the bus is gone.
    wake: Arc<Notify>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.wake.notify_one();
    }
}

impl Shared {
    fn local(&self) -> Arc<InProcessBus> {
        Arc::clone(&self.local.lock().expect("local bus lock"))
    }

    /// Queues an encoded message for Redis and wakes the publisher. When
    /// the outbox is full a `momentary` one (a notice) is dropped itself,
    /// so a flood of typing signals while Redis is behind never pushes out
    /// entries; entries push out the oldest message.
    fn queue(&self, message: Vec<u8>, momentary: bool) {
        {
            let mut outbox = self.outbox.lock().expect("outbox lock");
            if outbox.len() >= OUTBOX_MAX {
                if momentary {
                    tracing::debug!("Redis is behind: a notice stayed on this node");
                    return;
                }
                outbox.pop_front();
                tracing::warn!("Redis is behind: dropped the oldest unpublished message");
            }
            outbox.push_back(message);
        }
        self.wake.notify_one();
    }

    fn reopen_local_feeds(&self) {
        let fresh = Arc::new(InProcessBus::new(self.live_buffer));
        let old = std::mem::replace(&mut *self.local.lock().expect("local bus lock"), fresh);
        drop(old); // its senders go with it: every feed sees `Closed`
    }
}

impl RedisBus {
    /// Subscribes to `channel` as node `node` (so it can skip its own
    /// messages), and starts the publisher and the receiver. Returns once
    /// the subscription is in place.
    pub(crate) async fn start(
        client: Client,
        publisher: ConnectionManager,
        channel: String,
        node: &str,
        live_buffer: usize,
    ) -> parlor_engine::Result<Self> {
        let shared = Arc::new(Shared {
            node: node.to_owned(),
            channel,
            live_buffer,
            local: Mutex::new(Arc::new(InProcessBus::new(live_buffer))),
            outbox: Mutex::new(VecDeque::new()),
            wake: Arc::new(Notify::new()),
        });
        let mut pubsub = client
            .get_async_pubsub()
            .await
            .map_err(parlor_engine::Error::unavailable)?;
        pubsub
            .subscribe(&shared.channel)
            .await
            .map_err(parlor_engine::Error::unavailable)?;
        tokio::spawn(receive(client, pubsub, Arc::downgrade(&shared)));
        let wake = Arc::clone(&shared.wake);
        tokio::spawn(publish(publisher, Arc::downgrade(&shared), wake));
        Ok(RedisBus { shared })
    }
}

#[async_trait]
impl Bus for RedisBus {
    fn subscribe(&self, room: &RoomId) -> LiveEntries {
        self.shared.local().subscribe(room)
    }

    async fn publish(&self, room: &RoomId, entries: &[Arc<Entry>]) {
        if entries.is_empty() {
            return;
        }
        self.shared.local().publish(room, entries).await;
        self.shared
            .queue(wire::encode(&self.shared.node, room, entries), false);
    }

    fn subscribe_notices(&self, room: &RoomId) -> LiveNotices {
        self.shared.local().subscribe_notices(room)
    }

    async fn notify(&self, notice: Arc<Notice>) {
        let message = wire::encode_notice(&self.shared.node, &notice);
        self.shared.local().notify(notice).await;
        match message {
            Some(message) => self.shared.queue(message, true),
            None => tracing::debug!(
                "a notice of a kind the Redis wire does not carry stayed on this node"
            ),
        }
    }
}

/// Publishes the outbox, in order, retrying across reconnections.
async fn publish(mut connection: ConnectionManager, shared: Weak<Shared>, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let messages: Vec<Vec<u8>> = strong
            .outbox
            .lock()
            .expect("outbox lock")
            .drain(..)
            .collect();
        if messages.is_empty() {
            // Wait without holding the bus: dropping it wakes us to end.
            drop(strong);
            wake.notified().await;
            continue;
        }
        let mut pipe = redis::pipe();
        for message in &messages {
            pipe.cmd("PUBLISH")
                .arg(&strong.channel)
                .arg(message.as_slice())
                .ignore();
        }
        drop(strong);
        match pipe.query_async::<()>(&mut connection).await {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(err) => {
                tracing::warn!(error = %err, messages = messages.len(), "could not publish to Redis; retrying");
                if let Some(strong) = shared.upgrade() {
                    let mut outbox = strong.outbox.lock().expect("outbox lock");
                    for message in messages.into_iter().rev() {
                        outbox.push_front(message);
                    }
                    outbox.truncate(OUTBOX_MAX);
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Hands other nodes' entries and notices to this node's subscribers;
/// subscribes again after losing Redis, then reopens every local feed.
async fn receive(client: Client, first: redis::aio::PubSub, shared: Weak<Shared>) {
    let mut pubsub = Some(first);
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Some(subscribed) = pubsub.take() {
            let mut messages = subscribed.into_on_message();
            while let Some(message) = messages.next().await {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                deliver(&shared, message.get_payload_bytes()).await;
            }
            tracing::warn!("lost the Redis subscription; subscribing again");
        }
        let Some(channel) = shared.upgrade().map(|s| s.channel.clone()) else {
            return;
        };
        match resubscribe(&client, &channel).await {
            Ok(again) => {
                backoff = Duration::from_millis(50);
                if let Some(shared) = shared.upgrade() {
                    shared.reopen_local_feeds();
                }
                tracing::info!("subscribed to Redis again; live feeds reopened");
                pubsub = Some(again);
            }
            Err(err) => {
                tracing::debug!(error = %err, "Redis is not back yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

async fn resubscribe(client: &Client, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

async fn deliver(shared: &Shared, payload: &[u8]) {
    let Ok(message) = serde_json::from_slice::<wire::Message<'_>>(payload) else {
        tracing::warn!(
            "ignored a message on the Parlor channel that is not an entry batch or a notice"
        );
        return;
    };
    if message.node == shared.node {
        return; // delivered locally when it was published
    }
    match wire::decode(&message) {
        Some(wire::Decoded::Entries(room, entries)) => {
            shared.local().publish(&room, &entries).await;
        }
        Some(wire::Decoded::Notice(notice)) => shared.local().notify(notice).await,
        None => tracing::warn!(
            node = %message.node,
            "ignored a message on the Parlor channel that this node cannot read"
        ),
    }
}
