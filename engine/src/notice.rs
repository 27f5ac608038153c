//! [`Notice`]: a momentary message to a room's live members — never
//! stored, no `seq`, not in history, not replayed on resume (docs/contract.md
//! §2, "Read markers" and "Signals"). Read receipts and signals (typing…)
//! travel as notices. Like Matrix's ephemeral events (`m.receipt`,
//! `m.typing`), they sit beside the log, not in it.

use crate::{
    entry::{Data, Seq, Timestamp},
    ids::{RoomId, UserId},
};

/// One notice to a room's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The room.
    pub room_id: RoomId,
    /// Who it is about (the user who read, …).
    pub sender: UserId,
    /// Server time when it was sent.
    pub at: Timestamp,
    /// What it says.
    pub kind: NoticeKind,
}

/// What a [`Notice`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NoticeKind {
    /// `sender` marked the room read up to `seq` (a `receipt` on the wire).
    Receipt {
        /// Their read marker as it is now.
        seq: Seq,
    },
    /// A member's momentary signal (a `signal` on the wire): `typing`,
    /// `stopped_typing` or an app's own `x-…` name.
    Signal {
        /// What it signals.
        name: String,
        /// The app's small JSON object (≤ 256 bytes serialized).
        data: Option<Data>,
    },
}

impl NoticeKind {
    /// The notice's name on the wire: `receipt` or `signal`.
    pub fn as_str(&self) -> &'static str {
        match self {
            NoticeKind::Receipt { .. } => "receipt",
            NoticeKind::Signal { .. } => "signal",
        }
    }
}
