//! The [`RoomPolicy`] port: who may do what in which room
//! (docs/contract.md §2, "Who may do what").
//!
//! The engine asks its policy before every action — creating a room,
//! joining it (at reserve and again at commit), reading it (its history or
//! its facts), sending in it, moderating it — with the caller's
//! [`Principal`] (user and token claims), the room, and the action. The
//! transports never decide. Rules the engine keeps itself, whatever the
//! policy: a room's owner may do everything in it; a user a moderator
//! invited to a private room may create, join, read and send there; to
//! anyone a policy refuses, a private room does not exist (`ROOM_NOT_FOUND`,
//! whatever the refusal said, but for `send`, asked only of a seated user);
//! history needs a joined seat (grace counts) or being the owner.
//!
//! Like Phoenix's `join/3`, Colyseus's `onAuth` or Centrifugo's channel
//! permissions, a policy is a plain function of who and what: write one in a
//! few lines (`docs/plugins.md`).

use async_trait::async_trait;

use crate::{
    error::{Error, ErrorKind},
    ids::RoomId,
    ports::auth::Principal,
    room::StoredRoom,
};

/// What a caller wants to do in a room. Names as in docs/contract.md §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Action {
    /// Create the room (a reserve with `create` of a room that is absent).
    Create,
    /// Take a seat: asked at reserve and again at commit.
    Join,
    /// Read its history or its facts.
    Read,
    /// Send a message. Asked once per seat at commit (the seat remembers the
    /// answer), per message only for a user seated through another node.
    Send,
    /// Moderate it: invite and withdraw invitations, kick, ban, close,
    /// redact others' messages.
    Moderate,
    /// Edit another user's message (one's own needs only `send`). Asked
    /// only of a user who is not the message's sender; unlike the others,
    /// the engine grants it to no one itself — not the owner, not the
    /// room's moderators — so only a policy that allows it does.
    Edit,
}

impl Action {
    /// Every action, in the order above.
    pub const ALL: [Action; 6] = [
        Action::Create,
        Action::Join,
        Action::Read,
        Action::Send,
        Action::Moderate,
        Action::Edit,
    ];

    /// The action's name on the wire and in JWT grants: `create`, `join`,
    /// `read`, `send`, `moderate`, `edit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Join => "join",
            Action::Read => "read",
            Action::Send => "send",
            Action::Moderate => "moderate",
            Action::Edit => "edit",
        }
    }

    /// The action named `name` (as [`as_str`](Self::as_str) writes it).
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One question to a policy.
#[derive(Debug, Clone, Copy)]
pub struct PolicyRequest<'a> {
    /// Who asks, with their token's claims.
    pub principal: &'a Principal,
    /// The room.
    pub room_id: &'a RoomId,
    /// The stored room's facts (owner, private, title, capacity); `None` for
    /// [`Action::Create`] of a room that does not exist yet.
    pub room: Option<&'a StoredRoom>,
    /// What the caller wants to do.
    pub action: Action,
}

/// A policy's answer.
#[derive(Debug)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused, with the error the caller gets: `FORBIDDEN` (use
    /// [`Decision::forbidden`]), `NOT_A_MEMBER` where the rule is about
    /// holding a seat, `ROOM_NOT_FOUND` where the room must not be seen to
    /// exist, `UNAVAILABLE` where the policy could not decide (fail closed).
    Deny(Error),
}

impl Decision {
    /// `FORBIDDEN`, with a message naming the action: "not allowed to send
    /// in this room".
    pub fn forbidden(action: Action) -> Decision {
        let message = match action {
            Action::Create => "not allowed to create this room".to_string(),
            Action::Read => "not allowed to read this room".to_string(),
            other => format!("not allowed to {other} in this room"),
        };
        Decision::Deny(Error::new(ErrorKind::Forbidden, message))
    }

    /// Allow when `allowed`, else [`Decision::forbidden`].
    pub fn allow_if(allowed: bool, action: Action) -> Decision {
        if allowed {
            Decision::Allow
        } else {
            Decision::forbidden(action)
        }
    }
}

/// Decides who may do what in which room. Object-safe: the engine holds an
/// `Arc<dyn RoomPolicy>` (set with `EngineBuilder::policy`; the default is
/// `OpenPolicy`, in `parlor_engine::policies`).
///
/// Called on the request's path: keep it fast, and cache what it fetches
/// (the server's `hook` policy caches each answer for the `ttl_ms` its
/// backend gives). A policy that cannot decide answers `UNAVAILABLE`, never
/// Allow.
#[async_trait]
pub trait RoomPolicy: Send + Sync + 'static {
    /// Allow or deny `request`.
    async fn decide(&self, request: &PolicyRequest<'_>) -> Decision;
}
