//! The JSON shapes of docs/contract.md §4–§5: what clients send and what they get.

use parlor_engine::{Entry, Joined, Reservation, RoomInfo};
use serde::{Deserialize, Serialize};

/// A frame from the client (docs/contract.md §5).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrame {
    Hello {
        token: String,
    },
    Join {
        ticket: String,
        #[serde(default)]
        after_seq: Option<u64>,
    },
    Send {
        room_id: String,
        client_id: String,
        body: String,
    },
    Leave {
        room_id: String,
    },
    /// A heartbeat a browser's JavaScript can see (it never sees ping
    /// frames): answered with `pong`, before `hello` too.
    Ping,
    /// Renews the connection's credential in place (`docs/protocol.md`,
    /// "Token renewal").
    Refresh {
        token: String,
    },
}

/// An entry as JSON, on HTTP and (with `"type":"entry"`) on the WebSocket.
#[derive(Debug, Serialize)]
pub(crate) struct EntryJson<'a> {
    pub(crate) room_id: &'a str,
    pub(crate) seq: u64,
    pub(crate) id: String,
    pub(crate) kind: &'static str,
    pub(crate) sender: &'a str,
    pub(crate) client_id: Option<&'a str>,
    pub(crate) body: Option<&'a str>,
    pub(crate) created_at: String,
}

impl<'a> From<&'a Entry> for EntryJson<'a> {
    fn from(e: &'a Entry) -> Self {
        EntryJson {
            room_id: e.room_id.as_str(),
            seq: e.seq,
            id: e.id.to_string(),
            kind: e.kind.as_str(),
            sender: e.sender.as_str(),
            client_id: e.client_id.as_deref(),
            body: e.body.as_deref(),
            created_at: e.created_at.to_string(),
        }
    }
}

/// A frame to the client (docs/contract.md §5).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerFrame<'a> {
    Welcome {
        user_id: &'a str,
        /// How often the server sends a ping frame, in ms.
        ping_interval_ms: u64,
        /// How much longer than the interval a silent peer is given, in ms:
        /// the server is lost once silent for interval + timeout.
        ping_timeout_ms: u64,
        /// When the credential expires (RFC 3339), or null.
        expires_at: Option<String>,
    },
    Pong,
    Refreshed {
        /// The renewed credential's expiry (RFC 3339), or null.
        expires_at: Option<String>,
    },
    Joined {
        room_id: &'a str,
        capacity: u32,
        occupancy: u32,
        last_seq: u64,
        members: Vec<&'a str>,
    },
    Entry(EntryJson<'a>),
    Ack {
        room_id: &'a str,
        client_id: &'a str,
        seq: u64,
        id: String,
        created_at: String,
    },
    Left {
        room_id: &'a str,
    },
    Error {
        code: &'static str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        room_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        ticket: Option<&'a str>,
    },
}

impl ServerFrame<'_> {
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("frames always serialize")
    }
}

impl<'a> ServerFrame<'a> {
    pub(crate) fn joined(j: &'a Joined) -> Self {
        ServerFrame::Joined {
            room_id: j.room_id.as_str(),
            capacity: j.capacity,
            occupancy: j.occupancy,
            last_seq: j.last_seq,
            members: j.members.iter().map(|m| m.as_str()).collect(),
        }
    }

    pub(crate) fn ack(e: &'a Entry) -> Self {
        ServerFrame::Ack {
            room_id: e.room_id.as_str(),
            client_id: e.client_id.as_deref().unwrap_or_default(),
            seq: e.seq,
            id: e.id.to_string(),
            created_at: e.created_at.to_string(),
        }
    }
}

/// `POST /v1/rooms/{id}/reservations` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReserveBody {
    #[serde(default)]
    pub(crate) create: Option<CreateBody>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateBody {
    pub(crate) capacity: u32,
    #[serde(default)]
    pub(crate) title: Option<String>,
}

/// `POST /v1/rooms/{id}/messages` body.
#[derive(Debug, Deserialize)]
pub(crate) struct SendBody {
    pub(crate) client_id: String,
    pub(crate) body: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct ReservationJson<'a> {
    pub(crate) ticket: &'a str,
    pub(crate) room_id: &'a str,
    pub(crate) expires_at: String,
}

impl<'a> From<&'a Reservation> for ReservationJson<'a> {
    fn from(r: &'a Reservation) -> Self {
        ReservationJson {
            ticket: &r.ticket,
            room_id: r.room_id.as_str(),
            expires_at: r.expires_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct RoomJson<'a> {
    pub(crate) room_id: &'a str,
    pub(crate) title: Option<&'a str>,
    pub(crate) capacity: u32,
    pub(crate) occupancy: u32,
    pub(crate) last_seq: u64,
}

impl<'a> From<&'a RoomInfo> for RoomJson<'a> {
    fn from(r: &'a RoomInfo) -> Self {
        RoomJson {
            room_id: r.room_id.as_str(),
            title: r.title.as_deref(),
            capacity: r.capacity,
            occupancy: r.occupancy,
            last_seq: r.last_seq,
        }
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct MessagesJson<'a> {
    pub(crate) messages: Vec<EntryJson<'a>>,
}
