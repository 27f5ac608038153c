//! The ports: what the engine needs from the outside, as traits.
//!
//! Storage crates implement [`Store`]; fan-out backends implement [`Bus`].
//! The engine never names a concrete backend.

mod bus;
mod store;

pub use bus::{Bus, InProcessBus, LiveEntries};
pub use store::{Appended, CreateOutcome, Store};
