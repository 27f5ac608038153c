//! The HTTP routes of docs/contract.md §4.

use std::{collections::HashMap, sync::Arc, time::Instant};

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{StatusCode, header::AUTHORIZATION, request::Parts},
    response::{IntoResponse, Response},
};
use parlor_engine::{
    DEFAULT_HISTORY_LIMIT, Error, ErrorKind, MAX_HISTORY_LIMIT, MAX_SEQ, Message, Principal,
    RoomId, RoomSpec, Seq, SeqRange, UserId, bearer_token,
};
use parlor_wire::{
    ApiError, EntryJson, ErrorBody, MessagesJson, ReadMarkerJson, ReadStateJson, ReservationJson,
    RoomJson,
};
use serde::de::DeserializeOwned;

use crate::{
    extract::{ApiBody, ApiPath, ApiQuery},
    openapi::{HistoryQuery, MessagePath, RoomPath, UserPath},
    state::WsState,
    wire::{EditBody, EmptyBody, ReadBody, RedactBody, ReserveBody, SendBody, SignalBody},
};

/// The header a service's API key travels in (docs/contract.md §1).
pub(crate) const API_KEY_HEADER: &str = "x-api-key";

/// Who makes an HTTP request: a service (header `X-Api-Key`, which wins
/// when both are sent) or a user (`Authorization: Bearer …`).
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<Arc<WsState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<WsState>) -> Result<Self, ApiError> {
        if let Some(key) = parts.headers.get(API_KEY_HEADER) {
            let key = key
                .to_str()
                .map_err(|_| Error::new(ErrorKind::Unauthenticated, "unknown API key"))?;
            return Ok(Caller(state.auth.authenticate_service(key).await?));
        }
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Unauthenticated,
                    "an Authorization: Bearer token is required",
                )
            })?;
        Ok(Caller(state.authenticate(token).await?))
    }
}

pub(crate) fn room_id(raw: &str) -> Result<RoomId, ApiError> {
    Ok(RoomId::new(raw)?)
}

/// A JSON body, or `INVALID_INPUT` saying what is wrong with it; an empty
/// body reads as `{}` where `empty` is given. Every body is an object:
/// serde's derive would also take a struct from an array (`[]` for `{}`),
/// so anything else is refused here (a nested struct field uses
/// [`crate::wire::object`]).
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8], empty: Option<T>) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_none()
        && let Some(empty) = empty
    {
        return Ok(empty);
    }
    if first != Some(&b'{') {
        return Err(ApiError(Error::new(
            ErrorKind::InvalidInput,
            "invalid JSON body: expected a JSON object",
        )));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid JSON body: {e}"),
        ))
    })
}

/// `POST /v1/rooms/{room_id}/reservations`: a seat's ticket, for `join` on
/// the socket (docs/contract.md §4, §5); with `create`, the room is created
/// if it does not exist. An empty body reads as `{}`.
#[utoipa::path(
    post,
    path = "/v1/rooms/{room_id}/reservations",
    tag = "rooms",
    params(RoomPath),
    request_body(content = ref("#/components/schemas/ReserveRequest"), content_type = "application/json",
        description = "`{}` (or no body) for a room that exists, or `{\"create\": {…}}`."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The reservation.", body = ReservationJson),
        (status = 400, description = "INVALID_INPUT: a bad room id, body, capacity or title.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the room policy refuses, the user is banned, a service asked for a seat, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room and no `create`, or a private room the caller may not see.", body = ErrorBody),
        (status = 409, description = "ROOM_FULL, or ROOM_PENDING: another user's creation of the room is pending.", body = ErrorBody),
        (status = 410, description = "ROOM_CLOSED: the room was closed.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: over the reservation or creation rate, or too many pending rooms.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the same request may succeed."))),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn reserve(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let body: ReserveBody = json_body(&body, Some(ReserveBody::default()))?;
    let create = body.create.map(|c| RoomSpec {
        capacity: c.capacity,
        title: c.title,
        private: c.private,
    });
    let reservation = state.engine.reserve(&who, &room, create).await?;
    Ok((
        StatusCode::CREATED,
        Json(ReservationJson::from(&reservation)),
    )
        .into_response())
}

