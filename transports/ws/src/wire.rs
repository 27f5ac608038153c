//! The raw WebSocket's frames (docs/contract.md §5) and the HTTP request
//! bodies (§4). What they carry — entries, the facts of a join, errors, the
//! HTTP answers — is encoded by `parlor-wire`, as for every JSON transport.

use parlor_engine::{Data, Entry, Error, ErrorKind, Joined, MAX_TITLE_CHARS, Retention};
use parlor_wire::{
    EntryJson, ErrorJson, JoinedJson, NoticeJson, ReadStateJson, ReceiptJson, SignalJson,
};
use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, de};
use utoipa::{
    PartialSchema, ToSchema,
    openapi::{
        ObjectBuilder, RefOr, Schema, Type,
        schema::{AdditionalProperties, AnyOfBuilder},
    },
};

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
    /// Raises the read marker (docs/contract.md §2, "Read markers");
    /// answered with `read_state`.
    Read {
        room_id: String,
        seq: u64,
    },
    /// A momentary signal to the room's other members (docs/contract.md
    /// §2, "Signals"); no answer unless it is refused (`error`).
    Signal {
        room_id: String,
        name: String,
        #[serde(default)]
        data: Option<Data>,
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
    /// The answer to `read`.
    ReadState(ReadStateJson<'a>),
    /// Another member's read marker moved; not a log entry.
    Receipt(ReceiptJson<'a>),
    /// Another member's signal (typing…); not a log entry.
    Signal(SignalJson<'a>),
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

impl<'a> From<NoticeJson<'a>> for ServerFrame<'a> {
    /// A notice goes out under its kind's `type` (`receipt`, `signal`).
    fn from(notice: NoticeJson<'a>) -> Self {
        match notice {
            NoticeJson::Receipt(receipt) => ServerFrame::Receipt(receipt),
            NoticeJson::Signal(signal) => ServerFrame::Signal(signal),
        }
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

/// `POST /v1/rooms/{id}/reservations` body: `{}` (or an empty body) for a
/// seat in a room that exists, or `{"create": {…}}` to create it if it does
/// not. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReserveRequest)]
pub(crate) struct ReserveBody {
    /// Creates the room when it does not exist (ignored when it does).
    #[serde(default, deserialize_with = "object")]
    pub(crate) create: Option<CreateBody>,
}

// The literal in `title`'s attribute (utoipa takes no constants there).
const _: () = assert!(MAX_TITLE_CHARS == 200);

/// The room to create (docs/contract.md §2).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateRoom)]
pub(crate) struct CreateBody {
    /// Seats: 1 to the server's `--max-capacity` (10 000 by default).
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub(crate) capacity: u32,
    /// At most 200 characters.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub(crate) title: Option<String>,
    /// A private room (docs/contract.md §2).
    #[serde(default)]
    pub(crate) private: bool,
}

/// A nested object of a request body (or null): refuses the array that
/// serde's derive would also take for a struct (`[5]` for `{"capacity":
/// 5}`), which the OpenAPI document does not allow.
pub(crate) fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let Some(map) =
        Option::<serde_json::Map<String, serde_json::Value>>::deserialize(deserializer)?
    else {
        return Ok(None);
    };
    T::deserialize(serde_json::Value::Object(map))
        .map(Some)
        .map_err(de::Error::custom)
}

/// An integer field of a request body, which takes a JSON number with a
/// zero fraction (`72.0`) as that integer: JSON and JSON Schema's `integer`
/// do not tell `72.0` from `72`, and some clients write every number as a
/// float. A fraction, a negative number or one past `T` is refused.
pub(crate) fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    struct Whole;

    impl de::Visitor<'_> for Whole {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative integer")
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<u64, E> {
            Ok(n)
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<u64, E> {
            u64::try_from(n).map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<u64, E> {
            // 2^64 is exact as an f64; below it, a whole f64 converts exactly.
            if n.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&n) {
                Ok(n as u64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(n), &self))
            }
        }
    }

    let n = deserializer.deserialize_any(Whole)?;
    T::try_from(n)
        .map_err(|_| de::Error::invalid_value(de::Unexpected::Unsigned(n), &"a smaller integer"))
}

/// The body of a route that takes none yet (`PUT`/`DELETE` of invites,
/// moderators and bans, `DELETE` of a room): an empty body reads as `{}`;
/// unknown fields are refused, so a later field cannot be silently ignored
/// by an older server.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EmptyRequest)]
pub(crate) struct EmptyBody {}

/// `POST /v1/rooms/{id}/messages` body (docs/contract.md §3, Sending): a
/// `body`, `data` or both; a user's message is a `text` entry, a service's
/// a `system` entry.
#[derive(Debug, Deserialize)]
pub(crate) struct SendBody {
    pub(crate) client_id: String,
    #[serde(default)]
    pub(crate) body: Option<String>,
    #[serde(default)]
    pub(crate) data: Option<Data>,
}

/// The schema of a message body (`SendBody`, `EditBody`): `anyOf` an
/// object that requires `body` and one that requires `data` (the derive
/// cannot say "at least one of"), with `client_id` required or not.
/// For an edit (`edit`), `client_id` is optional and other fields are
/// refused (the route denies unknown fields, and the document says so); a
/// send requires `client_id` and ignores other fields.
fn message_schema(edit: bool, client_id_doc: &str, description: &str) -> RefOr<Schema> {
    let message = |required: &str| {
        let builder = ObjectBuilder::new()
            .property(
                "client_id",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(64))
                    .pattern(Some("^[^\\u0000]*$"))
                    .description(Some(client_id_doc)),
            )
            .property(
                "body",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"))
                    .description(Some(
                        "The text: not blank, no U+0000, at most the server's \
                         --max-message-bytes UTF-8 bytes (4096 by default; more is 413).",
                    )),
            )
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some(
                        "The app's JSON object (mentions, reply-to, attachment links), at \
                     most the server's --max-data-bytes (4096 by default) serialized.",
                    )),
            );
        let builder = if edit {
            builder.additional_properties(Some(AdditionalProperties::FreeForm(false)))
        } else {
            builder.required("client_id")
        };
        builder.required(required)
    };
    AnyOfBuilder::new()
        .item(message("body"))
        .item(message("data"))
        .description(Some(description))
        .into()
}

