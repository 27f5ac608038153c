//! The schema of docs/contract.md §6: types, queries, mutations, and the `joinRoom`
//! subscription. The types are public so embedders can name `ParlorSchema`.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use async_graphql::{
    ComplexObject, Context, Enum, ID, InputObject, Json, MaybeUndefined, Object, Result, Schema,
    SimpleObject, Subscription, Union,
};
use futures_util::{StreamExt, stream, stream::BoxStream};
use parlor_engine::{
    Ban, ChatEngine, DEFAULT_HISTORY_LIMIT, DEFAULT_ROOM_PAGE, Data, EntryKind as Kind,
    EntryStream, ErrorKind, Live, Message, NoticeKind, Principal, ReadState as EngineReadState,
    Retention as EngineRetention, RoomId, RoomInfo, RoomPatch, RoomQuery, RoomSpec, SeatGuard, Seq,
    SeqRange, Timestamp, UserId,
};

use crate::{config::GraphqlConfig, errors::gql, shared_delivery::Handoff};

/// The schema type.
pub type ParlorSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Who is asking (from `Authorization` or `connection_init`), with their
/// token's claims for the room policy.
#[derive(Debug, Clone)]
pub(crate) struct Viewer(pub(crate) Principal);

/// One socket's shared state: how it ended, how many subscriptions it
/// holds, and the `joinRoom` deliveries its writer runs.
#[derive(Debug, Default)]
pub(crate) struct SocketState {
    /// Set when the socket was lost (no close 1000): seats go to grace.
    pub(crate) lost: std::sync::atomic::AtomicBool,
    pub(crate) subscriptions: AtomicUsize,
    pub(crate) deliveries: crate::shared_delivery::Deliveries,
}

/// What resolvers share.
pub(crate) struct Shared {
    pub(crate) engine: Arc<dyn ChatEngine>,
    pub(crate) config: GraphqlConfig,
}

fn viewer<'a>(ctx: &'a Context<'_>) -> Result<&'a Principal> {
    ctx.data_opt::<Viewer>()
        .map(|v| &v.0)
        .ok_or_else(|| gql(ErrorKind::Unauthenticated.into()))
}

fn shared<'a>(ctx: &'a Context<'_>) -> &'a Shared {
    ctx.data_unchecked::<Shared>()
}

fn room_id(id: &str) -> Result<RoomId> {
    RoomId::new(id).map_err(gql)
}

fn seq_arg(name: &str, value: Option<i32>) -> Result<Option<Seq>> {
    value
        .map(|v| {
            u64::try_from(v).map_err(|_| {
                gql(parlor_engine::Error::new(
                    ErrorKind::InvalidInput,
                    format!("{name} must not be negative"),
                ))
            })
        })
        .transpose()
}

/// A required seq argument (`seq` of `editMessage`, …): 0..=2^31-1, as
/// GraphQL's `Int` holds (a literal beyond 32 bits is refused by GraphQL
/// itself); a negative one is `INVALID_INPUT`, never wrapped.
fn required_seq(name: &str, value: i32) -> Result<Seq> {
    Ok(seq_arg(name, Some(value))?.unwrap_or_default())
}

fn invalid(message: impl Into<String>) -> async_graphql::Error {
    gql(parlor_engine::Error::new(ErrorKind::InvalidInput, message))
}

fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `TEXT`, `JOIN`, `LEAVE`, `SYSTEM`, `EDIT`, `REDACTION`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum EntryKind {
    /// A message.
    Text,
    /// A seat joined.
    Join,
    /// A seat left.
    Leave,
    /// A message of a service (the integrator's backend).
    System,
    /// A new body and data for the `TEXT` entry at `targetSeq`.
    Edit,
    /// The erasure of the message at `targetSeq` (`reason`: the note).
    Redaction,
}

/// One entry of a room log: a view of the engine's entry, shared with
/// every other subscriber it goes to (the live feed hands out one `Arc`
/// per entry). Each field is made when a selection asks for it — a
/// subscription that selects `seq` and `body` copies no id, formats no
/// time and clones no `data` for each of a big room's deliveries.
#[derive(Clone, Debug)]
pub struct Entry(Arc<parlor_engine::Entry>);

impl From<Arc<parlor_engine::Entry>> for Entry {
    fn from(entry: Arc<parlor_engine::Entry>) -> Self {
        Entry(entry)
    }
}

impl From<parlor_engine::Entry> for Entry {
    fn from(entry: parlor_engine::Entry) -> Self {
        Entry(Arc::new(entry))
    }
}

/// One entry of a room log.
#[Object]
impl Entry {
    async fn room_id(&self) -> ID {
        ID(self.0.room_id.to_string())
    }

    async fn seq(&self) -> i32 {
        int(self.0.seq)
    }

    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn kind(&self) -> EntryKind {
        match self.0.kind {
            Kind::Text => EntryKind::Text,
            Kind::Join => EntryKind::Join,
            Kind::Leave => EntryKind::Leave,
            Kind::System => EntryKind::System,
            Kind::Edit => EntryKind::Edit,
            Kind::Redaction => EntryKind::Redaction,
        }
    }

    async fn sender(&self) -> &str {
        self.0.sender.as_str()
    }

    async fn client_id(&self) -> Option<&str> {
        self.0.client_id.as_deref()
    }

    async fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }

    /// The app's JSON object, when the message carries one.
    async fn data(&self) -> Option<Json<Data>> {
        self.0.data.clone().map(Json)
    }

    /// Why a `LEAVE` took the seat away (`kicked` or `room_closed`), or a
    /// `REDACTION`'s note, when it has one.
    async fn reason(&self) -> Option<&str> {
        self.0
            .reason
            .map(|r| r.as_str())
            .or(self.0.redaction_reason.as_deref())
    }

    /// The entry an `EDIT` or a `REDACTION` changes.
    async fn target_seq(&self) -> Option<i32> {
        self.0.target_seq.map(int)
    }

    /// When a `TEXT` entry was last edited (RFC 3339, UTC): its `body` and
    /// `data` are the latest edit's.
    async fn edited_at(&self) -> Option<String> {
        self.0.edited_at.map(|t| t.to_string())
    }

    /// Whether the message (or, for an `EDIT`, its target) was redacted:
    /// it has neither `body` nor `data`.
    async fn redacted(&self) -> bool {
        self.0.redacted
    }

    async fn created_at(&self) -> String {
        self.0.created_at.to_string()
    }
}

