//! A committed seat as a stream of SSE events: `joined`, then one `entry`
//! event per log entry with `id: <seq>`, so the browser's `Last-Event-ID`
//! is exactly the resume point. The events' data are the contract's JSON
//! shapes from `parlor-wire`, as the other JSON transports send them.

use std::{convert::Infallible, sync::Arc};

use axum::response::sse::Event;
use futures_util::{Stream, StreamExt, stream};
use parlor_engine::{Entry, ErrorKind, Joined, Membership};
use parlor_wire::{EntryJson, ErrorBody, JoinedJson, to_text};

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

/// `joined`, then entries until the seat is gone. Dropping the stream (the
/// client went away) drops the membership, which sends the seat to grace.
pub(crate) fn events(membership: Membership) -> impl Stream<Item = Result<Event, Infallible>> {
    let first = joined_event(membership.joined());
    let rest = stream::unfold(Some(membership), |state| async move {
        let mut membership = state?;
        match membership.next_entry().await {
            Ok(entry) => Some((Ok(entry_event(&entry)), Some(membership))),
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
            // Storage failed while catching up: the client reconnects with
            // Last-Event-ID once it is back, losing nothing.
            Err(err) => Some((
                Ok(Event::default()
                    .event("error")
                    .data(to_text(&ErrorBody::from(&err)))),
                None,
            )),
        }
    });
    stream::once(async move { Ok(first) }).chain(rest)
}
