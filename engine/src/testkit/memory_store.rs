//! [`MemoryStore`]: a [`Store`] in a `Mutex<HashMap>`. A test double for
//! engine tests only — it forgets everything when dropped. It can be told to
//! fail (`set_unavailable`) or to slow down (`set_latency`) to exercise the
//! engine's error and interleaving paths.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use uuid::Uuid;

use crate::{
    entry::{Entry, EntryKind, NewEntry, Seq, SeqRange, Timestamp},
    error::{Error, ErrorKind, Result},
    events::{ControlEvent, OutboxEvent},
    ids::{RoomId, UserId},
    ports::{Appended, CreateOutcome, CursorMove, PruneBound, Pruned, Store, WebhookCursor},
    room::{Ban, ReadState, RoomPatch, StoredRoom},
};

#[derive(Default)]
struct RoomData {
    room: Option<StoredRoom>,
    /// The stored entries, ascending by seq (a suffix of the log once
    /// pruned).
    log: Vec<Entry>,
    by_client: HashMap<(UserId, String), Seq>,
    /// Read markers by user.
    read: HashMap<UserId, Seq>,
}

impl RoomData {
    fn at(&self, seq: Seq) -> Option<usize> {
        self.log.binary_search_by_key(&seq, |e| e.seq).ok()
    }

    /// Applies an amendment to its target, or says why the log cannot
    /// take it (the [`Store`] rules).
    fn amend(&mut self, new: &NewEntry) -> std::result::Result<Option<Entry>, ErrorKind> {
        let target = new.target_seq.unwrap_or(0);
        let at = self.at(target).ok_or(ErrorKind::EntryNotFound)?;
        let t = &self.log[at];
        match new.kind {
            EntryKind::Edit if t.kind != EntryKind::Text || t.redacted => {
                Err(ErrorKind::InvalidInput)
            }
            EntryKind::Edit => Ok(None),
            _ if !t.kind.is_message() => Err(ErrorKind::InvalidInput),
            _ if t.redacted => Ok(self
                .log
                .iter()
                .find(|e| e.kind == EntryKind::Redaction && e.target_seq == Some(target))
                .cloned()),
            _ => Ok(None),
        }
    }

    /// Writes an amendment stored at `seq`'s effect on its target.
    fn apply(&mut self, entry: &Entry) {
        let target = entry.target_seq.unwrap_or(0);
        if entry.kind == EntryKind::Edit {
            let at = self.at(target).expect("checked");
            let t = &mut self.log[at];
            t.body = entry.body.clone();
            t.data = entry.data.clone();
            t.edited_at = Some(entry.created_at);
            return;
        }
        for e in &mut self.log {
            if e.seq == target || (e.kind == EntryKind::Edit && e.target_seq == Some(target)) {
                e.body = None;
                e.data = None;
                e.redacted = true;
            }
        }
    }
}

#[derive(Default)]
struct State {
    rooms: HashMap<RoomId, RoomData>,
    open: BTreeSet<(RoomId, UserId)>,
    invites: BTreeSet<(RoomId, UserId)>,
    moderators: BTreeSet<(RoomId, UserId)>,
    bans: HashMap<(RoomId, UserId), Ban>,
    /// The registered webhooks.
    hooks: BTreeSet<String>,
    /// Each (hook, room)'s cursor.
    cursors: HashMap<(String, RoomId), WebhookCursor>,
    /// Control events, ascending by `outbox_id`.
    outbox: Vec<OutboxEvent>,
    /// The last `outbox_id` given (never reused).
    last_outbox_id: u64,
}

impl State {
    /// Writes a control event of `room` (while any hook is registered).
    fn write_outbox(&mut self, room: &RoomId, event: ControlEvent) {
        if self.hooks.is_empty() {
            return;
        }
        let after_seq = self
            .rooms
            .get(room)
            .and_then(|r| r.room.as_ref())
            .map_or(0, |r| r.last_seq);
        self.last_outbox_id += 1;
        self.outbox.push(OutboxEvent {
            outbox_id: self.last_outbox_id,
            id: Uuid::now_v7(),
            room_id: room.clone(),
            after_seq,
            at: Timestamp::now(),
            event,
        });
    }