/// The first event of `joinRoom`.
#[derive(SimpleObject, Clone, Debug)]
pub struct Joined {
    room_id: ID,
    capacity: i32,
    occupancy: i32,
    last_seq: i32,
    /// The oldest seq still stored (retention prunes older ones).
    first_seq: i32,
    /// False when retention pruned entries after `afterSeq`: the stream
    /// starts at `firstSeq` and the client missed what lay between.
    resumed: bool,
    /// Users whose seats are joined or in grace (`members` lists at most
    /// 100 of them).
    member_count: i32,
    /// The first 100 of those users by id, sorted; the rest through
    /// `Room.members`.
    members: Vec<String>,
}

/// Another member's read marker moved: they read the room up to `seq`. Not
/// a log entry: no seq of its own, never replayed.
#[derive(SimpleObject, Clone, Debug)]
pub struct Receipt {
    room_id: ID,
    user_id: ID,
    /// Their read marker as it is now.
    seq: i32,
    /// When they marked it (RFC 3339, UTC).
    at: String,
}

/// Another member's momentary signal (`typing`, `stopped_typing`, an
/// app's own `x-…` name). Not a log entry: no seq, not in history, never
/// replayed.
#[derive(SimpleObject, Clone, Debug)]
pub struct Signal {
    room_id: ID,
    user_id: ID,
    name: String,
    /// The app's JSON object (at most 256 bytes serialized), if any.
    data: Option<Json<Data>>,
    /// When the server took it (RFC 3339, UTC).
    at: String,
}

/// What `joinRoom` streams.
#[derive(Union, Clone, Debug)]
pub enum RoomEvent {
    /// First: the facts of the join.
    Joined(Joined),
    /// Then: entries, in seq order, each once.
    Entry(Entry),
    /// And, between them, other members' read receipts.
    Receipt(Receipt),
    /// And other members' signals (typing…).
    Signal(Signal),
}

/// A user's read state in a room.
#[derive(SimpleObject, Clone, Debug)]
pub struct ReadState {
    room_id: ID,
    /// Whose read state it is.
    user_id: ID,
    /// The seq the user marked read last (0: never).
    last_read_seq: i32,
    /// Stored `TEXT` and `SYSTEM` entries after it that others sent and
    /// that are not redacted.
    unread: i32,
}

impl ReadState {
    fn new(room: &RoomId, user: &UserId, state: EngineReadState) -> Self {
        ReadState {
            room_id: ID(room.to_string()),
            user_id: ID(user.to_string()),
            last_read_seq: int(state.last_read_seq),
            unread: int(state.unread),
        }
    }
}

/// A room's own retention (the server's applies to a room without one).
/// A bound that is null is no bound.
#[derive(SimpleObject, Clone, Debug)]
pub struct Retention {
    /// Keep at most this many newest entries (a bound set over HTTP above
    /// 2^31-1 reads as 2^31-1).
    max_entries: Option<i32>,
    /// Keep entries younger than this, as humantime prints it (`30days`,
    /// `12h 30m`).
    max_age: Option<String>,
}

impl From<EngineRetention> for Retention {
    fn from(r: EngineRetention) -> Self {
        Retention {
            max_entries: r.max_entries.map(int),
            max_age: r.max_age.map(|a| humantime::format_duration(a).to_string()),
        }
    }
}

/// A retention of a room's own for `updateRoom`: it replaces the server's
/// wholly (a bound left out or null is no bound; `{}` keeps everything).
#[derive(InputObject, Clone, Debug)]
pub struct RetentionInput {
    /// Keep at most this many newest entries (at least 1).
    max_entries: Option<i32>,
    /// Keep entries younger than this: a humantime duration such as `30d`,
    /// `12h 30m` or `90s`, at least 1 s.
    max_age: Option<String>,
}

impl RetentionInput {
    fn parse(self) -> Result<EngineRetention> {
        let max_entries = self
            .max_entries
            .map(|n| {
                u64::try_from(n)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid("retention maxEntries must be at least 1"))
            })
            .transpose()?;
        let max_age = self
            .max_age
            .map(|a| {
                humantime::parse_duration(a.trim()).map_err(|_| {
                    invalid("retention maxAge must be a duration such as 30d, 12h or 90s")
                })
            })
            .transpose()?;
        Ok(EngineRetention {
            max_entries,
            max_age,
        })
    }
}

/// A reserved seat's ticket.
#[derive(SimpleObject, Clone, Debug)]
pub struct Reservation {
    ticket: String,
    room_id: ID,
    expires_at: String,
}

/// A stored room.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Room {
    id: ID,
    title: Option<String>,
    capacity: i32,
    occupancy: i32,
    last_seq: i32,
    /// The oldest seq still stored: entries below it were pruned by
    /// retention (`lastSeq + 1` when none is left).
    first_seq: i32,
    /// The room's own retention; null when the server's applies.
    retention: Option<Retention>,
    private: bool,
    closed: bool,
    /// The caller's read marker (0: never marked); null for a service.
    last_read_seq: Option<i32>,
    /// Messages after the caller's read marker that others sent and that
    /// are not redacted; null for a service.
    unread: Option<i32>,
    /// Whether the caller may moderate the room (kick, ban, redact others'
    /// messages); null in the `rooms` listing.
    can_moderate: Option<bool>,
}

impl From<RoomInfo> for Room {
    fn from(r: RoomInfo) -> Self {
        Room {
            id: ID(r.room_id.to_string()),
            title: r.title,
            capacity: int(u64::from(r.capacity)),
            occupancy: int(u64::from(r.occupancy)),
            last_seq: int(r.last_seq),
            first_seq: int(r.first_seq),
            retention: r.retention.map(Retention::from),
            private: r.private,
            closed: r.closed,
            last_read_seq: r.read.map(|s| int(s.last_read_seq)),
            unread: r.read.map(|s| int(s.unread)),
            can_moderate: r.can_moderate,
        }
    }
}

#[ComplexObject]
impl Room {
    /// Who holds a seat: joined and grace seats (a service also sees
    /// reserved ones), sorted by user.
    async fn members(&self, ctx: &Context<'_>) -> Result<Vec<Member>> {
        let who = viewer(ctx)?;
        let members = shared(ctx)
            .engine
            .members(who, &room_id(&self.id)?)
            .await
            .map_err(gql)?;
        Ok(members
            .into_iter()
            .map(|m| Member {
                user_id: ID(m.user_id.to_string()),
                state: m.state.as_str().to_owned(),
                since: m.since.to_string(),
            })
            .collect())
    }
}

