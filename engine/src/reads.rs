//! The read paths: a page of a room's history (docs/contract.md §3) and a
//! room's facts. Neither changes a seat or the log.

use crate::{
    authorization::authorize,
    entry::{HistoryPage, MAX_HISTORY_LIMIT, Seq, SeqRange, check_seq},
    error::{Error, ErrorKind, Result},
    ids::MAX_ID_CHARS,
    ids::RoomId,
    ports::{Action, Principal},
    read_markers,
    room::{
        MAX_ROOM_PAGE, Member, MemberState, ReadState, RoomInfo, RoomPage, RoomQuery, StoredRoom,
    },
    state::EngineState,
};

/// A page of `room_id`'s log. The reader needs the policy's `read` and a
/// member's seat — joined or in grace, on any node of a cluster; a
/// reservation alone is not enough — or to be the room's owner.
///
/// Errors: `INVALID_INPUT` for a bad range, `ROOM_NOT_FOUND` for a room that
/// is not stored (or a private room the reader may not see), the policy's
/// refusal (`FORBIDDEN`), `NOT_A_MEMBER`, storage errors.
pub(crate) async fn history(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
    range: SeqRange,
) -> Result<HistoryPage> {
    validate_range(&range)?;
    let user = &principal.user;
    let facts = state
        .stored_facts(room_id)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    authorize(state, principal, room_id, Some(&facts), Action::Read).await?;
    let member_here = state
        .directory
        .get(room_id)
        .is_some_and(|room| room.ledger().is_member(user));
    let owner = principal.service || facts.owner.as_ref() == Some(user);
    if !member_here && !owner && !member_elsewhere(state, room_id, principal).await? {
        return Err(ErrorKind::NotAMember.into());
    }
    let entries = state.store.entries(room_id, range).await?;
    // Where the log starts, learnt after the read: a prune that ran
    // meanwhile shows as a later start, never as a hidden gap.
    let mut first_seq = first_seq_now(state, room_id).await?;
    if let (Some(after), Some(first)) = (range.after, entries.first())
        && first.seq > after + 1
    {
        first_seq = first_seq.max(first.seq);
    }
    Ok(HistoryPage { entries, first_seq })
}

/// The room's oldest stored seq as it is now: the loaded room's (the
/// pruner tells it), or in a cluster or for an unloaded room the stored
/// row's.
async fn first_seq_now(state: &EngineState, room_id: &RoomId) -> Result<Seq> {
    if state.cluster.is_none()
        && let Some(room) = state.directory.get(room_id)
    {
        return Ok(room.facts().first_seq);
    }
    Ok(state.store.room(room_id).await?.map_or(1, |r| r.first_seq))
}

/// In a cluster, whether the user is a member through another node.
async fn member_elsewhere(
    state: &EngineState,
    room_id: &RoomId,
    principal: &Principal,
) -> Result<bool> {
    let Some(cluster) = &state.cluster else {
        return Ok(false);
    };
    let seated = cluster.leases.seated(room_id).await?;
    Ok(seated.members.contains(&principal.user))
}

/// `after`/`before` are seqs; `limit` is 1..=[`MAX_HISTORY_LIMIT`].
fn validate_range(range: &SeqRange) -> Result<()> {
    if let Some(after) = range.after {
        check_seq("after_seq", after)?;
    }
    if let Some(before) = range.before {
        check_seq("before_seq", before)?;
    }
    if !(1..=MAX_HISTORY_LIMIT).contains(&range.limit) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("limit must be between 1 and {MAX_HISTORY_LIMIT}"),
        ));
    }
    Ok(())
}