    /// The lowest `part` of every registered hook's cursor in `room` (no
    /// cursor: 0), e.g. the highest seq all of them delivered; `None` with
    /// no hook registered.
    fn lowest(&self, room: &RoomId, part: impl Fn(&WebhookCursor) -> u64) -> Option<u64> {
        self.hooks
            .iter()
            .map(|h| {
                self.cursors
                    .get(&(h.clone(), room.clone()))
                    .map_or(0, &part)
            })
            .min()
    }

    /// `ROOM_NOT_FOUND` unless `room` is stored.
    fn stored(&self, room: &RoomId) -> Result<()> {
        if self.rooms.get(room).is_none_or(|r| r.room.is_none()) {
            return Err(ErrorKind::RoomNotFound.into());
        }
        Ok(())
    }
}

/// An in-memory [`Store`]: a test double, never for production.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    unavailable: AtomicBool,
    latency_us: AtomicU64,
    creates: AtomicU64,
    lanes: AtomicUsize,
    appending: AtomicUsize,
    most_appending: AtomicUsize,
}

impl MemoryStore {
    /// Makes every call fail with `UNAVAILABLE` until told otherwise.
    pub fn set_unavailable(&self, down: bool) {
        self.unavailable.store(down, Ordering::SeqCst);
    }

    /// Adds `latency` to every call (to widen race windows in tests).
    pub fn set_latency(&self, latency: Duration) {
        self.latency_us
            .store(latency.as_micros() as u64, Ordering::SeqCst);
    }

    /// Sets what [`Store::append_lanes`] answers (1 unless told).
    pub fn set_append_lanes(&self, lanes: usize) {
        self.lanes.store(lanes, Ordering::SeqCst);
    }

    /// The most `append` calls that were in progress at once.
    pub fn most_concurrent_appends(&self) -> usize {
        self.most_appending.load(Ordering::SeqCst)
    }

    /// How many times `create_room` was called.
    pub fn create_calls(&self) -> u64 {
        self.creates.load(Ordering::SeqCst)
    }

    /// Every entry of `room`, ascending.
    pub fn log(&self, room: &RoomId) -> Vec<Entry> {
        let state = self.state.lock().expect("memory store lock");
        state
            .rooms
            .get(room)
            .map(|r| r.log.clone())
            .unwrap_or_default()
    }