/// One seat of a room's presence.
#[derive(SimpleObject, Clone, Debug)]
pub struct Member {
    user_id: ID,
    /// `joined`, `grace` or `reserved`.
    state: String,
    /// When the seat entered that state (RFC 3339, UTC).
    since: String,
}

/// A page of `rooms`: ascending by id; pass `next` as `after` for the
/// following page (null at the end).
#[derive(SimpleObject, Clone, Debug)]
pub struct RoomPage {
    rooms: Vec<Room>,
    next: Option<ID>,
}

/// `create` of `reserveSeat`.
#[derive(InputObject, Clone, Debug)]
pub struct CreateRoom {
    capacity: i32,
    title: Option<String>,
    /// A private room: to anyone its policy does not admit, it does not
    /// exist.
    #[graphql(default)]
    private: bool,
}

/// Queries.
pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// A stored room (a pending one is not a room yet).
    async fn room(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Room>> {
        let who = viewer(ctx)?;
        let info = shared(ctx)
            .engine
            .room(who, &room_id(&id)?)
            .await
            .map_err(gql)?;
        Ok(info.map(Room::from))
    }

    /// The rooms the viewer may read, ascending by id, `limit` (1..=500,
    /// 100 by default) at a time; a service sees every open room.
    async fn rooms(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] prefix: String,
        after: Option<ID>,
        limit: Option<i32>,
    ) -> Result<RoomPage> {
        let who = viewer(ctx)?;
        let after = after.map(|a| room_id(&a)).transpose()?;
        let limit = match limit {
            None => DEFAULT_ROOM_PAGE,
            Some(l) => u32::try_from(l).unwrap_or(0),
        };
        let page = shared(ctx)
            .engine
            .rooms(
                who,
                RoomQuery {
                    prefix: &prefix,
                    after: after.as_ref(),
                    limit,
                },
            )
            .await
            .map_err(gql)?;
        Ok(RoomPage {
            next: page.next.map(|id| ID(id.to_string())),
            rooms: page.rooms.into_iter().map(Room::from).collect(),
        })
    }

    /// History: ascending by seq; needs a seat in the room.
    async fn messages(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        after_seq: Option<i32>,
        before_seq: Option<i32>,
        limit: Option<i32>,
    ) -> Result<Vec<Entry>> {
        let user = viewer(ctx)?;
        let range = SeqRange {
            after: seq_arg("afterSeq", after_seq)?,
            before: seq_arg("beforeSeq", before_seq)?,
            limit: match limit {
                None => DEFAULT_HISTORY_LIMIT,
                Some(l) => u32::try_from(l).unwrap_or(0),
            },
        };
        let page = shared(ctx)
            .engine
            .history(user, &self::room_id(&room_id)?, range)
            .await
            .map_err(gql)?;
        Ok(page.entries.into_iter().map(Entry::from).collect())
    }

    /// `userId`'s read state in the room: a service reads anyone's, a user
    /// their own (`FORBIDDEN` otherwise).
    async fn read_marker(&self, ctx: &Context<'_>, room_id: ID, user_id: ID) -> Result<ReadState> {
        let who = viewer(ctx)?;
        let room = self::room_id(&room_id)?;
        let user = UserId::new(&user_id).map_err(gql)?;
        let state = shared(ctx)
            .engine
            .read_marker(who, &room, &user)
            .await
            .map_err(gql)?;
        Ok(ReadState::new(&room, &user, state))
    }
}

