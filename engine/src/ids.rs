//! Identifiers: [`UserId`] and [`RoomId`] (validated names), and [`SeatId`].
//!
//! Both are `Arc<str>` inside, so the engine clones them freely (every seat,
//! entry and ticket hold names one) without allocating.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::error::{Error, ErrorKind};

/// The longest room or user id, in characters (all ASCII, so bytes too).
pub const MAX_ID_CHARS: usize = 64;

fn validate(value: &str, what: &str, extra: &[char]) -> Result<(), Error> {
    let ok = (1..=MAX_ID_CHARS).contains(&value.len())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || extra.contains(&c));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{what} must be 1-64 characters of [A-Za-z0-9_{}-]",
                extra.iter().collect::<String>()
            ),
        ))
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $extra:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn new(value: &str) -> Result<Self, Error> {
                validate(value, $what, $extra)?;
                Ok($name(Arc::from(value)))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                $name::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A user id: 1–64 characters of `[A-Za-z0-9_.@-]`.
    UserId,
    "user id",
    &['.', '@']
);
id_type!(
    /// A room id: 1–64 characters of `[A-Za-z0-9_-]`.
    RoomId,
    "room id",
    &[]
);

/// One seat, told apart from every other seat of the process — also a
/// later seat of the same user in the same room, so a guard of an older seat
/// releases nothing. A cluster node names its seat rows by it (column
/// `parlor_seats.seat`). Ids are unique within a process, not only within a
/// room: a room may be unloaded and loaded again while an old seat's row is
/// still being dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeatId(u64);

impl SeatId {
    /// Wraps a stored id (a storage crate reading its rows back).
    pub fn new(raw: u64) -> Self {
        SeatId(raw)
    }

    /// The raw id, for storage.
    pub fn get(self) -> u64 {
        self.0
    }

    /// An id never used before in this process.
    pub(crate) fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SeatId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for SeatId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_contract() {
        assert!(UserId::new("alice.b@example-1_x").is_ok());
        assert!(RoomId::new("alice.b").is_err(), "dots are for users only");
        assert!(RoomId::new("").is_err());
        assert!(RoomId::new(&"r".repeat(64)).is_ok());
        assert!(RoomId::new(&"r".repeat(65)).is_err());
        assert!(UserId::new("bob smith").is_err());
        assert!(UserId::new("é").is_err());
        assert_eq!(
            RoomId::new("a b").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