/// `GET /v1/rooms/{room_id}`: the room's facts.
#[utoipa::path(
    get,
    path = "/v1/rooms/{room_id}",
    tag = "rooms",
    params(RoomPath),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The room.", body = RoomJson),
        (status = 400, description = "INVALID_INPUT: a bad room id.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the room policy refuses, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn room(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let info = state
        .engine
        .room(&who, &room)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    Ok(Json(RoomJson::from(&info)).into_response())
}

/// A numeric query parameter. Parsed as `u64` and never wrapped or
/// clamped: a negative, empty (`limit=`) or non-numeric value, or one past
/// `u64`, is `INVALID_INPUT` here (absent is the default); the engine
/// refuses seqs past 2^63 - 1.
pub(crate) fn number_param(
    query: &HashMap<String, String>,
    name: &str,
    range: &str,
) -> Result<Option<u64>, ApiError> {
    match query.get(name).map(String::as_str) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            ApiError(Error::new(
                ErrorKind::InvalidInput,
                format!("{name} must be an integer between {range}"),
            ))
        }),
    }
}

fn seq_param(query: &HashMap<String, String>, name: &str) -> Result<Option<u64>, ApiError> {
    number_param(query, name, &format!("0 and {MAX_SEQ}"))
}

/// `GET /v1/rooms/{room_id}/messages`: a page of history, ascending by
/// seq (docs/contract.md §3, History); for a member of the room.
#[utoipa::path(
    get,
    path = "/v1/rooms/{room_id}/messages",
    tag = "rooms",
    params(RoomPath, HistoryQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The page, and the oldest seq the room still stores.", body = MessagesJson),
        (status = 400, description = "INVALID_INPUT: a bad room id, seq or limit.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token.", body = ErrorBody),
        (status = 403, description = "NOT_A_MEMBER: no member's seat in the room; FORBIDDEN: the room policy refuses, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn messages(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let range = SeqRange {
        after: seq_param(&query, "after_seq")?,
        before: seq_param(&query, "before_seq")?,
        limit: number_param(&query, "limit", &format!("1 and {MAX_HISTORY_LIMIT}"))?
            .map_or(DEFAULT_HISTORY_LIMIT, |l| l.min(u64::from(u32::MAX)) as u32),
    };
    let page = state.engine.history(&who, &room, range).await?;
    Ok(Json(MessagesJson::from(&page)).into_response())
}

/// `POST /v1/rooms/{room_id}/messages`: sends a text as the caller, who
/// holds a joined seat (docs/contract.md §3, Sending); a retry with the same
/// `client_id` answers the stored entry.
#[utoipa::path(
    post,
    path = "/v1/rooms/{room_id}/messages",
    tag = "rooms",
    params(RoomPath),
    request_body(content = SendBody, content_type = "application/json"),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "The stored entry.", body = EntryJson),
        (status = 400, description = "INVALID_INPUT: a bad room id, body or client_id.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token.", body = ErrorBody),
        (status = 403, description = "NOT_A_MEMBER: no joined seat in the room; FORBIDDEN: the room policy refuses, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 410, description = "ROOM_CLOSED: the room was closed (a service's message).", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a text over max_message_bytes, data over max_data_bytes, or a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: over the send rate; retry with the same client_id.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the same request may succeed."))),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage unreachable, nothing stored; retry with the same client_id.", body = ErrorBody),
    ),
)]
pub(crate) async fn send(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let body: SendBody = json_body(&body, None)?;
    let message = Message {
        body: body.body,
        data: body.data,
    };
    let started = Instant::now();
    let entry = state
        .engine
        .submit(&who, &room, &body.client_id, message)
        .await?
        .await?;
    state.send_latency.observe(started.elapsed().as_secs_f64());
    Ok((StatusCode::CREATED, Json(EntryJson::from(&*entry))).into_response())
}

/// The (room, seq) of a message's path: the seq in 0..=2^63-1, else
/// `INVALID_INPUT` (never wrapped or clamped, like every seq a client
/// gives, docs/contract.md §3).
fn room_and_seq((room, seq): (String, String)) -> Result<(RoomId, Seq), ApiError> {
    let room = room_id(&room)?;
    let seq = seq
        .parse::<Seq>()
        .ok()
        .filter(|&s| s <= MAX_SEQ)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("seq must be an integer between 0 and {MAX_SEQ}"),
            )
        })?;
    Ok((room, seq))
}

