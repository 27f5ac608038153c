//! Edits and redactions inside the append (the `Store` rules,
//! docs/contract.md §2 "Edits and redactions"): which amendments of a batch
//! the log can take, decided in batch order from one lookup of their
//! targets, and what the accepted ones do to their targets once inserted.
//!
//! Pure bookkeeping: the dialects' SQL (`append_sqlite`, `append_postgres`)
//! reads the targets ([`TargetRow`]) and writes the effects ([`EditEffect`],
//! [`RedactionEffect`]); the append (`append`) walks the batch with
//! [`Targets`].

use std::collections::HashMap;

use parlor_engine::{EntryKind, ErrorKind, NewEntry};
use sea_orm::DbErr;

use crate::{rows::data_text, translate::room_not_stored};

/// A seq as the database holds it (`BIGINT`); one beyond it is -1, which no
/// entry has (the engine refuses such a seq before it gets here).
pub(crate) fn seq_value(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(-1)
}

/// What the lookup found for one amended (room, seq): the room's head, and
/// the entry there, if one is stored. A stored room always has a row; a
/// room that is not stored has none.
#[derive(Debug, Clone)]
pub(crate) struct TargetRow {
    /// The room.
    pub(crate) room_id: String,
    /// The target's seq.
    pub(crate) seq: i64,
    /// The room's `last_seq`.
    pub(crate) head: i64,
    /// The stored entry's kind; `None` when no entry is stored there
    /// (pruned, or beyond the head).
    pub(crate) kind: Option<String>,
    /// Whether the stored entry was redacted.
    pub(crate) redacted: bool,
}

/// Which amendment first redacted a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redactor {
    /// One stored before this batch (the append reads it).
    Stored,
    /// The batch's entry at this index.
    InBatch(usize),
}

/// What the log says to one entry of the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It is written.
    Accept,
    /// An amendment the log cannot take (`Appended::Refused`).
    Refuse(ErrorKind),
    /// A redaction of a message redacted before: answered with the first
    /// redaction, nothing written.
    RedactedBy(Redactor),
}

#[derive(Debug, Clone, Copy)]
struct Target {
    kind: EntryKind,
    redacted: bool,
    first_redaction: Redactor,
}

/// The state of the batch's amended rooms as the walk goes: the entries
/// stored at the targets, and the entries the batch writes before each
/// amendment (so that a redaction earlier in the batch counts, and an
/// amendment may even target an entry written earlier in the batch).
#[derive(Debug, Default)]
pub(crate) struct Targets {
    /// Each amended room's head: its last seq so far in the walk.
    heads: HashMap<String, i64>,
    /// The entries at (room, seq) that amendments may name.
    known: HashMap<(String, i64), Target>,
}

impl Targets {
    /// The walk's start, from the lookup's rows.
    pub(crate) fn new(rows: Vec<TargetRow>) -> Result<Self, DbErr> {
        let mut targets = Targets::default();
        for row in rows {
            targets.heads.insert(row.room_id.clone(), row.head);
            let Some(kind) = row.kind else { continue };
            let kind = EntryKind::parse(&kind)
                .ok_or_else(|| DbErr::Custom("stored row has an invalid kind".into()))?;
            let target = Target {
                kind,
                redacted: row.redacted,
                first_redaction: Redactor::Stored,
            };
            targets.known.insert((row.room_id, row.seq), target);
        }
        Ok(targets)
    }

    /// What the log says to `e`, given what the walk has accepted so far.
    /// A room that is not stored fails the batch.
    pub(crate) fn check(&self, e: &NewEntry) -> Result<Verdict, DbErr> {
        if !e.kind.is_amendment() {
            return Ok(Verdict::Accept);
        }
        let room = e.room_id.as_str();
        if !self.heads.contains_key(room) {
            return Err(room_not_stored(room));
        }
        let at = (room.to_owned(), e.target_seq.map_or(-1, seq_value));
        let Some(target) = self.known.get(&at) else {
            return Ok(Verdict::Refuse(ErrorKind::EntryNotFound));
        };
        Ok(match e.kind {
            EntryKind::Edit if target.kind != EntryKind::Text || target.redacted => {
                Verdict::Refuse(ErrorKind::InvalidInput)
            }
            EntryKind::Edit => Verdict::Accept,
            _ if !target.kind.is_message() => Verdict::Refuse(ErrorKind::InvalidInput),
            _ if target.redacted => Verdict::RedactedBy(target.first_redaction),
            _ => Verdict::Accept,
        })
    }

    /// Records that the batch's entry `e` at index `i` is written (after a
    /// [`Verdict::Accept`]): it takes its room's next seq, and a redaction
    /// marks its target redacted.
    pub(crate) fn accept(&mut self, i: usize, e: &NewEntry) {
        let room = e.room_id.as_str();
        let Some(head) = self.heads.get_mut(room) else {
            // A room with no amendment: nothing in it is looked up.
            return;
        };
        *head += 1;
        let entry = Target {
            kind: e.kind,
            redacted: false,
            first_redaction: Redactor::Stored,
        };
        self.known.insert((room.to_owned(), *head), entry);
        if e.kind == EntryKind::Redaction {
            let at = (room.to_owned(), e.target_seq.map_or(-1, seq_value));
            if let Some(target) = self.known.get_mut(&at) {
                target.redacted = true;
                target.first_redaction = Redactor::InBatch(i);
            }
        }
    }
}

