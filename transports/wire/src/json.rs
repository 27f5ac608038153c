//! The contract's JSON shapes, written once (docs/contract.md §3, §4, §5,
//! §7): an entry, the facts of a join, the HTTP answers and the error body.
//! Each borrows from the engine's value it encodes and serializes with
//! serde; the field order is the contract's.
//!
//! The raw WebSocket puts [`EntryJson`] and [`JoinedJson`] behind a `"type"`
//! key in its frames; HTTP answers with them as they are; SSE sends them as
//! event data.

use parlor_engine::{
    Data, Entry, Error, ErrorKind, HistoryPage, Joined, Member, Notice, NoticeKind, ReadState,
    Reservation, Retention, RoomId, RoomInfo, RoomPage, UserId,
};
use serde::Serialize;
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{ObjectBuilder, RefOr, Schema, Type},
};

/// A log entry (docs/contract.md §3): `{"room_id", "seq", "id", "kind",
/// "sender", "client_id", "body", "data"?, "target_seq"?, "reason"?,
/// "edited_at"?, "redacted"?, "created_at"}`.
///
/// `id` is the entry's UUID as hyphenated text; `kind` is `text`, `join`,
/// `leave`, `system`, `edit` or `redaction`; `client_id` and `body` are
/// null for `join` and `leave` (`body` may be null on a message sent with
/// `data` alone, and is null on a redacted message and on a `redaction`);
/// `data`, the app's JSON object, is present only when the message (or the
/// `edit`) carries one; `target_seq` only on an `edit` or a `redaction`
/// (the entry it changes); `reason` on a `leave` that took a seat away
/// (`kicked`, `room_closed`) and on a `redaction` given a note; `edited_at`
/// only on an edited message (the latest edit's time); `redacted` only when
/// true, on a redacted message and its `edit` entries. Times are the
/// server's clock, RFC 3339 in UTC with milliseconds
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
    /// The sender's `client_id`; null for `join`, `leave` and `redaction`.
    #[schema(required = true)]
    client_id: Option<&'a str>,
    /// The text; null for `join`, `leave`, `redaction`, a redacted message
    /// and a message sent with `data` alone.
    #[schema(required = true)]
    body: Option<&'a str>,
    /// The app's JSON object; present only when the message carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, required = false)]
    data: Option<&'a Data>,
    /// The seq of the message an `edit` or a `redaction` changes; present
    /// only on those.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    target_seq: Option<u64>,
    /// On a `leave` that took the seat away: `kicked` or `room_closed`; on
    /// a `redaction`: the redactor's note (at most 500 characters), when
    /// given. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    reason: Option<&'a str>,
    /// When the message was last edited (its body and data are that
    /// edit's); present only on an edited message.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, required = false)]
    edited_at: Option<String>,
    /// True on a redacted message and on its `edit` entries, whose body and
    /// data were erased; present only then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    redacted: bool,
    #[schema(format = DateTime)]
    created_at: String,
}

/// `kind`'s schema: the contract's six kinds.
fn entry_kind_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(parlor_engine::EntryKind::ALL.map(|k| k.as_str())))
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
            target_seq: e.target_seq,
            // One key for both: a leave's reason, a redaction's note.
            reason: e
                .reason
                .map(|r| r.as_str())
                .or(e.redaction_reason.as_deref()),
            edited_at: e.edited_at.map(|t| t.to_string()),
            redacted: e.redacted,
            created_at: e.created_at.to_string(),
        }
    }
}

/// The facts of a commit (docs/contract.md §5 `joined`):
/// `{"room_id", "capacity", "occupancy", "last_seq", "first_seq",
/// "resumed", "member_count", "members"}`, with `member_count` the users
/// whose seats are joined or in grace and `members` the first 100 of them
/// by user id, sorted (the rest through presence), `last_seq` counting the
/// commit's own `join` entry, `first_seq` the oldest seq the room still
/// stores, and `resumed` false
/// when retention pruned entries after the asked-for `after_seq` (the
/// stream then starts at `first_seq`; docs/contract.md §2, "Retention").
#[derive(Debug, Clone, Serialize)]
pub struct JoinedJson<'a> {
    room_id: &'a str,
    capacity: u32,
    occupancy: u32,
    last_seq: u64,
    first_seq: u64,
    resumed: bool,
    member_count: u32,
    members: Vec<&'a str>,
}