    async fn enter(&self) -> Result<()> {
        let us = self.latency_us.load(Ordering::SeqCst);
        if us > 0 {
            tokio::time::sleep(Duration::from_micros(us)).await;
        }
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(Error::unavailable(std::io::Error::other(
                "memory store is down (test)",
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_room(&self, room: &StoredRoom) -> Result<CreateOutcome> {
        self.enter().await?;
        self.creates.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state.lock().expect("memory store lock");
        let data = state.rooms.entry(room.id.clone()).or_default();
        if let Some(existing) = &data.room {
            return Ok(CreateOutcome::AlreadyExists(existing.clone()));
        }
        data.room = Some(StoredRoom {
            last_seq: 0,
            first_seq: 1,
            ..room.clone()
        });
        state.write_outbox(&room.id, ControlEvent::created(room));
        Ok(CreateOutcome::Created)
    }

    async fn room(&self, id: &RoomId) -> Result<Option<StoredRoom>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        Ok(state.rooms.get(id).and_then(|r| r.room.clone()))
    }

    async fn append(&self, batch: &[NewEntry]) -> Result<Vec<Appended>> {
        let now = self.appending.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_appending.fetch_max(now, Ordering::SeqCst);
        let entered = self.enter().await;
        self.appending.fetch_sub(1, Ordering::SeqCst);
        entered?;
        let mut state = self.state.lock().expect("memory store lock");
        // All or nothing: check every room first.
        if let Some(missing) = batch
            .iter()
            .find(|e| state.rooms.get(&e.room_id).is_none_or(|r| r.room.is_none()))
        {
            return Err(Error::new(
                ErrorKind::RoomNotFound,
                format!("append to a room that is not stored: {}", missing.room_id),
            ));
        }
        let mut out = Vec::with_capacity(batch.len());
        for new in batch {
            let data = state.rooms.get_mut(&new.room_id).expect("checked");
            let key = new
                .client_id
                .as_ref()
                .filter(|_| new.kind.is_message() || new.kind == EntryKind::Edit)
                .map(|c| (new.sender.clone(), c.clone()));
            if let Some(at) = key
                .as_ref()
                .and_then(|k| data.by_client.get(k))
                .and_then(|seq| data.at(*seq))
            {
                out.push(Appended::Existing(data.log[at].clone()));
                continue;
            }
            if new.kind.is_amendment() {
                match data.amend(new) {
                    Err(kind) => {
                        out.push(Appended::Refused(kind));
                        continue;
                    }
                    Ok(Some(first)) => {
                        out.push(Appended::Existing(first));
                        continue;
                    }
                    Ok(None) => {}
                }
            }
            let pair = (new.room_id.clone(), new.sender.clone());
            let changes = match new.kind {
                EntryKind::Join => !state.open.contains(&pair),
                EntryKind::Leave => state.open.contains(&pair),
                _ => true,
            };
            if !changes {
                out.push(Appended::Unchanged);
                continue;
            }
            let data = state.rooms.get_mut(&new.room_id).expect("checked");
            let room = data.room.as_mut().expect("checked");
            room.last_seq += 1;
            let entry = new.clone().at(room.last_seq);
            if let Some(key) = key {
                data.by_client.insert(key, entry.seq);
            }
            data.log.push(entry.clone());
            if entry.kind.is_amendment() {
                data.apply(&entry);
            }
            match new.kind {
                EntryKind::Join => {
                    state.open.insert(pair);
                }
                EntryKind::Leave => {
                    state.open.remove(&pair);
                }
                _ => {}
            }
            out.push(Appended::New(entry));
        }
        Ok(out)
    }

    async fn entries(&self, room: &RoomId, range: SeqRange) -> Result<Vec<Entry>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        let Some(data) = state.rooms.get(room) else {
            return Ok(Vec::new());
        };
        let within = data.log.iter().filter(|e| {
            range.after.is_none_or(|a| e.seq > a) && range.before.is_none_or(|b| e.seq < b)
        });
        let limit = range.limit as usize;
        Ok(if range.from_newest() {
            let all: Vec<Entry> = within.cloned().collect();
            all[all.len().saturating_sub(limit)..].to_vec()
        } else {
            within.take(limit).cloned().collect()
        })
    }

    async fn open_members(&self) -> Result<Vec<(RoomId, UserId)>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        Ok(state.open.iter().cloned().collect())
    }

    async fn set_invite(&self, room: &RoomId, user: &UserId, invited: bool) -> Result<()> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        state.stored(room)?;
        let pair = (room.clone(), user.clone());
        if invited {
            state.invites.insert(pair);
        } else {
            state.invites.remove(&pair);
        }
        Ok(())
    }

    async fn is_invited(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        Ok(state.invites.contains(&(room.clone(), user.clone())))
    }

    async fn rooms(
        &self,
        prefix: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<StoredRoom>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        let mut rooms: Vec<StoredRoom> = state
            .rooms
            .values()
            .filter_map(|r| r.room.clone())
            .filter(|r| !r.closed && r.id.as_str().starts_with(prefix))
            .filter(|r| after.is_none_or(|a| r.id.as_str() > a.as_str()))
            .collect();
        rooms.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        rooms.truncate(limit as usize);
        Ok(rooms)
    }