/// The room's facts, if it is stored (a pending room is not) and the
/// policy lets the caller `read` it; `None` for a private room the caller
/// may not see, as for an absent one. Occupancy is this node's ledger, or
/// in a cluster the database's count of every node.
///
/// Errors: the policy's refusal for a public room (`FORBIDDEN`); storage
/// errors.
pub(crate) async fn room_info(
    state: &EngineState,
    principal: &Principal,
    id: &RoomId,
) -> Result<Option<RoomInfo>> {
    let Some(facts) = state.stored_facts(id).await? else {
        return Ok(None);
    };
    match authorize(state, principal, id, Some(&facts), Action::Read).await {
        Err(err) if err.kind() == ErrorKind::RoomNotFound => return Ok(None),
        other => other?,
    }
    let (stored, occupancy) = match &state.cluster {
        // Seats and appends of every node: ask the database.
        Some(cluster) => {
            let Some(stored) = state.store.room(id).await? else {
                return Ok(None);
            };
            (stored, cluster.leases.seated(id).await?.occupancy)
        }
        None => {
            let occupancy = state
                .directory
                .get(id)
                .map_or(0, |room| room.ledger().occupancy());
            (facts, occupancy)
        }
    };
    let read = read_state_of(state, principal, id).await?;
    let can_moderate = may_moderate(state, principal, id, &stored).await;
    Ok(Some(RoomInfo {
        can_moderate: Some(can_moderate),
        ..info(stored, occupancy, read)
    }))
}

/// Whether the policy lets the caller moderate the room (a page shows its
/// kick and ban buttons by it); false when the policy could not answer.
async fn may_moderate(
    state: &EngineState,
    principal: &Principal,
    id: &RoomId,
    facts: &StoredRoom,
) -> bool {
    match authorize(state, principal, id, Some(facts), Action::Moderate).await {
        Ok(()) => true,
        // A private room hides itself from whoever may not moderate it
        // (an invited member reads it, and is told no more).
        Err(err) if matches!(err.kind(), ErrorKind::Forbidden | ErrorKind::RoomNotFound) => false,
        // The facts were allowed; an answer that could not be had (an
        // authorization hook down) shows no moderation, not an error.
        Err(err) => {
            tracing::warn!(room = %id, code = err.code(), "could not ask whether the caller moderates");
            false
        }
    }
}

/// The caller's read state in the room; `None` for a service.
async fn read_state_of(
    state: &EngineState,
    principal: &Principal,
    id: &RoomId,
) -> Result<Option<ReadState>> {
    if principal.service {
        return Ok(None);
    }
    Ok(Some(
        read_markers::read_state(state, id, &principal.user).await?,
    ))
}

fn info(stored: StoredRoom, occupancy: u32, read: Option<ReadState>) -> RoomInfo {
    RoomInfo {
        room_id: stored.id,
        title: stored.title,
        capacity: stored.capacity,
        occupancy,
        last_seq: stored.last_seq,
        private: stored.private,
        closed: stored.closed,
        first_seq: stored.first_seq,
        retention: stored.retention,
        read,
        can_moderate: None,
    }
}

/// Who holds a seat in the room, sorted by user: joined seats and seats in
/// grace, with since when; a service also sees reserved seats. Needs the
/// policy's `read`.
///
/// Errors: `ROOM_NOT_FOUND` (absent, pending, or private and hidden), the
/// policy's refusal (`FORBIDDEN`), storage errors.
pub(crate) async fn members(
    state: &EngineState,
    principal: &Principal,
    room_id: &RoomId,
) -> Result<Vec<Member>> {
    let facts = state
        .stored_facts(room_id)
        .await?
        .ok_or(ErrorKind::RoomNotFound)?;
    authorize(state, principal, room_id, Some(&facts), Action::Read).await?;
    // This node's seats, with their exact state.
    let local = state
        .directory
        .get(room_id)
        .map(|room| room.ledger().presence(true))
        .unwrap_or_default();
    let mut members = match &state.cluster {
        None => local,
        // Every node's seats are rows in the database: those held here keep
        // the ledger's state; those held elsewhere are `joined` once the
        // log has them as members (a seat in grace elsewhere reads joined),
        // else `reserved`, since their row was taken.
        Some(cluster) => {
            let seated = cluster.leases.seated(room_id).await?;
            seated
                .seats
                .into_iter()
                .map(|seat| {
                    local
                        .iter()
                        .find(|m| m.user_id == seat.user)
                        .cloned()
                        .unwrap_or(Member {
                            state: if seat.member {
                                MemberState::Joined
                            } else {
                                MemberState::Reserved
                            },
                            user_id: seat.user,
                            since: seat.since,
                        })
                })
                .collect()
        }
    };
    if !principal.service {
        members.retain(|m| m.state != MemberState::Reserved);
    }
    Ok(members)
}

