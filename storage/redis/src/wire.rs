//! What travels on the Redis channel, as JSON: either a node's freshly
//! stored entries of one room (`entries`), or one notice to a room's live
//! members (`notice`: a read receipt or a signal). The node id lets a
//! receiver skip its own messages (it has already delivered them locally).
//! Both go through the same outbox and channel, so a node's entries and
//! notices reach other nodes in the order it sent them.

use std::{borrow::Cow, sync::Arc};

use parlor_engine::{
    Data, Entry, EntryKind, LeaveReason, Notice, NoticeKind, RoomId, Timestamp, UserId,
};
use serde::{Deserialize, Serialize};

/// One message on the channel: `entries` or `notice`, never both.
#[derive(Serialize, Deserialize)]
pub(crate) struct Message<'a> {
    // Borrowed from the payload unless JSON escapes force a copy.
    #[serde(borrow)]
    pub(crate) node: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) room: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entries: Option<Vec<WireEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notice: Option<WireNotice>,
}

impl Message<'_> {
    /// How many entries the message carries (`None` for a notice).
    pub(crate) fn entry_count(&self) -> Option<u64> {
        self.entries.as_ref().map(|e| e.len() as u64)
    }
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
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
    /// The entry an `edit` or a `redaction` changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target_seq: Option<u64>,
    /// A `redaction`'s note (its own key here, so it is never read as a
    /// leave's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    redaction_reason: Option<String>,
    /// When an edited message was last edited, in ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    edited_at: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    redacted: bool,
    created_at: i64,
}

/// A notice: `type` names its kind (`receipt`, `signal`), the rest its
/// fields.
#[derive(Serialize, Deserialize)]
struct WireNotice {
    #[serde(rename = "type")]
    kind: String,
    sender: String,
    /// Ms since the epoch.
    at: i64,
    /// A receipt's read marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    /// A signal's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// A signal's JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Data>,
}

/// What a message read from the channel holds.
pub(crate) enum Decoded {
    /// A room's entries, ascending.
    Entries(RoomId, Vec<Arc<Entry>>),
    /// A notice.
    Notice(Arc<Notice>),
}

pub(crate) fn encode(node: &str, room: &RoomId, entries: &[Arc<Entry>]) -> Vec<u8> {
    let message = Message {
        node: Cow::Borrowed(node),
        room: Cow::Borrowed(room.as_str()),
        entries: Some(
            entries
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
                    target_seq: e.target_seq,
                    redaction_reason: e.redaction_reason.clone(),
                    edited_at: e.edited_at.map(Timestamp::millis),
                    redacted: e.redacted,
                    created_at: e.created_at.millis(),
                })
                .collect(),
        ),
        notice: None,
    };
    serde_json::to_vec(&message).expect("entries serialize")
}

/// The notice as a message for the channel; `None` for a kind this wire
/// does not carry (it is then delivered on its own node only).
pub(crate) fn encode_notice(node: &str, notice: &Notice) -> Option<Vec<u8>> {
    let (seq, name, data) = match &notice.kind {
        NoticeKind::Receipt { seq } => (Some(*seq), None, None),
        NoticeKind::Signal { name, data } => (None, Some(name.clone()), data.clone()),
        _ => return None,
    };
    let message = Message {
        node: Cow::Borrowed(node),
        room: Cow::Borrowed(notice.room_id.as_str()),
        entries: None,
        notice: Some(WireNotice {
            kind: notice.kind.as_str().to_owned(),
            sender: notice.sender.to_string(),
            at: notice.at.millis(),
            seq,
            name,
            data,
        }),
    };
    Some(serde_json::to_vec(&message).expect("notices serialize"))
}

/// What `message` holds; `None` for a message that holds neither entries
/// nor a notice, both, or anything this node cannot read (an unknown kind
/// or reason, a bad id): never delivered as something else.
pub(crate) fn decode(message: &Message<'_>) -> Option<Decoded> {
    let room = RoomId::new(&message.room).ok()?;
    match (&message.entries, &message.notice) {
        (Some(entries), None) => {
            let entries = entries
                .iter()
                .map(|w| decode_entry(&room, w).map(Arc::new))
                .collect::<Option<Vec<_>>>()?;
            Some(Decoded::Entries(room, entries))
        }
        (None, Some(notice)) => {
            let kind = match (notice.kind.as_str(), notice.seq, &notice.name) {
                ("receipt", Some(seq), None) => NoticeKind::Receipt { seq },
                ("signal", None, Some(name)) => NoticeKind::Signal {
                    name: name.clone(),
                    data: notice.data.clone(),
                },
                _ => return None,
            };
            Some(Decoded::Notice(Arc::new(Notice {
                room_id: room,
                sender: UserId::new(&notice.sender).ok()?,
                at: Timestamp(notice.at),
                kind,
            })))
        }
        _ => None,
    }
}

fn decode_entry(room: &RoomId, w: &WireEntry) -> Option<Entry> {
    Some(Entry {
        room_id: room.clone(),
        seq: w.seq,
        id: w.id,
        kind: EntryKind::parse(&w.kind)?,
        sender: UserId::new(&w.sender).ok()?,
        client_id: w.client_id.clone(),
        body: w.body.clone(),
        data: w.data.clone(),
        // An unknown reason makes the batch unreadable, as an unknown
        // kind does: never delivered as something else.
        reason: match &w.reason {
            Some(r) => Some(LeaveReason::parse(r)?),
            None => None,
        },
        target_seq: w.target_seq,
        redaction_reason: w.redaction_reason.clone(),
        edited_at: w.edited_at.map(Timestamp),
        redacted: w.redacted,
        created_at: Timestamp(w.created_at),
    })
}