/// Mutations.
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Phase 1 of the join: a ticket for a seat (creating the room if absent
    /// and `create` is given).
    async fn reserve_seat(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        create: Option<CreateRoom>,
    ) -> Result<Reservation> {
        let user = viewer(ctx)?;
        let create = create
            .map(|c| {
                Ok::<_, async_graphql::Error>(RoomSpec {
                    capacity: u32::try_from(c.capacity).map_err(|_| {
                        gql(parlor_engine::Error::new(
                            ErrorKind::InvalidInput,
                            "capacity must be positive",
                        ))
                    })?,
                    title: c.title,
                    private: c.private,
                })
            })
            .transpose()?;
        let r = shared(ctx)
            .engine
            .reserve(user, &self::room_id(&room_id)?, create)
            .await
            .map_err(gql)?;
        Ok(Reservation {
            ticket: r.ticket,
            room_id: ID(r.room_id.to_string()),
            expires_at: r.expires_at.to_string(),
        })
    }

    /// Appends a message — a `body`, `data` or both; returns once it is
    /// durable. Idempotent by (room, sender, clientId). A user's message is
    /// a `TEXT` entry; a service's (`X-Api-Key`) a `SYSTEM` entry.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        client_id: String,
        body: Option<String>,
        data: Option<Json<Data>>,
    ) -> Result<Entry> {
        let user = viewer(ctx)?;
        let message = Message {
            body,
            data: data.map(|d| d.0),
        };
        let entry = shared(ctx)
            .engine
            .submit(user, &self::room_id(&room_id)?, &client_id, message)
            .await
            .map_err(gql)?
            .await
            .map_err(gql)?;
        Ok(Entry::from(entry))
    }

    /// Edits the `TEXT` message at `seq` (its sender only, unless the room
    /// policy allows `edit`): appends an `EDIT` entry with the new `body`
    /// and/or `data` and returns it once durable. Idempotent by `clientId`
    /// when given. The same size and rate rules as `sendMessage` apply.
    async fn edit_message(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        seq: i32,
        body: Option<String>,
        data: Option<Json<Data>>,
        client_id: Option<String>,
    ) -> Result<Entry> {
        let who = viewer(ctx)?;
        let seq = required_seq("seq", seq)?;
        let message = Message {
            body,
            data: data.map(|d| d.0),
        };
        let entry = shared(ctx)
            .engine
            .edit(
                who,
                &self::room_id(&room_id)?,
                seq,
                client_id.as_deref(),
                message,
            )
            .await
            .map_err(gql)?;
        Ok(Entry::from(entry))
    }

    /// Redacts the message (`TEXT` or `SYSTEM`) at `seq` — its sender, a
    /// moderator or a service may: appends a `REDACTION` entry (with
    /// `reason`, at most 500 characters, as its note) and erases the
    /// message's body and data from storage. A second redaction answers the
    /// first.
    async fn redact_message(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        seq: i32,
        reason: Option<String>,
    ) -> Result<Entry> {
        let who = viewer(ctx)?;
        let seq = required_seq("seq", seq)?;
        let entry = shared(ctx)
            .engine
            .redact(who, &self::room_id(&room_id)?, seq, reason.as_deref())
            .await
            .map_err(gql)?;
        Ok(Entry::from(entry))
    }

    /// Raises the caller's read marker in the room to `seq` (a lower seq
    /// than the stored one is ignored; beyond the room's last seq is
    /// `INVALID_INPUT`) and returns the read state. The room's other live
    /// members get a `Receipt`. A service has no marker (`FORBIDDEN`).
    async fn mark_read(&self, ctx: &Context<'_>, room_id: ID, seq: i32) -> Result<ReadState> {
        let who = viewer(ctx)?;
        let seq = required_seq("seq", seq)?;
        let room = self::room_id(&room_id)?;
        let state = shared(ctx)
            .engine
            .mark_read(who, &room, seq)
            .await
            .map_err(gql)?;
        Ok(ReadState::new(&room, &who.user, state))
    }

    /// Sends a momentary signal to the room's other live members: `typing`,
    /// `stopped_typing` or an app's own `x-…` name, with `data` of at most
    /// 256 bytes. Never stored (no seq, not in history, not replayed); has
    /// its own rate limit. Needs a joined seat. Returns true.
    async fn send_signal(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        name: String,
        data: Option<Json<Data>>,
    ) -> Result<bool> {
        let who = viewer(ctx)?;
        shared(ctx)
            .engine
            .signal(who, &self::room_id(&room_id)?, &name, data.map(|d| d.0))
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Changes the room's title (null clears it), capacity and/or retention
    /// (null returns the room to the server's) (needs `moderate`). A
    /// capacity below the occupancy evicts no one.
    async fn update_room(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        title: MaybeUndefined<String>,
        capacity: Option<i32>,
        retention: MaybeUndefined<RetentionInput>,
    ) -> Result<Room> {
        let who = viewer(ctx)?;
        let patch = RoomPatch {
            title: match title {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(t) => Some(Some(t)),
            },
            capacity: capacity.map(|c| u32::try_from(c).unwrap_or(0)),
            retention: match retention {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(r) => Some(Some(r.parse()?)),
            },
        };
        let info = shared(ctx)
            .engine
            .update_room(who, &self::room_id(&room_id)?, &patch)
            .await
            .map_err(gql)?;
        Ok(Room::from(info))
    }

    /// Closes the room: every member leaves with reason `room_closed`,
    /// reserves get `ROOM_CLOSED`; `purge` also deletes its log.
    async fn close_room(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        #[graphql(default)] purge: bool,
    ) -> Result<bool> {
        let who = viewer(ctx)?;
        shared(ctx)
            .engine
            .close_room(who, &self::room_id(&room_id)?, purge)
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Takes the user's seat away (`leave` with reason `kicked`; their
    /// `joinRoom` ends with `KICKED`). True when a seat was taken.
    async fn kick_user(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        user_id: ID,
        reason: Option<String>,
    ) -> Result<bool> {
        let who = viewer(ctx)?;
        let user = UserId::new(&user_id).map_err(gql)?;
        shared(ctx)
            .engine
            .kick(who, &self::room_id(&room_id)?, &user, reason.as_deref())
            .await
            .map_err(gql)
    }

    /// Kicks the user and refuses their reserves (`FORBIDDEN`) until
    /// `until` (RFC 3339 UTC; forever without it). True when done.
    async fn ban_user(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        user_id: ID,
        until: Option<String>,
        reason: Option<String>,
    ) -> Result<bool> {
        let until = until
            .map(|u| {
                Timestamp::parse_rfc3339(&u).ok_or_else(|| {
                    gql(parlor_engine::Error::new(
                        ErrorKind::InvalidInput,
                        "until must be an RFC 3339 date-time, like 2026-12-31T23:59:59Z",
                    ))
                })
            })
            .transpose()?;
        set_ban(ctx, &room_id, &user_id, Some(Ban { until, reason })).await
    }

    /// Lifts the user's ban. True when done.
    async fn unban_user(&self, ctx: &Context<'_>, room_id: ID, user_id: ID) -> Result<bool> {
        set_ban(ctx, &room_id, &user_id, None).await
    }

    /// Makes the user a moderator of the room (the owner or a service
    /// only). True when done.
    async fn add_moderator(&self, ctx: &Context<'_>, room_id: ID, user_id: ID) -> Result<bool> {
        set_moderator(ctx, &room_id, &user_id, true).await
    }

    /// Makes the user no longer a moderator of the room. True when done.
    async fn remove_moderator(&self, ctx: &Context<'_>, room_id: ID, user_id: ID) -> Result<bool> {
        set_moderator(ctx, &room_id, &user_id, false).await
    }

    /// Invites `userId` to the room (needs `moderate`; the room's owner has
    /// it). Invitations admit users to private rooms. True when done.
    async fn invite_to_room(&self, ctx: &Context<'_>, room_id: ID, user_id: ID) -> Result<bool> {
        set_invite(ctx, &room_id, &user_id, true).await
    }

    /// Withdraws `userId`'s invitation to the room: their next reserve of a
    /// private room is refused. True when done.
    async fn uninvite_from_room(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        user_id: ID,
    ) -> Result<bool> {
        set_invite(ctx, &room_id, &user_id, false).await
    }

    /// Leaves the room from every connection: the seat is freed now and every
    /// `joinRoom` of the user in that room completes.
    async fn leave_room(&self, ctx: &Context<'_>, room_id: ID) -> Result<bool> {
        let user = viewer(ctx)?;
        shared(ctx)
            .engine
            .leave(&user.user, &self::room_id(&room_id)?)
            .await
            .map_err(gql)
    }
}

async fn set_ban(ctx: &Context<'_>, room: &ID, user: &ID, ban: Option<Ban>) -> Result<bool> {
    let who = viewer(ctx)?;
    let user = UserId::new(user).map_err(gql)?;
    shared(ctx)
        .engine
        .set_ban(who, &room_id(room)?, &user, ban.as_ref())
        .await
        .map_err(gql)?;
    Ok(true)
}

async fn set_moderator(ctx: &Context<'_>, room: &ID, user: &ID, moderator: bool) -> Result<bool> {
    let who = viewer(ctx)?;
    let user = UserId::new(user).map_err(gql)?;
    shared(ctx)
        .engine
        .set_moderator(who, &room_id(room)?, &user, moderator)
        .await
        .map_err(gql)?;
    Ok(true)
}

async fn set_invite(ctx: &Context<'_>, room: &ID, user: &ID, invited: bool) -> Result<bool> {
    let who = viewer(ctx)?;
    let user = UserId::new(user).map_err(gql)?;
    shared(ctx)
        .engine
        .set_invite(who, &room_id(room)?, &user, invited)
        .await
        .map_err(gql)?;
    Ok(true)
}

/// Subscriptions.
pub struct SubscriptionRoot;

/// Holds a subscription's seat; what its drop does depends on how the
/// subscription ended: completed (or the socket closed with 1000) → leave;
/// the socket was lost → grace.
struct SubscriptionSeat {
    guard: Option<SeatGuard>,
    socket: Arc<SocketState>,
}

impl Drop for SubscriptionSeat {
    fn drop(&mut self) {
        self.socket.subscriptions.fetch_sub(1, Ordering::Relaxed);
        let Some(guard) = self.guard.take() else {
            return;
        };
        if self.socket.lost.load(Ordering::Acquire) {
            drop(guard); // grace
        } else if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = guard.leave().await {
                    tracing::warn!(code = err.code(), "leave on complete was not confirmed");
                }
            });
        }
    }
}

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Commits the ticket: first `Joined`, then every entry after `afterSeq`
    /// (or after the room's last seq), in order, each once, and other
    /// members' `Receipt`s and `Signal`s as they come. Where retention pruned entries after
    /// `afterSeq`, `Joined.resumed` is false and the stream starts at
    /// `Joined.firstSeq`; a stream that falls behind pruning ends with
    /// `HISTORY_PRUNED`.
    async fn join_room(
        &self,
        ctx: &Context<'_>,
        ticket: String,
        after_seq: Option<i32>,
    ) -> Result<BoxStream<'static, Result<RoomEvent>>> {
        let user = viewer(ctx)?.clone();
        let shared = shared(ctx);
        let socket = ctx
            .data_opt::<Arc<SocketState>>()
            .cloned()
            .unwrap_or_default();
        let held = socket.subscriptions.fetch_add(1, Ordering::Relaxed);
        let mut seat = SubscriptionSeat {
            guard: None,
            socket,
        };
        if held >= shared.config.max_subscriptions {
            return Err(gql(parlor_engine::Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "at most {} subscriptions per connection",
                    shared.config.max_subscriptions
                ),
            )));
        }
        let membership = shared
            .engine
            .commit(&user, &ticket, seq_arg("afterSeq", after_seq)?)
            .await
            .map_err(gql)?;
        let (joined, entries, guard) = membership.into_parts();
        seat.guard = Some(guard);
        let first = RoomEvent::Joined(Joined {
            room_id: ID(joined.room_id.to_string()),
            capacity: int(u64::from(joined.capacity)),
            occupancy: int(u64::from(joined.occupancy)),
            last_seq: int(joined.last_seq),
            first_seq: int(joined.first_seq),
            resumed: joined.resumed,
            member_count: int(u64::from(joined.member_count)),
            members: joined.members.iter().map(ToString::to_string).collect(),
        });
        let first = stream::once(async move { Ok(first) });
        let rest = Subscribed { entries, seat };
        match ctx.data_opt::<Handoff>() {
            // The transport delivers the rest, each event resolved once for
            // every subscriber with this selection (crate::shared_delivery).
            Some(handoff) => {
                handoff.put(rest);
                Ok(first.boxed())
            }
            None => Ok(first.chain(stream::unfold(Some(rest), next_event)).boxed()),
        }
    }
}

