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
use futures_util::{Stream, StreamExt, stream};
use parlor_engine::{
    Ban, ChatEngine, DEFAULT_HISTORY_LIMIT, DEFAULT_ROOM_PAGE, Data, EntryKind as Kind,
    EntryStream, ErrorKind, Message, Principal, RoomId, RoomInfo, RoomPatch, RoomQuery, RoomSpec,
    SeatGuard, Seq, SeqRange, Timestamp, UserId,
};

use crate::{config::GraphqlConfig, errors::gql};

/// The schema type.
pub type ParlorSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Who is asking (from `Authorization` or `connection_init`), with their
/// token's claims for the room policy.
#[derive(Debug, Clone)]
pub(crate) struct Viewer(pub(crate) Principal);

/// One socket's shared state: how it ended and how many subscriptions it holds.
#[derive(Debug, Default)]
pub(crate) struct SocketState {
    /// Set when the socket was lost (no close 1000): seats go to grace.
    pub(crate) lost: std::sync::atomic::AtomicBool,
    pub(crate) subscriptions: AtomicUsize,
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

fn int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `TEXT`, `JOIN`, `LEAVE`, `SYSTEM`.
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
}

/// One entry of a room log.
#[derive(SimpleObject, Clone, Debug)]
pub struct Entry {
    room_id: ID,
    seq: i32,
    id: ID,
    kind: EntryKind,
    sender: String,
    client_id: Option<String>,
    body: Option<String>,
    /// The app's JSON object, when the message carries one.
    data: Option<Json<Data>>,
    /// Why a `LEAVE` took the seat away: `kicked` or `room_closed`.
    reason: Option<String>,
    created_at: String,
}

impl From<&parlor_engine::Entry> for Entry {
    fn from(e: &parlor_engine::Entry) -> Self {
        Entry {
            room_id: ID(e.room_id.to_string()),
            seq: int(e.seq),
            id: ID(e.id.to_string()),
            kind: match e.kind {
                Kind::Text => EntryKind::Text,
                Kind::Join => EntryKind::Join,
                Kind::Leave => EntryKind::Leave,
                Kind::System => EntryKind::System,
            },
            sender: e.sender.to_string(),
            client_id: e.client_id.clone(),
            body: e.body.clone(),
            data: e.data.clone().map(Json),
            reason: e.reason.map(|r| r.as_str().to_owned()),
            created_at: e.created_at.to_string(),
        }
    }
}

/// The first event of `joinRoom`.
#[derive(SimpleObject, Clone, Debug)]
pub struct Joined {
    room_id: ID,
    capacity: i32,
    occupancy: i32,
    last_seq: i32,
    members: Vec<String>,
}

/// What `joinRoom` streams.
#[derive(Union, Clone, Debug)]
pub enum RoomEvent {
    /// First: the facts of the join.
    Joined(Joined),
    /// Then: entries, in seq order, each once.
    Entry(Entry),
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
    private: bool,
    closed: bool,
}

impl From<RoomInfo> for Room {
    fn from(r: RoomInfo) -> Self {
        Room {
            id: ID(r.room_id.to_string()),
            title: r.title,
            capacity: int(u64::from(r.capacity)),
            occupancy: int(u64::from(r.occupancy)),
            last_seq: int(r.last_seq),
            private: r.private,
            closed: r.closed,
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
        let entries = shared(ctx)
            .engine
            .history(user, &self::room_id(&room_id)?, range)
            .await
            .map_err(gql)?;
        Ok(entries.iter().map(Entry::from).collect())
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
        Ok(Entry::from(&*entry))
    }

    /// Changes the room's title (null clears it) and/or capacity (needs
    /// `moderate`). A capacity below the occupancy evicts no one.
    async fn update_room(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        title: MaybeUndefined<String>,
        capacity: Option<i32>,
    ) -> Result<Room> {
        let who = viewer(ctx)?;
        let patch = RoomPatch {
            title: match title {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(t) => Some(Some(t)),
            },
            capacity: capacity.map(|c| u32::try_from(c).unwrap_or(0)),
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
    /// (or after the room's last seq), in order, each once.
    async fn join_room(
        &self,
        ctx: &Context<'_>,
        ticket: String,
        after_seq: Option<i32>,
    ) -> Result<impl Stream<Item = Result<RoomEvent>> + use<>> {
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
            members: joined.members.iter().map(ToString::to_string).collect(),
        });
        let rest = stream::unfold(Some((entries, seat)), next_event);
        Ok(stream::once(async move { Ok(first) }).chain(rest))
    }
}

type StreamState = Option<(EntryStream, SubscriptionSeat)>;

async fn next_event(state: StreamState) -> Option<(Result<RoomEvent>, StreamState)> {
    let (mut entries, seat) = state?;
    match entries.next().await {
        Ok(entry) => Some((
            Ok(RoomEvent::Entry(Entry::from(&*entry))),
            Some((entries, seat)),
        )),
        // Left from elsewhere (leaveRoom): the subscription completes. A
        // kick (`KICKED`) or a close (`ROOM_CLOSED`) ends it with its error.
        Err(err) if err.kind() == ErrorKind::NotAMember => None,
        Err(err) => Some((Err(gql(err)), None)),
    }
}

/// Builds the schema over `engine`.
pub(crate) fn build(engine: Arc<dyn ChatEngine>, config: GraphqlConfig) -> ParlorSchema {
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .limit_depth(config.max_depth)
        .limit_complexity(config.max_complexity)
        .extension(crate::errors::ErrorCodes);
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
