//! The append path, end to end (docs/contract.md §3): a send is checked,
//! queued on its room's log behind every send queued before it, stored in a
//! group commit, then acked and published.
//!
//! 1. [`submit`] validates the send, finds the room where `user` is joined
//!    (here, or in a cluster through another node), waits for room in the
//!    room's send queue, and queues the entry under the ledger lock, so a
//!    leave cannot slip between the membership check and the queueing. It
//!    returns a [`PendingSend`] at once.
//! 2. The room's append task ([`run`]) takes everything waiting (up to
//!    `append_batch_max`) and hands it to the engine's one `StoreWriter`,
//!    which stores every room's waiting batch in **one** transaction. One
//!    task per room means the store sees each room's entries in queue order;
//!    a queue drained in batches turns N waiting senders into one commit.
//!    The task exists only while there is work (see `room_log.rs`), so an
//!    idle room costs no task.
//! 3. After the commit the task advances `last_seq`, acks each sender and
//!    publishes the new entries (or holds them briefly for the next commit:
//!    [`Unpublished`]).
//!
//! A failed transaction fails its text entries back (`UNAVAILABLE`: the
//! client retries with the same `client_id`) but keeps `join`/`leave` entries
//! at the head of the queue and retries them with backoff: the seat ledger has
//! already acted on them, and the log must follow — unless the room is gone
//! (`ROOM_NOT_FOUND`: purged), when they fail too.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    sync::{OwnedSemaphorePermit, oneshot},
    time::Instant,
};

use crate::{
    authorization::authorize,
    config::EngineConfig,
    entry::{Data, Entry, EntryKind, LeaveReason, Message, NewEntry},
    error::{Error, ErrorKind, Result},
    ids::{RoomId, UserId},
    live_room::LiveRoom,
    ports::{Action, Appended, Principal},
    room_log::{AckSender, AppendRequest, AppendResult},
    state::EngineState,
    stats::GaugeGuard,
    store_writer::Refused,
};

/// A send that is queued in its room's log and not yet durable — what
/// `ChatEngine::submit` returns. Resolves to the stored entry once it is
/// durable, or to why it was not (`UNAVAILABLE` after a failed commit).
/// Dropping it does not withdraw the send: the entry is stored either way.
/// A `client_id` the sender used before for an entry of another kind (an
/// edit's) is `INVALID_INPUT`: the send was not stored.
#[derive(Debug)]
pub struct PendingSend {
    stored: oneshot::Receiver<AppendResult>,
    /// The kind queued: an earlier entry answered for it must be one too.
    kind: EntryKind,
}

impl Future for PendingSend {
    type Output = Result<Arc<Entry>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let kind = self.kind;
        Pin::new(&mut self.stored)
            .poll(cx)
            .map(|stored| match stored {
                Ok(Ok(Some(entry))) if entry.kind == kind => Ok(entry),
                Ok(Ok(Some(_))) => Err(Error::new(
                    ErrorKind::InvalidInput,
                    "client_id was used for another entry",
                )),
                Ok(Err(err)) => Err(err),
                // A message or an amendment always changes the log (or answers
                // with what did); no answer is a bug.
                Ok(Ok(None)) | Err(_) => Err(ErrorKind::Internal.into()),
            })
    }
}

/// Step 1: checks a send and queues it on the room's log. A user's message
/// is a `text` entry and needs a joined seat; a service's is a `system`
/// entry and needs only an open stored room.
///
/// Errors: `INVALID_INPUT` / `MESSAGE_TOO_LARGE` for a bad send,
/// `RATE_LIMITED` over the user's send rate, `NOT_A_MEMBER` when the user
/// holds no joined seat in the room (on any node of a cluster), the room
/// policy's refusal of `send` (`FORBIDDEN`; remembered by the seat at
/// commit, asked anew only for a user seated through another node); for a
/// service, `ROOM_NOT_FOUND` or `ROOM_CLOSED`.
pub(crate) async fn submit(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    client_id: &str,
    message: Message,
) -> Result<PendingSend> {
    let user = &principal.user;
    validate_send(&state.config, client_id, &message)?;
    if principal.service {
        return submit_system(state, principal, room_id, client_id, message).await;
    }
    state.limits.send(user)?;
    loop {
        let here = state
            .directory
            .get(room_id)
            .filter(|room| room.ledger().is_joined(user));
        let (room, joined_here) = match here {
            Some(room) => (room, true),
            None => {
                let room = state.seated_elsewhere(room_id, user).await?;
                let facts = room.as_stored();
                authorize(state, principal, room_id, Some(&facts), Action::Send).await?;
                (room, false)
            }
        };
        let permit = room.log.send_permit().await;
        let ledger = room.ledger();
        if ledger.is_retired() {
            continue; // unloaded meanwhile: look again
        }
        if joined_here {
            ledger.may_send(user)?;
        }
        let entry = NewEntry::message(
            room_id.clone(),
            EntryKind::Text,
            user.clone(),
            client_id,
            message,
        );
        // Queued under the ledger lock: a leave cannot slip in between.
        let pending = queue_message(state, &room, entry, permit);
        drop(ledger);
        return Ok(pending);
    }
}