/// How many stored pages one listing request reads while the policy hides
/// the rooms it finds, before it answers with fewer rooms than asked and a
/// `next` to go on from (once it has a `next` that leaks nothing).
const LISTING_SCAN_PAGES: usize = 8;

/// A page of rooms, ascending by id, keyset-paged: those whose id starts
/// with `query.prefix` and sorts after `query.after`, and that the caller
/// may `read` (a service sees all). Closed rooms are not listed, and a
/// pending room is not stored yet. A page may hold fewer than `limit` rooms
/// while `next` is set (the policy hid the rest of what was read); `next`
/// is never a room hidden from the caller.
///
/// Errors: `INVALID_INPUT` for a limit outside 1..=500 or a prefix over 64
/// characters, the policy's refusal (`FORBIDDEN` hides a room; other
/// refusals, such as `UNAVAILABLE`, fail the page), storage errors.
pub(crate) async fn rooms(
    state: &EngineState,
    principal: &Principal,
    query: RoomQuery<'_>,
) -> Result<RoomPage> {
    if !(1..=MAX_ROOM_PAGE).contains(&query.limit) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("limit must be between 1 and {MAX_ROOM_PAGE}"),
        ));
    }
    if query.prefix.chars().count() > MAX_ID_CHARS {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("prefix must be at most {MAX_ID_CHARS} characters"),
        ));
    }
    let limit = query.limit as usize;
    let mut page = RoomPage::default();
    // Where the store read up to, and where the caller may be told to go
    // on from: never a room hidden from them (a private room's id must not
    // leak), so only a room returned, or a public one (its existence is no
    // secret even where the policy refuses to show it).
    let mut read_up_to = query.after.cloned();
    let mut resume_at = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let stored = state
            .store
            .rooms(query.prefix, read_up_to.as_ref(), query.limit)
            .await?;
        let exhausted = stored.len() < limit;
        for room in stored {
            read_up_to = Some(room.id.clone());
            let private = room.private;
            if may_list(state, principal, &room).await? {
                let occupancy = occupancy(state, &room.id).await?;
                page.rooms.push(info(room, occupancy, None));
            } else if private {
                continue;
            }
            resume_at = read_up_to.clone();
            if page.rooms.len() == limit {
                page.next = resume_at;
                return with_read_states(state, principal, page).await;
            }
        }
        if exhausted {
            return with_read_states(state, principal, page).await;
        }
        // A long run of hidden rooms: stop once there is somewhere safe to
        // resume from (a run of private rooms is read through).
        if pages >= LISTING_SCAN_PAGES && resume_at.is_some() {
            page.next = resume_at;
            return with_read_states(state, principal, page).await;
        }
    }
}

/// The page with the caller's read state in each room (one store query for
/// the page); unchanged for a service.
async fn with_read_states(
    state: &EngineState,
    principal: &Principal,
    mut page: RoomPage,
) -> Result<RoomPage> {
    if principal.service || page.rooms.is_empty() {
        return Ok(page);
    }
    let ids: Vec<RoomId> = page.rooms.iter().map(|r| r.room_id.clone()).collect();
    let states = state.store.read_states(&principal.user, &ids).await?;
    for (room, read) in page.rooms.iter_mut().zip(states) {
        room.read = Some(read);
    }
    Ok(page)
}

/// Whether the listing shows `room` to the caller: the policy's `read`
/// (a refusal hides it).
async fn may_list(state: &EngineState, principal: &Principal, room: &StoredRoom) -> Result<bool> {
    match authorize(state, principal, &room.id, Some(room), Action::Read).await {
        Ok(()) => Ok(true),
        Err(err) if matches!(err.kind(), ErrorKind::Forbidden | ErrorKind::RoomNotFound) => {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// Seats held in the room: this node's ledger, or on a cluster the
/// database's count over every node.
async fn occupancy(state: &EngineState, id: &RoomId) -> Result<u32> {
    if let Some(cluster) = &state.cluster {
        return Ok(cluster.leases.seated(id).await?.occupancy);
    }
    Ok(state
        .directory
        .get(id)
        .map_or(0, |room| room.ledger().occupancy()))
}
