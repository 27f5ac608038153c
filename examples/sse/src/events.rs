//! A committed seat as a stream of SSE events: `joined`, then one `entry`
//! event per log entry with `id: <seq>`, so the browser's `Last-Event-ID`
//! is exactly the resume point.

use std::{convert::Infallible, sync::Arc};

use axum::response::sse::Event;
use futures_util::{Stream, StreamExt, stream};
use parlor_engine::{Entry, ErrorKind, Joined, Membership};
use serde_json::json;

use crate::errors;

/// The entry as JSON, with the fields and names of docs/contract.md §3.
pub(crate) fn entry_json(entry: &Entry) -> serde_json::Value {
    json!({
        "room_id": entry.room_id.as_str(),
        "seq": entry.seq,
        "id": entry.id,
        "kind": entry.kind.as_str(),
        "sender": entry.sender.as_str(),
        "client_id": entry.client_id,
        "body": entry.body,
        "created_at": entry.created_at.to_string(),
    })
}

fn joined_event(joined: &Joined) -> Event {
    let members: Vec<&str> = joined.members.iter().map(|m| m.as_str()).collect();
    Event::default().event("joined").data(
        json!({
            "room_id": joined.room_id.as_str(),
            "capacity": joined.capacity,
            "occupancy": joined.occupancy,
            "last_seq": joined.last_seq,
            "members": members,
        })
        .to_string(),
    )
}

fn entry_event(entry: &Arc<Entry>) -> Event {
    Event::default()
        .id(entry.seq.to_string())
        .event("entry")
        .data(entry_json(entry).to_string())
}

/// `joined`, then entries until the seat is gone. Dropping the stream (the
/// client went away) drops the membership, which sends the seat to grace.
pub(crate) fn events(membership: Membership) -> impl Stream<Item = Result<Event, Infallible>> {
    let first = joined_event(membership.joined());
    let rest = stream::unfold(Some(membership), |state| async move {
        let mut membership = state?;
        match membership.next_entry().await {
            Ok(entry) => Some((Ok(entry_event(&entry)), Some(membership))),
            // Left from elsewhere: say so and end the stream.
            Err(err) if err.kind() == ErrorKind::NotAMember => {
                Some((Ok(Event::default().event("left").data("{}")), None))
            }
            // Storage failed while catching up: the client reconnects with
            // Last-Event-ID once it is back, losing nothing.
            Err(err) => Some((
                Ok(Event::default()
                    .event("error")
                    .data(errors::body(&err).to_string())),
                None,
            )),
        }
    });
    stream::once(async move { Ok(first) }).chain(rest)
}