impl PartialSchema for SendBody {
    fn schema() -> RefOr<Schema> {
        message_schema(
            false,
            "The sender's id for this message, 1–64 characters: a retry \
             with the same client_id is answered with the stored entry.",
            "A message: a body, data or both. A user's is a `text` entry; a \
             service's (X-Api-Key) is a `system` entry (docs/contract.md §3).",
        )
    }
}

impl ToSchema for SendBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SendRequest")
    }
}

/// `PATCH /v1/rooms/{id}/messages/{seq}` body (docs/contract.md §2, "Edits
/// and redactions"): the message's new body, data or both, as for a send;
/// what it leaves out, the message no longer has. `client_id` makes the
/// edit idempotent like a send. Unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EditBody {
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) body: Option<String>,
    #[serde(default)]
    pub(crate) data: Option<Data>,
}

impl PartialSchema for EditBody {
    fn schema() -> RefOr<Schema> {
        message_schema(
            true,
            "The editor's id for this edit, 1–64 characters: a retry with the \
             same client_id is answered with the stored edit.",
            "The message's new body, data or both (what is left out, the \
             message no longer has); the same rules as a send \
             (docs/contract.md §2, Edits and redactions).",
        )
    }
}

impl ToSchema for EditBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EditRequest")
    }
}

/// `DELETE /v1/rooms/{id}/messages/{seq}` body: an optional note; an empty
/// body reads as `{}`. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RedactRequest)]
pub(crate) struct RedactBody {
    /// The redactor's note, at most 500 characters; kept on the
    /// `redaction` entry as `reason`.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub(crate) reason: Option<String>,
}

/// `PUT /v1/rooms/{id}/read` body (docs/contract.md §2, "Read markers").
/// Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReadRequest)]
pub(crate) struct ReadBody {
    /// The seq read up to: 0 to the room's last seq (beyond it is 400). A
    /// seq below the stored marker changes nothing.
    #[serde(deserialize_with = "whole_number")]
    #[schema(minimum = 0, maximum = 9223372036854775807i64)]
    pub(crate) seq: u64,
}

/// `POST /v1/rooms/{id}/signals` body (docs/contract.md §2, "Signals").
/// Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SignalRequest)]
pub(crate) struct SignalBody {
    /// `typing`, `stopped_typing` (the configured names) or an app's own
    /// name: `x-` and 1–62 of a-z, 0-9, `_`, `.`, `-`. Another name is 400.
    #[schema(
        max_length = 64,
        pattern = "^(typing|stopped_typing|x-[a-z0-9_.-]{1,62})$"
    )]
    pub(crate) name: String,
    /// The app's JSON object, at most 256 bytes serialized (more is 413).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub(crate) data: Option<Data>,
}

/// A room's own retention in a `PATCH /v1/rooms/{id}` body
/// (docs/contract.md §2, "Retention"): it replaces the server's wholly, so
/// a bound left out (or null) is no bound, and `{}` keeps everything.
/// Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RetentionRequest)]
pub(crate) struct RetentionBody {
    /// Keep at most this many newest entries (at least 1); null or absent:
    /// no bound.
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(minimum = 1, maximum = 9223372036854775807i64)]
    pub(crate) max_entries: Option<u64>,
    /// Keep entries younger than this: a humantime duration of at least
    /// 1 s (`"30d"`, `"12h 30m"`, `"90s"`); null or absent: no bound. (The
    /// pattern is what the document promises: a first part of whole
    /// seconds or more, then parts of any unit, as the server prints it;
    /// the server reads any humantime duration of at least 1 s.)
    #[serde(default)]
    #[schema(
        pattern = "^[1-9][0-9]{0,5} ?(s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|wk|wks|week|weeks|M|month|months|y|yr|yrs|year|years)( [0-9]{1,6} ?(ns|nsec|nanos|us|usec|ms|msec|millis|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours|d|day|days|w|wk|wks|week|weeks|M|month|months|y|yr|yrs|year|years))*$"
    )]
    pub(crate) max_age: Option<String>,
}

