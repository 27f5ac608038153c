//! The HTTP side: authentication, opening the stream (reserve + commit),
//! sending, signalling and leaving.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, Query, State, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header::AUTHORIZATION},
    response::{
        IntoResponse, Response,
        sse::{KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures_util::StreamExt;
use parlor_engine::{Data, ErrorKind, Principal, RoomId, RoomSpec, Seq, bearer_token};
use parlor_wire::{ApiError, EntryJson};
use serde::Deserialize;

use crate::{SseState, events};

pub(crate) fn router(state: Arc<SseState>) -> Router {
    Router::new()
        .route("/sse/v1/rooms/{room_id}/events", get(open_stream))
        .route("/sse/v1/rooms/{room_id}/messages", post(send))
        .route("/sse/v1/rooms/{room_id}/signals", post(signal))
        .route("/sse/v1/rooms/{room_id}/leave", post(leave))
        .with_state(state)
}

/// The token from `Authorization: Bearer …`, or from `access_token` for
/// `EventSource`, which cannot set headers.
async fn caller(
    state: &SseState,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> Result<Principal, ApiError> {
    let header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let token = header.or(query_token).ok_or(ErrorKind::Unauthenticated)?;
    Ok(state.auth.authenticate(token).await?)
}

#[derive(Deserialize)]
struct StreamQuery {
    after_seq: Option<Seq>,
    capacity: Option<u32>,
    title: Option<String>,
    /// With `capacity`: create the room private (docs/contract.md §2).
    #[serde(default)]
    private: bool,
    access_token: Option<String>,
}

async fn open_stream(
    State(state): State<Arc<SseState>>,
    Path(room_id): Path<String>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = caller(&state, &headers, query.access_token.as_deref()).await?;
    let room = RoomId::new(&room_id)?;
    // A reconnecting EventSource says where it was; that wins over the URL's
    // after_seq, which still names the first join's point.
    let after_seq = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<Seq>().ok())
                .ok_or(ErrorKind::InvalidInput)?,
        ),
        None => query.after_seq,
    };
    let create = query.capacity.map(|capacity| RoomSpec {
        capacity,
        title: query.title,
        private: query.private,
    });
    // Both phases at once: the seat is held only while this stream is open.
    let reservation = state.engine.reserve(&who, &room, create).await?;
    let membership = state
        .engine
        .commit(&who, &reservation.ticket, after_seq)
        .await?;
    tracing::debug!(%room, user = %who.user, ?after_seq, "sse stream opened");
    let stream = events::events(membership).boxed();
    Ok(Sse::new(stream)
        // `: ping` every interval while the stream is quiet (axum restarts
        // the timer on each event).
        .keep_alive(KeepAlive::new().interval(state.ping_interval).text("ping"))
        .into_response())
}

/// A request body, or `INVALID_INPUT` saying what was wrong with it.
fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    let Json(body) = body.map_err(|e| {
        parlor_engine::Error::new(
            ErrorKind::InvalidInput,
            format!("bad body: {}", e.body_text()),
        )
    })?;
    Ok(body)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    client_id: String,
    body: String,
}

async fn send(
    State(state): State<Arc<SseState>>,
    Path(room_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<SendBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let who = caller(&state, &headers, None).await?;
    let room = RoomId::new(&room_id)?;
    let body = json_body(body)?;
    let entry = state
        .engine
        .send(&who, &room, &body.client_id, &body.body)
        .await?;
    Ok((StatusCode::CREATED, Json(EntryJson::from(&*entry))).into_response())
}

/// A signal's body (docs/contract.md §2, "Signals").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalBody {
    name: String,
    #[serde(default)]
    data: Option<Data>,
}

/// `POST /sse/v1/rooms/{id}/signals` `{"name", "data"?}`: a signal to the
/// room's other live members (typing…). 204; refusals as the HTTP API's.
async fn signal(
    State(state): State<Arc<SseState>>,
    Path(room_id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<SignalBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let who = caller(&state, &headers, None).await?;
    let room = RoomId::new(&room_id)?;
    let body = json_body(body)?;
    state
        .engine
        .signal(&who, &room, &body.name, body.data)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn leave(
    State(state): State<Arc<SseState>>,
    Path(room_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let who = caller(&state, &headers, None).await?;
    let room = RoomId::new(&room_id)?;
    if state.engine.leave(&who.user, &room).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ErrorKind::NotAMember.into())
    }
}
