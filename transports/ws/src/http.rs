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
    RoomId, RoomSpec, SeqRange, UserId, bearer_token,
};
use parlor_wire::{ApiError, EntryJson, MessagesJson, ReservationJson, RoomJson};
use serde::de::DeserializeOwned;

use crate::{
    extract::{ApiBody, ApiPath, ApiQuery},
    state::WsState,
    wire::{EmptyBody, ReserveBody, SendBody},
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
/// body reads as `{}` where `empty` is given.
pub(crate) fn json_body<T: DeserializeOwned>(body: &[u8], empty: Option<T>) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace)
        && let Some(empty) = empty
    {
        return Ok(empty);
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid JSON body: {e}"),
        ))
    })
}

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
/// clamped: a negative or non-numeric value, or one past `u64`, is
/// `INVALID_INPUT` here; the engine refuses seqs past 2^63 - 1.
pub(crate) fn number_param(
    query: &HashMap<String, String>,
    name: &str,
    range: &str,
) -> Result<Option<u64>, ApiError> {
    match query.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
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
    let entries = state.engine.history(&who, &room, range).await?;
    Ok(Json(MessagesJson::from(&entries[..])).into_response())
}

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

/// `PUT /v1/rooms/{room_id}/invites/{user_id}`: invites the user (needs
/// `moderate`; a room's owner has it). 204; an empty body reads as `{}`.
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