/// A joined subscription's stream and seat, after its `Joined`.
pub(crate) struct Subscribed {
    entries: EntryStream,
    seat: SubscriptionSeat,
}

impl Subscribed {
    /// The room this subscription follows.
    pub(crate) fn room_id(&self) -> &RoomId {
        self.entries.room_id()
    }

    /// The next live entry or notice; `None` when the stream is over (left
    /// from elsewhere, by `leaveRoom`); an error when the server ended it,
    /// the last item to read.
    ///
    /// A kick (`KICKED`), a close (`ROOM_CLOSED`), a stream overtaken by
    /// retention (`HISTORY_PRUNED`), storage trouble: the server ended it,
    /// so it is a loss, not a leave: the seat (if it still has one) goes to
    /// grace, and a `joinRoom` with `afterSeq` resumes.
    pub(crate) async fn next(&mut self) -> Option<Result<Live>> {
        let next = next_live(&mut self.entries).await;
        if let Some(Err(_)) = next {
            drop(self.seat.guard.take());
        }
        next
    }

    /// The stream and the seat apart: the socket's writer reads the one
    /// while the stream async-graphql holds keeps the other, so that a
    /// client `complete` (async-graphql drops that stream) takes the seat
    /// at once, as a leave.
    pub(crate) fn split(self) -> (LiveEvents, HeldSeat) {
        (LiveEvents(self.entries), HeldSeat(self.seat))
    }
}

/// [`Subscribed::next`] without the seat.
async fn next_live(entries: &mut EntryStream) -> Option<Result<Live>> {
    match entries.next_live().await {
        Ok(live) => Some(Ok(live)),
        Err(err) if err.kind() == ErrorKind::NotAMember => None,
        Err(err) => Some(Err(gql(err))),
    }
}

/// A subscription's stream without its seat ([`Subscribed::split`]).
pub(crate) struct LiveEvents(EntryStream);

impl LiveEvents {
    /// As [`Subscribed::next`]; the seat is [`HeldSeat`]'s to settle.
    pub(crate) async fn next(&mut self) -> Option<Result<Live>> {
        next_live(&mut self.0).await
    }
}

/// A subscription's seat without its stream ([`Subscribed::split`]):
/// dropped, a leave (or grace when the socket was lost).
pub(crate) struct HeldSeat(SubscriptionSeat);

impl HeldSeat {
    /// The server ended the stream (an error): the seat, if it still has
    /// one, goes to grace, as [`Subscribed::next`] does.
    pub(crate) fn lose(mut self) {
        drop(self.0.guard.take());
    }
}

/// `live` as the event `joinRoom` streams; `None` for a notice this schema
/// has no event for yet.
pub(crate) fn room_event(live: Live) -> Option<RoomEvent> {
    Some(match live {
        Live::Entry(entry) => RoomEvent::Entry(Entry::from(entry)),
        Live::Notice(notice) => match &notice.kind {
            NoticeKind::Receipt { seq } => RoomEvent::Receipt(Receipt {
                room_id: ID(notice.room_id.to_string()),
                user_id: ID(notice.sender.to_string()),
                seq: int(*seq),
                at: notice.at.to_string(),
            }),
            NoticeKind::Signal { name, data } => RoomEvent::Signal(Signal {
                room_id: ID(notice.room_id.to_string()),
                user_id: ID(notice.sender.to_string()),
                name: name.clone(),
                data: data.clone().map(Json),
                at: notice.at.to_string(),
            }),
            _ => return None,
        },
    })
}

