//! # parlor-engine
//!
//! The core of Parlor, a chat engine whose transports and storage are
//! plug-ins. This crate holds the rules of docs/contract.md §2–§3 — the two-phase join
//! with a hard capacity, the gap-free room log, exactly-once delivery with
//! resume — behind one object-safe trait, [`ChatEngine`]. It knows nothing of
//! HTTP, GraphQL or SQL: transports (`parlor-ws`, `parlor-graphql`) hold an
//! `Arc<dyn ChatEngine>`, storage crates (`parlor-seaorm`) implement the
//! [`Store`] port, and fan-out backends implement the [`Bus`] port.
//!
//! ```text
//!  transports ──▶ ChatEngine (Engine) ──▶ Store  (parlor-seaorm: SQLite, Postgres)
//!                                     └─▶ Bus    (InProcessBus; Redis later)
//! ```
//!
//! - **Seats** live in a per-room `SeatLedger` (`engine/src/seat_ledger.rs`)
//!   behind a short `std::sync::Mutex`; the capacity check and the seat change
//!   are one critical section.
//! - **Reservations** are tickets in a `moka` cache with per-entry expiry; its
//!   eviction listener frees the seat. A room that does not exist yet is held
//!   in memory by its creator's seat until the first commit writes it.
//! - **Appends** go through one task per active room, which takes everything
//!   waiting; one writer stores every room's waiting batch in one transaction
//!   (group commit), then each room acks and publishes (a burst that spans
//!   commits in one publish: `EngineConfig::publish_hold`). `submit` queues a send
//!   and returns at once, so a connection can pipeline its sends in order.
//! - **Streams** subscribe live first, read the backlog, and skip what they
//!   have seen: no gap, no duplicate at the seam.
//!
//! ```
//! use std::sync::Arc;
//! use parlor_engine::{ChatEngine, Engine, EngineConfig, Principal, RoomId, RoomSpec, UserId};
//! # use parlor_engine::testkit::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> parlor_engine::Result<()> {
//! # let store = Arc::new(MemoryStore::default());
//! // `store` is any Store: parlor_seaorm::SeaOrmStore in a real server.
//! let engine = Engine::builder(store).config(EngineConfig::default()).start().await?;
//! // Who asks: what an `Authenticator` returns (user id, token claims).
//! let alice = Principal::new(UserId::new("alice")?);
//! let room = RoomId::new("lobby")?;
//!
//! let ticket = engine.reserve(&alice, &room, Some(RoomSpec::with_capacity(10))).await?;
//! let mut membership = engine.commit(&alice, &ticket.ticket, None).await?;
//! assert_eq!(membership.joined().last_seq, 1); // alice's join
//!
//! let ack = engine.send(&alice, &room, "c-1", "hello").await?;
//! assert_eq!(membership.next_entry().await?.seq, ack.seq);
//! membership.leave().await?;
//! # Ok(()) }
//! ```
//!
//! The `testkit` feature adds an in-memory [`Store`] (a test double, never
//! for production) and the Store conformance suite every backend runs.

mod amendments;
mod append;
mod authorization;
mod config;
mod engine;
mod entry;
mod entry_stream;
mod error;
mod events;
mod hooks;
mod ids;
mod join;
mod lease_keeper;
mod lifecycle;
mod limits;
mod live_room;
mod membership;
mod moderation;
mod notice;
pub mod policies;
pub mod ports;
mod read_markers;
mod reads;
mod remote_removals;
mod reservations;
mod retention;
mod room;
mod room_directory;
mod room_log;
mod seat_ledger;
mod signals;
mod state;
mod stats;
mod store_writer;
mod ticket;
mod webhooks;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use append::PendingSend;
pub use config::EngineConfig;
pub use engine::{ChatEngine, Engine, EngineBuilder};
pub use entry::{
    DEFAULT_HISTORY_LIMIT, Data, Entry, EntryKind, HistoryPage, LeaveReason, MAX_HISTORY_LIMIT,
    MAX_SEQ, Message, NewEntry, Seq, SeqRange, Timestamp,
};
pub use entry_stream::{EntryStream, Live};
pub use error::{Error, ErrorKind, Result};
pub use events::{ControlEvent, OutboxEvent, RoomEvent};
pub use hooks::WebhookStats;
pub use ids::{MAX_ID_CHARS, RoomId, SeatId, UserId};
pub use join::{JOINED_MEMBERS_MAX, Joined, Reservation, SeatGuard};
pub use limits::RateLimit;
pub use membership::Membership;
pub use notice::{Notice, NoticeKind};
pub use ports::{
    Action, Authenticator, Bus, Claims, Cluster, Decision, EventSink, InProcessBus, PendingClaims,
    PolicyRequest, Principal, RoomPolicy, SeatLeases, Store, bearer_token,
};
pub use room::{
    Ban, DEFAULT_ROOM_PAGE, MAX_REASON_CHARS, MAX_ROOM_PAGE, MAX_TITLE_CHARS, Member, MemberState,
    ReadState, Retention, RoomInfo, RoomPage, RoomPatch, RoomQuery, RoomSpec, StoredRoom,
};
pub use signals::{APP_SIGNAL_PREFIX, MAX_SIGNAL_DATA_BYTES, MAX_SIGNAL_NAME_BYTES};
pub use stats::{EngineStats, Gauge, GaugeGuard, Histogram, HistogramSnapshot};
