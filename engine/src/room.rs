//! What a room is, outside its seats: [`RoomSpec`] (asked for at creation),
//! [`StoredRoom`] (what storage keeps) and [`RoomInfo`] (what clients see).

use crate::{
    entry::{Seq, Timestamp},
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
    /// Whether it was closed (`DELETE /v1/rooms/{id}` without `purge`): it
    /// takes no seats and no messages; its history stays readable.
    pub closed: bool,
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
    /// Whether it is private.
    pub private: bool,
    /// Whether it was closed.
    pub closed: bool,
}

/// A change of a stored room's facts (`PATCH /v1/rooms/{id}`): each field
/// given replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPatch {
    /// A new title (`Some(None)` clears it).
    pub title: Option<Option<String>>,
    /// A new capacity, 1..=`max_capacity`. Lowering it below the occupancy
    /// evicts no one: new seats are refused until occupancy falls under it.
    pub capacity: Option<u32>,
}

impl RoomPatch {
    pub(crate) fn validate(&self, max_capacity: u32) -> Result<(), Error> {
        let spec = RoomSpec {
            capacity: self.capacity.unwrap_or(1),
            title: self.title.clone().flatten(),
            private: false,
        };
        spec.validate(max_capacity)
    }

    /// `room` with this patch applied.
    pub fn apply(&self, mut room: StoredRoom) -> StoredRoom {
        if let Some(title) = &self.title {
            room.title = title.clone();
        }
        if let Some(capacity) = self.capacity {
            room.capacity = capacity;
        }
        room
    }
}

/// One page of the room listing (`GET /v1/rooms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomQuery<'a> {
    /// Only ids starting with this ("" for all).
    pub prefix: &'a str,
    /// Only ids after this one (the previous page's `next`).
    pub after: Option<&'a RoomId>,
    /// At most this many rooms, 1..=[`MAX_ROOM_PAGE`].
    pub limit: u32,
}

/// The most rooms one listing page returns.
pub const MAX_ROOM_PAGE: u32 = 500;
/// A listing page's size when none is asked for.
pub const DEFAULT_ROOM_PAGE: u32 = 100;

/// A page of rooms, ordered by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomPage {
    /// The rooms the caller may see, ascending by id.
    pub rooms: Vec<RoomInfo>,
    /// Where the next page starts (pass it as `after`); `None` at the end.
    pub next: Option<RoomId>,
}

/// A seat's state as presence shows it (docs/contract.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberState {
    /// A ticket was issued and not used yet (shown to the service only).
    Reserved,
    /// At least one live connection holds it.
    Joined,
    /// Its last connection was lost; the seat waits out the grace period.
    Grace,
}

impl MemberState {
    /// `reserved`, `joined` or `grace`, as on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Reserved => "reserved",
            MemberState::Joined => "joined",
            MemberState::Grace => "grace",
        }
    }
}

/// One seat of a room's presence list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Whose seat.
    pub user_id: UserId,
    /// Its state.
    pub state: MemberState,
    /// When it entered that state (server clock).
    pub since: Timestamp,
}

/// A ban of a user from a room (`PUT /v1/rooms/{id}/bans/{user}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ban {
    /// When it lapses (`None`: never).
    pub until: Option<Timestamp>,
    /// The moderator's note, at most [`MAX_REASON_CHARS`] characters.
    pub reason: Option<String>,
}

impl Ban {
    /// Whether the ban still holds at `now`.
    pub fn holds_at(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// The longest moderator's note (a kick's or a ban's `reason`).
pub const MAX_REASON_CHARS: usize = 500;

/// `INVALID_INPUT` unless a moderator's note fits [`MAX_REASON_CHARS`].
pub(crate) fn check_reason(reason: Option<&str>) -> Result<(), Error> {
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("reason must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(())
}
