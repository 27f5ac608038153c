//! The ports: what the engine needs from the outside, as traits.
//!
//! Storage crates implement [`Store`]; fan-out backends implement [`Bus`];
//! identity plug-ins implement [`Authenticator`]; a cluster adds
//! [`SeatLeases`] and [`PendingClaims`].
//! The engine never names a concrete backend.

mod auth;
mod bus;
mod cluster;
mod store;

pub use auth::{Authenticator, Principal, bearer_token};
pub use bus::{Bus, InProcessBus, LiveEntries};
pub use cluster::{Cluster, PendingClaims, SeatLeases, Seated};
pub use store::{Appended, CreateOutcome, Store};