impl<'a> From<&'a Joined> for JoinedJson<'a> {
    fn from(j: &'a Joined) -> Self {
        JoinedJson {
            room_id: j.room_id.as_str(),
            capacity: j.capacity,
            occupancy: j.occupancy,
            last_seq: j.last_seq,
            first_seq: j.first_seq,
            resumed: j.resumed,
            member_count: j.member_count,
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
/// `{"room_id", "title", "capacity", "occupancy", "last_seq", "first_seq",
/// "retention", "private", "closed"}` and, for a user (not a service),
/// `"last_read_seq", "unread"`; one room's facts (not the listing) add
/// `"can_moderate"`. `title` is null when the room has none,
/// `retention` when the server's applies.
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
    /// The oldest seq still stored (retention prunes below it); `last_seq
    /// + 1` when none is.
    first_seq: u64,
    /// The room's own retention; null when the server's applies.
    #[schema(required = true)]
    retention: Option<RetentionJson>,
    private: bool,
    closed: bool,
    /// The caller's read marker (0: never marked); present for a user, not
    /// for a service.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    last_read_seq: Option<u64>,
    /// Stored `text` and `system` entries after the marker that others
    /// sent and that are not redacted; present with `last_read_seq`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    unread: Option<u64>,
    /// Whether the caller may moderate the room (kick, ban, redact others'
    /// messages); in one room's facts, not in the listing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    can_moderate: Option<bool>,
}

/// A room's own retention (docs/contract.md §2, "Retention"):
/// `{"max_entries", "max_age"}`, each null when it sets no bound;
/// `max_age` as humantime prints it (`"30days"`, `"12h 30m"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Retention)]
pub struct RetentionJson {
    /// Keep at most this many newest entries; null: no bound.
    #[schema(required = true, minimum = 1, maximum = 9223372036854775807i64)]
    max_entries: Option<u64>,
    /// Keep entries younger than this (a humantime duration, at least 1 s);
    /// null: no bound.
    #[schema(required = true)]
    max_age: Option<String>,
}

impl From<&Retention> for RetentionJson {
    fn from(r: &Retention) -> Self {
        RetentionJson {
            max_entries: r.max_entries,
            max_age: r
                .max_age
                .map(|age| humantime::format_duration(age).to_string()),
        }
    }
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
            first_seq: r.first_seq,
            retention: r.retention.as_ref().map(RetentionJson::from),
            private: r.private,
            closed: r.closed,
            last_read_seq: r.read.map(|read| read.last_read_seq),
            unread: r.read.map(|read| read.unread),
            can_moderate: r.can_moderate,
        }
    }
}

/// A page of history (docs/contract.md §4, `GET …/messages`):
/// `{"messages": [entry, …], "first_seq"}`, the entries ascending by seq
/// and `first_seq` the oldest seq the room still stores (entries below it
/// were pruned; docs/contract.md §2, "Retention").
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Messages)]
pub struct MessagesJson<'a> {
    messages: Vec<EntryJson<'a>>,
    /// The oldest seq still stored; `last_seq + 1` when none is.
    first_seq: u64,
}

impl<'a> From<&'a HistoryPage> for MessagesJson<'a> {
    fn from(page: &'a HistoryPage) -> Self {
        MessagesJson {
            messages: page.entries.iter().map(EntryJson::from).collect(),
            first_seq: page.first_seq,
        }
    }
}

/// A user's read state in a room (docs/contract.md §2, "Read markers"):
/// `{"room_id", "last_read_seq", "unread"}`, the answer to `PUT
/// …/read` and, behind `"type":"read_state"`, to the raw WebSocket's
/// `read`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReadState)]
pub struct ReadStateJson<'a> {
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    room_id: &'a str,
    /// The seq marked read last; 0 before any marker.
    last_read_seq: u64,
    /// Stored `text` and `system` entries after it that others sent and
    /// that are not redacted.
    unread: u64,
}

impl<'a> ReadStateJson<'a> {
    /// `state` of the caller in `room_id`.
    pub fn new(room_id: &'a RoomId, state: &ReadState) -> Self {
        ReadStateJson {
            room_id: room_id.as_str(),
            last_read_seq: state.last_read_seq,
            unread: state.unread,
        }
    }
}

/// One user's read marker as a service reads it (docs/contract.md §4,
/// `GET …/read/{user_id}`): `{"user_id", "last_read_seq", "unread"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ReadMarker)]
pub struct ReadMarkerJson<'a> {
    #[schema(pattern = "^[A-Za-z0-9_.@-]{1,64}$")]
    user_id: &'a str,
    /// The seq the user marked read last; 0 before any marker.
    last_read_seq: u64,
    /// Stored `text` and `system` entries after it that others sent and
    /// that are not redacted.
    unread: u64,
}

impl<'a> ReadMarkerJson<'a> {
    /// `user`'s `state`.
    pub fn new(user: &'a UserId, state: &ReadState) -> Self {
        ReadMarkerJson {
            user_id: user.as_str(),
            last_read_seq: state.last_read_seq,
            unread: state.unread,
        }
    }
}

