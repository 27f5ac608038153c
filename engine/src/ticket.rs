//! Tickets: opaque, unguessable, single-use proofs of a reservation.
//!
//! A ticket is `base64url(key ‖ deadline ‖ mac)`: 128 random bits that name
//! the reservation, its deadline (milliseconds on the engine's clock) and an
//! HMAC-SHA256 tag over both. The tag lets the engine tell a *forged* ticket
//! (`TICKET_INVALID`) from an *expired* one (`TICKET_EXPIRED`) even after the
//! reservation itself has been swept — without keeping a tombstone per ticket.
//! Single use is enforced by the seat ledger, which holds each unused key once.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::time::{Duration, Instant};

/// The random part of a ticket: what the ledger and the reservation cache key on.
pub(crate) type TicketKey = [u8; 16];

const MAC_LEN: usize = 16;
const RAW_LEN: usize = 16 + 8 + MAC_LEN;

/// Mints and checks tickets with one secret.
pub(crate) struct TicketMint {
    mac: Hmac<Sha256>,
    epoch: Instant,
}

/// A ticket whose signature checked out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VerifiedTicket {
    pub(crate) key: TicketKey,
    pub(crate) deadline: Instant,
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
        }
    }

    /// A fresh ticket valid until `deadline`.
    pub(crate) fn mint(&self, deadline: Instant) -> (TicketKey, String) {
        let key: TicketKey = rand::random();
        let ms = deadline.saturating_duration_since(self.epoch).as_millis() as u64;
        let mut raw = [0u8; RAW_LEN];
        raw[..16].copy_from_slice(&key);
        raw[16..24].copy_from_slice(&ms.to_be_bytes());
        let tag = self.tag(&raw[..24]);
        raw[24..].copy_from_slice(&tag);
        (key, URL_SAFE_NO_PAD.encode(raw))
    }

    /// The ticket's key and deadline, if the engine signed it.
    pub(crate) fn verify(&self, ticket: &str) -> Option<VerifiedTicket> {
        if ticket.len() > 64 {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(ticket).ok()?;
        if raw.len() != RAW_LEN {
            return None;
        }
        let mut mac = self.mac.clone();
        mac.update(&raw[..24]);
        mac.verify_truncated_left(&raw[24..]).ok()?;
        let ms = u64::from_be_bytes(raw[16..24].try_into().ok()?);
        Some(VerifiedTicket {
            key: raw[..16].try_into().ok()?,
            deadline: self.epoch + Duration::from_millis(ms),
        })
    }

    fn tag(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(data);
        let full = mac.finalize().into_bytes();
        full[..MAC_LEN].try_into().expect("sha256 is 32 bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tickets_verify_and_forgeries_do_not() {
        let mint = TicketMint::new(Some(b"secret"));
        let deadline = Instant::now() + Duration::from_secs(15);
        let (key, ticket) = mint.mint(deadline);
        let v = mint.verify(&ticket).expect("own ticket verifies");
        assert_eq!(v.key, key);
        assert!(v.deadline.duration_since(deadline) < Duration::from_millis(1));

        // Flip one character anywhere: no longer ours.
        for i in 0..ticket.len() {
            let mut bytes = ticket.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(bytes).unwrap();
            assert!(mint.verify(&forged).is_none(), "forged at {i}");
        }
        assert!(TicketMint::new(Some(b"other")).verify(&ticket).is_none());
        assert!(mint.verify("").is_none());
        assert!(mint.verify("not base64 !!").is_none());
        assert_ne!(mint.mint(deadline).1, ticket, "fresh randomness per ticket");
    }
}
