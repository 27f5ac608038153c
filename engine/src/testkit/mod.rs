//! Test support (feature `testkit`): [`MemoryStore`], an in-memory [`Store`]
//! test double for engine tests, and [`conformance`], the behaviour suite
//! every storage backend must pass.
//!
//! [`Store`]: crate::Store

pub mod conformance;
mod memory_store;

pub use memory_store::MemoryStore;