/// `PATCH /v1/rooms/{room_id}/messages/{seq}`: edits a text message —
/// its sender's (or, where the room policy allows `edit`, anyone's; a
/// service's always) — appending an `edit` entry, which it answers
/// (docs/contract.md §2, Edits and redactions). No seat needed.
#[utoipa::path(
    patch,
    path = "/v1/rooms/{room_id}/messages/{seq}",
    tag = "rooms",
    params(MessagePath),
    request_body(content = EditBody, content_type = "application/json"),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The stored `edit` entry (a retry with the same client_id answers the first).", body = EntryJson),
        (status = 400, description = "INVALID_INPUT: a bad room id, seq, body, data or client_id; the entry is not a text message or was redacted; a client_id used for another entry.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: another user's message (the room policy does not allow `edit`), the room policy refuses `send` or `read`, the user is banned, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see; ENTRY_NOT_FOUND: no entry at that seq (beyond the log, or pruned).", body = ErrorBody),
        (status = 410, description = "ROOM_CLOSED: the room was closed.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a text over max_message_bytes, data over max_data_bytes, or a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: over the send rate; retry with the same client_id.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the same request may succeed."))),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable, nothing stored; retry with the same client_id.", body = ErrorBody),
    ),
)]
pub(crate) async fn edit(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<(String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let (room, seq) = room_and_seq(path)?;
    let body: EditBody = json_body(&body, None)?;
    let message = Message {
        body: body.body,
        data: body.data,
    };
    let entry = state
        .engine
        .edit(&who, &room, seq, body.client_id.as_deref(), message)
        .await?;
    Ok(Json(EntryJson::from(&*entry)).into_response())
}

/// `DELETE /v1/rooms/{room_id}/messages/{seq}` with `{"reason"?}`: redacts
/// a message — the sender's own, or any as a moderator or a service —
/// erasing its body and data (and its edits') from storage, and answers the
/// `redaction` entry (docs/contract.md §2, Edits and redactions). Allowed in
/// a closed room. An empty body reads as `{}`.
#[utoipa::path(
    delete,
    path = "/v1/rooms/{room_id}/messages/{seq}",
    tag = "rooms",
    params(MessagePath),
    request_body(content = ref("#/components/schemas/RedactRequest"), content_type = "application/json",
        description = "Every field is optional: no body reads as `{}`."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The stored `redaction` entry (for a message redacted before, the first redaction).", body = EntryJson),
        (status = 400, description = "INVALID_INPUT: a bad room id, seq or body (a reason over 500 characters); the entry is a join, leave, edit or redaction.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: another user's message and the caller may not moderate the room, the room policy refuses `read`, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see; ENTRY_NOT_FOUND: no entry at that seq (beyond the log, or pruned).", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: over the send rate.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the same request may succeed."))),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable, nothing stored.", body = ErrorBody),
    ),
)]
pub(crate) async fn redact(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<(String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let (room, seq) = room_and_seq(path)?;
    let body: RedactBody = json_body(&body, Some(RedactBody::default()))?;
    let entry = state
        .engine
        .redact(&who, &room, seq, body.reason.as_deref())
        .await?;
    Ok(Json(EntryJson::from(&*entry)).into_response())
}

/// `PUT /v1/rooms/{room_id}/read` with `{"seq"}`: raises the caller's
/// read marker (a lower seq changes nothing) and answers their read state
/// (docs/contract.md §2, Read markers); the room's other live members get
/// a `receipt`. A user's only: a service has no marker.
#[utoipa::path(
    put,
    path = "/v1/rooms/{room_id}/read",
    tag = "rooms",
    params(RoomPath),
    request_body(content = ReadBody, content_type = "application/json"),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The caller's read state as it is now.", body = ReadStateJson),
        (status = 400, description = "INVALID_INPUT: a bad room id or body; a seq beyond the room's last seq.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the room policy refuses `read`, a service (it has no marker), or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn mark_read(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let body: ReadBody = json_body(&body, None)?;
    let read = state.engine.mark_read(&who, &room, body.seq).await?;
    Ok(Json(ReadStateJson::new(&room, &read)).into_response())
}

/// `POST /v1/rooms/{room_id}/signals` with `{"name", "data"?}`: sends a
/// momentary signal (typing…) to the room's other live members, on every
/// transport and node (docs/contract.md §2, "Signals"). Never stored: no
/// seq, not in history, not replayed. 204. For clients that send over
/// HTTP (SSE); a WebSocket sends a `signal` frame.
#[utoipa::path(
    post,
    path = "/v1/rooms/{room_id}/signals",
    tag = "rooms",
    params(RoomPath),
    request_body(content = SignalBody, content_type = "application/json"),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Sent to the members live now (none may be)."),
        (status = 400, description = "INVALID_INPUT: a bad room id or body, or a signal name neither configured nor `x-…`.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "NOT_A_MEMBER: no joined seat in the room; FORBIDDEN: a service (it holds no seat), a member the room policy does not let send, or the Origin is not allowed.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: data over 256 bytes, or a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 429, description = "RATE_LIMITED: over the signal rate (its own bucket, apart from sends).", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a signal would be taken."))),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage unreachable (a cluster asks it who is seated).", body = ErrorBody),
    ),
)]
pub(crate) async fn signal(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let body: SignalBody = json_body(&body, None)?;
    state
        .engine
        .signal(&who, &room, &body.name, body.data)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/rooms/{room_id}/read/{user_id}`: a user's read marker and
/// unread count, for a service (or the user themselves).
#[utoipa::path(
    get,
    path = "/v1/rooms/{room_id}/read/{user_id}",
    tag = "rooms",
    params(UserPath),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The user's read state (0 and every message unread before any marker).", body = ReadMarkerJson),
        (status = 400, description = "INVALID_INPUT: a bad room id or user id.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: a user asking for another user's marker, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn read_marker(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath((room, user)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let user = UserId::new(&user)?;
    let read = state.engine.read_marker(&who, &room, &user).await?;
    Ok(Json(ReadMarkerJson::new(&user, &read)).into_response())
}

/// `PUT /v1/rooms/{room_id}/invites/{user_id}`: invites the user (needs
/// `moderate`; a room's owner has it). 204; an empty body reads as `{}`.
#[utoipa::path(
    put,
    path = "/v1/rooms/{room_id}/invites/{user_id}",
    tag = "rooms",
    params(UserPath),
    request_body(content = ref("#/components/schemas/EmptyRequest"), content_type = "application/json",
        description = "`{}` or no body."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Invited (or already invited)."),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not moderate the room, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn invite(
    state: State<Arc<WsState>>,
    caller: Caller,
    path: ApiPath<(String, String)>,
    body: ApiBody,
) -> Result<Response, ApiError> {
    set_invite(state, caller, path, body, true).await
}

/// `DELETE /v1/rooms/{room_id}/invites/{user_id}`: withdraws the
/// invitation; the user's next reserve of a private room is refused. 204.
#[utoipa::path(
    delete,
    path = "/v1/rooms/{room_id}/invites/{user_id}",
    tag = "rooms",
    params(UserPath),
    request_body(content = ref("#/components/schemas/EmptyRequest"), content_type = "application/json",
        description = "`{}` or no body."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Withdrawn (or there was none)."),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not moderate the room, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn uninvite(
    state: State<Arc<WsState>>,
    caller: Caller,
    path: ApiPath<(String, String)>,
    body: ApiBody,
) -> Result<Response, ApiError> {
    set_invite(state, caller, path, body, false).await
}

async fn set_invite(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath((room, user)): ApiPath<(String, String)>,
    ApiBody(body): ApiBody,
    invited: bool,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let user = UserId::new(&user)?;
    let _: EmptyBody = json_body(&body, Some(EmptyBody::default()))?;
    state.engine.set_invite(&who, &room, &user, invited).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A route asked with a method it does not have: 405 (axum adds `Allow`),
/// with the contract's JSON error body like every other refusal.
pub(crate) async fn method_not_allowed() -> Response {
    let err = ApiError(Error::new(
        ErrorKind::InvalidInput,
        "method not allowed on this path",
    ));
    let mut response = err.into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}