async fn next_event(state: Option<Subscribed>) -> Option<(Result<RoomEvent>, Option<Subscribed>)> {
    let mut subscribed = state?;
    loop {
        match subscribed.next().await? {
            Ok(live) => {
                if let Some(event) = room_event(live) {
                    return Some((Ok(event), Some(subscribed)));
                }
            }
            Err(err) => return Some((Err(err), None)),
        }
    }
}

/// Builds the schema over `engine`.
pub(crate) fn build(engine: Arc<dyn ChatEngine>, config: GraphqlConfig) -> ParlorSchema {
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity);
    if !config.introspection {
        builder = builder.disable_introspection();
    }
    builder.data(Shared { engine, config }).finish()
}

/// The schema's SDL, for `docs/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}

#[cfg(test)]
pub(crate) mod tests {
    //! The schema over the engine and its in-memory store: the fields and
    //! operations of edits, redactions, retention and read markers
    //! (docs/contract.md §6), without sockets.

    use std::time::Duration;

    use async_graphql::{Request, Variables};
    use futures_util::stream::BoxStream;
    use parlor_engine::{Engine, EngineConfig, testkit::MemoryStore};
    use serde_json::{Value, json};

    use super::*;

    pub(crate) struct Setup {
        pub(crate) engine: Arc<Engine>,
        pub(crate) schema: ParlorSchema,
    }

    pub(crate) async fn setup(config: EngineConfig) -> Setup {
        let store = Arc::new(MemoryStore::default());
        let engine = Arc::new(Engine::builder(store).config(config).start().await.unwrap());
        let schema = build(
            Arc::clone(&engine) as Arc<dyn ChatEngine>,
            GraphqlConfig::default(),
        );
        Setup { engine, schema }
    }

    fn principal(who: &str) -> Principal {
        match who.strip_prefix("service:") {
            Some(name) => Principal::service(UserId::new(name).unwrap()),
            None => Principal::new(UserId::new(who).unwrap()),
        }
    }

    pub(crate) fn request(who: &str, query: &str, variables: Value) -> Request {
        Request::new(query)
            .variables(Variables::from_json(variables))
            .data(Viewer(principal(who)))
    }

    /// The whole response as JSON, run as the transports run it.
    pub(crate) async fn run(
        schema: &ParlorSchema,
        who: &str,
        query: &str,
        variables: Value,
    ) -> Value {
        let schema = crate::executor::TransportSchema::new(schema.clone());
        let response = async_graphql::Executor::execute(&schema, request(who, query, variables));
        serde_json::to_value(response.await).unwrap()
    }

