//! What a room is, outside its seats: [`RoomSpec`] (asked for at creation),
//! [`StoredRoom`] (what storage keeps) and [`RoomInfo`] (what clients see).

use crate::{
    entry::Seq,
    error::{Error, ErrorKind},
    ids::{RoomId, UserId},
};

/// The most characters a room title may have.
pub const MAX_TITLE_CHARS: usize = 200;

/// What a creator asks for: a capacity, an optional title, and whether the
/// room is private (docs/contract.md §2: to anyone its policy does not
/// admit, a private room does not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSpec {
    /// 1..=`max_capacity` seats.
    pub capacity: u32,
    /// At most 200 characters.
    pub title: Option<String>,
    /// Private: admits its owner, users the room policy allows, and users a
    /// moderator invited.
    pub private: bool,
}

impl RoomSpec {
    /// A public spec with `capacity` seats and no title.
    pub fn with_capacity(capacity: u32) -> Self {
        RoomSpec {
            capacity,
            title: None,
            private: false,
        }
    }

    /// The same spec, private.
    pub fn private(mut self) -> Self {
        self.private = true;
        self
    }

    pub(crate) fn validate(&self, max_capacity: u32) -> Result<(), Error> {
        if !(1..=max_capacity).contains(&self.capacity) {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("capacity must be between 1 and {max_capacity}"),
            ));
        }
        if let Some(title) = &self.title
            && title.chars().count() > MAX_TITLE_CHARS
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("title must be at most {MAX_TITLE_CHARS} characters"),
            ));
        }
        Ok(())
    }
}

/// A room as storage keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRoom {
    /// The room.
    pub id: RoomId,
    /// Its seats.
    pub capacity: u32,
    /// Its title.
    pub title: Option<String>,
    /// The seq of its newest entry; 0 for an empty log.
    pub last_seq: Seq,
    /// The user who created it (its first moderator); `None` for a room
    /// stored before rooms had owners.
    pub owner: Option<UserId>,
    /// Whether it is private.
    pub private: bool,
}

/// A room as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// The room.
    pub room_id: RoomId,
    /// Its title.
    pub title: Option<String>,
    /// Its seats.
    pub capacity: u32,
    /// Seats held in any state (reserved, joined, grace).
    pub occupancy: u32,
    /// The seq of its newest entry.
    pub last_seq: Seq,
}
