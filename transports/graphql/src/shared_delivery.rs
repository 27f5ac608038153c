//! `joinRoom`'s events resolved once per selection, not once per subscriber.
//!
//! async-graphql runs a subscription per subscriber: each event of a room
//! of 4 000 went through the resolution of its selection, the stream layers
//! around it and the building of its `Response` 4 000 times — most of a
//! big room's GraphQL delivery time (docs/benchmarks.md, steps 27–28).
//! Subscribers whose `joinRoom` selects the same fields (the same
//! *projection*: the selection, its fragments and the values of the
//! variables it uses) get the same response for the same event, so here it
//! is made once and handed to each of them.
//!
//! How: [`SharedDelivery::prepare`] recognises a subscription whose only
//! root field is `joinRoom` (anything else runs as before) and puts a
//! [`Handoff`] in the request's data. async-graphql runs the join as
//! before — validation, the ticket, the `Joined` event and the join's
//! errors are its own — and the resolver, seeing the handoff, leaves the
//! rest of the stream in it instead of streaming it. Then
//! [`Plan::after_join`] streams the rest: each event (and the error that
//! ends a stream: a kick, a close) is resolved by running the projection as
//! a query of a small schema of its own (`{ joinRoom: roomEvent { …the
//! selection… } }`, the same types and resolvers, so the same JSON), about
//! once per event and projection (two subscribers that miss at the same
//! moment both resolve it). A projection belongs to one room and is shared
//! only by subscriptions that hold it: the last one to end lets it go. It
//! keeps the responses to its room's latest [`RECENT`] events (the
//! engine's default live buffer, so a subscriber the feed still serves
//! finds them; all projections together keep at most [`BUDGET`] bytes,
//! past which a projection lets its oldest go and, empty, keeps nothing —
//! its subscribers then resolve their own events), found by the identity
//! of the engine's `Arc` the event came in: the live feed hands one `Arc`
//! per entry to every subscriber, and an entry read again from storage — a
//! resume after a redaction — is a new `Arc`, resolved anew. A projection
//! holds only a `Weak` of it: the address stays reserved, the entry's
//! content is freed when the engine lets it go.
//!
//! On a socket the events do not go back through async-graphql at all
//! ([`Plan::handed_to_writer`]): the socket's writer takes the delivery and
//! writes each `next` frame itself around the projection's JSON, shared as
//! it is — no copy of the response, no serialization, no protocol plumbing
//! per subscriber — and several ready events in one write. The order the
//! protocol needs holds because the writer writes what async-graphql queued
//! (the `Joined`, a `complete`) before each delivery's frames, and hands a
//! delivery's end (the error, if any) back to async-graphql only after its
//! events, in the order it writes. The seat stays with the stream
//! async-graphql holds, so a client `complete` takes it at once. Over
//! HTTP, [`Plan::after_join`] streams responses.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_graphql::{
    Context, EmptyMutation, EmptySubscription, Name, Object, Pos, Positioned, Request, Response,
    Result, Schema, Value, Variables,
    futures_util::{future::BoxFuture, stream::BoxStream},
    parser::types::{
        Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition,
        OperationType, Selection, SelectionSet,
    },
};
use futures_channel::oneshot;
use futures_util::{StreamExt, stream};
use parlor_engine::{Live, Notice, RoomId};

use crate::{
    errors::coded,
    schema::{HeldSeat, LiveEvents, RoomEvent, SocketState, Subscribed, room_event},
};

/// The responses a projection keeps: the engine's default live buffer
/// (`EngineConfig::live_buffer`). A subscriber further behind resolves its
/// events itself: correct, only slower — and with a window much shorter
/// than the feed, a big room's laggards did that for every event and fell
/// further behind (docs/benchmarks.md, step 28).
const RECENT: usize = 1024;

/// The bytes of responses (strings, roughly) all projections together keep;
/// past it a projection lets its oldest go first.
const BUDGET: usize = 64 << 20;

/// The shared resolution of `joinRoom`'s events, one per transport.
pub(crate) struct SharedDelivery {
    /// The projections subscriptions hold, by room and key (see
    /// [`Projection::key`]); dead ones are swept as the map grows.
    projections: Mutex<Interned>,
    schema: Schema<ProjectionRoot, EmptyMutation, EmptySubscription>,
    /// The bytes all projections keep (see [`BUDGET`]).
    held: Arc<AtomicUsize>,
}

impl Default for SharedDelivery {
    fn default() -> Self {
        SharedDelivery {
            projections: Mutex::default(),
            schema: Schema::build(ProjectionRoot, EmptyMutation, EmptySubscription).finish(),
            held: Arc::default(),
        }
    }
}

