//! The contract's JSON shapes, written once (docs/contract.md §3, §4, §5,
//! §7): an entry, the facts of a join, the HTTP answers and the error body.
//! Each borrows from the engine's value it encodes and serializes with
//! serde; the field order is the contract's.
//!
//! The raw WebSocket puts [`EntryJson`] and [`JoinedJson`] behind a `"type"`
//! key in its frames; HTTP answers with them as they are; SSE sends them as
//! event data.

use parlor_engine::{
    Data, Entry, Error, ErrorKind, Joined, Member, Reservation, RoomInfo, RoomPage,
};
use serde::Serialize;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, RefOr, Schema, Type},
};

/// A log entry (docs/contract.md §3): `{"room_id", "seq", "id", "kind",
/// "sender", "client_id", "body", "data"?, "reason"?, "created_at"}`.
///
/// `id` is the entry's UUID as hyphenated text; `kind` is `text`, `join`,
/// `leave` or `system`; `client_id` and `body` are null for `join` and
/// `leave` (`body` may be null on `system`); `data`, the app's JSON object,
/// is present only when the message carries one; `reason` only on a
/// `leave` that took a seat away (`kicked`, `room_closed`); `created_at` is
/// the server's clock, RFC 3339 in UTC with milliseconds
/// (`2026-11-21T23:25:28.781Z`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Entry)]
pub struct EntryJson<'a> {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    room_id: &'a str,
    seq: u64,
    #[schema(format = "uuid")]
    id: String,
    #[schema(schema_with = entry_kind_schema)]
    kind: &'static str,
    #[schema(pattern = "^[A-Za-z0-9_.@-]{1,64}$")]
    sender: &'a str,
    /// The sender's `client_id`; null for `join` and `leave`.
    #[schema(required = true)]
    client_id: Option<&'a str>,
    /// The text; null for `join` and `leave`.
    #[schema(required = true)]
    body: Option<&'a str>,
    /// The app's JSON object; present only when the message carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, required = false)]
    data: Option<&'a Data>,
    /// Why a `leave` took the seat away; present only then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = leave_reason_schema, required = false)]
    reason: Option<&'static str>,
    #[schema(format = DateTime)]
    created_at: String,
}

/// `kind`'s schema: the contract's three kinds.
fn entry_kind_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["text", "join", "leave", "system"]))
}

fn leave_reason_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["kicked", "room_closed"]))
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
            data: e.data.as_ref(),
            reason: e.reason.map(|r| r.as_str()),
            created_at: e.created_at.to_string(),
        }
    }
}

/// The facts of a commit (docs/contract.md §5 `joined`):
/// `{"room_id", "capacity", "occupancy", "last_seq", "members"}`, with
/// `members` sorted (users whose seats are joined or in grace) and
/// `last_seq` counting the commit's own `join` entry.
#[derive(Debug, Clone, Serialize)]
pub struct JoinedJson<'a> {
    room_id: &'a str,
    capacity: u32,
    occupancy: u32,
    last_seq: u64,
    members: Vec<&'a str>,
}

impl<'a> From<&'a Joined> for JoinedJson<'a> {
    fn from(j: &'a Joined) -> Self {
        JoinedJson {
            room_id: j.room_id.as_str(),
            capacity: j.capacity,
            occupancy: j.occupancy,
            last_seq: j.last_seq,
            members: j.members.iter().map(|m| m.as_str()).collect(),
        }
    }
}

/// A reservation's ticket (docs/contract.md §4, `POST …/reservations`):
/// `{"ticket", "room_id", "expires_at"}`, `expires_at` in RFC 3339 (UTC, ms).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Reservation)]
pub struct ReservationJson<'a> {
    /// Opaque; `join` it on a socket (§5) before `expires_at`.
    ticket: &'a str,
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    room_id: &'a str,
    #[schema(format = DateTime)]
    expires_at: String,
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

/// A stored room (docs/contract.md §4, `GET /v1/rooms/{room_id}`):
/// `{"room_id", "title", "capacity", "occupancy", "last_seq", "private",
/// "closed"}`, `title` null when the room has none.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Room)]
pub struct RoomJson<'a> {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    room_id: &'a str,
    /// Null when the room has none.
    #[schema(required = true)]
    title: Option<&'a str>,
    capacity: u32,
    occupancy: u32,
    last_seq: u64,
    private: bool,
    closed: bool,
}

