//! The built-in [`RoomPolicy`]s of the engine: [`OpenPolicy`] (the default)
//! and [`ClaimsPolicy`] (grants in the token). The reference server chooses
//! one with `--authorization open|claims|hook`; `hook` asks the integrator's
//! backend over HTTP and lives in `parlor-auth`, beside the authenticators.

use async_trait::async_trait;
use serde_json::Value;

use crate::{
    ids::RoomId,
    ports::policy::{Action, Decision, PolicyRequest, RoomPolicy},
};

/// `open`: any authenticated user may create rooms, and join, read and send
/// in public rooms; private rooms admit only their owner and invited users
/// (rules the engine applies before asking), moderating is for owners and
/// moderators, and no one edits another user's message.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenPolicy;

#[async_trait]
impl RoomPolicy for OpenPolicy {
    async fn decide(&self, request: &PolicyRequest<'_>) -> Decision {
        let private = request.room.is_some_and(|room| room.private);
        Decision::allow_if(
            !private && !matches!(request.action, Action::Moderate | Action::Edit),
            request.action,
        )
    }
}

/// `claims`: the token's `rooms` claim lists grants, and nothing is allowed
/// without a matching one:
///
/// ```json
/// {"sub": "bob", "exp": 1767225600, "rooms": [
///   {"match": "team-*", "allow": ["join", "read"]},
///   {"match": "dm-bob-carol", "allow": ["create", "join", "read", "send"]}
/// ]}
/// ```
///
/// `match` is an exact room id, or a prefix ending in `*` (`*` alone matches
/// every room); `allow` names actions as [`Action::as_str`] writes them. A
/// grant that is not of this shape grants nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimsPolicy;

impl ClaimsPolicy {
    /// Whether `claims` grant `action` in `room`.
    pub fn grants(claims: &serde_json::Map<String, Value>, room: &RoomId, action: Action) -> bool {
        let Some(Value::Array(grants)) = claims.get("rooms") else {
            return false;
        };
        grants.iter().any(|grant| {
            let matches = grant
                .get("match")
                .and_then(Value::as_str)
                .is_some_and(|pattern| room_matches(pattern, room.as_str()));
            let allows = grant
                .get("allow")
                .and_then(Value::as_array)
                .is_some_and(|names| names.iter().any(|n| n.as_str() == Some(action.as_str())));
            matches && allows
        })
    }
}

/// `pattern` is an exact id or a prefix followed by `*`.
fn room_matches(pattern: &str, room: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => pattern == room,
    }
}

#[async_trait]
impl RoomPolicy for ClaimsPolicy {
    async fn decide(&self, request: &PolicyRequest<'_>) -> Decision {
        let granted =
            ClaimsPolicy::grants(&request.principal.claims, request.room_id, request.action);
        Decision::allow_if(granted, request.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{error::ErrorKind, ids::UserId, ports::auth::Principal, room::StoredRoom};

    fn bob() -> Principal {
        let claims = serde_json::json!({
            "rooms": [
                {"match": "team-*", "allow": ["join", "read"]},
                {"match": "dm-bob-carol", "allow": ["create", "join", "read", "send"]},
                {"match": "odd", "allow": "send"},
                {"allow": ["send"]}
            ]
        });
        let Value::Object(claims) = claims else {
            unreachable!()
        };
        Principal::new(UserId::new("bob").unwrap()).with_claims(claims)
    }

    async fn decide(policy: &dyn RoomPolicy, who: &Principal, room: &str, action: Action) -> bool {
        let room_id = RoomId::new(room).unwrap();
        let request = PolicyRequest {
            principal: who,
            room_id: &room_id,
            room: None,
            action,
        };
        match policy.decide(&request).await {
            Decision::Allow => true,
            Decision::Deny(err) => {
                assert_eq!(err.kind(), ErrorKind::Forbidden);
                assert!(err.message().contains(action.as_str()), "{}", err.message());
                false
            }
        }
    }

    #[tokio::test]
    async fn claims_grant_by_exact_id_or_prefix_and_nothing_else() {
        let bob = bob();
        let p = &ClaimsPolicy;
        assert!(decide(p, &bob, "team-a", Action::Join).await);
        assert!(decide(p, &bob, "team-a", Action::Read).await);
        assert!(!decide(p, &bob, "team-a", Action::Send).await);
        assert!(!decide(p, &bob, "team-b", Action::Create).await);
        assert!(
            !decide(p, &bob, "teams", Action::Join).await,
            "prefix is `team-`"
        );
        assert!(decide(p, &bob, "dm-bob-carol", Action::Send).await);
        assert!(
            !decide(p, &bob, "dm-bob-carol-x", Action::Send).await,
            "exact"
        );
        assert!(
            !decide(p, &bob, "odd", Action::Send).await,
            "malformed allow"
        );
        let nobody = Principal::new(UserId::new("eve").unwrap());
        assert!(!decide(p, &nobody, "team-a", Action::Join).await);
    }

    #[tokio::test]
    async fn open_allows_public_rooms_and_refuses_private_ones_and_moderation() {
        let anyone = Principal::new(UserId::new("ann").unwrap());
        let id = RoomId::new("r").unwrap();
        let mut room = StoredRoom {
            id: id.clone(),
            capacity: 2,
            title: None,
            last_seq: 0,
            owner: None,
            private: false,
            closed: false,
            first_seq: 1,
            retention: None,
        };
        for action in Action::ALL {
            let request = PolicyRequest {
                principal: &anyone,
                room_id: &id,
                room: Some(&room),
                action,
            };
            let allowed = matches!(OpenPolicy.decide(&request).await, Decision::Allow);
            // No built-in policy lets a user edit another's message.
            let refused = matches!(action, Action::Moderate | Action::Edit);
            assert_eq!(allowed, !refused, "{action}");
        }
        room.private = true;
        let request = PolicyRequest {
            principal: &anyone,
            room_id: &id,
            room: Some(&room),
            action: Action::Join,
        };
        assert!(matches!(
            OpenPolicy.decide(&request).await,
            Decision::Deny(_)
        ));
    }
}
