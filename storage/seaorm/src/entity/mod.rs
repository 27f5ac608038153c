//! SeaORM entities (2.0 format) for Parlor's rooms, entries, open members,
//! invitations, moderators, bans and read markers.
//!
//! The derive macros generate `pub` items inside these crate-private modules.
#![allow(unreachable_pub, missing_docs)]

pub(crate) mod ban;
pub(crate) mod entry;
pub(crate) mod invite;
pub(crate) mod member;
pub(crate) mod moderator;
pub(crate) mod read_marker;
pub(crate) mod room;