/// A page of the room listing (docs/contract.md §4, `GET /v1/rooms`):
/// `{"rooms": [room, …], "next": <room id or null>}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = RoomPage)]
pub struct RoomsJson<'a> {
    rooms: Vec<RoomJson<'a>>,
    /// Where the next page starts (pass it as `after`); null at the end.
    #[schema(required = true, pattern = "^[A-Za-z0-9_-]{1,64}$")]
    next: Option<&'a str>,
}

impl<'a> From<&'a RoomPage> for RoomsJson<'a> {
    fn from(page: &'a RoomPage) -> Self {
        RoomsJson {
            rooms: page.rooms.iter().map(RoomJson::from).collect(),
            next: page.next.as_ref().map(|id| id.as_str()),
        }
    }
}

/// One seat of a room's presence (docs/contract.md §4,
/// `GET …/members`): `{"user_id", "state", "since"}`, `state` one of
/// `joined`, `grace`, `reserved`; `since` RFC 3339 (UTC, ms).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Member)]
pub struct MemberJson<'a> {
    #[schema(pattern = "^[A-Za-z0-9_.@-]{1,64}$")]
    user_id: &'a str,
    #[schema(schema_with = member_state_schema)]
    state: &'static str,
    #[schema(format = DateTime)]
    since: String,
}

fn member_state_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["joined", "grace", "reserved"]))
}

impl<'a> From<&'a Member> for MemberJson<'a> {
    fn from(m: &'a Member) -> Self {
        MemberJson {
            user_id: m.user_id.as_str(),
            state: m.state.as_str(),
            since: m.since.to_string(),
        }
    }
}

/// A room's presence: `{"members": [member, …]}`, sorted by user.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Members)]
pub struct MembersJson<'a> {
    members: Vec<MemberJson<'a>>,
}

impl<'a> From<&'a [Member]> for MembersJson<'a> {
    fn from(members: &'a [Member]) -> Self {
        MembersJson {
            members: members.iter().map(MemberJson::from).collect(),
        }
    }
}

impl<'a> From<&'a RoomInfo> for RoomJson<'a> {
    fn from(r: &'a RoomInfo) -> Self {
        RoomJson {
            room_id: r.room_id.as_str(),
            title: r.title.as_deref(),
            capacity: r.capacity,
            occupancy: r.occupancy,
            last_seq: r.last_seq,
            private: r.private,
            closed: r.closed,
        }
    }
}

/// A page of history (docs/contract.md §4, `GET …/messages`):
/// `{"messages": [entry, …]}`, in the order given (ascending by seq).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Messages)]
pub struct MessagesJson<'a> {
    messages: Vec<EntryJson<'a>>,
}

impl<'a> From<&'a [Entry]> for MessagesJson<'a> {
    fn from(entries: &'a [Entry]) -> Self {
        MessagesJson {
            messages: entries.iter().map(EntryJson::from).collect(),
        }
    }
}

/// An error (docs/contract.md §7): `{"code", "message"}`. The message is
/// [`Error::log_and_client_message`]: for `INTERNAL`, only a trace id (the details
/// are logged under it when this value is made), so backend text never
/// reaches a client. Make it once per answer.
///
/// Inside [`ErrorBody`] on HTTP and SSE; flattened into the raw WebSocket's
/// `error` frame.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(
    as = Error,
    description = "An error (docs/contract.md §7): its code, and a message safe to show."
)]
pub struct ErrorJson {
    #[schema(value_type = ErrorCode)]
    code: &'static str,
    /// Safe to show; for `INTERNAL`, only a trace id.
    message: String,
    /// For `RATE_LIMITED`: milliseconds until the same request may succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = u64)]
    retry_after_ms: Option<u64>,
}

