//! Test support (feature `testkit`): [`MemoryStore`], an in-memory [`Store`]
//! test double for engine tests, [`conformance`], the behaviour suite
//! every storage backend must pass, and [`seeded_rng`] for randomized
//! tests.
//!
//! [`Store`]: crate::Store

pub mod conformance;
mod memory_store;

pub use memory_store::MemoryStore;

use rand::{SeedableRng, rngs::SmallRng};

/// A seeded RNG for a randomized test: the seed is `PARLOR_TEST_SEED` when
/// set (to replay a failure), else drawn at random, and is printed on
/// stderr with `test`'s name — the test harness shows it when the test
/// fails.
#[allow(clippy::print_stderr)] // the seed is what replays a failure
pub fn seeded_rng(test: &str) -> SmallRng {
    let seed = std::env::var("PARLOR_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("{test}: seed {seed}");
    SmallRng::seed_from_u64(seed)
}
