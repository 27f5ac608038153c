//! What travels on the Redis channel: a node's freshly stored entries of one
//! room, as JSON. The node id lets a receiver skip its own messages (it has
//! already delivered them locally).

use std::{borrow::Cow, sync::Arc};

use parlor_engine::{Data, Entry, EntryKind, LeaveReason, RoomId, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(crate) struct Batch<'a> {
    // Borrowed from the payload unless JSON escapes force a copy.
    #[serde(borrow)]
    pub(crate) node: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) room: Cow<'a, str>,
    pub(crate) entries: Vec<WireEntry>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct WireEntry {
    seq: u64,
    id: uuid::Uuid,
    kind: String,
    sender: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    /// A message's JSON object, as an object (not its text).
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Data>,
    /// A `leave`'s reason, as `LeaveReason::as_str` writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    created_at: i64,
}

pub(crate) fn encode(node: &str, room: &RoomId, entries: &[Arc<Entry>]) -> Vec<u8> {
    let batch = Batch {
        node: Cow::Borrowed(node),
        room: Cow::Borrowed(room.as_str()),
        entries: entries
            .iter()
            .map(|e| WireEntry {
                seq: e.seq,
                id: e.id,
                kind: e.kind.as_str().to_owned(),
                sender: e.sender.to_string(),
                client_id: e.client_id.clone(),
                body: e.body.clone(),
                data: e.data.clone(),
                reason: e.reason.map(|r| r.as_str().to_owned()),
                created_at: e.created_at.millis(),
            })
            .collect(),
    };
    serde_json::to_vec(&batch).expect("entries serialize")
}

/// The room and its entries; `None` for a message that is not a batch.
pub(crate) fn decode(batch: &Batch<'_>) -> Option<(RoomId, Vec<Arc<Entry>>)> {
    let room = RoomId::new(&batch.room).ok()?;
    let entries = batch
        .entries
        .iter()
        .map(|w| {
            Some(Arc::new(Entry {
                room_id: room.clone(),
                seq: w.seq,
                id: w.id,
                kind: EntryKind::parse(&w.kind)?,
                sender: UserId::new(&w.sender).ok()?,
                client_id: w.client_id.clone(),
                body: w.body.clone(),
                data: w.data.clone(),
                // An unknown reason makes the batch unreadable, as an
                // unknown kind does: never delivered as something else.
                reason: match &w.reason {
                    Some(r) => Some(LeaveReason::parse(r)?),
                    None => None,
                },
                created_at: Timestamp(w.created_at),
            }))
        })
        .collect::<Option<Vec<_>>>()?;
    Some((room, entries))
}