/// Where `joinRoom`'s resolver leaves the rest of its stream when the
/// transport delivers it (request data; see the module docs).
#[derive(Clone, Default)]
pub(crate) struct Handoff(Arc<Mutex<Option<Subscribed>>>);

impl Handoff {
    pub(crate) fn put(&self, subscribed: Subscribed) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(subscribed);
    }

    fn take(&self) -> Option<Subscribed> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A `joinRoom` subscription to deliver through its projection once the
/// join's own stream (its `Joined`) ends.
pub(crate) struct Plan {
    handoff: Handoff,
    /// The projection's document and variables, until the join succeeds.
    document: ExecutableDocument,
    variables: Variables,
    /// Where `joinRoom` stands in this subscriber's document: an error's
    /// `locations`, as async-graphql would give them.
    at: Pos,
}

impl SharedDelivery {
    /// For a subscription whose only root field is `joinRoom` (no
    /// directives on it or on the operation): a [`Handoff`] in `request`'s
    /// data and the plan to deliver the rest. `None` for anything else,
    /// including a document that does not parse (async-graphql reports it).
    pub(crate) fn prepare(&self, request: &mut Request) -> Option<Plan> {
        // The document stays parsed in the request for async-graphql.
        let variables = std::mem::take(&mut request.variables);
        let operation_name = request.operation_name.take();
        let found = request
            .parsed_query()
            .ok()
            .and_then(|document| projection(document, operation_name.as_deref(), &variables));
        request.variables = variables;
        request.operation_name = operation_name;
        let (document, variables, at) = found?;
        let handoff = Handoff::default();
        request.data.insert(handoff.clone());
        Some(Plan {
            handoff,
            document,
            variables,
            at,
        })
    }

    /// The projection of `document` and `variables` in `room`: the one a
    /// subscription already holds, or a new one. Called once the join
    /// succeeded, so the document is valid.
    fn projection(
        &self,
        room: &RoomId,
        document: ExecutableDocument,
        variables: Variables,
    ) -> Arc<Projection> {
        let key = (room.clone(), Projection::key(&document, &variables));
        let mut interned = self.projections.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(projection) = interned.map.get(&key).and_then(Weak::upgrade) {
            return projection;
        }
        let projection = Arc::new(Projection {
            document,
            variables,
            schema: self.schema.clone(),
            recent: Mutex::new(Recent {
                by_event: HashMap::new(),
                order: VecDeque::new(),
                bytes: 0,
                held: Arc::clone(&self.held),
            }),
            #[cfg(test)]
            resolutions: Default::default(),
        });
        interned.map.insert(key, Arc::downgrade(&projection));
        if interned.map.len() > 2 * interned.swept.max(16) {
            interned.map.retain(|_, p| p.strong_count() > 0);
            interned.swept = interned.map.len();
        }
        projection
    }
}

/// Projections by room and key, held weakly.
#[derive(Default)]
struct Interned {
    map: HashMap<(RoomId, String), Weak<Projection>>,
    /// The map's size after the last sweep.
    swept: usize,
}

impl Plan {
    /// The rest of the subscription, after the join's own stream: each
    /// event through the shared projection; an error (a kick, a close, a
    /// stream overtaken by retention) as the last response. Empty when the
    /// join did not get as far as its stream.
    pub(crate) fn after_join(self, shared: Arc<SharedDelivery>) -> BoxStream<'static, Response> {
        // Boxed, so that each step moves a pointer: `unfold` moves its
        // state into every step's future and out again, and a subscriber's
        // stream is several hundred bytes (docs/benchmarks.md, step 28).
        enum State {
            Joining(Box<Plan>, Arc<SharedDelivery>),
            Streaming(Box<(Streaming, HeldSeat)>),
            Done,
        }
        stream::unfold(State::Joining(Box::new(self), shared), |state| async move {
            let mut streaming = match state {
                State::Joining(plan, shared) => {
                    let plan = *plan;
                    let subscribed = plan.handoff.take()?;
                    let projection =
                        shared.projection(subscribed.room_id(), plan.document, plan.variables);
                    let (events, seat) = subscribed.split();
                    Box::new((
                        Streaming {
                            events,
                            projection,
                            at: plan.at,
                        },
                        seat,
                    ))
                }
                State::Streaming(streaming) => streaming,
                State::Done => return None,
            };
            loop {
                match streaming.0.events.next().await? {
                    Ok(live) => {
                        if let Some(response) = streaming.0.projection.deliver(live).await {
                            return Some((response, State::Streaming(streaming)));
                        }
                    }
                    Err(error) => {
                        let (streaming, seat) = *streaming;
                        seat.lose();
                        return Some((streaming.failed(error).await, State::Done));
                    }
                }
            }
        })
        .boxed()
    }
}