/// Queues a message on `room`'s log (the caller holds its ledger lock) and
/// returns what resolves once it is stored.
fn queue_message(
    state: &Arc<EngineState>,
    room: &Arc<LiveRoom>,
    entry: NewEntry,
    permit: OwnedSemaphorePermit,
) -> PendingSend {
    let (ack, stored) = oneshot::channel();
    let kind = entry.kind;
    enqueue(
        state,
        room,
        AppendRequest {
            entry,
            ack: Some(ack),
            permit: Some(permit),
        },
    );
    PendingSend { stored, kind }
}

/// A service's message: a `system` entry in a stored, open room, queued
/// like any send (same order, same group commit, same idempotency by
/// (room, sender, `client_id`)), with no seat and no rate limit — the
/// integrator's backend is trusted and meters itself.
async fn submit_system(
    state: &Arc<EngineState>,
    principal: &Principal,
    room_id: &RoomId,
    client_id: &str,
    message: Message,
) -> Result<PendingSend> {
    let entry = NewEntry::message(
        room_id.clone(),
        EntryKind::System,
        principal.user.clone(),
        client_id,
        message,
    );
    queue_unseated(state, entry, Closed::Refuse).await
}

/// Whether [`queue_unseated`] takes an entry for a closed room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closed {
    /// `ROOM_CLOSED`: a closed room takes no messages.
    Refuse,
    /// Queued all the same: a redaction still erases in a closed room.
    Allow,
}

/// Queues `entry` on its stored room's log for a caller who needs no seat
/// there (a service's message, an edit, a redaction), behind everything
/// queued before it.
///
/// Errors: `ROOM_NOT_FOUND`, `ROOM_CLOSED` (unless `closed` allows),
/// storage errors.
pub(crate) async fn queue_unseated(
    state: &Arc<EngineState>,
    entry: NewEntry,
    closed: Closed,
) -> Result<PendingSend> {
    let room_id = &entry.room_id;
    loop {
        let room = state
            .stored_room(room_id)
            .await?
            .ok_or(ErrorKind::RoomNotFound)?;
        // In a cluster another node may have closed it: read its row.
        let open = match state.refresh_facts(&room).await {
            Ok(()) if room.facts().closed => Err(ErrorKind::RoomClosed.into()),
            other => other,
        };
        let open = match open {
            Err(err) if err.kind() == ErrorKind::RoomClosed && closed == Closed::Allow => Ok(()),
            other => other,
        };
        if let Err(err) = open {
            // Loaded only for this entry, perhaps: unload it again.
            state.directory.unload_if_idle(&room);
            return Err(err);
        }
        let permit = room.log.send_permit().await;
        let ledger = room.ledger();
        if ledger.is_retired() {
            continue; // unloaded meanwhile: look again
        }
        let pending = queue_message(state, &room, entry, permit);
        drop(ledger);
        return Ok(pending);
    }
}

/// The send rules of docs/contract.md §3: a `client_id` of 1–64 characters;
/// a body, data or both; a body of at most `max_message_bytes` bytes that
/// is not blank, no U+0000; data of at most `max_data_bytes` bytes of JSON.
pub(crate) fn validate_send(
    config: &EngineConfig,
    client_id: &str,
    message: &Message,
) -> Result<()> {
    if client_id.is_empty() || client_id.chars().count() > 64 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "client_id must be 1-64 characters",
        ));
    }
    // Postgres text cannot hold U+0000 and SQLite's text functions stop at
    // it: refused here, a stored message always reads back as it was sent.
    if client_id.contains('\0') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the body and client_id may not contain U+0000",
        ));
    }
    match (&message.body, &message.data) {
        (Some(body), _) => check_body(config, body)?,
        (None, Some(_)) => {}
        (None, None) => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "a message needs a body, data or both",
            ));
        }
    }
    if let Some(data) = &message.data {
        check_data(config, data)?;
    }
    Ok(())
}

