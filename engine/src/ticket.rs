//! Tickets: opaque, unguessable, single-use proofs of a reservation.
//!
//! A ticket is `base64url(key ‖ deadline ‖ room ‖ mac)`: 128 random bits that
//! name the reservation, its deadline (Unix milliseconds), the room, and an
//! HMAC-SHA256 tag over those and the user it was issued to. The tag lets the
//! engine tell a *forged* or another user's ticket (`TICKET_INVALID`) from an
//! *expired* one (`TICKET_EXPIRED`) even after the reservation itself has been
//! swept — without keeping a tombstone per ticket — and lets any node of a
//! cluster that shares the secret learn the room and check the ticket. Single
//! use is enforced by the seat ledger (and, in a cluster, by the database).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::time::{Duration, Instant};

use crate::{
    entry::Timestamp,
    ids::{RoomId, UserId},
};

/// The random part of a ticket: what the ledger and the reservation cache key on.
pub(crate) type TicketKey = [u8; 16];

const MAC_LEN: usize = 16;
const HEAD_LEN: usize = 16 + 8;
/// The longest ticket: a 64-character room id.
const MAX_TICKET_CHARS: usize = (HEAD_LEN + 64 + MAC_LEN).div_ceil(3) * 4;

/// Mints and checks tickets with one secret.
pub(crate) struct TicketMint {
    mac: Hmac<Sha256>,
    /// The engine's clock and the wall clock at one moment: deadlines travel
    /// as wall time (so another node can read them) and are kept as
    /// `Instant`s (so paused test time governs them).
    epoch: Instant,
    epoch_wall: Timestamp,
}

/// A ticket whose signature checked out.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedTicket {
    pub(crate) key: TicketKey,
    pub(crate) deadline: Instant,
    pub(crate) expires_at: Timestamp,
    pub(crate) room: RoomId,
}

impl TicketMint {
    pub(crate) fn new(secret: Option<&[u8]>) -> Self {
        let random: [u8; 32];
        let secret = match secret {
            Some(s) => s,
            None => {
                random = rand::random();
                &random
            }
        };
        TicketMint {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
            epoch: Instant::now(),
            epoch_wall: Timestamp::now(),
        }
    }

    /// The wall time of `deadline`.
    pub(crate) fn wall_time(&self, deadline: Instant) -> Timestamp {
        let ms = deadline.saturating_duration_since(self.epoch).as_millis() as i64;
        Timestamp(self.epoch_wall.millis() + ms)
    }

    /// A fresh ticket for `user`'s seat in `room`, valid until `deadline`.
    pub(crate) fn mint(
        &self,
        deadline: Instant,
        room: &RoomId,
        user: &UserId,
    ) -> (TicketKey, String) {
        let key: TicketKey = rand::random();
        let mut raw = Vec::with_capacity(HEAD_LEN + room.as_str().len() + MAC_LEN);
        raw.extend_from_slice(&key);
        raw.extend_from_slice(&self.wall_time(deadline).millis().to_be_bytes());
        raw.extend_from_slice(room.as_str().as_bytes());
        let tag = self.tag(&raw, user);
        raw.extend_from_slice(&tag);
        (key, URL_SAFE_NO_PAD.encode(raw))
    }

    /// The ticket's key, deadline and room, if the engine signed it for `user`.
    pub(crate) fn verify(&self, ticket: &str, user: &UserId) -> Option<VerifiedTicket> {
        if ticket.len() > MAX_TICKET_CHARS {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(ticket).ok()?;
        if raw.len() <= HEAD_LEN + MAC_LEN {
            return None;
        }
        let (signed, tag) = raw.split_at(raw.len() - MAC_LEN);
        let mut mac = self.mac.clone();
        feed(&mut mac, signed, user);
        mac.verify_truncated_left(tag).ok()?;
        let wall = i64::from_be_bytes(signed[16..HEAD_LEN].try_into().ok()?);
        let room = RoomId::new(std::str::from_utf8(&signed[HEAD_LEN..]).ok()?).ok()?;
        let ahead = u64::try_from(wall - self.epoch_wall.millis()).unwrap_or(0);
        Some(VerifiedTicket {
            key: signed[..16].try_into().ok()?,
            deadline: self.epoch + Duration::from_millis(ahead),
            expires_at: Timestamp(wall),
            room,
        })
    }

    fn tag(&self, signed: &[u8], user: &UserId) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        feed(&mut mac, signed, user);
        let full = mac.finalize().into_bytes();
        full[..MAC_LEN].try_into().expect("sha256 is 32 bytes")
    }
}

/// The signed bytes, then the user (after a separator no id contains).
fn feed(mac: &mut Hmac<Sha256>, signed: &[u8], user: &UserId) {
    mac.update(signed);
    mac.update(&[0]);
    mac.update(user.as_str().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tickets_verify_and_forgeries_do_not() {
        let mint = TicketMint::new(Some(b"secret"));
        let alice = UserId::new("alice").unwrap();
        let room = RoomId::new("a-room-with-a-long-name").unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let (key, ticket) = mint.mint(deadline, &room, &alice);
        let v = mint.verify(&ticket, &alice).expect("own ticket verifies");
        assert_eq!(v.key, key);
        assert_eq!(v.room, room);
        assert!(v.deadline.duration_since(deadline) < Duration::from_millis(1));
        assert_eq!(v.expires_at, mint.wall_time(deadline));

        // Flip one character anywhere: no longer ours.
        for i in 0..ticket.len() {
            let mut bytes = ticket.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(bytes).unwrap();
            assert!(mint.verify(&forged, &alice).is_none(), "forged at {i}");
        }
        let bob = UserId::new("bob").unwrap();
        assert!(
            mint.verify(&ticket, &bob).is_none(),
            "another user's ticket"
        );
        assert!(
            TicketMint::new(Some(b"other"))
                .verify(&ticket, &alice)
                .is_none()
        );
        assert!(mint.verify("", &alice).is_none());
        assert!(mint.verify("not base64 !!", &alice).is_none());
        assert_ne!(
            mint.mint(deadline, &room, &alice).1,
            ticket,
            "fresh randomness per ticket"
        );

        // A 64-character room still fits.
        let long = RoomId::new(&"r".repeat(64)).unwrap();
        let (_, ticket) = mint.mint(deadline, &long, &alice);
        assert_eq!(mint.verify(&ticket, &alice).unwrap().room, long);
    }
}
