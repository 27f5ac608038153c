//! The HTTP routes of the control surface (docs/contract.md §4, "Rooms,
//! presence and moderation"): listing, presence, a room's lifecycle, kicks,
//! bans and moderators. Each parses its input, calls the one engine method
//! that does the work, and answers in the contract's shapes; the engine
//! decides who may.

use std::{collections::HashMap, sync::Arc};

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use parlor_engine::{
    Ban, DEFAULT_ROOM_PAGE, Error, ErrorKind, MAX_ROOM_PAGE, RoomId, RoomPatch, RoomQuery,
    Timestamp, UserId,
};
use parlor_wire::{ApiError, ErrorBody, MembersJson, RoomJson, RoomsJson};

use crate::{
    extract::{ApiBody, ApiPath, ApiQuery},
    http::{Caller, json_body, number_param, room_id},
    openapi::{CloseQuery, ListQuery, RoomPath, UserPath},
    state::WsState,
    wire::{BanBody, EmptyBody, KickBody, PatchRoomBody},
};

/// `GET /v1/rooms?prefix=&after=&limit=`: a page of the rooms the caller
/// may read, ascending by id; `next` is where the following page starts.
#[utoipa::path(
    get,
    path = "/v1/rooms",
    tag = "rooms",
    params(ListQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "A page of rooms, ascending by id.", body = RoomsJson),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id, query or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the Origin is not allowed.", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn list(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    // An empty `after=` is no room id: refused, as the document says.
    let after = query.get("after").map(|a| room_id(a)).transpose()?;
    let limit = number_param(&query, "limit", &format!("1 and {MAX_ROOM_PAGE}"))?
        .map_or(DEFAULT_ROOM_PAGE, |l| l.min(u64::from(u32::MAX)) as u32);
    let page = state
        .engine
        .rooms(
            &who,
            RoomQuery {
                prefix: query.get("prefix").map_or("", String::as_str),
                after: after.as_ref(),
                limit,
            },
        )
        .await?;
    Ok(Json(RoomsJson::from(&page)).into_response())
}

/// `GET /v1/rooms/{room_id}/members`: the room's presence.
#[utoipa::path(
    get,
    path = "/v1/rooms/{room_id}/members",
    tag = "rooms",
    params(RoomPath),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Who holds a seat, sorted by user.", body = MembersJson),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id, query or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the room policy refuses `read`, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn members(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let members = state.engine.members(&who, &room).await?;
    Ok(Json(MembersJson::from(&members[..])).into_response())
}

/// `PATCH /v1/rooms/{room_id}` with `{"title"?, "capacity"?,
/// "retention"?}`: 200 and the room's facts as they are now.
#[utoipa::path(
    patch,
    path = "/v1/rooms/{room_id}",
    tag = "rooms",
    params(RoomPath),
    request_body(content = ref("#/components/schemas/PatchRoomRequest"), content_type = "application/json",
        description = "Every field is optional: no body reads as `{}`."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The room as it is now.", body = RoomJson),
        (status = 400, description = "INVALID_INPUT: a bad room id, title, capacity, retention or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not moderate the room, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 410, description = "ROOM_CLOSED: the room was closed.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn update(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let body: PatchRoomBody = json_body(&body, Some(PatchRoomBody::default()))?;
    let retention = match body.retention {
        None => None,
        Some(None) => Some(None),
        Some(Some(retention)) => Some(Some(retention.retention()?)),
    };
    let patch = RoomPatch {
        title: body.title,
        capacity: body.capacity,
        retention,
    };
    let info = state.engine.update_room(&who, &room, &patch).await?;
    Ok(Json(RoomJson::from(&info)).into_response())
}

/// `DELETE /v1/rooms/{room_id}[?purge=true]`: closes the room (204).
#[utoipa::path(
    delete,
    path = "/v1/rooms/{room_id}",
    tag = "rooms",
    params(RoomPath, CloseQuery),
    request_body(content = ref("#/components/schemas/EmptyRequest"), content_type = "application/json",
        description = "`{}` or no body."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Closed (with `purge`: deleted)."),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id, query or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not moderate the room, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn close(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(room): ApiPath<String>,
    ApiQuery(query): ApiQuery<HashMap<String, String>>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let room = room_id(&room)?;
    let _: EmptyBody = json_body(&body, Some(EmptyBody::default()))?;
    let purge = match query.get("purge").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError(Error::new(
                ErrorKind::InvalidInput,
                "purge must be true or false",
            )));
        }
    };
    state.engine.close_room(&who, &room, purge).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The (room, user) of a moderation path.
fn room_and_user((room, user): (String, String)) -> Result<(RoomId, UserId), ApiError> {
    Ok((room_id(&room)?, UserId::new(&user)?))
}

