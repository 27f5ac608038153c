//! # parlor-wire
//!
//! What Parlor's web-facing transports share, so that each rule of
//! docs/contract.md is written once rather than once per transport:
//!
//! - **the contract's JSON shapes** ([`EntryJson`], [`JoinedJson`],
//!   [`ReservationJson`], [`RoomJson`], [`RetentionJson`], [`MessagesJson`],
//!   [`ReadStateJson`], [`ReadMarkerJson`], [`ReceiptJson`], [`SignalJson`] (either
//!   as a [`NoticeJson`]), [`ErrorJson`],
//!   [`ErrorBody`]): an entry is encoded the same way by the raw WebSocket
//!   (behind `"type":"entry"`), its HTTP routes and the SSE transport;
//! - **[`ApiError`]**: an engine error as an HTTP response, the status from
//!   the engine's table (docs/contract.md §7) and the body of §4;
//! - **[`OriginPolicy`]**: the origin check of docs/contract.md §9 (403
//!   `FORBIDDEN` before any handler or WebSocket upgrade) with its CORS
//!   answers, one layer for every router a browser page calls;
//! - **[`burst`]**: the sockets' burst write and its constants, used by the
//!   raw WebSocket's writer and the GraphQL socket's writer.
//!
//! How it fits: `parlor-ws`, `parlor-graphql` and `parlor-sse` depend on it,
//! and it depends on `parlor-engine` (plus axum, serde, tower-http, and utoipa
//! for the shapes' OpenAPI schemas),
//! never the reverse: the engine knows no transport. What is one
//! transport's own — the raw WebSocket's frames, GraphQL's schema types and
//! `extensions.code`, close codes — stays in that transport.
//!
//! ```
//! use parlor_engine::{Error, ErrorKind, NewEntry, RoomId, UserId};
//! use parlor_wire::{ApiError, EntryJson, ErrorBody, OriginPolicy, to_text};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An entry as every JSON transport sends it (docs/contract.md §3).
//! let entry = NewEntry::text(RoomId::new("lobby")?, UserId::new("ann")?, "c-1", "hi").at(7);
//! let json: serde_json::Value = serde_json::from_str(&to_text(&EntryJson::from(&entry)))?;
//! assert_eq!(json["seq"], 7);
//! assert_eq!(json["kind"], "text");
//! assert_eq!(json["client_id"], "c-1");
//!
//! // A refusal: the body of docs/contract.md §4, and as an axum response.
//! let full = Error::new(ErrorKind::RoomFull, "the room is full");
//! assert_eq!(
//!     to_text(&ErrorBody::from(&full)),
//!     r#"{"error":{"code":"ROOM_FULL","message":"the room is full"}}"#
//! );
//! let response = axum::response::IntoResponse::into_response(ApiError(full));
//! assert_eq!(response.status(), 409);
//!
//! // One origin policy around any router a browser page calls.
//! let policy = OriginPolicy::new(["https://chat.example.com"]);
//! let app: axum::Router = policy.protect(axum::Router::new());
//! # drop(app);
//! # Ok(()) }
//! ```

pub mod burst;
mod error;
mod json;
mod origin;

pub use error::ApiError;
pub use json::{
    EntryJson, ErrorBody, ErrorCode, ErrorJson, JoinedJson, MemberJson, MembersJson, MessagesJson,
    NoticeJson, ReadMarkerJson, ReadStateJson, ReceiptJson, ReservationJson, RetentionJson,
    RoomJson, RoomsJson, SignalJson, to_text,
};
pub use origin::OriginPolicy;