fn check_body(config: &EngineConfig, body: &str) -> Result<()> {
    if body.len() > config.max_message_bytes {
        return Err(Error::new(
            ErrorKind::MessageTooLarge,
            format!("the body is over {} bytes", config.max_message_bytes),
        ));
    }
    if body.trim().is_empty() {
        return Err(Error::new(ErrorKind::InvalidInput, "the body is empty"));
    }
    if body.contains('\0') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the body and client_id may not contain U+0000",
        ));
    }
    Ok(())
}

/// `MESSAGE_TOO_LARGE` past `max_data_bytes` of serialized JSON.
fn check_data(config: &EngineConfig, data: &Data) -> Result<()> {
    check_data_within(data, config.max_data_bytes)
}

/// `MESSAGE_TOO_LARGE` past `max` bytes of serialized JSON. (A U+0000
/// inside is fine: JSON text escapes it, so stores keep it as written.)
pub(crate) fn check_data_within(data: &Data, max: usize) -> Result<()> {
    let text = serde_json::to_string(data)
        .map_err(|_| Error::new(ErrorKind::InvalidInput, "data must be a JSON object"))?;
    if text.len() > max {
        return Err(Error::new(
            ErrorKind::MessageTooLarge,
            format!("data is over {max} bytes"),
        ));
    }
    Ok(())
}

/// Queues a `join` or `leave`; the receiver resolves once it is stored.
/// The join path calls it under the ledger lock, so the log orders the entry
/// with the seat decisions around it.
/// `reason` says why a `leave` took the seat away (a kick, a close).
pub(crate) fn append_membership(
    state: &Arc<EngineState>,
    room: &Arc<LiveRoom>,
    user: &UserId,
    kind: EntryKind,
    reason: Option<LeaveReason>,
) -> oneshot::Receiver<AppendResult> {
    let (ack, done) = oneshot::channel();
    let mut entry = NewEntry::membership(room.id.clone(), user.clone(), kind);
    entry.reason = reason;
    enqueue(
        state,
        room,
        AppendRequest {
            entry,
            ack: Some(ack),
            permit: None,
        },
    );
    done
}

/// Queues `request` on `room`'s log, starting its task if the log was idle.
fn enqueue(state: &Arc<EngineState>, room: &Arc<LiveRoom>, request: AppendRequest) {
    if room.log.push(request) {
        // Counted from the spawn, not from the task's first poll, so
        // `Engine::flush` never mistakes queued work for none.
        let task = state.counters.room_tasks.enter();
        state
            .runtime
            .spawn(run(Arc::clone(state), Arc::clone(room), task));
    }
}

/// Step 2: the room's append task; drains the log in batches until it is
/// empty.
async fn run(state: Arc<EngineState>, room: Arc<LiveRoom>, _task: GaugeGuard) {
    let mut backoff = Duration::from_millis(50);
    let mut unpublished = Unpublished::default();
    while let Some(batch) = room.log.take_batch(state.config.append_batch_max) {
        let (entries, replies): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|r| {
                let reply = Reply {
                    ack: r.ack,
                    permit: r.permit,
                };
                (r.entry, reply)
            })
            .unzip();
        match state.writer.append(entries).await {
            Ok(outcomes) => {
                backoff = Duration::from_millis(50);
                deliver(&state, &room, outcomes, replies, &mut unpublished).await;
            }
            Err(Refused { error, entries }) => {
                tracing::debug!(room = %room.id, code = error.code(), batch = entries.len(), "append failed");
                unpublished.publish(&state, &room).await;
                fail(&room, entries, replies, &error, &mut backoff).await;
            }
        }
    }
    unpublished.publish(&state, &room).await;
    state.directory.unload_if_idle(&room);
}

/// What goes back to one request's sender once its entry is settled: the
/// ack, and the permit that bounds the room's queued sends (released on
/// drop).
struct Reply {
    ack: Option<AckSender>,
    permit: Option<OwnedSemaphorePermit>,
}