/// `POST /v1/rooms/{room_id}/kicks/{user_id}` with `{"reason"?}`: 204.
#[utoipa::path(
    post,
    path = "/v1/rooms/{room_id}/kicks/{user_id}",
    tag = "rooms",
    params(UserPath),
    request_body(content = ref("#/components/schemas/KickRequest"), content_type = "application/json",
        description = "Every field is optional: no body reads as `{}`."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "The seat, if any, was taken away."),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id or body (a reason over 500 characters).", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not moderate the room, the user is its owner, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn kick(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<(String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let (room, user) = room_and_user(path)?;
    let body: KickBody = json_body(&body, Some(KickBody::default()))?;
    state
        .engine
        .kick(&who, &room, &user, body.reason.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /v1/rooms/{room_id}/bans/{user_id}` with `{"until"?, "reason"?}`:
/// 204.
#[utoipa::path(
    put,
    path = "/v1/rooms/{room_id}/bans/{user_id}",
    tag = "rooms",
    params(UserPath),
    request_body(content = ref("#/components/schemas/BanRequest"), content_type = "application/json",
        description = "Every field is optional: no body reads as `{}`."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Banned (and kicked)."),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id or body (until not RFC 3339 UTC, a reason over 500 characters).", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not moderate the room, the user is its owner, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn ban(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<(String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let (room, user) = room_and_user(path)?;
    let body: BanBody = json_body(&body, Some(BanBody::default()))?;
    let until = body
        .until
        .map(|until| {
            Timestamp::parse_rfc3339(&until).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "until must be an RFC 3339 date-time, like 2026-12-31T23:59:59Z",
                )
            })
        })
        .transpose()?;
    let ban = Ban {
        until,
        reason: body.reason,
    };
    state.engine.set_ban(&who, &room, &user, Some(&ban)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1/rooms/{room_id}/bans/{user_id}`: lifts the ban (204).
#[utoipa::path(
    delete,
    path = "/v1/rooms/{room_id}/bans/{user_id}",
    tag = "rooms",
    params(UserPath),
    request_body(content = ref("#/components/schemas/EmptyRequest"), content_type = "application/json",
        description = "`{}` or no body."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "Lifted (or there was none)."),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id, query or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the caller may not moderate the room, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn unban(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<(String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    let (room, user) = room_and_user(path)?;
    let _: EmptyBody = json_body(&body, Some(EmptyBody::default()))?;
    state.engine.set_ban(&who, &room, &user, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT`/`DELETE /v1/rooms/{room_id}/moderators/{user_id}`: 204.
async fn set_moderator(
    state: Arc<WsState>,
    who: &parlor_engine::Principal,
    path: (String, String),
    body: &[u8],
    moderator: bool,
) -> Result<Response, ApiError> {
    let (room, user) = room_and_user(path)?;
    let _: EmptyBody = json_body(body, Some(EmptyBody::default()))?;
    state
        .engine
        .set_moderator(who, &room, &user, moderator)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /v1/rooms/{room_id}/moderators/{user_id}` (owner or service).
#[utoipa::path(
    put,
    path = "/v1/rooms/{room_id}/moderators/{user_id}",
    tag = "rooms",
    params(UserPath),
    request_body(content = ref("#/components/schemas/EmptyRequest"), content_type = "application/json",
        description = "`{}` or no body."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "A moderator now (or already)."),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id, query or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only the room's owner or a service names moderators, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn add_moderator(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<(String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    set_moderator(state, &who, path, &body, true).await
}

/// `DELETE /v1/rooms/{room_id}/moderators/{user_id}` (owner or service).
#[utoipa::path(
    delete,
    path = "/v1/rooms/{room_id}/moderators/{user_id}",
    tag = "rooms",
    params(UserPath),
    request_body(content = ref("#/components/schemas/EmptyRequest"), content_type = "application/json",
        description = "`{}` or no body."),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 204, description = "No longer a moderator (or never was)."),
        (status = 400, description = "INVALID_INPUT: a bad room id, user id, query or body.", body = ErrorBody),
        (status = 401, description = "UNAUTHENTICATED: no, bad or expired token or API key.", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: only the room's owner or a service names moderators, or the Origin is not allowed.", body = ErrorBody),
        (status = 404, description = "ROOM_NOT_FOUND: no such room, or a private room the caller may not see.", body = ErrorBody),
        (status = 413, description = "MESSAGE_TOO_LARGE: a body over the HTTP limit (2 MiB).", body = ErrorBody),
        (status = 500, description = "INTERNAL: a bug; the message holds a trace id.", body = ErrorBody),
        (status = 503, description = "UNAVAILABLE: storage (or the room policy's hook) unreachable.", body = ErrorBody),
    ),
)]
pub(crate) async fn remove_moderator(
    State(state): State<Arc<WsState>>,
    Caller(who): Caller,
    ApiPath(path): ApiPath<(String, String)>,
    ApiBody(body): ApiBody,
) -> Result<Response, ApiError> {
    set_moderator(state, &who, path, &body, false).await
}
