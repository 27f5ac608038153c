//! The ports: what the engine needs from the outside, as traits.
//!
//! Storage crates implement [`Store`]; fan-out backends implement [`Bus`];
//! identity plug-ins implement [`Authenticator`]; who may do what is a
//! [`RoomPolicy`]; webhooks are [`EventSink`]s; a cluster adds
//! [`SeatLeases`] and [`PendingClaims`].
//! The engine never names a concrete backend.

pub(crate) mod auth;
mod bus;
mod cluster;
mod event_sink;
pub(crate) mod policy;
mod store;

pub use auth::{Authenticator, Claims, Principal, bearer_token};
pub use bus::{Bus, InProcessBus, LiveEntries, LiveNotices};
pub use cluster::{Cluster, PendingClaims, SeatLeases, Seated, SeatedUser};
pub use event_sink::EventSink;
pub use policy::{Action, Decision, PolicyRequest, RoomPolicy};
pub use store::{
    Appended, CreateOutcome, CursorMove, PruneBound, Pruned, Store, WebhookCursor,
    prune_room_by_room,
};