    async fn update_room(&self, id: &RoomId, patch: &RoomPatch) -> Result<Option<StoredRoom>> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        let Some(room) = state.rooms.get_mut(id).and_then(|r| r.room.as_mut()) else {
            return Ok(None);
        };
        *room = patch.apply(room.clone());
        Ok(Some(room.clone()))
    }

    async fn close_room(&self, id: &RoomId, purge: bool) -> Result<bool> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        if state.stored(id).is_err() {
            return Ok(false);
        }
        if purge {
            state.rooms.remove(id);
            state.open.retain(|(r, _)| r != id);
            state.invites.retain(|(r, _)| r != id);
            state.moderators.retain(|(r, _)| r != id);
            state.bans.retain(|(r, _), _| r != id);
            // The log the room's events sat in is gone: its outbox rows and
            // cursors move to seq 0, where the next incarnation starts.
            for row in state.outbox.iter_mut().filter(|o| &o.room_id == id) {
                row.after_seq = 0;
            }
            let hooks: Vec<String> = state.hooks.iter().cloned().collect();
            for hook in hooks {
                let cursor = state.cursors.entry((hook, id.clone())).or_default();
                cursor.seq = 0;
                cursor.epoch += 1;
            }
            state.write_outbox(id, ControlEvent::RoomPurged);
        } else if let Some(room) = state.rooms.get_mut(id).and_then(|r| r.room.as_mut())
            && !room.closed
        {
            room.closed = true;
            state.write_outbox(id, ControlEvent::RoomClosed);
        }
        Ok(true)
    }

    async fn set_moderator(&self, room: &RoomId, user: &UserId, moderator: bool) -> Result<()> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        state.stored(room)?;
        let pair = (room.clone(), user.clone());
        if moderator {
            state.moderators.insert(pair);
        } else {
            state.moderators.remove(&pair);
        }
        Ok(())
    }

    async fn is_moderator(&self, room: &RoomId, user: &UserId) -> Result<bool> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        Ok(state.moderators.contains(&(room.clone(), user.clone())))
    }

    async fn set_ban(&self, room: &RoomId, user: &UserId, ban: Option<&Ban>) -> Result<()> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        state.stored(room)?;
        let pair = (room.clone(), user.clone());
        match ban {
            Some(ban) => {
                state.bans.insert(pair, ban.clone());
                state.write_outbox(room, ControlEvent::banned(user, ban));
            }
            None => {
                state.bans.remove(&pair);
            }
        }
        Ok(())
    }

    async fn ban(&self, room: &RoomId, user: &UserId) -> Result<Option<Ban>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        Ok(state.bans.get(&(room.clone(), user.clone())).cloned())
    }

    async fn retained_rooms(
        &self,
        after: Option<&RoomId>,
        limit: u32,
        all: bool,
    ) -> Result<Vec<StoredRoom>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        let mut rooms: Vec<StoredRoom> = state
            .rooms
            .values()
            .filter_map(|r| r.room.clone())
            .filter(|r| r.first_seq <= r.last_seq && (all || r.retention.is_some()))
            .filter(|r| after.is_none_or(|a| r.id.as_str() > a.as_str()))
            .collect();
        rooms.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        rooms.truncate(limit as usize);
        Ok(rooms)
    }

    async fn prune(&self, room: &RoomId, bound: PruneBound, max_rows: u32) -> Result<Pruned> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        let delivered = state.lowest(room, |c| c.seq).unwrap_or(Seq::MAX);
        let Some(data) = state.rooms.get_mut(room) else {
            return Ok(Pruned {
                deleted: 0,
                first_seq: 1,
            });
        };
        if let Some(stored) = &data.room
            && bound.is_stale(stored.last_seq)
        {
            return Ok(Pruned {
                deleted: 0,
                first_seq: stored.first_seq,
            });
        }
        let goes = data
            .log
            .iter()
            .take(max_rows as usize)
            .take_while(|e| {
                e.seq <= delivered
                    && (e.seq < bound.below_seq
                        || bound.older_than.is_some_and(|t| e.created_at < t))
            })
            .count();
        let gone: Vec<Entry> = data.log.drain(..goes).collect();
        for e in &gone {
            if let Some(c) = &e.client_id {
                data.by_client.remove(&(e.sender.clone(), c.clone()));
            }
        }
        let Some(stored) = data.room.as_mut() else {
            return Ok(Pruned {
                deleted: 0,
                first_seq: 1,
            });
        };
        if let Some(last) = gone.last() {
            stored.first_seq = last.seq + 1;
            // An edit outlives its pruned message only as an erased row:
            // the text it carried went with the message.
            let first = stored.first_seq;
            for e in &mut data.log {
                if e.kind == EntryKind::Edit && e.target_seq.is_some_and(|t| t < first) {
                    e.body = None;
                    e.data = None;
                    e.redacted = true;
                }
            }
        }
        Ok(Pruned {
            deleted: gone.len() as u64,
            first_seq: stored.first_seq,
        })
    }

    async fn set_read_marker(&self, room: &RoomId, user: &UserId, seq: Seq) -> Result<Seq> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        state.stored(room)?;
        let data = state.rooms.get_mut(room).expect("checked");
        let marker = data.read.entry(user.clone()).or_insert(0);
        *marker = (*marker).max(seq);
        Ok(*marker)
    }

    async fn read_states(&self, user: &UserId, rooms: &[RoomId]) -> Result<Vec<ReadState>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        Ok(rooms
            .iter()
            .map(|room| {
                let Some(data) = state.rooms.get(room) else {
                    return ReadState::default();
                };
                let last_read_seq = data.read.get(user).copied().unwrap_or(0);
                let unread = data
                    .log
                    .iter()
                    .filter(|e| {
                        e.seq > last_read_seq
                            && e.kind.counts_as_unread()
                            && &e.sender != user
                            && !e.redacted
                    })
                    .count() as u64;
                ReadState {
                    last_read_seq,
                    unread,
                }
            })
            .collect())
    }

    async fn set_webhooks(&self, hooks: &[String]) -> Result<()> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        let known = std::mem::replace(&mut state.hooks, hooks.iter().cloned().collect());
        let State {
            hooks,
            cursors,
            rooms,
            outbox,
            last_outbox_id,
            ..
        } = &mut *state;
        cursors.retain(|(hook, _), _| hooks.contains(hook));
        // A new hook starts at every room's head, past every outbox row.
        for hook in hooks.iter().filter(|h| !known.contains(*h)) {
            let heads = rooms
                .values()
                .filter_map(|r| r.room.as_ref())
                .map(|r| (r.id.clone(), r.last_seq));
            let purged = outbox.iter().map(|o| (o.room_id.clone(), 0));
            for (room, seq) in heads.chain(purged) {
                let start = WebhookCursor {
                    seq,
                    outbox_id: *last_outbox_id,
                    epoch: 0,
                };
                cursors.entry((hook.clone(), room)).or_insert(start);
            }
        }
        if state.hooks.is_empty() {
            state.outbox.clear();
        }
        Ok(())
    }

    async fn webhook_rooms(
        &self,
        hook: &str,
        after: Option<&RoomId>,
        limit: u32,
    ) -> Result<Vec<RoomId>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        let cursor = |room: &RoomId| state.cursors.get(&(hook.to_owned(), room.clone()));
        let mut rooms: BTreeSet<&str> = state
            .rooms
            .values()
            .filter_map(|r| r.room.as_ref())
            .filter(|r| r.last_seq > cursor(&r.id).map_or(r.first_seq - 1, |c| c.seq))
            .map(|r| r.id.as_str())
            .collect();
        rooms.extend(
            state
                .outbox
                .iter()
                .filter(|o| o.outbox_id > cursor(&o.room_id).map_or(0, |c| c.outbox_id))
                .map(|o| o.room_id.as_str()),
        );
        Ok(rooms
            .into_iter()
            .filter(|id| after.is_none_or(|a| *id > a.as_str()))
            .take(limit as usize)
            .map(|id| RoomId::new(id).expect("a stored id"))
            .collect())
    }

    async fn webhook_cursor(&self, hook: &str, room: &RoomId) -> Result<Option<WebhookCursor>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        Ok(state.cursors.get(&(hook.to_owned(), room.clone())).copied())
    }

    async fn outbox(
        &self,
        room: &RoomId,
        after: u64,
        upto: Seq,
        limit: u32,
    ) -> Result<Vec<OutboxEvent>> {
        self.enter().await?;
        let state = self.state.lock().expect("memory store lock");
        Ok(state
            .outbox
            .iter()
            .filter(|o| &o.room_id == room && o.outbox_id > after && o.after_seq <= upto)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn advance_webhook(&self, hook: &str, moves: &[CursorMove]) -> Result<Vec<bool>> {
        self.enter().await?;
        let mut state = self.state.lock().expect("memory store lock");
        let mut moved = Vec::with_capacity(moves.len());
        for CursorMove { room, from, to } in moves {
            let key = (hook.to_owned(), room.clone());
            if !state.hooks.contains(hook) || state.cursors.get(&key).copied() != *from {
                moved.push(false);
                continue;
            }
            state.cursors.insert(key, *to);
            moved.push(true);
            // Rows every registered hook passed are of no more use.
            let passed = state.lowest(room, |c| c.outbox_id).unwrap_or(0);
            state
                .outbox
                .retain(|o| &o.room_id != room || o.outbox_id > passed);
        }
        Ok(moved)
    }

    fn append_lanes(&self) -> usize {
        self.lanes.load(Ordering::SeqCst).max(1)
    }
}
