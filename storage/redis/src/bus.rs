//! [`RedisBus`]: the engine's [`Bus`] across nodes, on Redis pub/sub, one
//! channel per room (`parlor:room:{room_id}`).
//!
//! Publishing hands a room's new entries to this node's subscribers at once
//! (they never wait for Redis) and queues them, encoded, for the room's
//! channel; every node subscribed to that channel hands them to its own
//! subscribers. Notices (read receipts, signals) travel the same way,
//! through the same outbox and channel, so they keep their order with the
//! entries a node published; they are momentary, so nothing reads them back
//! when one is lost — and a full outbox drops a new notice rather than an
//! entry.
//!
//! **Per-room routing.** A node subscribes to a room's channel only while it
//! has a local subscriber of the room, so it receives the entries of its own
//! rooms, not of the whole cluster: with a room's members on one node, a
//! node of three carries about a third of the traffic, not all of it. The
//! subscription is in place before [`Bus::subscribe`] returns (the SUBSCRIBE
//! is confirmed), and the engine subscribes before it reads where a
//! stream's backlog ends, so nothing falls between the two. Once a room has
//! no local subscriber it is unsubscribed at the next sweep (every
//! [`SWEEP_EVERY`]). One task owns the subscriptions and the connection's
//! commands, so a SUBSCRIBE for a room can never be overtaken by the
//! UNSUBSCRIBE of the sweep before it.
//!
//! Pub/sub is at-most-once: a message is lost if Redis restarts or a
//! connection drops. The engine's entry streams tolerate that — a later entry
//! reveals the gap and they read it from storage — and three things here
//! close the remaining holes:
//! - the publisher keeps what it could not publish (a bounded queue, oldest
//!   dropped first) and retries after reconnecting, so the newest entries of
//!   a room always get out and reveal any gap behind them;
//! - after losing Redis, the subscriptions task subscribes every room again,
//!   then closes every local feed: each entry stream takes a new feed and
//!   reads storage to its end, which covers whatever was published while it
//!   was away;
//! - a subscribe that could not be confirmed in time ([`SUBSCRIBE_WAIT`])
//!   returns its feed anyway, and the room's local feeds are closed once
//!   the subscription is in place, with the same effect.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use futures_util::StreamExt;
use parlor_engine::{
    Bus, Entry, InProcessBus, Notice, RoomId,
    ports::{LiveEntries, LiveNotices},
};
use redis::{
    Client,
    aio::{ConnectionManager, PubSubSink, PubSubStream},
};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::wire;

/// Messages kept for Redis while it is away; beyond it the oldest go (the
/// newest are what reveal a gap to receivers).
const OUTBOX_MAX: usize = 4096;
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long a subscribe waits for Redis to confirm a room's subscription
/// before it returns the feed anyway (see the module docs).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(2);
/// How often rooms without a local subscriber are unsubscribed.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Subscribe requests waiting for the subscriptions task at most; a
/// subscriber beyond it waits for room (within [`SUBSCRIBE_WAIT`]).
const REQUESTS_MAX: usize = 1024;
/// Rooms subscribed in one command at most.
const SUBSCRIBE_BATCH: usize = 256;

/// Fan-out of stored entries, and of notices, across the nodes of a
/// cluster.
pub struct RedisBus {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
}

/// A room to receive from Redis, and where to say it is subscribed.
struct Request {
    room: RoomId,
    done: oneshot::Sender<()>,
}

struct Shared {
    node: String,
    prefix: String,
    live_buffer: usize,
    /// This node's subscribers; replaced (closing every feed) after Redis
    /// was lost.
    local: Mutex<Arc<InProcessBus>>,
    /// The rooms this node receives from Redis: `true` once the SUBSCRIBE
    /// is confirmed on the current connection. Lock order: this, then the
    /// local bus's.
    rooms: Mutex<HashMap<RoomId, bool>>,
    outbox: Mutex<VecDeque<(RoomId, Vec<u8>)>>,
    /// Wakes the publisher: something to publish, or the bus is gone.
    wake: Arc<Notify>,
    /// Entries this node received through Redis (its own that came back
    /// included), and published.
    received: AtomicU64,
    published: AtomicU64,
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

