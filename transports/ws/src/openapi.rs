//! The OpenAPI 3.1 description of the HTTP routes of docs/contract.md §4
//! ([`ApiDoc`]), served at `GET /v1/openapi.json` and kept in
//! `docs/openapi.json` (the drift test `tests/openapi_drift.rs` compares
//! the two).
//!
//! To document a new route: give its handler a `#[utoipa::path(...)]`
//! (method, path, `params(...)`, `request_body`, `security(("bearer" =
//! []))`, and one response per status it can answer, each refusal with
//! `body = ErrorBody`; a 429 with the `Retry-After` header), derive
//! `ToSchema` on its request and answer shapes, name the handler in
//! [`ApiDoc`]'s `paths(...)`, and regenerate `docs/openapi.json` with
//! `PARLOR_BLESS=1 cargo test -p parlor-ws --test openapi_drift`; then run
//! `cargo test -p parlor-tests --test openapi_schemathesis`.
//!
//! What Schemathesis holds a route to: a body that may be left out is
//! `request_body(content = ref("#/components/schemas/<Name>"), …)` with
//! `<Name>` listed in `components(schemas(...))` (`Option<T>` would also
//! allow `null`); path and query values carry the same limits as the code
//! that checks them (`pattern`, `minimum`, `max_length`, …); bodies go
//! through `http::json_body` (objects only), a nested struct field through
//! `wire::object`, an integer field through `wire::whole_number`.

use std::sync::LazyLock;

use axum::{
    http::{HeaderValue, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use parlor_engine::{MAX_HISTORY_LIMIT, MAX_SEQ};
use utoipa::{
    IntoParams, Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{control, http};

/// The OpenAPI document of the HTTP routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Parlor HTTP API",
        description = "The HTTP routes of Parlor's chat engine (docs/contract.md §4). \
            Every refusal is `{\"error\": {\"code\", \"message\"}}` with the status of its \
            code (docs/contract.md §7, the `ErrorCode` schema). The WebSocket at `/v1/ws` \
            (§5) and GraphQL at `/graphql` (§6, docs/schema.graphql) are described elsewhere.",
        license(name = "MIT OR Apache-2.0"),
    ),
    paths(
        http::reserve,
        http::room,
        http::messages,
        http::send,
        http::edit,
        http::redact,
        http::mark_read,
        http::signal,
        http::read_marker,
        http::invite,
        http::uninvite,
        control::list,
        control::members,
        control::update,
        control::close,
        control::kick,
        control::ban,
        control::unban,
        control::add_moderator,
        control::remove_moderator,
        openapi_json_route,
    ),
    // The optional bodies: named here, and referenced by `ref(...)` in their
    // routes' `request_body`, which keeps it optional (no body reads as `{}`)
    // without the `null` that `Option<T>` would allow.
    components(schemas(
        parlor_wire::ErrorCode,
        parlor_wire::ErrorBody,
        crate::wire::ReserveBody,
        crate::wire::EmptyBody,
        crate::wire::PatchRoomBody,
        crate::wire::RetentionBody,
        crate::wire::RedactBody,
        crate::wire::KickBody,
        crate::wire::BanBody
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "rooms", description = "Rooms, seats and history (docs/contract.md §4)."),
        (name = "meta", description = "This document."),
    ),
)]
pub struct ApiDoc;

/// Declares the security schemes: `bearer` (`Authorization: Bearer
/// <token>`, docs/contract.md §1) and `api_key` (`X-Api-Key`, a service,
/// §1).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token of docs/contract.md §1: a JWT, or `dev:<user>` on a server \
                         started with --dev-auth.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "A service's key (`--api-key NAME=SECRET`): the request acts as the \
                 service NAME, which may do everything in every room and holds no seat \
                 (docs/contract.md §1).",
            ))),
        );
    }
}

/// The document as pretty JSON: what `GET /v1/openapi.json` serves and
/// `docs/openapi.json` holds.
pub fn openapi_json() -> String {
    let mut json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    json.push('\n');
    json
}

// The literals in the attributes below (utoipa takes no constants there).
const _: () = assert!(MAX_SEQ == 9223372036854775807 && MAX_HISTORY_LIMIT == 500);

/// `{room_id}` in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "only describes the path; the handlers read it themselves"
)]
pub(crate) struct RoomPath {
    /// The room: 1–64 characters of `[A-Za-z0-9_-]`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    room_id: String,
}

/// `{room_id}` and `{user_id}` in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "only describes the path; the handlers read it themselves"
)]
pub(crate) struct UserPath {
    /// The room: 1–64 characters of `[A-Za-z0-9_-]`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    room_id: String,
    /// The user: 1–64 characters of `[A-Za-z0-9_.@-]`.
    #[param(pattern = "^[A-Za-z0-9_.@-]{1,64}$", min_length = 1, max_length = 64)]
    user_id: String,
}

/// `{room_id}` and `{seq}` in a message's path (docs/contract.md §2, Edits
/// and redactions).
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(
    dead_code,
    reason = "only describes the path; the handlers read it themselves"
)]
pub(crate) struct MessagePath {
    /// The room: 1–64 characters of `[A-Za-z0-9_-]`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    room_id: String,
    /// The message's seq.
    #[param(minimum = 0, maximum = 9223372036854775807i64)]
    seq: u64,
}

/// The history query of `GET …/messages` (docs/contract.md §3, History).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "only describes the query; the handler reads it itself"
)]
pub(crate) struct HistoryQuery {
    /// Entries with a greater seq (the oldest first).
    #[param(minimum = 0, maximum = 9223372036854775807i64)]
    after_seq: Option<u64>,
    /// Entries with a smaller seq (the newest page before it).
    #[param(minimum = 0, maximum = 9223372036854775807i64)]
    before_seq: Option<u64>,
    /// How many entries at most: 1–500, 100 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The listing query of `GET /v1/rooms` (docs/contract.md §2, Presence
/// and listing).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "only describes the query; the handler reads it itself"
)]
pub(crate) struct ListQuery {
    /// Only ids starting with this (matched literally; empty: all).
    #[param(max_length = 64)]
    prefix: Option<String>,
    /// Only ids after this one: the previous page's `next`.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", min_length = 1, max_length = 64)]
    after: Option<String>,
    /// How many rooms at most: 1–500, 100 by default.
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// The query of `DELETE /v1/rooms/{room_id}` (docs/contract.md §2,
/// Lifecycle).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "only describes the query; the handler reads it itself"
)]
pub(crate) struct CloseQuery {
    /// `true` also deletes the room's log and everything stored about it.
    purge: Option<bool>,
}

/// `GET /v1/openapi.json`: this document. No token needed.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI document.", content_type = "application/json"),
        (status = 403, description = "FORBIDDEN: the request's Origin is not allowed (§9).", body = parlor_wire::ErrorBody),
    ),
)]
pub(crate) async fn openapi_json_route() -> Response {
    static DOCUMENT: LazyLock<String> = LazyLock::new(openapi_json);
    let mut response = DOCUMENT.as_str().into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
