//! [`HookPolicy`]: the integrator's backend decides who may do what
//! (`--authorization hook`), like Centrifugo's subscribe/publish proxy.
//!
//! For each question the server POSTs JSON to the hook URL:
//!
//! ```json
//! {"user": "bob", "claims": {"sub": "bob", …}, "room_id": "team-a",
//!  "room": {"room_id": "team-a", "title": null, "capacity": 10,
//!           "owner": "cara", "private": false} | null,
//!  "action": "join"}
//! ```
//!
//! and reads `{"allow": true|false, "ttl_ms": N}`. Each answer is cached
//! for `ttl_ms` per (user, room, action) — concurrent questions with the same
//! key share one request — so a backend sees each question once per ttl. A
//! hook that fails, answers something else, or takes longer than the timeout
//! (`--authz-hook-timeout`, 2 s) is a refusal with `UNAVAILABLE`: the policy
//! fails closed and never allows. Failures are not cached.

use std::time::Duration;

use async_trait::async_trait;
use moka::{Expiry, future::Cache};
use parlor_engine::{
    Action, Decision, Error, ErrorKind, PolicyRequest, RoomId, RoomPolicy, UserId,
};
use serde::Deserialize;
use serde_json::json;

/// The longest a hook's answer is cached, whatever its `ttl_ms` says.
pub const MAX_HOOK_TTL: Duration = Duration::from_secs(3600);

/// How long the server waits for the hook by default.
pub const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(2);

/// The most answers cached at once.
const CACHE_CAPACITY: u64 = 100_000;

type Key = (UserId, RoomId, Action);

#[derive(Debug, Clone, Copy)]
struct Answer {
    allow: bool,
    ttl: Duration,
}

struct AnswerTtl;

impl Expiry<Key, Answer> for AnswerTtl {
    fn expire_after_create(
        &self,
        _key: &Key,
        answer: &Answer,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(answer.ttl)
    }
}

#[derive(Deserialize)]
struct HookAnswer {
    allow: bool,
    #[serde(default)]
    ttl_ms: u64,
}

/// A [`RoomPolicy`] that asks an HTTP endpoint (see the module docs for the
/// exchange).
pub struct HookPolicy {
    url: String,
    http: reqwest::Client,
    answers: Cache<Key, Answer>,
}

impl HookPolicy {
    /// Asks `url` (plain `http://`: this client has no TLS), waiting at most
    /// `timeout` per question.
    ///
    /// Errors: `INVALID_INPUT` for a URL that is not `http://`, or when the
    /// HTTP client cannot be built.
    pub fn new(url: impl Into<String>, timeout: Duration) -> Result<HookPolicy, Error> {
        let url = url.into();
        if !url.starts_with("http://") {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "the hook URL must be http://",
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "cannot build the hook's HTTP client",
                )
                .with_source(e)
            })?;
        Ok(HookPolicy {
            url,
            http,
            answers: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(AnswerTtl)
                .build(),
        })
    }

    async fn ask(&self, request: &PolicyRequest<'_>) -> Result<Answer, Error> {
        let room = request.room.map(|r| {
            json!({
                "room_id": r.id.as_str(),
                "title": r.title,
                "capacity": r.capacity,
                "owner": r.owner.as_ref().map(UserId::as_str),
                "private": r.private,
            })
        });
        let body = json!({
            "user": request.principal.user.as_str(),
            "claims": request.principal.claims,
            "room_id": request.room_id.as_str(),
            "room": room,
            "action": request.action.as_str(),
        });
        let unavailable = |e: reqwest::Error| {
            // The URL may carry a secret: the error's text (which names it)
            // goes to the source, for logs at debug level only.
            tracing::warn!(action = %request.action, "the authorization hook did not answer");
            Error::new(
                ErrorKind::Unavailable,
                "the authorization service did not answer; retry",
            )
            .with_source(e.without_url())
        };
        let answer: HookAnswer = self
            .http
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        Ok(Answer {
            allow: answer.allow,
            ttl: Duration::from_millis(answer.ttl_ms).min(MAX_HOOK_TTL),
        })
    }
}

#[async_trait]
impl RoomPolicy for HookPolicy {
    async fn decide(&self, request: &PolicyRequest<'_>) -> Decision {
        let key = (
            request.principal.user.clone(),
            request.room_id.clone(),
            request.action,
        );
        match self.answers.try_get_with(key, self.ask(request)).await {
            Ok(answer) => Decision::allow_if(answer.allow, request.action),
            // moka shares one failure among the waiters: copy it out.
            Err(error) => Decision::Deny(Error::new(error.kind(), error.message())),
        }
    }
}