/// A read receipt (docs/contract.md §2, "Read markers"): `{"room_id",
/// "user_id", "seq", "at"}` — another member marked the room read up to
/// `seq`, at `at` (RFC 3339, UTC, ms). Not a log entry: no seq of its own,
/// not in history, not replayed on resume. The raw WebSocket sends it
/// behind `"type":"receipt"`, SSE as the data of a `receipt` event.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptJson<'a> {
    room_id: &'a str,
    user_id: &'a str,
    seq: u64,
    at: String,
}

impl<'a> ReceiptJson<'a> {
    /// The receipt a notice carries; `None` for a notice of another kind
    /// (a transport skips what it does not know).
    pub fn from_notice(notice: &'a Notice) -> Option<Self> {
        match notice.kind {
            NoticeKind::Receipt { seq } => Some(ReceiptJson {
                room_id: notice.room_id.as_str(),
                user_id: notice.sender.as_str(),
                seq,
                at: notice.at.to_string(),
            }),
            // `NoticeKind` is non-exhaustive: a later kind is not a receipt.
            _ => None,
        }
    }
}

/// A signal (docs/contract.md §2, "Signals"): `{"room_id", "user_id",
/// "name", "data"?, "at"}` — another member's momentary `typing`,
/// `stopped_typing` or app-named (`x-…`) signal, sent at `at` (RFC 3339,
/// UTC, ms). Not a log entry: no seq, not in history, not replayed on
/// resume. The raw WebSocket sends it behind `"type":"signal"`, SSE as the
/// data of a `signal` event.
#[derive(Debug, Clone, Serialize)]
pub struct SignalJson<'a> {
    room_id: &'a str,
    user_id: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Data>,
    at: String,
}

impl<'a> SignalJson<'a> {
    /// The signal a notice carries; `None` for a notice of another kind.
    pub fn from_notice(notice: &'a Notice) -> Option<Self> {
        match &notice.kind {
            NoticeKind::Signal { name, data } => Some(SignalJson {
                room_id: notice.room_id.as_str(),
                user_id: notice.sender.as_str(),
                name,
                data: data.as_ref(),
                at: notice.at.to_string(),
            }),
            _ => None,
        }
    }
}

