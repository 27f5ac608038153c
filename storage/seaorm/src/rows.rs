//! Stored rows ↔ engine types. A stored row that the engine's types refuse
//! (an invalid id, a negative seq) is an error, never skipped: it means the
//! database was written by something else.

use std::time::Duration;

use parlor_engine::{
    Ban, Data, Entry, EntryKind, LeaveReason, Retention, RoomId, StoredRoom, Timestamp, UserId,
};
use sea_orm::{ActiveValue::Set, DbErr};

use crate::entity::{ban, entry, invite, member, moderator, room};

/// A stored row that no Parlor wrote: `what` is not what it should be.
pub(crate) fn corrupt(what: &str) -> DbErr {
    DbErr::Custom(format!("stored row has an invalid {what}"))
}

/// A stored log entry. The `reason` column holds a `leave`'s reason or a
/// `redaction`'s note: the kind says which.
pub(crate) fn to_entry(row: entry::Model) -> Result<Entry, DbErr> {
    let kind = EntryKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?;
    let (reason, redaction_reason) = if kind == EntryKind::Redaction {
        (None, row.reason)
    } else {
        let reason = row
            .reason
            .as_deref()
            .map(|r| LeaveReason::parse(r).ok_or_else(|| corrupt("reason")))
            .transpose()?;
        (reason, None)
    };
    Ok(Entry {
        room_id: RoomId::new(&row.room_id).map_err(|_| corrupt("room id"))?,
        seq: u64::try_from(row.seq).map_err(|_| corrupt("seq"))?,
        id: row.id.parse().map_err(|_| corrupt("entry id"))?,
        kind,
        sender: UserId::new(&row.sender).map_err(|_| corrupt("sender"))?,
        client_id: row.client_id,
        body: row.body,
        data: row
            .data
            .as_deref()
            .map(serde_json::from_str::<Data>)
            .transpose()
            .map_err(|_| corrupt("data"))?,
        reason,
        target_seq: row
            .target_seq
            .map(u64::try_from)
            .transpose()
            .map_err(|_| corrupt("target seq"))?,
        redaction_reason,
        edited_at: row.edited_at.map(Timestamp),
        redacted: row.redacted,
        created_at: Timestamp(row.created_at),
    })
}

/// What an entry stores in the `reason` column: a `leave`'s reason, or a
/// `redaction`'s note.
pub(crate) fn reason_text(e: &parlor_engine::NewEntry) -> Option<&str> {
    match e.reason {
        Some(reason) => Some(reason.as_str()),
        None => e.redaction_reason.as_deref(),
    }
}

/// A message's data as stored: its JSON object's text.
pub(crate) fn data_text(data: &Data) -> Result<String, DbErr> {
    serde_json::to_string(data).map_err(|e| DbErr::Custom(format!("data to JSON: {e}")))
}

/// A stored room.
pub(crate) fn to_room(row: room::Model) -> Result<StoredRoom, DbErr> {
    Ok(StoredRoom {
        id: RoomId::new(&row.id).map_err(|_| corrupt("room id"))?,
        capacity: u32::try_from(row.capacity).map_err(|_| corrupt("capacity"))?,
        title: row.title,
        last_seq: u64::try_from(row.last_seq).map_err(|_| corrupt("last seq"))?,
        owner: row
            .owner_id
            .as_deref()
            .map(UserId::new)
            .transpose()
            .map_err(|_| corrupt("owner id"))?,
        private: row.private,
        closed: row.closed,
        first_seq: u64::try_from(row.first_seq).map_err(|_| corrupt("first seq"))?,
        retention: row
            .own_retention
            .then(|| {
                Ok::<_, DbErr>(Retention {
                    max_entries: row
                        .retention_max_entries
                        .map(u64::try_from)
                        .transpose()
                        .map_err(|_| corrupt("retention"))?,
                    max_age: row
                        .retention_max_age_ms
                        .map(u64::try_from)
                        .transpose()
                        .map_err(|_| corrupt("retention"))?
                        .map(Duration::from_millis),
                })
            })
            .transpose()?,
    })
}

/// A room's own retention as its row holds it: (`own_retention`,
/// `retention_max_entries`, `retention_max_age_ms`). A bound too large for
/// the column is held at its largest value (the engine bounds both far
/// below).
pub(crate) fn retention_columns(retention: Option<&Retention>) -> (bool, Option<i64>, Option<i64>) {
    match retention {
        None => (false, None, None),
        Some(r) => (
            true,
            r.max_entries.map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
            r.max_age
                .map(|a| i64::try_from(a.as_millis()).unwrap_or(i64::MAX)),
        ),
    }
}

/// An open membership: (room, user).
pub(crate) fn to_member(row: member::Model) -> Result<(RoomId, UserId), DbErr> {
    Ok((
        RoomId::new(&row.room_id).map_err(|_| corrupt("room id"))?,
        UserId::new(&row.user_id).map_err(|_| corrupt("user id"))?,
    ))
}

/// The row of a room being created: its log starts empty (`last_seq` 0,
/// `first_seq` 1, whatever `new` says), created now.
pub(crate) fn room_row(new: &StoredRoom) -> room::ActiveModel {
    let (own_retention, max_entries, max_age_ms) = retention_columns(new.retention.as_ref());
    room::ActiveModel {
        id: Set(new.id.to_string()),
        capacity: Set(new.capacity as i32),
        title: Set(new.title.clone()),
        last_seq: Set(0),
        created_at: Set(Timestamp::now().millis()),
        owner_id: Set(new.owner.as_ref().map(ToString::to_string)),
        private: Set(new.private),
        closed: Set(new.closed),
        first_seq: Set(1),
        own_retention: Set(own_retention),
        retention_max_entries: Set(max_entries),
        retention_max_age_ms: Set(max_age_ms),
    }
}

/// The row of an invitation of `user` to `room`.
pub(crate) fn invite_row(room: &RoomId, user: &UserId) -> invite::ActiveModel {
    invite::ActiveModel {
        room_id: Set(room.to_string()),
        user_id: Set(user.to_string()),
    }
}

/// The row of `user` as a moderator of `room`.
pub(crate) fn moderator_row(room: &RoomId, user: &UserId) -> moderator::ActiveModel {
    moderator::ActiveModel {
        room_id: Set(room.to_string()),
        user_id: Set(user.to_string()),
    }
}

/// The row of `user`'s ban from `room`.
pub(crate) fn ban_row(room: &RoomId, user: &UserId, ban: &Ban) -> ban::ActiveModel {
    ban::ActiveModel {
        room_id: Set(room.to_string()),
        user_id: Set(user.to_string()),
        until_ms: Set(ban.until.map(Timestamp::millis)),
        reason: Set(ban.reason.clone()),
    }
}

/// A stored ban.
pub(crate) fn to_ban(row: ban::Model) -> Ban {
    Ban {
        until: row.until_ms.map(Timestamp),
        reason: row.reason,
    }
}
