//! Room events: what a webhook hears (docs/contract.md §10).
//!
//! Almost every event *is* a log entry: a `join` is `member.joined`, a
//! `leave` `member.left`, and a message, edit or redaction
//! `entry.stored`. The few changes that write no entry — a room created,
//! closed or purged, a user banned — are [`ControlEvent`]s: the store
//! writes each as an *outbox* row in the same transaction as the change,
//! placed after the room's entry at `after_seq`, so a room's events form
//! one ordered stream that survives a crash like the log does.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::{
    entry::{Entry, EntryKind, Seq, Timestamp},
    error::{Error, ErrorKind, Result},
    ids::{RoomId, UserId},
    room::{Ban, StoredRoom},
};

/// A change that writes no log entry, kept as an outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlEvent {
    /// `room.created`: the room was stored (its creator's first commit).
    RoomCreated {
        /// Its creator, its first moderator (`None` for rooms stored before
        /// rooms had owners).
        owner: Option<UserId>,
        /// Its seats.
        capacity: u32,
        /// Its title.
        title: Option<String>,
        /// Whether it is private.
        private: bool,
    },
    /// `room.closed`: the room was closed; its log stays.
    RoomClosed,
    /// `room.purged`: the room and its log were deleted; the id is free.
    RoomPurged,
    /// `member.banned`: a moderator or the service banned a user (seated
    /// or not; a seated one also leaves with reason `kicked`).
    MemberBanned {
        /// Who.
        user: UserId,
        /// When the ban lapses (`None`: never).
        until: Option<Timestamp>,
        /// The moderator's note.
        reason: Option<String>,
    },
}

impl ControlEvent {
    /// `room.created` of `room` as stored.
    pub fn created(room: &StoredRoom) -> Self {
        ControlEvent::RoomCreated {
            owner: room.owner.clone(),
            capacity: room.capacity,
            title: room.title.clone(),
            private: room.private,
        }
    }

    /// `member.banned` of `user` with `ban`.
    pub fn banned(user: &UserId, ban: &Ban) -> Self {
        ControlEvent::MemberBanned {
            user: user.clone(),
            until: ban.until,
            reason: ban.reason.clone(),
        }
    }

    /// The event's `type` on the wire, also the outbox row's `kind`.
    pub fn type_name(&self) -> &'static str {
        match self {
            ControlEvent::RoomCreated { .. } => "room.created",
            ControlEvent::RoomClosed => "room.closed",
            ControlEvent::RoomPurged => "room.purged",
            ControlEvent::MemberBanned { .. } => "member.banned",
        }
    }

    /// The event's `data` object on the wire, also the outbox row's
    /// payload: `room.created` `{"owner","capacity","title","private"}`,
    /// `member.banned` `{"user_id","until","reason"}` (`until` RFC 3339 or
    /// null), the others `{}`.
    pub fn data(&self) -> Map<String, Value> {
        let value = match self {
            ControlEvent::RoomCreated {
                owner,
                capacity,
                title,
                private,
            } => json!({
                "owner": owner.as_ref().map(UserId::as_str),
                "capacity": capacity,
                "title": title,
                "private": private,
            }),
            ControlEvent::RoomClosed | ControlEvent::RoomPurged => json!({}),
            ControlEvent::MemberBanned {
                user,
                until,
                reason,
            } => json!({
                "user_id": user.as_str(),
                "until": until.map(|t| t.to_string()),
                "reason": reason,
            }),
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The inverse of [`type_name`](Self::type_name) and
    /// [`data`](Self::data), for a store reading its outbox back.
    ///
    /// Errors: `INTERNAL` for a row no Parlor wrote.
    pub fn from_stored(kind: &str, data: &Map<String, Value>) -> Result<Self> {
        let bad = || Error::new(ErrorKind::Internal, "stored outbox row is invalid");
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        let user = |key: &str| {
            text(key)
                .map(|t| UserId::new(&t))
                .transpose()
                .map_err(|_| bad())
        };
        Ok(match kind {
            "room.created" => ControlEvent::RoomCreated {
                owner: user("owner")?,
                capacity: data
                    .get("capacity")
                    .and_then(Value::as_u64)
                    .and_then(|c| u32::try_from(c).ok())
                    .ok_or_else(bad)?,
                title: text("title"),
                private: data
                    .get("private")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            "room.closed" => ControlEvent::RoomClosed,
            "room.purged" => ControlEvent::RoomPurged,
            "member.banned" => ControlEvent::MemberBanned {
                user: user("user_id")?.ok_or_else(bad)?,
                until: text("until")
                    .map(|t| Timestamp::parse_rfc3339(&t).ok_or_else(bad))
                    .transpose()?,
                reason: text("reason"),
            },
            _ => return Err(bad()),
        })
    }
}

/// An outbox row: a [`ControlEvent`] as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    /// The row's number: increasing over the whole store, never reused.
    pub outbox_id: u64,
    /// The event's id (a UUID v7, made when the row was written).
    pub id: Uuid,
    /// The room.
    pub room_id: RoomId,
    /// The room's `last_seq` when it was written: it comes after that
    /// entry and before the next. 0 once the room was purged (the log it
    /// sat in is gone).
    pub after_seq: Seq,
    /// When it happened (server clock).
    pub at: Timestamp,
    /// What happened.
    pub event: ControlEvent,
}

/// One event of a room's stream, as a webhook receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// A log entry: `member.joined`, `member.left` or `entry.stored`.
    Entry(Entry),
    /// An outbox row.
    Control(OutboxEvent),
}