/// A notice as its JSON, whichever kind it is: a [`ReceiptJson`] or a
/// [`SignalJson`]; the kind's name on the wire (the raw WebSocket's `type`,
/// the SSE event) is [`NoticeKind::as_str`]. One place that knows the
/// kinds, so a transport sends what it does not need to tell apart.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum NoticeJson<'a> {
    /// A read receipt.
    Receipt(ReceiptJson<'a>),
    /// A signal.
    Signal(SignalJson<'a>),
}

impl<'a> NoticeJson<'a> {
    /// The notice's JSON; `None` for a kind this wire does not know (a
    /// transport skips it).
    pub fn from_notice(notice: &'a Notice) -> Option<Self> {
        ReceiptJson::from_notice(notice)
            .map(NoticeJson::Receipt)
            .or_else(|| SignalJson::from_notice(notice).map(NoticeJson::Signal))
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
        let page = HistoryPage {
            entries: vec![e, leave],
            first_seq: 3,
        };
        let page = serde_json::to_value(MessagesJson::from(&page)).unwrap();
        assert_eq!(page["messages"][1]["seq"], 8);
        assert_eq!(page["first_seq"], 3);
    }

    /// An edit, a redaction and the messages they changed carry the new
    /// fields, each only where it applies; a leave's reason and a
    /// redaction's note share `reason`.
    #[test]
    fn amendments_and_their_targets() {
        let room = RoomId::new("lobby").unwrap();
        let ann = UserId::new("ann").unwrap();
        let mut edit = NewEntry::edit(
            room.clone(),
            ann.clone(),
            7,
            Some("e-1"),
            parlor_engine::Message::text("hi!"),
        )
        .at(9);
        edit.created_at = Timestamp(1_700_000_000_123);
        let json = serde_json::to_value(EntryJson::from(&edit)).unwrap();
        assert_eq!(json["kind"], "edit");
        assert_eq!(json["target_seq"], 7);
        assert_eq!(json["body"], "hi!");
        assert_eq!(json["client_id"], "e-1");
        for absent in ["reason", "edited_at", "redacted", "data"] {
            assert!(json.get(absent).is_none(), "{absent} in {json}");
        }

        let mut target = entry();
        target.body = Some("hi!".into());
        target.edited_at = Some(edit.created_at);
        let json = serde_json::to_value(EntryJson::from(&target)).unwrap();
        assert_eq!(json["edited_at"], "2023-11-14T22:13:20.123Z");
        assert!(json.get("target_seq").is_none() && json.get("redacted").is_none());

        let redaction =
            NewEntry::redaction(room.clone(), ann.clone(), 7, Some("oops".into())).at(10);
        let json = serde_json::to_value(EntryJson::from(&redaction)).unwrap();
        assert_eq!(
            (&json["kind"], &json["target_seq"], &json["reason"]),
            (
                &serde_json::json!("redaction"),
                &serde_json::json!(7),
                &serde_json::json!("oops")
            )
        );
        assert!(json["client_id"].is_null() && json["body"].is_null());

        let mut erased = entry();
        erased.body = None;
        erased.redacted = true;
        let json = serde_json::to_value(EntryJson::from(&erased)).unwrap();
        assert_eq!(json["redacted"], true);
        assert!(json["body"].is_null() && json.get("data").is_none());

        let kicked = NewEntry::membership(room, ann, parlor_engine::EntryKind::Leave)
            .because(parlor_engine::LeaveReason::Kicked)
            .at(11);
        assert_eq!(
            serde_json::to_value(EntryJson::from(&kicked)).unwrap()["reason"],
            "kicked"
        );
    }

    #[test]
    fn joined_room_and_reservation() {
        let joined = Joined {
            room_id: RoomId::new("lobby").unwrap(),
            capacity: 10,
            occupancy: 2,
            last_seq: 15,
            members: vec![UserId::new("alice").unwrap(), UserId::new("bob").unwrap()],
            member_count: 2,
            first_seq: 4,
            resumed: false,
        };
        assert_eq!(
            to_text(&JoinedJson::from(&joined)),
            r#"{"room_id":"lobby","capacity":10,"occupancy":2,"last_seq":15,"first_seq":4,"resumed":false,"member_count":2,"members":["alice","bob"]}"#
        );
        let mut room = RoomInfo {
            room_id: RoomId::new("lobby").unwrap(),
            title: None,
            capacity: 10,
            occupancy: 1,
            last_seq: 3,
            private: false,
            closed: true,
            first_seq: 1,
            retention: None,
            read: None,
            can_moderate: None,
        };
        // A service's view: no read state.
        assert_eq!(
            to_text(&RoomJson::from(&room)),
            r#"{"room_id":"lobby","title":null,"capacity":10,"occupancy":1,"last_seq":3,"first_seq":1,"retention":null,"private":false,"closed":true}"#
        );
        // A user's, with the room's own retention.
        room.retention = Some(Retention {
            max_entries: Some(500),
            max_age: Some(std::time::Duration::from_secs(30 * 24 * 3600)),
        });
        room.read = Some(ReadState {
            last_read_seq: 2,
            unread: 1,
        });
        room.can_moderate = Some(false);
        assert_eq!(
            to_text(&RoomJson::from(&room)),
            r#"{"room_id":"lobby","title":null,"capacity":10,"occupancy":1,"last_seq":3,"first_seq":1,"retention":{"max_entries":500,"max_age":"30days"},"private":false,"closed":true,"last_read_seq":2,"unread":1,"can_moderate":false}"#
        );
        room.can_moderate = None;
        room.retention = Some(Retention {
            max_entries: None,
            max_age: Some(std::time::Duration::from_secs(12 * 3600 + 30 * 60)),
        });
        assert_eq!(
            serde_json::to_value(RoomJson::from(&room)).unwrap()["retention"],
            serde_json::json!({"max_entries": null, "max_age": "12h 30m"})
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
    fn read_states_markers_receipts_and_signals() {
        let room = RoomId::new("lobby").unwrap();
        let bob = UserId::new("bob").unwrap();
        let state = ReadState {
            last_read_seq: 12,
            unread: 3,
        };
        assert_eq!(
            to_text(&ReadStateJson::new(&room, &state)),
            r#"{"room_id":"lobby","last_read_seq":12,"unread":3}"#
        );
        assert_eq!(
            to_text(&ReadMarkerJson::new(&bob, &state)),
            r#"{"user_id":"bob","last_read_seq":12,"unread":3}"#
        );
        let notice = Notice {
            room_id: room,
            sender: bob,
            at: Timestamp::MAX,
            kind: NoticeKind::Receipt { seq: 12 },
        };
        assert_eq!(
            to_text(&ReceiptJson::from_notice(&notice).unwrap()),
            r#"{"room_id":"lobby","user_id":"bob","seq":12,"at":"9999-12-31T23:59:59.999Z"}"#
        );
        assert!(SignalJson::from_notice(&notice).is_none(), "a receipt");
        let mut data = Data::new();
        data.insert("draft".into(), serde_json::json!(3));
        let signal = Notice {
            kind: NoticeKind::Signal {
                name: "typing".into(),
                data: Some(data),
            },
            ..notice
        };
        assert_eq!(
            to_text(&SignalJson::from_notice(&signal).unwrap()),
            r#"{"room_id":"lobby","user_id":"bob","name":"typing","data":{"draft":3},"at":"9999-12-31T23:59:59.999Z"}"#
        );
        assert!(ReceiptJson::from_notice(&signal).is_none(), "a signal");
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