/// A subscription past its `Joined`: its stream, its projection, and where
/// `joinRoom` stands in its document.
struct Streaming {
    events: LiveEvents,
    projection: Arc<Projection>,
    at: Pos,
}

impl Streaming {
    /// The response that ends the stream with `error`. Not kept: resolved
    /// per subscriber, with its own document's `locations`.
    async fn failed(&self, error: async_graphql::Error) -> Response {
        let mut response = self.projection.resolve(Err(error)).await;
        for error in &mut response.errors {
            error.locations = vec![self.at];
        }
        response
    }
}

impl Plan {
    /// On a socket: the rest of the subscription is the socket writer's to
    /// deliver ([`Delivery`]): it writes each event's `next` frame itself,
    /// the projection's JSON as it is — no copy, no serialization and no
    /// pass through async-graphql's protocol per subscriber. What this
    /// stream still gives async-graphql is the response that ends the
    /// subscription with an error, handed back once the writer has put
    /// every event before it in its burst (the writer alone writes the
    /// socket, so they go first); then it ends, and async-graphql sends
    /// `complete`. It holds the seat: dropped (a client `complete`, the
    /// socket's end), it takes the seat at once and tells the writer to
    /// drop the delivery.
    pub(crate) fn handed_to_writer(
        self,
        shared: Arc<SharedDelivery>,
        socket: Arc<SocketState>,
        id: String,
    ) -> BoxStream<'static, Response> {
        stream::once(async move {
            let subscribed = self.handoff.take()?;
            let projection = shared.projection(subscribed.room_id(), self.document, self.variables);
            // The seat stays here: dropped with this stream (a client
            // `complete`), it is taken at once.
            let (events, seat) = subscribed.split();
            let (_cancel, cancelled) = oneshot::channel::<()>();
            let (finished, done) = oneshot::channel();
            socket.deliveries.hand(Delivery {
                id,
                streaming: Box::new(Streaming {
                    events,
                    projection,
                    at: self.at,
                }),
                pending: None,
                cancelled,
                finished,
            });
            // `_cancel` lives until the writer is done with the delivery.
            match done.await {
                // Left from elsewhere: the seat's drop is the leave.
                Ok(None) => None,
                // The server ended it, or the writer went with the socket.
                Ok(Some(last)) => {
                    seat.lose();
                    Some(last)
                }
                Err(_) => {
                    seat.lose();
                    None
                }
            }
        })
        .filter_map(std::future::ready)
        .boxed()
    }
}

/// A socket's `joinRoom` deliveries that its writer runs ([`Plan::handed_to_writer`]),
/// and the ids of the operations its client started.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    handed: Mutex<Vec<Delivery>>,
    added: tokio::sync::Notify,
    /// In the order the guard passed them to async-graphql, which runs
    /// each at once, in that order: the executor takes the next one for
    /// each operation it runs.
    started: Mutex<VecDeque<String>>,
}

impl Deliveries {
    /// The guard passed an operation with `id` to async-graphql.
    pub(crate) fn started(&self, id: String) {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(id);
    }