impl RoomEvent {
    /// The event's id, stable across redeliveries and unique across a
    /// room id's incarnations (a purged id created again): the entry's or
    /// the outbox row's UUID.
    pub fn id(&self) -> Uuid {
        match self {
            RoomEvent::Entry(e) => e.id,
            RoomEvent::Control(o) => o.id,
        }
    }

    /// `member.joined`, `member.left`, `entry.stored`, or a control
    /// event's [`type_name`](ControlEvent::type_name).
    pub fn type_name(&self) -> &'static str {
        match self {
            RoomEvent::Entry(e) => match e.kind {
                EntryKind::Join => "member.joined",
                EntryKind::Leave => "member.left",
                EntryKind::Text | EntryKind::System | EntryKind::Edit | EntryKind::Redaction => {
                    "entry.stored"
                }
            },
            RoomEvent::Control(o) => o.event.type_name(),
        }
    }

    /// The room.
    pub fn room_id(&self) -> &RoomId {
        match self {
            RoomEvent::Entry(e) => &e.room_id,
            RoomEvent::Control(o) => &o.room_id,
        }
    }

    /// The entry's seq; `None` for a control event.
    pub fn seq(&self) -> Option<Seq> {
        match self {
            RoomEvent::Entry(e) => Some(e.seq),
            RoomEvent::Control(_) => None,
        }
    }

    /// When it happened (server clock).
    pub fn at(&self) -> Timestamp {
        match self {
            RoomEvent::Entry(e) => e.created_at,
            RoomEvent::Control(o) => o.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_events_read_back_as_written() {
        let events = [
            ControlEvent::RoomCreated {
                owner: Some(UserId::new("ann").unwrap()),
                capacity: 7,
                title: Some("Lobby".into()),
                private: true,
            },
            ControlEvent::RoomCreated {
                owner: None,
                capacity: 1,
                title: None,
                private: false,
            },
            ControlEvent::RoomClosed,
            ControlEvent::RoomPurged,
            ControlEvent::MemberBanned {
                user: UserId::new("bob").unwrap(),
                until: Some(Timestamp(1_700_000_000_123)),
                reason: Some("spam".into()),
            },
            ControlEvent::MemberBanned {
                user: UserId::new("bob").unwrap(),
                until: None,
                reason: None,
            },
        ];
        for event in events {
            let back = ControlEvent::from_stored(event.type_name(), &event.data()).unwrap();
            assert_eq!(back, event);
        }
        assert!(ControlEvent::from_stored("room.exploded", &Map::new()).is_err());
        assert!(ControlEvent::from_stored("member.banned", &Map::new()).is_err());
    }
}