/// An accepted edit's effect: its target's new body, data and `edited_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EditEffect<'a> {
    pub(crate) room_id: &'a str,
    pub(crate) target: i64,
    pub(crate) body: Option<&'a str>,
    /// The data's JSON text.
    pub(crate) data: Option<String>,
    /// The edit's `created_at`, in milliseconds.
    pub(crate) edited_at: i64,
}

/// An accepted redaction's effect: the message at (room, target) and its
/// edits lose their body and data.
pub(crate) type RedactionEffect<'a> = (&'a str, i64);

/// The effects of the accepted amendments among `written` (batch order):
/// per target, the last edit wins; redactions come after edits (a batch
/// never edits a message after redacting it: the walk refuses that).
pub(crate) fn effects<'a>(
    written: impl Iterator<Item = &'a NewEntry>,
) -> Result<(Vec<EditEffect<'a>>, Vec<RedactionEffect<'a>>), DbErr> {
    let mut edits: Vec<EditEffect<'a>> = Vec::new();
    let mut redactions: Vec<RedactionEffect<'a>> = Vec::new();
    for e in written {
        let target = e.target_seq.map_or(-1, seq_value);
        match e.kind {
            EntryKind::Edit => {
                let effect = EditEffect {
                    room_id: e.room_id.as_str(),
                    target,
                    body: e.body.as_deref(),
                    data: e.data.as_ref().map(data_text).transpose()?,
                    edited_at: e.created_at.millis(),
                };
                match edits
                    .iter_mut()
                    .find(|x| x.room_id == effect.room_id && x.target == target)
                {
                    Some(earlier) => *earlier = effect,
                    None => edits.push(effect),
                }
            }
            EntryKind::Redaction => redactions.push((e.room_id.as_str(), target)),
            _ => {}
        }
    }
    Ok((edits, redactions))
}

#[cfg(test)]
mod tests {
    use parlor_engine::{Message, RoomId, UserId};

    use super::*;

    fn room() -> RoomId {
        RoomId::new("r").unwrap()
    }

    fn user() -> UserId {
        UserId::new("ann").unwrap()
    }

    fn row(seq: i64, kind: Option<&str>, redacted: bool) -> TargetRow {
        TargetRow {
            room_id: "r".into(),
            seq,
            head: 5,
            kind: kind.map(str::to_owned),
            redacted,
        }
    }

    fn edit(target: u64) -> NewEntry {
        NewEntry::edit(room(), user(), target, None, Message::text("new"))
    }

    fn redaction(target: u64) -> NewEntry {
        NewEntry::redaction(room(), user(), target, None)
    }

    #[test]
    fn stored_targets_decide_by_kind_and_state() {
        let targets = Targets::new(vec![
            row(1, Some("text"), false),
            row(2, Some("system"), false),
            row(3, Some("join"), false),
            row(4, Some("text"), true),
            row(9, None, false),
        ])
        .unwrap();
        let check = |e: NewEntry| targets.check(&e).unwrap();
        assert_eq!(check(edit(1)), Verdict::Accept);
        assert_eq!(check(edit(2)), Verdict::Refuse(ErrorKind::InvalidInput));
        assert_eq!(check(edit(4)), Verdict::Refuse(ErrorKind::InvalidInput));
        assert_eq!(check(edit(9)), Verdict::Refuse(ErrorKind::EntryNotFound));
        assert_eq!(check(redaction(2)), Verdict::Accept);
        assert_eq!(
            check(redaction(3)),
            Verdict::Refuse(ErrorKind::InvalidInput)
        );
        assert_eq!(check(redaction(4)), Verdict::RedactedBy(Redactor::Stored));
        let other = NewEntry::redaction(RoomId::new("gone").unwrap(), user(), 1, None);
        assert!(targets.check(&other).is_err(), "a room that is not stored");
    }

    #[test]
    fn the_batch_order_counts() {
        let mut targets = Targets::new(vec![row(1, Some("text"), false)]).unwrap();
        let batch = [edit(1), redaction(1), edit(1), redaction(1)];
        let mut verdicts = Vec::new();
        for (i, e) in batch.iter().enumerate() {
            let v = targets.check(e).unwrap();
            if v == Verdict::Accept {
                targets.accept(i, e);
            }
            verdicts.push(v);
        }
        assert_eq!(
            verdicts,
            [
                Verdict::Accept,
                Verdict::Accept,
                Verdict::Refuse(ErrorKind::InvalidInput),
                Verdict::RedactedBy(Redactor::InBatch(1)),
            ]
        );
        // The edit took seq 6 and the redaction 7: neither may be amended.
        assert_eq!(
            targets.check(&redaction(6)).unwrap(),
            Verdict::Refuse(ErrorKind::InvalidInput)
        );
        assert_eq!(
            targets.check(&edit(8)).unwrap(),
            Verdict::Refuse(ErrorKind::EntryNotFound)
        );
    }

    #[test]
    fn the_last_edit_of_a_target_wins() {
        let mut first = edit(1);
        first.body = Some("first".into());
        let batch = [first, edit(2), edit(1), redaction(2)];
        let (edits, redactions) = effects(batch.iter()).unwrap();
        let bodies: Vec<_> = edits.iter().map(|e| (e.target, e.body)).collect();
        assert_eq!(bodies, [(1, Some("new")), (2, Some("new"))]);
        assert_eq!(redactions, [("r", 2)]);
    }
}
