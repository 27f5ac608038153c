//! The raw WebSocket's frames (docs/contract.md §5) and the HTTP request
//! bodies (§4). What they carry — entries, the facts of a join, errors, the
//! HTTP answers — is encoded by `parlor-wire`, as for every JSON transport.

use parlor_engine::{Data, Entry, Joined};
use parlor_wire::{EntryJson, ErrorJson, JoinedJson};
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
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        data: Option<Data>,
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
    Joined(JoinedJson<'a>),
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
        /// Why the seat was taken away (`kicked`, `room_closed`); absent
        /// for a leave of the user's own.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    Error {
        /// `code` and `message`.
        #[serde(flatten)]
        error: ErrorJson,
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
        parlor_wire::to_text(self)
    }
}

impl<'a> ServerFrame<'a> {
    pub(crate) fn joined(j: &'a Joined) -> Self {
        ServerFrame::Joined(j.into())
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
    /// A private room (docs/contract.md §2).
    #[serde(default)]
    pub(crate) private: bool,
}

/// The body of a route that takes none yet (`PUT`/`DELETE` of invites,
/// moderators and bans, `DELETE` of a room): an empty body reads as `{}`;
/// unknown fields are refused, so a later field cannot be silently ignored
/// by an older server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmptyBody {}

/// `POST /v1/rooms/{id}/messages` body: a user's text needs `body`; a
/// service's system entry needs `body`, `data` or both.
#[derive(Debug, Deserialize)]
pub(crate) struct SendBody {
    pub(crate) client_id: String,
    #[serde(default)]
    pub(crate) body: Option<String>,
    #[serde(default)]
    pub(crate) data: Option<Data>,
}

/// `PATCH /v1/rooms/{id}` body: each field given replaces the room's;
/// `"title": null` clears the title.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchRoomBody {
    #[serde(default, deserialize_with = "present")]
    pub(crate) title: Option<Option<String>>,
    #[serde(default)]
    pub(crate) capacity: Option<u32>,
}

/// A field that is present, null or not: `Some(None)` for `null`, `None`
/// (the default) when absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// `POST /v1/rooms/{id}/kicks/{user}` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KickBody {
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

/// `PUT /v1/rooms/{id}/bans/{user}` body: `until` in RFC 3339 UTC.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BanBody {
    #[serde(default)]
    pub(crate) until: Option<String>,
    #[serde(default)]
    pub(crate) reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use parlor_engine::{Error, ErrorKind, NewEntry, RoomId, Timestamp, UserId};

    use super::*;

    /// The frames' exact text: the shapes from `parlor-wire` keep the
    /// contract's field order behind `"type"`.
    #[test]
    fn frames_read_as_the_contract_writes_them() {
        let mut entry = NewEntry::text(
            RoomId::new("lobby").unwrap(),
            UserId::new("ann").unwrap(),
            "c-1",
            "hi",
        )
        .at(16);
        entry.created_at = Timestamp::MAX;
        let at = "9999-12-31T23:59:59.999Z";
        let id = entry.id;
        assert_eq!(
            ServerFrame::Entry((&entry).into()).to_json(),
            format!(
                r#"{{"type":"entry","room_id":"lobby","seq":16,"id":"{id}","kind":"text","sender":"ann","client_id":"c-1","body":"hi","created_at":"{at}"}}"#
            )
        );
        assert_eq!(
            ServerFrame::ack(&entry).to_json(),
            format!(
                r#"{{"type":"ack","room_id":"lobby","client_id":"c-1","seq":16,"id":"{id}","created_at":"{at}"}}"#
            )
        );
        let joined = Joined {
            room_id: RoomId::new("lobby").unwrap(),
            capacity: 10,
            occupancy: 2,
            last_seq: 15,
            members: vec![UserId::new("alice").unwrap(), UserId::new("bob").unwrap()],
        };
        assert_eq!(
            ServerFrame::joined(&joined).to_json(),
            r#"{"type":"joined","room_id":"lobby","capacity":10,"occupancy":2,"last_seq":15,"members":["alice","bob"]}"#
        );
        let err = Error::new(ErrorKind::NotAMember, "not a member");
        let frame = |room_id, client_id, ticket| {
            ServerFrame::Error {
                error: (&err).into(),
                room_id,
                client_id,
                ticket,
            }
            .to_json()
        };
        assert_eq!(
            frame(Some("x"), Some("c-2"), None),
            r#"{"type":"error","code":"NOT_A_MEMBER","message":"not a member","room_id":"x","client_id":"c-2"}"#
        );
        assert_eq!(
            frame(None, None, Some("t")),
            r#"{"type":"error","code":"NOT_A_MEMBER","message":"not a member","ticket":"t"}"#
        );
        assert_eq!(
            ServerFrame::Left {
                room_id: "lobby",
                reason: None
            }
            .to_json(),
            r#"{"type":"left","room_id":"lobby"}"#
        );
        assert_eq!(
            ServerFrame::Left {
                room_id: "lobby",
                reason: Some("kicked")
            }
            .to_json(),
            r#"{"type":"left","room_id":"lobby","reason":"kicked"}"#
        );
    }
}