    fn channel(&self, room: &RoomId) -> String {
        format!("{}:room:{room}", self.prefix)
    }

    fn channels(&self, rooms: &[RoomId]) -> Vec<String> {
        rooms.iter().map(|room| self.channel(room)).collect()
    }

    /// Queues an encoded message for `room`'s channel and wakes the
    /// publisher. When the outbox is full a `momentary` one (a notice) is
    /// dropped itself, so a flood of typing signals while Redis is behind
    /// never pushes out entries; entries push out the oldest message.
    fn queue(&self, room: &RoomId, message: Vec<u8>, momentary: bool) {
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
            outbox.push_back((room.clone(), message));
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
    /// Starts the bus of node `node` (which skips its own messages when
    /// they come back) on channels named `{prefix}:room:{room_id}`: the
    /// publisher and the subscriptions task. Returns once Redis took a
    /// subscriber connection.
    pub(crate) async fn start(
        client: Client,
        publisher: ConnectionManager,
        prefix: String,
        node: &str,
        live_buffer: usize,
    ) -> parlor_engine::Result<Self> {
        let shared = Arc::new(Shared {
            node: node.to_owned(),
            prefix,
            live_buffer,
            local: Mutex::new(Arc::new(InProcessBus::new(live_buffer))),
            rooms: Mutex::new(HashMap::new()),
            outbox: Mutex::new(VecDeque::new()),
            wake: Arc::new(Notify::new()),
            received: AtomicU64::new(0),
            published: AtomicU64::new(0),
        });
        let first = client
            .get_async_pubsub()
            .await
            .map_err(parlor_engine::Error::unavailable)?;
        let (requests, inbox) = mpsc::channel(REQUESTS_MAX);
        tokio::spawn(subscriptions(
            client,
            first.split(),
            inbox,
            Arc::downgrade(&shared),
        ));
        let wake = Arc::clone(&shared.wake);
        tokio::spawn(publish(publisher, Arc::downgrade(&shared), wake));
        Ok(RedisBus { shared, requests })
    }

    /// Entries this node received through Redis so far: on the channels of
    /// the rooms it follows, its own included (it skips those, having
    /// delivered them when it published them).
    pub fn received_entries(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Entries this node published to Redis so far (queued for it).
    pub fn published_entries(&self) -> u64 {
        self.shared.published.load(Ordering::Relaxed)
    }

    /// Rooms this node receives from Redis now.
    pub fn subscribed_rooms(&self) -> usize {
        self.shared.rooms.lock().expect("rooms lock").len()
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn subscribe(&self, room: &RoomId) -> LiveEntries {
        let (feed, confirmed) = {
            // Under the rooms lock, so the sweep cannot unsubscribe the
            // room between the check and the new feed.
            let rooms = self.shared.rooms.lock().expect("rooms lock");
            (
                self.shared.local().feed(room),
                rooms.get(room) == Some(&true),
            )
        };
        if confirmed {
            return feed;
        }
        let (done, subscribed) = oneshot::channel();
        let request = Request {
            room: room.clone(),
            done,
        };
        let asked = tokio::time::timeout(SUBSCRIBE_WAIT, async {
            self.requests.send(request).await.is_ok() && subscribed.await.is_ok()
        })
        .await;
        if !matches!(asked, Ok(true)) {
            // Not confirmed in time (the request may not even have been
            // queued): the room is wanted, and the next sweep subscribes it
            // and closes its feeds, this one included, which then reads
            // storage.
            tracing::debug!(room = %room, "Redis has not confirmed the room yet");
            self.shared
                .rooms
                .lock()
                .expect("rooms lock")
                .entry(room.clone())
                .or_insert(false);
        }
        feed
    }

    async fn publish(&self, room: &RoomId, entries: &[Arc<Entry>]) {
        if entries.is_empty() {
            return;
        }
        self.shared.local().publish(room, entries).await;
        self.shared
            .published
            .fetch_add(entries.len() as u64, Ordering::Relaxed);
        self.shared
            .queue(room, wire::encode(&self.shared.node, room, entries), false);
    }

    fn subscribe_notices(&self, room: &RoomId) -> LiveNotices {
        self.shared.local().subscribe_notices(room)
    }

    async fn notify(&self, notice: Arc<Notice>) {
        let message = wire::encode_notice(&self.shared.node, &notice);
        let room = notice.room_id.clone();
        self.shared.local().notify(notice).await;
        match message {
            Some(message) => self.shared.queue(&room, message, true),
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
        let messages: Vec<(RoomId, Vec<u8>)> = strong
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
        for (room, message) in &messages {
            pipe.cmd("PUBLISH")
                .arg(strong.channel(room))
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

/// Why a connection's loop ended.
enum Ended {
    /// The bus is gone.
    Dropped,
    /// Redis went away (or a command on it failed): connect again.
    Lost,
}

/// Owns the subscriber connection: hands other nodes' messages to this
/// node's subscribers, subscribes rooms as asked, unsubscribes rooms
/// nobody here follows any more, and after losing Redis connects again,
/// subscribes every room again and reopens every local feed.
async fn subscriptions(
    client: Client,
    first: (PubSubSink, PubSubStream),
    mut requests: mpsc::Receiver<Request>,
    shared: Weak<Shared>,
) {
    let mut connection = Some(first);
    let mut backoff = Duration::from_millis(50);
    loop {
        if let Some((sink, stream)) = connection.take() {
            match serve(sink, stream, &mut requests, &shared).await {
                Ended::Dropped => return,
                Ended::Lost => tracing::warn!("lost the Redis subscription; subscribing again"),
            }
        }
        let Some(strong) = shared.upgrade() else {
            return;
        };
        match resubscribe(&client, &strong).await {
            Ok(again) => {
                backoff = Duration::from_millis(50);
                // Every room is subscribed again: now each stream takes a
                // new feed and reads what it missed from storage.
                strong.reopen_local_feeds();
                tracing::info!("subscribed to Redis again; live feeds reopened");
                connection = Some(again);
            }
            Err(err) => {
                drop(strong);
                tracing::debug!(error = %err, "Redis is not back yet");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// A new subscriber connection with every room this node follows
/// subscribed on it.
async fn resubscribe(
    client: &Client,
    shared: &Shared,
) -> Result<(PubSubSink, PubSubStream), String> {
    let (mut sink, stream) = client
        .get_async_pubsub()
        .await
        .map_err(|e| e.to_string())?
        .split();
    let rooms: Vec<RoomId> = {
        let mut rooms = shared.rooms.lock().expect("rooms lock");
        rooms.values_mut().for_each(|confirmed| *confirmed = false);
        rooms.keys().cloned().collect()
    };
    if !subscribe_now(&mut sink, shared, &rooms).await {
        return Err("Redis did not confirm the rooms' SUBSCRIBE".into());
    }
    Ok((sink, stream))
}

/// One connection's life: messages in, subscribe requests, sweeps.
async fn serve(
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    requests: &mut mpsc::Receiver<Request>,
    shared: &Weak<Shared>,
) -> Ended {
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { return Ended::Lost };
                let Some(shared) = shared.upgrade() else { return Ended::Dropped };
                deliver(&shared, message.get_payload_bytes()).await;
            }
            request = requests.recv() => {
                let Some(request) = request else { return Ended::Dropped };
                let Some(shared) = shared.upgrade() else { return Ended::Dropped };
                // With whatever else waits: one SUBSCRIBE for them all.
                let mut batch = vec![request];
                while batch.len() < SUBSCRIBE_BATCH
                    && let Ok(more) = requests.try_recv()
                {
                    batch.push(more);
                }
                if !subscribe_rooms(&mut sink, &shared, batch).await {
                    return Ended::Lost;
                }
            }
            _ = sweep.tick() => {
                let Some(shared) = shared.upgrade() else { return Ended::Dropped };
                if !sweep_rooms(&mut sink, &shared).await {
                    return Ended::Lost;
                }
            }
        }
    }
}

/// Subscribes the requested rooms that are not yet, in one command, and
/// answers each request; false when Redis failed (the rooms stay wanted,
/// and are subscribed with the others on the next connection).
async fn subscribe_rooms(sink: &mut PubSubSink, shared: &Shared, batch: Vec<Request>) -> bool {
    let mut waiting = Vec::with_capacity(batch.len());
    let mut rooms_to_subscribe = Vec::new();
    // Rooms a subscriber gave up waiting for (marked wanted, unconfirmed):
    // their feeds are closed once subscribed, as the sweep would.
    let mut given_up = Vec::new();
    {
        let mut rooms = shared.rooms.lock().expect("rooms lock");
        for Request { room, done } in batch {
            let state = rooms.get(&room).copied();
            if state == Some(true) {
                let _ = done.send(());
                continue;
            }
            if !rooms_to_subscribe.contains(&room) {
                if state == Some(false) {
                    given_up.push(room.clone());
                }
                rooms.insert(room.clone(), false);
                rooms_to_subscribe.push(room.clone());
            }
            waiting.push((room, done));
        }
    }
    if !subscribe_now(sink, shared, &rooms_to_subscribe).await {
        return false;
    }
    for room in &given_up {
        shared.local().close_room(room);
    }
    for (room, done) in waiting {
        if done.send(()).is_err() {
            // The subscriber stopped waiting and took its feed early: the
            // room's feeds read storage now, covering what came before.
            shared.local().close_room(&room);
        }
    }
    true
}

/// SUBSCRIBEs `rooms` in one command and marks them confirmed; false when
/// Redis failed or did not answer within [`SUBSCRIBE_WAIT`].
async fn subscribe_now(sink: &mut PubSubSink, shared: &Shared, rooms: &[RoomId]) -> bool {
    if rooms.is_empty() {
        return true;
    }
    let subscribed =
        tokio::time::timeout(SUBSCRIBE_WAIT, sink.subscribe(shared.channels(rooms))).await;
    if !matches!(subscribed, Ok(Ok(()))) {
        return false;
    }
    let mut confirmed = shared.rooms.lock().expect("rooms lock");
    for room in rooms {
        // A sweep may have let it go meanwhile; only a room still wanted.
        if let Some(state) = confirmed.get_mut(room) {
            *state = true;
        }
    }
    true
}

/// Unsubscribes the rooms without a local subscriber (one command), and
/// subscribes the rooms whose subscriber gave up waiting for Redis, then
/// closes their local feeds (they read storage); false when Redis failed.
async fn sweep_rooms(sink: &mut PubSubSink, shared: &Shared) -> bool {
    let (idle, unconfirmed) = {
        let mut rooms = shared.rooms.lock().expect("rooms lock");
        let local = shared.local();
        let idle: Vec<RoomId> = rooms
            .keys()
            .filter(|room| !local.has_subscribers(room))
            .cloned()
            .collect();
        for room in &idle {
            rooms.remove(room);
        }
        let unconfirmed: Vec<RoomId> = rooms
            .iter()
            .filter(|(_, confirmed)| !**confirmed)
            .map(|(room, _)| room.clone())
            .collect();
        (idle, unconfirmed)
    };
    if !idle.is_empty() && sink.unsubscribe(shared.channels(&idle)).await.is_err() {
        return false;
    }
    if !subscribe_now(sink, shared, &unconfirmed).await {
        return false;
    }
    for room in &unconfirmed {
        shared.local().close_room(room);
    }
    true
}

async fn deliver(shared: &Shared, payload: &[u8]) {
    let Ok(message) = serde_json::from_slice::<wire::Message<'_>>(payload) else {
        tracing::warn!(
            "ignored a message on a Parlor channel that is not an entry batch or a notice"
        );
        return;
    };
    // Counted whoever published it: traffic this node took off the bus.
    if let Some(entries) = message.entry_count() {
        shared.received.fetch_add(entries, Ordering::Relaxed);
    }
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
            "ignored a message on a Parlor channel that this node cannot read"
        ),
    }
}