/// Step 3 after a commit: advance the head, hand new entries to
/// [`Unpublished`], ack every sender.
async fn deliver(
    state: &EngineState,
    room: &LiveRoom,
    outcomes: Vec<Appended>,
    replies: Vec<Reply>,
    unpublished: &mut Unpublished,
) {
    let mut fresh = Vec::with_capacity(outcomes.len());
    let mut acks = Vec::with_capacity(outcomes.len());
    for (outcome, reply) in outcomes.into_iter().zip(replies) {
        let entry = match outcome {
            Appended::New(e) => {
                let e = Arc::new(e);
                fresh.push(Arc::clone(&e));
                e
            }
            Appended::Existing(e) => Arc::new(e),
            Appended::Unchanged => {
                if let Some(ack) = reply.ack {
                    let _ = ack.send(Ok(None));
                }
                continue;
            }
            Appended::Refused(kind) => {
                if let Some(ack) = reply.ack {
                    let _ = ack.send(Err(refusal(kind)));
                }
                continue;
            }
        };
        if let Some(ack) = reply.ack {
            acks.push((ack, entry));
        }
    }
    if let Some(newest) = fresh.last() {
        room.log.observe(newest.seq);
        state
            .counters
            .entries_appended
            .fetch_add(fresh.len() as u64, Ordering::Relaxed);
    }
    unpublished.add(fresh, state, room).await;
    for (ack, entry) in acks {
        // The sender may have gone; the entry is stored either way.
        let _ = ack.send(Ok(Some(entry)));
    }
}

/// Why the store refused an amendment, as its caller hears it.
fn refusal(kind: ErrorKind) -> Error {
    match kind {
        ErrorKind::EntryNotFound => {
            Error::new(kind, "no entry at that seq (pruned, or never stored)")
        }
        _ => Error::new(
            kind,
            "that entry cannot be changed: only a text message that was not redacted can be edited, and only a message can be redacted",
        ),
    }
}

/// After a failed commit: text entries fail back to their senders; `join`
/// and `leave` entries go back to the head of the queue, retried after
/// `backoff` (doubled each time, at most 2 s).
async fn fail(
    room: &LiveRoom,
    entries: Vec<NewEntry>,
    replies: Vec<Reply>,
    err: &Error,
    backoff: &mut Duration,
) {
    // A room that is not stored any more (purged) has no log to keep in
    // step: its `join`/`leave` entries fail too instead of waiting forever.
    let gone = err.kind() == ErrorKind::RoomNotFound;
    if gone {
        tracing::warn!(room = %room.id, "appends to a room that was purged are dropped");
    }
    let mut keep = Vec::new();
    for (entry, Reply { ack, permit }) in entries.into_iter().zip(replies) {
        if !entry.kind.is_membership() || gone {
            if let Some(ack) = ack {
                let _ = ack.send(Err(Error::new(err.kind(), err.message())));
            }
        } else {
            keep.push(AppendRequest { entry, ack, permit });
        }
    }
    if !keep.is_empty() {
        room.log.requeue_front(keep);
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(Duration::from_secs(2));
    }
}

/// New entries that are stored but not yet published.
///
/// Why hold any: a burst of sends to a room spreads over a few commits (the
/// first commits alone while the rest arrive), and every publish wakes every
/// subscriber and costs each of their sockets a write. While more sends wait
/// to be stored, a room holds what it stored for up to
/// `EngineConfig::publish_hold`, so the burst reaches N subscribers with N
/// socket writes, not N per commit. Acks are sent at once: the entries are
/// durable. A new subscriber misses nothing held: it reads storage up to
/// `last_seq`, which already counts them.
#[derive(Default)]
struct Unpublished {
    entries: Vec<Arc<Entry>>,
    /// When the oldest of them was stored.
    since: Option<Instant>,
}

impl Unpublished {
    /// Adds `fresh` and publishes everything held, unless the room may hold
    /// it for the next commit.
    async fn add(&mut self, fresh: Vec<Arc<Entry>>, state: &EngineState, room: &LiveRoom) {
        self.entries.extend(fresh);
        if self.entries.is_empty() {
            return;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= state.config.publish_hold || !room.log.has_waiting() {
            self.publish(state, room).await;
        }
    }

    /// Publishes everything held, in seq order.
    async fn publish(&mut self, state: &EngineState, room: &LiveRoom) {
        if !self.entries.is_empty() {
            state.bus.publish(&room.id, &self.entries).await;
            self.entries.clear();
        }
        self.since = None;
    }
}