    /// The id of the operation async-graphql runs now.
    pub(crate) fn running(&self) -> Option<String> {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    fn hand(&self, delivery: Delivery) {
        self.handed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(delivery);
        self.added.notify_one();
    }

    /// Wakes when a delivery was handed over (see [`Deliveries::take`]).
    pub(crate) async fn added(&self) {
        self.added.notified().await;
    }

    /// The deliveries handed over since the last call.
    pub(crate) fn take(&self) -> Vec<Delivery> {
        std::mem::take(&mut *self.handed.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// One `joinRoom` subscription that a socket's writer delivers.
pub(crate) struct Delivery {
    /// The operation id its frames carry.
    pub(crate) id: String,
    streaming: Box<Streaming>,
    /// An event taken from the stream whose response is not made yet.
    pending: Option<Live>,
    /// Resolves when the subscription was dropped (client `complete`).
    cancelled: oneshot::Receiver<()>,
    /// The response that ends it, for async-graphql to send.
    finished: oneshot::Sender<Option<Response>>,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a delivery has next.
pub(crate) enum Step {
    /// An event's response, as JSON: the payload of a `next` frame.
    Event(Arc<str>),
    /// The subscription ended (with this response, when it is an error):
    /// call [`Delivery::finish`].
    Ended(Option<Box<Response>>),
    /// The subscription was dropped: drop the delivery.
    Cancelled,
}

impl Delivery {
    /// The next step. Cancel-safe: an event taken from the stream waits in
    /// `pending` until its response is made, so a step dropped half-way
    /// (the writer polls for more of a burst once) loses nothing.
    pub(crate) async fn step(&mut self) -> Step {
        loop {
            let live = match self.pending.take() {
                Some(live) => live,
                None => tokio::select! {
                    biased;
                    _ = &mut self.cancelled => return Step::Cancelled,
                    next = self.streaming.events.next() => match next {
                        None => return Step::Ended(None),
                        Some(Err(error)) => {
                            return Step::Ended(Some(Box::new(self.streaming.failed(error).await)));
                        }
                        Some(Ok(live)) => live,
                    },
                },
            };
            self.pending = Some(live.clone());
            let response = self.streaming.projection.deliver_text(live).await;
            self.pending = None;
            if let Some(text) = response {
                return Step::Event(text);
            }
        }
    }

    /// Whether the subscription was dropped since its last step.
    pub(crate) fn is_cancelled(&mut self) -> bool {
        self.cancelled.try_recv().is_err()
    }

    /// Hands the end to async-graphql (its `next` with the error, then
    /// `complete`): every event before it is written.
    pub(crate) fn finish(self, last: Option<Box<Response>>) {
        let _ = self.finished.send(last.map(|last| *last));
    }
}

/// For a subscription whose only root field is `joinRoom`, without
/// directives on it or on the operation: the document that resolves one
/// event as that `joinRoom` would —
/// `query($used…) { <key>: roomEvent <selection> } <fragments used>` —,
/// the values of the variables it uses, and where `joinRoom` stands.
fn projection(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Option<(ExecutableDocument, Variables, Pos)> {
    let operation = match (&document.operations, operation_name) {
        (DocumentOperations::Single(op), None) => &op.node,
        (DocumentOperations::Multiple(ops), Some(name)) => &ops.get(name)?.node,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => &ops.values().next()?.node,
        _ => return None,
    };
    if operation.ty != OperationType::Subscription || !operation.directives.is_empty() {
        return None;
    }
    let [root] = operation.selection_set.node.items.as_slice() else {
        return None;
    };
    let Selection::Field(join) = &root.node else {
        return None;
    };
    if join.node.name.node != "joinRoom" || !join.node.directives.is_empty() {
        return None;
    }
    let mut uses = Uses::default();
    uses.selection_set(&join.node.selection_set.node);
    let mut fragments = HashMap::new();
    while let Some(name) = uses.pending.pop() {
        if let Some(fragment) = document.fragments.get(&name) {
            uses.directives(&fragment.node.directives);
            uses.selection_set(&fragment.node.selection_set.node);
            fragments.insert(name, fragment.clone());
        }
    }
    let field = Field {
        alias: Some(join.node.response_key().clone()),
        name: Positioned::new(Name::new("roomEvent"), join.node.name.pos),
        arguments: Vec::new(),
        directives: Vec::new(),
        selection_set: join.node.selection_set.clone(),
    };
    let operation = OperationDefinition {
        ty: OperationType::Query,
        variable_definitions: operation
            .variable_definitions
            .iter()
            .filter(|v| uses.variables.contains(&v.node.name.node))
            .cloned()
            .collect(),
        directives: Vec::new(),
        selection_set: Positioned::new(
            SelectionSet {
                items: vec![Positioned::new(
                    Selection::Field(Positioned::new(field, join.pos)),
                    join.pos,
                )],
            },
            operation.selection_set.pos,
        ),
    };
    let mut used = Variables::default();
    for (name, value) in variables.iter() {
        if uses.variables.contains(name) {
            used.insert(name.clone(), value.clone());
        }
    }
    let document = ExecutableDocument {
        operations: DocumentOperations::Single(Positioned::new(operation, join.pos)),
        fragments,
    };
    Some((document, used, join.pos))
}

/// The fragments and variables a selection uses.
#[derive(Default)]
struct Uses {
    fragments: BTreeSet<Name>,
    /// Fragments found but not walked yet.
    pending: Vec<Name>,
    variables: BTreeSet<Name>,
}

impl Uses {
    fn selection_set(&mut self, set: &SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    for (_, value) in &field.node.arguments {
                        self.value(&value.node);
                    }
                    self.directives(&field.node.directives);
                    self.selection_set(&field.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&spread.node.directives);
                    let name = &spread.node.fragment_name.node;
                    if self.fragments.insert(name.clone()) {
                        self.pending.push(name.clone());
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.directives(&inline.node.directives);
                    self.selection_set(&inline.node.selection_set.node);
                }
            }
        }
    }

    fn directives(&mut self, directives: &[Positioned<Directive>]) {
        for directive in directives {
            for (_, value) in &directive.node.arguments {
                self.value(&value.node);
            }
        }
    }

    /// The variables in an argument's value. (async-graphql does not
    /// export the type of a value with variables; its serialisation writes
    /// a variable as `{"$var": name}`, which no GraphQL object can be: a
    /// name cannot start with `$`.)
    fn value(&mut self, value: &impl serde::Serialize) {
        fn walk(value: &serde_json::Value, variables: &mut BTreeSet<Name>) {
            match value {
                serde_json::Value::Object(fields) => match fields.get("$var") {
                    Some(serde_json::Value::String(name)) if fields.len() == 1 => {
                        variables.insert(Name::new(name));
                    }
                    _ => fields.values().for_each(|v| walk(v, variables)),
                },
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, variables)),
                _ => {}
            }
        }
        if let Ok(json) = serde_json::to_value(value) {
            walk(&json, &mut self.variables);
        }
    }
}

/// A `joinRoom` selection as a query of its own, and the responses to the
/// latest events it resolved.
struct Projection {
    document: ExecutableDocument,
    variables: Variables,
    schema: Schema<ProjectionRoot, EmptyMutation, EmptySubscription>,
    recent: Mutex<Recent>,
    /// How many times it ran (tests).
    #[cfg(test)]
    resolutions: std::sync::atomic::AtomicU64,
}

/// A projection's latest responses, by the address of their event's `Arc`.
struct Recent {
    by_event: HashMap<usize, Resolved>,
    /// Oldest first.
    order: VecDeque<usize>,
    /// What these responses weigh (see [`weight`]).
    bytes: usize,
    /// What all projections' responses weigh.
    held: Arc<AtomicUsize>,
}

struct Resolved {
    /// Keeps the event's address reserved (a `Weak` keeps the allocation,
    /// not the entry's content), so that no other event takes it while it
    /// identifies this response.
    _event: Reserved,
    data: Value,
    /// `data`'s response as JSON, for the socket's own `next` frames.
    text: Arc<str>,
    bytes: usize,
}

impl Recent {
    fn get(&self, address: usize) -> Option<&Resolved> {
        self.by_event.get(&address)
    }

    fn insert(&mut self, address: usize, event: Reserved, data: Value, text: Arc<str>) {
        // The response twice, and the allocation its `Weak` keeps.
        let bytes = weight(&data) + text.len() + std::mem::size_of::<parlor_engine::Entry>();
        while !self.order.is_empty()
            && (self.order.len() >= RECENT || self.held.load(Ordering::Relaxed) + bytes > BUDGET)
        {
            self.pop_oldest();
        }
        if self.held.load(Ordering::Relaxed) + bytes > BUDGET {
            return;
        }
        let replaced = self.by_event.insert(
            address,
            Resolved {
                _event: event,
                data,
                text,
                bytes,
            },
        );
        match replaced {
            // Two subscribers resolved it at once: one copy counts.
            Some(old) => self.forget(old.bytes),
            None => self.order.push_back(address),
        }
        self.bytes += bytes;
        self.held.fetch_add(bytes, Ordering::Relaxed);
    }

    fn pop_oldest(&mut self) {
        if let Some(gone) = self
            .order
            .pop_front()
            .and_then(|address| self.by_event.remove(&address))
        {
            self.forget(gone.bytes);
        }
    }

    fn forget(&mut self, bytes: usize) {
        self.bytes -= bytes;
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Drop for Recent {
    fn drop(&mut self) {
        self.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// About what a response's data weighs: its strings and a word per value.
fn weight(value: &Value) -> usize {
    const WORD: usize = 32;
    WORD + match value {
        Value::String(s) => s.len(),
        Value::Binary(b) => b.len(),
        Value::List(items) => items.iter().map(weight).sum(),
        Value::Object(fields) => fields.iter().map(|(k, v)| k.len() + weight(v)).sum(),
        _ => 0,
    }
}

#[expect(dead_code, reason = "held, never read: it keeps the address reserved")]
enum Reserved {
    Entry(Weak<parlor_engine::Entry>),
    Notice(Weak<Notice>),
}

impl Reserved {
    fn of(live: &Live) -> Self {
        match live {
            Live::Entry(entry) => Reserved::Entry(Arc::downgrade(entry)),
            Live::Notice(notice) => Reserved::Notice(Arc::downgrade(notice)),
        }
    }
}

/// The address of the `Arc`'s value: two events whose allocations are
/// reserved at the same time have different ones.
fn address(live: &Live) -> usize {
    match live {
        Live::Entry(entry) => Arc::as_ptr(entry) as usize,
        Live::Notice(notice) => Arc::as_ptr(notice) as usize,
    }
}

impl Projection {
    /// Equal for two subscriptions exactly when they resolve every event to
    /// the same JSON: the document without positions (async-graphql's AST
    /// serialises each node as `{"pos": {"line", "column"}, "node"}`; a
    /// literal of that shape cannot stand where this schema's selections
    /// take arguments, which are only `@skip`'s and `@include`'s booleans,
    /// and the document is valid by now) and, apart, the variables' values.
    fn key(document: &ExecutableDocument, variables: &Variables) -> String {
        fn is_position(value: Option<&serde_json::Value>) -> bool {
            value
                .and_then(serde_json::Value::as_object)
                .is_some_and(|pos| {
                    pos.len() == 2 && pos.contains_key("line") && pos.contains_key("column")
                })
        }
        fn without_positions(value: &mut serde_json::Value) {
            match value {
                serde_json::Value::Object(map) => {
                    if map.len() == 2
                        && is_position(map.get("pos"))
                        && let Some(mut node) = map.remove("node")
                    {
                        without_positions(&mut node);
                        *value = node;
                        return;
                    }
                    map.values_mut().for_each(without_positions);
                }
                serde_json::Value::Array(items) => items.iter_mut().for_each(without_positions),
                _ => {}
            }
        }
        let mut fragments: Vec<_> = document.fragments.iter().collect();
        fragments.sort_by(|a, b| a.0.cmp(b.0));
        let mut key = serde_json::json!([document.operations, fragments]);
        without_positions(&mut key);
        serde_json::json!([key, variables]).to_string()
    }

    /// The response to `live` for every subscriber of this projection;
    /// `None` for a notice `joinRoom` has no event for.
    async fn deliver(&self, live: Live) -> Option<Response> {
        let address = address(&live);
        if let Some(resolved) = self.recent().get(address) {
            return Some(Response::new(resolved.data.clone()));
        }
        let (response, _) = self.resolve_and_keep(address, live).await?;
        Some(response)
    }

    /// [`Projection::deliver`] as the JSON of the response (the socket's
    /// writer puts it in a `next` frame as it is).
    async fn deliver_text(&self, live: Live) -> Option<Arc<str>> {
        let address = address(&live);
        if let Some(resolved) = self.recent().get(address) {
            return Some(Arc::clone(&resolved.text));
        }
        let (_, text) = self.resolve_and_keep(address, live).await?;
        Some(text)
    }

    async fn resolve_and_keep(&self, address: usize, live: Live) -> Option<(Response, Arc<str>)> {
        let reserved = Reserved::of(&live);
        let response = coded(self.resolve(Ok(room_event(live)?)).await);
        let text: Arc<str> = serde_json::to_string(&response)
            .unwrap_or_else(|_| r#"{"data":null}"#.to_owned())
            .into();
        if response.errors.is_empty() && response.extensions.is_empty() {
            let data = response.data.clone();
            self.recent()
                .insert(address, reserved, data, Arc::clone(&text));
        }
        Some((response, text))
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the projection over `event`. (Boxed: the execution's future is
    /// kilobytes, and it would otherwise sit in every delivery's future,
    /// which is moved at each step; it runs once per event.)
    fn resolve(&self, event: Result<RoomEvent>) -> BoxFuture<'_, Response> {
        Box::pin(self.execute(event))
    }

    async fn execute(&self, event: Result<RoomEvent>) -> Response {
        #[cfg(test)]
        self.resolutions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut request = Request::new("")
            .variables(self.variables.clone())
            .data(Projected(event));
        request.set_parsed_query(self.document.clone());
        self.schema.execute(request).await
    }
}

/// The event a projection resolves (its request's data).
struct Projected(Result<RoomEvent>);

/// The projection schema's root: `roomEvent` is the event being delivered.
struct ProjectionRoot;

#[Object(name = "Query")]
impl ProjectionRoot {
    async fn room_event(&self, ctx: &Context<'_>) -> Result<RoomEvent> {
        ctx.data::<Projected>()?.0.clone()
    }
}

#[cfg(test)]
impl SharedDelivery {
    /// How many times each interned projection ran, in no order.
    fn resolutions(&self) -> Vec<u64> {
        let interned = self.projections.lock().unwrap();
        interned
            .map
            .values()
            .filter_map(Weak::upgrade)
            .map(|p| p.resolutions.load(Ordering::Relaxed))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! The shared delivery streams what async-graphql's own subscription
    //! streams, resolving each event once per projection.

    use async_graphql::Executor;
    use parlor_engine::EngineConfig;
    use serde_json::{Value, json};

    use crate::{
        executor::TransportSchema,
        schema::tests::{
            Events, JOIN, MARK, REDACT, SEND, Setup, code, next_response, request, run, setup,
            ticket,
        },
    };

    /// async-graphql's own subscription (the schema run bare), its
    /// `Joined` read.
    async fn bare(s: &Setup, who: &str, query: &str, variables: Value) -> Events {
        use futures_util::StreamExt;
        joined(
            s.schema
                .execute_stream(request(who, query, variables))
                .boxed(),
        )
        .await
    }

    /// The subscription as the transports run it, its `Joined` read.
    async fn shared(t: &TransportSchema, who: &str, query: &str, variables: Value) -> Events {
        joined(Executor::execute_stream(
            t,
            request(who, query, variables),
            None,
        ))
        .await
    }

    async fn joined(mut events: Events) -> Events {
        let r = next_response(&mut events).await;
        assert!(r["errors"].is_null(), "{r}");
        events
    }

    /// Responses up to and including the first whose `joinRoom` (or
    /// `events`) matches `done`.
    async fn until(events: &mut Events, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let r = next_response(events).await;
            let event = if r["data"]["events"].is_null() {
                &r["data"]["joinRoom"]
            } else {
                &r["data"]["events"]
            };
            let stop = done(event) || !r["errors"].is_null();
            seen.push(r);
            if stop {
                return seen;
            }
        }
    }

    fn body_is(body: &'static str) -> impl Fn(&Value) -> bool {
        move |event| event["body"] == body
    }

    /// The same selection as `JOIN`, the ticket inline, another layout: the
    /// same projection.
    fn join_inline(ticket: &str) -> String {
        let selection = JOIN.split_once("afterSeq: $a)").unwrap().1;
        format!("subscription\n  {{\n\n  joinRoom(ticket: \"{ticket}\"){selection}")
    }

    /// Room "r": ann on async-graphql's own stream (she created it), bob
    /// and carol shared, with one selection in two layouts.
    async fn ann_bob_and_carol() -> (Setup, TransportSchema, [Events; 3]) {
        let s = setup(EngineConfig::default()).await;
        let t = TransportSchema::new(s.schema.clone());
        let ann_ticket = ticket(&s, "ann", "r", true).await;
        let ann = bare(&s, "ann", JOIN, json!({"t": ann_ticket})).await;
        let bob_ticket = ticket(&s, "bob", "r", false).await;
        let bob = shared(&t, "bob", JOIN, json!({"t": bob_ticket})).await;
        let carol_ticket = ticket(&s, "carol", "r", false).await;
        let carol = shared(&t, "carol", &join_inline(&carol_ticket), json!({})).await;
        (s, t, [ann, bob, carol])
    }

    const OTHER: &str =
        "subscription($t: String!) { events: joinRoom(ticket: $t) { ... on Entry { seq body } } }";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_event_is_resolved_once_per_projection() {
        let (s, t, [mut ann, mut bob, mut carol]) = ann_bob_and_carol().await;
        let dan_ticket = ticket(&s, "dan", "r", false).await;
        let mut dan = shared(&t, "dan", OTHER, json!({"t": dan_ticket})).await;
        for i in 0..20 {
            let b = format!("m{i}");
            run(&s.schema, "ann", SEND, json!({"r": "r", "c": b, "b": b})).await;
        }
        let ann = until(&mut ann, body_is("m19")).await;
        let bob = until(&mut bob, body_is("m19")).await;
        let carol = until(&mut carol, body_is("m19")).await;
        let dan = until(&mut dan, body_is("m19")).await;

        // The same events as async-graphql's own stream, from bob's join on.
        assert_eq!(ann[ann.len() - bob.len()..], bob[..]);
        assert_eq!(bob[bob.len() - carol.len()..], carol[..]);
        assert_eq!(dan.len(), carol.len() - 1, "dan joined after carol");
        for (d, c) in dan.iter().zip(&carol[1..]) {
            let entry = &c["data"]["joinRoom"];
            assert_eq!(
                d["data"]["events"],
                json!({"seq": entry["seq"], "body": entry["body"]})
            );
        }
        // Bob's and carol's projection ran once per event bob got (carol's
        // were all among them); dan's once per event of his.
        let mut resolutions = t.shared().resolutions();
        resolutions.sort_unstable();
        let (bob_events, dan_events) = (bob.len() as u64, dan.len() as u64);
        assert_eq!(resolutions, vec![dan_events, bob_events]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_shared_stream_is_async_graphqls_own_through_redaction_resume_notices_and_close() {
        let (s, t, [mut ann, mut bob, mut carol]) = ann_bob_and_carol().await;
        let go = run(
            &s.schema,
            "ann",
            SEND,
            json!({"r": "r", "c": "go", "b": "go"}),
        )
        .await;
        let go = go["data"]["sendMessage"]["seq"].as_u64().unwrap();
        run(
            &s.schema,
            "ann",
            SEND,
            json!({"r": "r", "c": "s", "b": "secret"}),
        )
        .await;
        // Bob's projection resolves "secret" live and keeps it.
        until(&mut bob, body_is("secret")).await;
        run(&s.schema, "ann", REDACT, json!({"r": "r", "s": go + 1})).await;
        until(&mut bob, |e| e["kind"] == "REDACTION").await;

        // A resume of the same projection reads "secret" again from the
        // log, erased: not the response kept for the live entry.
        let erin_ticket = ticket(&s, "erin", "r", false).await;
        let mut erin = shared(&t, "erin", JOIN, json!({"t": erin_ticket, "a": go})).await;
        let frank_ticket = ticket(&s, "frank", "r", false).await;
        let mut frank = bare(&s, "frank", JOIN, json!({"t": frank_ticket, "a": go})).await;
        let erin = until(&mut erin, |e| e["kind"] == "REDACTION").await;
        let frank = until(&mut frank, |e| e["kind"] == "REDACTION").await;
        assert_eq!(erin, frank);
        assert_eq!(erin[0]["data"]["joinRoom"]["redacted"], true, "{}", erin[0]);
        assert!(!format!("{erin:?}").contains("secret"));

        // Carol's notices, then the room closed. (A close ends a stream
        // with what it has not delivered yet: read up to it first.)
        let typename = |name: &'static str| move |e: &Value| e["__typename"] == name;
        run(&s.schema, "carol", MARK, json!({"r": "r", "s": go})).await;
        let mut ann_seen = until(&mut ann, typename("Receipt")).await;
        let mut bob_seen = until(&mut bob, typename("Receipt")).await;
        const SIGNAL: &str = "mutation($r: ID!) { sendSignal(roomId: $r, name: \"typing\") }";
        run(&s.schema, "carol", SIGNAL, json!({"r": "r"})).await;
        ann_seen.extend(until(&mut ann, typename("Signal")).await);
        bob_seen.extend(until(&mut bob, typename("Signal")).await);
        run(
            &s.schema,
            "ann",
            SEND,
            json!({"r": "r", "c": "e", "b": "end"}),
        )
        .await;
        ann_seen.extend(until(&mut ann, body_is("end")).await);
        bob_seen.extend(until(&mut bob, body_is("end")).await);
        let mut carol_seen = until(&mut carol, body_is("end")).await;
        const CLOSE: &str = "mutation($r: ID!) { closeRoom(roomId: $r) }";
        let closed = run(&s.schema, "service:ops", CLOSE, json!({"r": "r"})).await;
        assert_eq!(closed["data"]["closeRoom"], true, "{closed}");

        let never = |_: &Value| false;
        ann_seen.extend(until(&mut ann, never).await);
        bob_seen.extend(until(&mut bob, never).await);
        carol_seen.extend(until(&mut carol, never).await);
        let (ann, bob, carol) = (ann_seen, bob_seen, carol_seen);
        assert_eq!(code(ann.last().unwrap()), "ROOM_CLOSED");
        // The same document, the same responses (bob's
        // stream was read up to the redaction above).
        let ann_from_redaction = ann
            .iter()
            .position(|r| r["data"]["joinRoom"]["kind"] == "REDACTION")
            .unwrap();
        assert_eq!(ann[ann_from_redaction + 1..], bob[..]);
        assert!(
            bob.iter()
                .any(|r| r["data"]["joinRoom"]["__typename"] == "Receipt")
        );
        // Carol's document differs in layout only: the same data (but for
        // her own receipt and signal, which she does not get), her own error
        // location.
        let not_a_notice = |r: &&Value| {
            !matches!(
                r["data"]["joinRoom"]["__typename"].as_str(),
                Some("Receipt" | "Signal")
            )
        };
        let carol_from_redaction = carol
            .iter()
            .position(|r| r["data"]["joinRoom"]["kind"] == "REDACTION")
            .unwrap();
        let carol: Vec<_> = carol[carol_from_redaction + 1..]
            .iter()
            .filter(not_a_notice)
            .collect();
        let bob: Vec<_> = bob.iter().filter(not_a_notice).collect();
        assert_eq!(carol.len(), bob.len());
        for (c, b) in carol.iter().zip(&bob) {
            assert_eq!(c["data"], b["data"]);
        }
        let (c, b) = (
            &carol[carol.len() - 1]["errors"][0],
            &bob[bob.len() - 1]["errors"][0],
        );
        assert_eq!(
            (&c["message"], &c["extensions"]),
            (&b["message"], &b["extensions"])
        );
        assert_eq!(c["locations"], json!([{"line": 4, "column": 3}]), "{c}");
    }
}
