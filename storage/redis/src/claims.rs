//! [`RedisClaims`]: pending-room claims as Redis keys with a ttl.
//!
//! A pending room lives in one node's memory until its creator commits; the
//! claim keeps another user from creating the same room on another node
//! meanwhile. `SET NX PX` semantics, made atomic with the "or it is already
//! mine" case by a short Lua script. The key expires with the reservation,
//! so nothing is left behind; the room itself is never written before commit.

use std::time::Duration;

use async_trait::async_trait;
use parlor_engine::{Error, PendingClaims, Result, RoomId, UserId};
use redis::{Script, aio::ConnectionManager};

/// Claim `KEYS[1]` for `ARGV[1]` for `ARGV[2]` ms, or renew the caller's own.
const CLAIM: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Pending-room claims in Redis.
#[derive(Clone)]
pub struct RedisClaims {
    connection: ConnectionManager,
    prefix: String,
    script: Script,
}

impl RedisClaims {
    pub(crate) fn new(connection: ConnectionManager, prefix: &str) -> Self {
        RedisClaims {
            connection,
            prefix: prefix.to_owned(),
            script: Script::new(CLAIM),
        }
    }
}

#[async_trait]
impl PendingClaims for RedisClaims {
    async fn claim(&self, room: &RoomId, user: &UserId, ttl: Duration) -> Result<bool> {
        let mut connection = self.connection.clone();
        let claimed: i64 = self
            .script
            .key(format!("{}:pending:{}", self.prefix, room))
            .arg(user.as_str())
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut connection)
            .await
            .map_err(Error::unavailable)?;
        Ok(claimed == 1)
    }
}