impl RetentionBody {
    /// The engine's [`Retention`]: `INVALID_INPUT` for a `max_age` that is
    /// not a humantime duration (the bounds are the engine's to check).
    pub(crate) fn retention(self) -> Result<Retention, Error> {
        let max_age = self
            .max_age
            .map(|text| {
                humantime::parse_duration(&text).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "retention max_age must be a duration such as 30d, 12h 30m or 90s: {e}"
                        ),
                    )
                })
            })
            .transpose()?;
        Ok(Retention {
            max_entries: self.max_entries,
            max_age,
        })
    }
}

/// `PATCH /v1/rooms/{id}` body: each field given replaces the room's;
/// `"title": null` clears the title, `"retention": null` returns the room
/// to the server's retention. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PatchRoomRequest)]
pub(crate) struct PatchRoomBody {
    /// A new title, at most 200 characters; null clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub(crate) title: Option<Option<String>>,
    /// A new capacity, 1 to the server's `--max-capacity` (10 000 by
    /// default, the maximum the document states). Below the occupancy it
    /// evicts no one; new seats wait until members leave.
    #[serde(default, deserialize_with = "some_whole_number")]
    #[schema(minimum = 1, maximum = 10_000)]
    pub(crate) capacity: Option<u32>,
    /// The room's own retention, replacing the server's (a bound left out
    /// is no bound); null returns the room to the server's.
    #[serde(default, deserialize_with = "present_object")]
    #[schema(value_type = Option<RetentionBody>)]
    pub(crate) retention: Option<Option<RetentionBody>>,
}

/// A nested object field that is present, null or not: `Some(None)` for
/// `null`, `Some(Some(_))` for an object (never the array serde would
/// take for a struct), `None` (the default) when absent.
fn present_object<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    object(d).map(Some)
}

/// A field that is present, null or not: `Some(None)` for `null`, `None`
/// (the default) when absent.
fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// [`whole_number`] for an optional field: absent (the default) or null
/// is none.
fn some_whole_number<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    match Option::<serde_json::Value>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole_number(n).map(Some).map_err(de::Error::custom),
    }
}

/// `POST /v1/rooms/{id}/kicks/{user}` body. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = KickRequest)]
pub(crate) struct KickBody {
    /// The moderator's note, at most 500 characters, for the server's log.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub(crate) reason: Option<String>,
}

/// `PUT /v1/rooms/{id}/bans/{user}` body. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BanRequest)]
pub(crate) struct BanBody {
    /// When the ban lapses, an RFC 3339 date-time (`2026-12-31T23:59:59Z`;
    /// any offset); without it the ban holds until lifted.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub(crate) until: Option<String>,
    /// The moderator's note, at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub(crate) reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use parlor_engine::{Error, ErrorKind, NewEntry, RoomId, Timestamp, UserId};

    use super::*;

    /// `capacity` takes `3.0` as `3` (Schemathesis sent `72.0`, an
    /// `integer` to JSON Schema), and refuses fractions, negatives, numbers
    /// past `u32` and non-numbers.
    /// `create` is an object or null, never the array serde would take
    /// for a struct (Schemathesis found `[]` taken as `{}`; the top level is
    /// checked in `http::json_body`).
    #[test]
    fn create_is_an_object() {
        let read = |json: &str| serde_json::from_str::<ReserveBody>(json);
        assert_eq!(
            read(r#"{"create":{"capacity":2}}"#)
                .unwrap()
                .create
                .unwrap()
                .capacity,
            2
        );
        assert!(read(r#"{"create":null}"#).unwrap().create.is_none());
        assert!(read(r#"{}"#).unwrap().create.is_none());
        for bad in [
            r#"{"create":[2]}"#,
            r#"{"create":[2,"t",true]}"#,
            r#"{"create":{"capacity":2,"x":1}}"#,
        ] {
            assert!(read(bad).is_err(), "{bad} was taken");
        }
    }

    #[test]
    fn a_capacity_is_a_whole_number_written_either_way() {
        let capacity = |json: &str| {
            serde_json::from_str::<ReserveBody>(&format!(r#"{{"create":{{"capacity":{json}}}}}"#))
                .map(|b| b.create.unwrap().capacity)
                .map_err(|e| e.to_string())
        };
        assert_eq!(capacity("3"), Ok(3));
        assert_eq!(capacity("3.0"), Ok(3));
        assert_eq!(capacity("3e1"), Ok(30));
        assert_eq!(capacity("4294967295"), Ok(u32::MAX));
        for bad in ["3.5", "-1", "-1.0", "4294967296", "1e30", "\"3\"", "null"] {
            assert!(capacity(bad).is_err(), "{bad} was taken");
        }
    }

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
            member_count: 240,
            first_seq: 1,
            resumed: true,
        };
        assert_eq!(
            ServerFrame::joined(&joined).to_json(),
            r#"{"type":"joined","room_id":"lobby","capacity":10,"occupancy":2,"last_seq":15,"first_seq":1,"resumed":true,"member_count":240,"members":["alice","bob"]}"#
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
