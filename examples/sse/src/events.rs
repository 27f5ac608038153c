//! A committed seat as a stream of SSE events: `joined`, then one `entry`
//! event per log entry with `id: <seq>`, so the browser's `Last-Event-ID`
//! is exactly the resume point, and a `receipt` event (no `id`: it is not
//! a log entry, and must not move the resume point) each time another
//! member marks the room read, a `signal` event (no `id` either) for each
//! other member's signal (typing…). The events' data are the contract's JSON
//! shapes from `parlor-wire`, as the other JSON transports send them.

use std::{convert::Infallible, sync::Arc};

use axum::response::sse::Event;
use futures_util::{Stream, StreamExt, stream};
use parlor_engine::{Entry, EntryStream, ErrorKind, Joined, Live, Membership, Notice, SeatGuard};
use parlor_wire::{EntryJson, ErrorBody, JoinedJson, NoticeJson, to_text};

fn joined_event(joined: &Joined) -> Event {
    Event::default()
        .event("joined")
        .data(to_text(&JoinedJson::from(joined)))
}

fn entry_event(entry: &Arc<Entry>) -> Event {
    Event::default()
        .id(entry.seq.to_string())
        .event("entry")
        .data(to_text(&EntryJson::from(&**entry)))
}

/// The `receipt` or `signal` event of a notice (named by its kind); `None`
/// for a kind the wire does not know.
fn notice_event(notice: &Notice) -> Option<Event> {
    let json = NoticeJson::from_notice(notice)?;
    Some(
        Event::default()
            .event(notice.kind.as_str())
            .data(to_text(&json)),
    )
}

/// The stream and the seat it holds. Field order matters: the stream is
/// dropped before the seat is released.
struct Seat {
    entries: EntryStream,
    _guard: SeatGuard,
}

/// `joined`, then entries and receipts until the seat is gone. Dropping the
/// stream (the client went away) drops the seat's guard, which sends the
/// seat to grace; so does an `error` ending (`HISTORY_PRUNED`: retention
/// overtook the stream, and the client reconnects with `Last-Event-ID`).
pub(crate) fn events(membership: Membership) -> impl Stream<Item = Result<Event, Infallible>> {
    let first = joined_event(membership.joined());
    let (_, entries, guard) = membership.into_parts();
    let seat = Seat {
        entries,
        _guard: guard,
    };
    let rest = stream::unfold(Some(seat), |state| async move {
        let mut seat = state?;
        loop {
            return match seat.entries.next_live().await {
                Ok(Live::Entry(entry)) => Some((Ok(entry_event(&entry)), Some(seat))),
                Ok(Live::Notice(notice)) => match notice_event(&notice) {
                    Some(event) => Some((Ok(event), Some(seat))),
                    None => continue,
                },
                // Left from elsewhere, kicked or closed: say so (with the
                // reason a removal gives) and end the stream.
                Err(err) if err.kind() == ErrorKind::NotAMember => {
                    Some((Ok(Event::default().event("left").data("{}")), None))
                }
                Err(err) if matches!(err.kind(), ErrorKind::Kicked | ErrorKind::RoomClosed) => {
                    let reason = if err.kind() == ErrorKind::Kicked {
                        "kicked"
                    } else {
                        "room_closed"
                    };
                    let data = format!(r#"{{"reason":"{reason}"}}"#);
                    Some((Ok(Event::default().event("left").data(data)), None))
                }
                // Retention pruned entries the stream had yet to deliver
                // (HISTORY_PRUNED), or storage failed while catching up: an
                // `error` event, then the end; the seat goes to grace. The
                // client reconnects with Last-Event-ID: after a storage
                // failure it loses nothing, after pruning its `joined` says
                // `"resumed": false` and the stream goes on from `first_seq`.
                Err(err) => Some((
                    Ok(Event::default()
                        .event("error")
                        .data(to_text(&ErrorBody::from(&err)))),
                    None,
                )),
            };
        }
    });
    stream::once(async move { Ok(first) }).chain(rest)
}