/// The error codes of docs/contract.md §7 ([`ErrorKind::ALL`]) as a schema:
/// a string enum named `ErrorCode`, the `code` of [`ErrorJson`]. Only a
/// schema; the codes themselves come from [`ErrorKind::code`].
pub struct ErrorCode;

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!(
                "A docs/contract.md §7 code, and the HTTP status that answers it: {}.",
                ErrorKind::ALL
                    .iter()
                    .map(|k| format!("{} {}", k.code(), k.http_status()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
            .enum_values(Some(ErrorKind::ALL.iter().map(|k| k.code())))
            .into()
    }
}

impl ToSchema for ErrorCode {}

impl From<&Error> for ErrorJson {
    fn from(err: &Error) -> Self {
        ErrorJson {
            code: err.code(),
            message: err.log_and_client_message(),
            retry_after_ms: err.retry_after_duration().map(|d| d.as_millis() as u64),
        }
    }
}

/// The body of every refusal (docs/contract.md §4): `{"error": {"code",
/// "message"}}`; also the data of SSE's `error` event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(description = "The body of every refusal (docs/contract.md §4).")]
pub struct ErrorBody {
    error: ErrorJson,
}

impl From<&Error> for ErrorBody {
    fn from(err: &Error) -> Self {
        ErrorBody { error: err.into() }
    }
}

/// `value` as JSON text. The shapes here always serialize (strings, numbers
/// and lists of them), so this cannot fail.
pub fn to_text<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("the contract's shapes always serialize")
}

#[cfg(test)]
mod tests {
    use parlor_engine::{ErrorKind, NewEntry, RoomId, Timestamp, UserId};

    use super::*;

    fn entry() -> Entry {
        let mut e = NewEntry::text(
            RoomId::new("lobby").unwrap(),
            UserId::new("ann").unwrap(),
            "c-1",
            "hi",
        )
        .at(7);
        e.created_at = Timestamp::MAX;
        e
    }

    #[test]
    fn an_entry_has_the_contract_fields_in_order() {
        let e = entry();
        assert_eq!(
            to_text(&EntryJson::from(&e)),
            format!(
                r#"{{"room_id":"lobby","seq":7,"id":"{}","kind":"text","sender":"ann","client_id":"c-1","body":"hi","created_at":"9999-12-31T23:59:59.999Z"}}"#,
                e.id
            )
        );
        let leave = NewEntry::membership(
            RoomId::new("lobby").unwrap(),
            UserId::new("ann").unwrap(),
            parlor_engine::EntryKind::Leave,
        )
        .at(8);
        let json = serde_json::to_value(EntryJson::from(&leave)).unwrap();
        assert_eq!(json["kind"], "leave");
        assert!(json["client_id"].is_null() && json["body"].is_null());
        let page = [e, leave];
        let page = serde_json::to_value(MessagesJson::from(&page[..])).unwrap();
        assert_eq!(page["messages"][1]["seq"], 8);
    }

    #[test]
    fn joined_room_and_reservation() {
        let joined = Joined {
            room_id: RoomId::new("lobby").unwrap(),
            capacity: 10,
            occupancy: 2,
            last_seq: 15,
            members: vec![UserId::new("alice").unwrap(), UserId::new("bob").unwrap()],
        };
        assert_eq!(
            to_text(&JoinedJson::from(&joined)),
            r#"{"room_id":"lobby","capacity":10,"occupancy":2,"last_seq":15,"members":["alice","bob"]}"#
        );
        let room = RoomInfo {
            room_id: RoomId::new("lobby").unwrap(),
            title: None,
            capacity: 10,
            occupancy: 1,
            last_seq: 3,
            private: false,
            closed: true,
        };
        assert_eq!(
            to_text(&RoomJson::from(&room)),
            r#"{"room_id":"lobby","title":null,"capacity":10,"occupancy":1,"last_seq":3,"private":false,"closed":true}"#
        );
        let reservation = Reservation {
            ticket: "t".into(),
            room_id: RoomId::new("lobby").unwrap(),
            expires_at: Timestamp::MAX,
        };
        assert_eq!(
            to_text(&ReservationJson::from(&reservation)),
            r#"{"ticket":"t","room_id":"lobby","expires_at":"9999-12-31T23:59:59.999Z"}"#
        );
    }

    #[test]
    fn an_error_body_has_code_and_message() {
        let err = Error::new(ErrorKind::RoomFull, "the room is full");
        assert_eq!(
            to_text(&ErrorBody::from(&err)),
            r#"{"error":{"code":"ROOM_FULL","message":"the room is full"}}"#
        );
    }
}