    pub(crate) fn code(response: &Value) -> &str {
        response["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("<no code>")
    }

    pub(crate) const RESERVE: &str =
        "mutation($r: ID!, $c: CreateRoom) { reserveSeat(roomId: $r, create: $c) { ticket } }";
    pub(crate) const JOIN: &str = "subscription($t: String!, $a: Int) { joinRoom(ticket: $t, afterSeq: $a) { __typename \
        ... on Joined { lastSeq firstSeq resumed memberCount members } \
        ... on Entry { seq kind sender body reason targetSeq editedAt redacted } \
        ... on Receipt { roomId userId seq at } } }";
    pub(crate) const SEND: &str = "mutation($r: ID!, $c: String!, $b: String!) { sendMessage(roomId: $r, clientId: $c, body: $b) { seq } }";
    const EDIT: &str = "mutation($r: ID!, $s: Int!, $b: String, $c: String) { editMessage(roomId: $r, seq: $s, body: $b, clientId: $c) { seq kind sender body targetSeq redacted } }";
    pub(crate) const REDACT: &str = "mutation($r: ID!, $s: Int!, $why: String) { redactMessage(roomId: $r, seq: $s, reason: $why) { seq kind targetSeq reason } }";
    pub(crate) const MARK: &str = "mutation($r: ID!, $s: Int!) { markRead(roomId: $r, seq: $s) { roomId userId lastReadSeq unread } }";
    const MESSAGES: &str = "query($r: ID!) { messages(roomId: $r) { seq kind body editedAt redacted reason targetSeq } }";
    const ROOM: &str = "query($r: ID!) { room(id: $r) { lastSeq firstSeq retention { maxEntries maxAge } lastReadSeq unread } }";

    pub(crate) type Events = BoxStream<'static, async_graphql::Response>;

    /// `who`'s ticket to `room` (creating it, capacity 10, when `create`).
    pub(crate) async fn ticket(s: &Setup, who: &str, room: &str, create: bool) -> String {
        let c = create.then(|| json!({"capacity": 10}));
        let r = run(&s.schema, who, RESERVE, json!({"r": room, "c": c})).await;
        r["data"]["reserveSeat"]["ticket"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_owned()
    }

    /// `who` joins `room` (creating it when `create`): the subscription's
    /// stream, its `Joined` taken.
    async fn join(
        s: &Setup,
        who: &str,
        room: &str,
        create: bool,
        after: Option<u64>,
    ) -> (Events, Value) {
        let ticket = ticket(s, who, room, create).await;
        let mut events = s
            .schema
            .execute_stream(request(who, JOIN, json!({"t": ticket, "a": after})))
            .boxed();
        let joined = next(&mut events).await;
        assert_eq!(joined["__typename"], "Joined", "{joined}");
        (events, joined)
    }

    pub(crate) async fn next_response(events: &mut Events) -> Value {
        let r = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on");
        serde_json::to_value(r).unwrap()
    }

    pub(crate) async fn next(events: &mut Events) -> Value {
        let r = next_response(events).await;
        assert!(r["errors"].is_null(), "{r}");
        r["data"]["joinRoom"].clone()
    }

    /// Nothing arrives within a short while.
    async fn quiet(events: &mut Events) {
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), events.next()).await {
            panic!(
                "unexpected event: {:?}",
                r.map(|r| serde_json::to_value(r).unwrap())
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn edits_redactions_and_receipts_reach_live_members_and_history() {
        let s = setup(EngineConfig::default()).await;
        let (mut ann, _) = join(&s, "ann", "r1", true, None).await;
        let (mut bob, _) = join(&s, "bob", "r1", false, None).await;
        assert_eq!(next(&mut ann).await["kind"], "JOIN", "bob's join");
        let sent = run(
            &s.schema,
            "ann",
            SEND,
            json!({"r": "r1", "c": "c1", "b": "helo"}),
        )
        .await;
        let seq = sent["data"]["sendMessage"]["seq"].as_u64().unwrap();
        assert_eq!(seq, 3);
        for feed in [&mut ann, &mut bob] {
            assert_eq!(next(feed).await["body"], "helo");
        }

        // Only the sender edits.
        let refused = run(
            &s.schema,
            "bob",
            EDIT,
            json!({"r": "r1", "s": seq, "b": "mine"}),
        )
        .await;
        assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
        let edit = run(
            &s.schema,
            "ann",
            EDIT,
            json!({"r": "r1", "s": seq, "b": "hello", "c": "e1"}),
        )
        .await;
        assert_eq!(
            edit["data"]["editMessage"],
            json!({"seq": 4, "kind": "EDIT", "sender": "ann", "body": "hello", "targetSeq": 3, "redacted": false})
        );
        let again = run(
            &s.schema,
            "ann",
            EDIT,
            json!({"r": "r1", "s": seq, "b": "other", "c": "e1"}),
        )
        .await;
        assert_eq!(
            again["data"]["editMessage"]["seq"], 4,
            "idempotent by clientId"
        );
        let live = next(&mut bob).await;
        assert_eq!(
            live,
            json!({"__typename": "Entry", "seq": 4, "kind": "EDIT", "sender": "ann", "body": "hello", "reason": null, "targetSeq": 3, "editedAt": null, "redacted": false})
        );
        assert_eq!(next(&mut ann).await["seq"], 4);
        let history = run(&s.schema, "bob", MESSAGES, json!({"r": "r1"})).await;
        let target = &history["data"]["messages"][2];
        assert_eq!(target["body"], "hello", "the latest edit: {history}");
        assert!(target["editedAt"].as_str().unwrap().ends_with('Z'));

        // Redaction, with its note.
        let redaction = run(
            &s.schema,
            "ann",
            REDACT,
            json!({"r": "r1", "s": seq, "why": "typo"}),
        )
        .await;
        assert_eq!(
            redaction["data"]["redactMessage"],
            json!({"seq": 5, "kind": "REDACTION", "targetSeq": 3, "reason": "typo"})
        );
        let live = next(&mut bob).await;
        assert_eq!(
            (&live["kind"], &live["targetSeq"], &live["reason"]),
            (&json!("REDACTION"), &json!(3), &json!("typo"))
        );
        assert_eq!(next(&mut ann).await["seq"], 5);
        let history = run(&s.schema, "bob", MESSAGES, json!({"r": "r1"})).await;
        let messages = history["data"]["messages"].as_array().unwrap();
        for erased in [&messages[2], &messages[3]] {
            assert_eq!(erased["redacted"], true, "{history}");
            assert_eq!(erased["body"], Value::Null, "{history}");
        }
        let refused = run(
            &s.schema,
            "ann",
            EDIT,
            json!({"r": "r1", "s": seq, "b": "back"}),
        )
        .await;
        assert_eq!(
            code(&refused),
            "INVALID_INPUT",
            "a redacted message stays so"
        );
        let missing = run(&s.schema, "ann", REDACT, json!({"r": "r1", "s": 99})).await;
        assert_eq!(code(&missing), "ENTRY_NOT_FOUND");

        // Read markers: a receipt at the others, not at the reader.
        run(
            &s.schema,
            "bob",
            SEND,
            json!({"r": "r1", "c": "b1", "b": "yo"}),
        )
        .await;
        assert_eq!(next(&mut ann).await["seq"], 6);
        assert_eq!(next(&mut bob).await["seq"], 6);
        let room = run(&s.schema, "ann", ROOM, json!({"r": "r1"})).await;
        assert_eq!(
            room["data"]["room"],
            json!({"lastSeq": 6, "firstSeq": 1, "retention": null, "lastReadSeq": 0, "unread": 1})
        );
        let marked = run(&s.schema, "ann", MARK, json!({"r": "r1", "s": 6})).await;
        assert_eq!(
            marked["data"]["markRead"],
            json!({"roomId": "r1", "userId": "ann", "lastReadSeq": 6, "unread": 0})
        );
        let receipt = next(&mut bob).await;
        assert_eq!(
            (
                &receipt["__typename"],
                &receipt["roomId"],
                &receipt["userId"],
                &receipt["seq"]
            ),
            (&json!("Receipt"), &json!("r1"), &json!("ann"), &json!(6))
        );
        assert!(receipt["at"].as_str().unwrap().ends_with('Z'));
        quiet(&mut ann).await;
        let room = run(&s.schema, "ann", ROOM, json!({"r": "r1"})).await;
        assert_eq!(
            (
                &room["data"]["room"]["lastReadSeq"],
                &room["data"]["room"]["unread"]
            ),
            (&json!(6), &json!(0))
        );
        let lower = run(&s.schema, "ann", MARK, json!({"r": "r1", "s": 2})).await;
        assert_eq!(lower["data"]["markRead"]["lastReadSeq"], 6, "monotone");
        let beyond = run(&s.schema, "ann", MARK, json!({"r": "r1", "s": 7})).await;
        assert_eq!(code(&beyond), "INVALID_INPUT");
        // Unread counts others' messages that are not redacted: for bob,
        // ann's new one (not her redacted one, not his own).
        run(
            &s.schema,
            "ann",
            SEND,
            json!({"r": "r1", "c": "c2", "b": "more"}),
        )
        .await;

        // readMarker: a service reads anyone's; a user only their own.
        const MARKER: &str = "query($r: ID!, $u: ID!) { readMarker(roomId: $r, userId: $u) { userId lastReadSeq unread } }";
        let read = run(
            &s.schema,
            "service:backend",
            MARKER,
            json!({"r": "r1", "u": "ann"}),
        )
        .await;
        assert_eq!(
            read["data"]["readMarker"],
            json!({"userId": "ann", "lastReadSeq": 6, "unread": 0})
        );
        let read = run(&s.schema, "bob", MARKER, json!({"r": "r1", "u": "bob"})).await;
        assert_eq!(
            read["data"]["readMarker"],
            json!({"userId": "bob", "lastReadSeq": 0, "unread": 1})
        );
        let refused = run(&s.schema, "bob", MARKER, json!({"r": "r1", "u": "ann"})).await;
        assert_eq!(code(&refused), "FORBIDDEN");
        let service = run(&s.schema, "service:backend", ROOM, json!({"r": "r1"})).await;
        assert_eq!(
            (
                &service["data"]["room"]["lastReadSeq"],
                &service["data"]["room"]["unread"]
            ),
            (&Value::Null, &Value::Null)
        );
        let refused = run(
            &s.schema,
            "service:backend",
            MARK,
            json!({"r": "r1", "s": 1}),
        )
        .await;
        assert_eq!(code(&refused), "FORBIDDEN", "a service has no marker");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn seqs_outside_graphql_ints_are_invalid_input() {
        let s = setup(EngineConfig::default()).await;
        let (_ann, _) = join(&s, "ann", "r2", true, None).await;
        for (query, vars) in [
            (EDIT, json!({"r": "r2", "s": -1, "b": "x"})),
            (REDACT, json!({"r": "r2", "s": -1})),
            (MARK, json!({"r": "r2", "s": -5})),
            (EDIT, json!({"r": "r2", "s": 3_000_000_000_u64, "b": "x"})),
            (REDACT, json!({"r": "r2", "s": 2_147_483_648_u64})),
            (MARK, json!({"r": "r2", "s": 1e12})),
        ] {
            let r = run(&s.schema, "ann", query, vars.clone()).await;
            assert_eq!(code(&r), "INVALID_INPUT", "{vars}: {r}");
        }
        let literal = run(
            &s.schema,
            "ann",
            "mutation { markRead(roomId: \"r2\", seq: 4294967297) { unread } }",
            json!({}),
        )
        .await;
        assert_eq!(code(&literal), "INVALID_INPUT", "{literal}");
        let top = run(&s.schema, "ann", MARK, json!({"r": "r2", "s": i32::MAX})).await;
        assert_eq!(code(&top), "INVALID_INPUT", "in range, but beyond the log");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rooms_retention_is_set_kept_and_cleared() {
        let s = setup(EngineConfig::default()).await;
        let (_ann, _) = join(&s, "ann", "r3", true, None).await;
        const UPDATE: &str = "mutation($r: ID!, $t: String, $ret: RetentionInput) { updateRoom(roomId: $r, title: $t, retention: $ret) { retention { maxEntries maxAge } } }";
        const UPDATE_TITLE: &str = "mutation($r: ID!) { updateRoom(roomId: $r, title: \"T\") { retention { maxEntries maxAge } } }";
        let set = run(
            &s.schema,
            "ann",
            UPDATE,
            json!({"r": "r3", "ret": {"maxEntries": 50, "maxAge": "30d"}}),
        )
        .await;
        assert_eq!(
            set["data"]["updateRoom"]["retention"],
            json!({"maxEntries": 50, "maxAge": "30days"}),
            "{set}"
        );
        let kept = run(&s.schema, "ann", UPDATE_TITLE, json!({"r": "r3"})).await;
        assert_eq!(
            kept["data"]["updateRoom"]["retention"],
            json!({"maxEntries": 50, "maxAge": "30days"}),
            "not given: unchanged"
        );
        let everything = run(&s.schema, "ann", UPDATE, json!({"r": "r3", "ret": {}})).await;
        assert_eq!(
            everything["data"]["updateRoom"]["retention"],
            json!({"maxEntries": null, "maxAge": null}),
            "its own: keeps everything"
        );
        let cleared = run(&s.schema, "ann", UPDATE, json!({"r": "r3", "ret": null})).await;
        assert_eq!(
            cleared["data"]["updateRoom"]["retention"],
            Value::Null,
            "back to the server's"
        );
        for bad in [
            json!({"maxEntries": 0}),
            json!({"maxEntries": -3}),
            json!({"maxAge": "soon"}),
            json!({"maxAge": "500ms"}),
        ] {
            let r = run(&s.schema, "ann", UPDATE, json!({"r": "r3", "ret": bad})).await;
            assert_eq!(code(&r), "INVALID_INPUT", "{bad}: {r}");
        }
        let refused = run(
            &s.schema,
            "bob",
            UPDATE,
            json!({"r": "r3", "ret": {"maxEntries": 1}}),
        )
        .await;
        assert_ne!(refused["errors"], Value::Null, "needs moderate: {refused}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pruning_ends_a_lagging_stream_and_a_resume_says_it_missed_entries() {
        // A live buffer of 2: a subscriber that does not read falls behind
        // the feed and must read storage, which retention pruned meanwhile.
        let s = setup(EngineConfig::default().live_buffer(2)).await;
        let (mut ann, joined) = join(&s, "ann", "r4", true, None).await;
        assert_eq!(
            (&joined["firstSeq"], &joined["resumed"]),
            (&json!(1), &json!(true))
        );
        assert_eq!(
            (&joined["memberCount"], &joined["members"]),
            (&json!(1), &json!(["ann"]))
        );
        for i in 0..10 {
            run(
                &s.schema,
                "ann",
                SEND,
                json!({"r": "r4", "c": format!("c{i}"), "b": "m"}),
            )
            .await;
        }
        const KEEP: &str =
            "mutation($r: ID!) { updateRoom(roomId: $r, retention: {maxEntries: 3}) { id } }";
        run(&s.schema, "ann", KEEP, json!({"r": "r4"})).await;
        s.engine.prune_now().await.unwrap();
        let room = run(&s.schema, "ann", ROOM, json!({"r": "r4"})).await;
        assert_eq!(
            (
                &room["data"]["room"]["lastSeq"],
                &room["data"]["room"]["firstSeq"]
            ),
            (&json!(11), &json!(9))
        );

        let ended = next_response(&mut ann).await;
        assert_eq!(code(&ended), "HISTORY_PRUNED", "{ended}");
        assert!(
            tokio::time::timeout(Duration::from_secs(5), ann.next())
                .await
                .unwrap()
                .is_none(),
            "the subscription ends"
        );
        // A loss, not a leave: the seat waits in grace, no `leave` entry.
        const MEMBERS: &str =
            "query($r: ID!) { room(id: $r) { lastSeq members { userId state } } }";
        let room = run(&s.schema, "ann", MEMBERS, json!({"r": "r4"})).await;
        assert_eq!(
            room["data"]["room"],
            json!({"lastSeq": 11, "members": [{"userId": "ann", "state": "grace"}]})
        );

        let (mut again, joined) = join(&s, "ann", "r4", false, Some(1)).await;
        assert_eq!(
            (&joined["firstSeq"], &joined["resumed"], &joined["lastSeq"]),
            (&json!(9), &json!(false), &json!(11))
        );
        assert_eq!(next(&mut again).await["seq"], 9, "from firstSeq on");
        let (_fresh, joined) = join(&s, "ann", "r4", false, Some(8)).await;
        assert_eq!(joined["resumed"], true, "nothing after afterSeq was pruned");
    }
}
