//! # parlor-webhook
//!
//! Parlor's webhooks (docs/contract.md §10): an [`EventSink`] that sends a
//! batch of room events as one signed HTTP `POST`. The engine decides what
//! to send and when — each room's events in order, from a cursor kept in
//! storage, retried until a 2xx — and this crate only shapes the request:
//!
//! - the body is `{"events":[…]}`, each event `{"id","type","room_id",
//!   "seq"?,"at","data"}` ([`event_json`]);
//! - the `Parlor-Signature` header is `t=<unix seconds>,v1=<hex
//!   HMAC-SHA256 of "<t>.<body>">` — the scheme Stripe and Svix use, so
//!   receivers verify with code they know ([`signature`], [`verify`]).
//!
//! How it fits: the reference server builds one [`WebhookSink`] per
//! `--webhook URL` and hands it to `EngineBuilder::webhook`. It depends on
//! `parlor-engine` (the port, the events) and `parlor-wire` (an entry's
//! JSON, the same as on every transport), never the reverse.
//!
//! ```
//! use parlor_webhook::{signature, verify};
//!
//! let body = br#"{"events":[]}"#;
//! let header = signature(b"shh", 1_700_000_000, body);
//! assert!(header.starts_with("t=1700000000,v1="));
//! assert!(verify(b"shh", &header, body, 1_700_000_100, 300));
//! assert!(!verify(b"other", &header, body, 1_700_000_100, 300));
//! ```

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use parlor_engine::{EntryKind, Error, ErrorKind, Result, RoomEvent, ports::EventSink};
use parlor_wire::EntryJson;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The request header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Parlor-Signature";

/// A webhook: room events as signed `POST`s to one URL.
pub struct WebhookSink {
    url: String,
    name: String,
    secret: Vec<u8>,
    http: reqwest::Client,
}

impl WebhookSink {
    /// A sink that posts to `url` (plain `http://`: this client has no TLS;
    /// put a TLS proxy in front for `https`), signing with `secret`, and
    /// waits at most `timeout` for each answer.
    ///
    /// Errors: `INVALID_INPUT` for a URL that is not `http://…`, or an
    /// empty secret.
    pub fn new(url: &str, secret: &[u8], timeout: Duration) -> Result<Self> {
        let invalid = |message: &str| Error::new(ErrorKind::InvalidInput, message.to_owned());
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| invalid("a webhook URL starts with http://"))?;
        if rest.is_empty() {
            return Err(invalid("a webhook URL names a host"));
        }
        if secret.is_empty() {
            return Err(invalid("a webhook needs a secret to sign with"));
        }
        // No redirects: a 301/302 would turn the POST into a bodiless GET
        // whose 200 would count as delivered. A 3xx is a failure.
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| invalid("cannot build the webhook's HTTP client").with_source(e))?;
        Ok(WebhookSink {
            name: name(url),
            url: url.to_owned(),
            secret: secret.to_vec(),
            http,
        })
    }
}

/// The hook's name, kept in storage and shown in logs and metrics: the
/// URL without credentials, query or fragment (which may hold secrets),
/// and the first 8 hex digits of the whole URL's SHA-256, so that two URLs
/// that differ only there stay two hooks.
fn name(url: &str) -> String {
    let digest = Sha256::digest(url.as_bytes());
    format!("{} #{}", label(url), hex(&digest[..4]))
}

/// `url` without credentials, query or fragment.
fn label(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let rest = match rest.split_once('/') {
        Some((authority, path)) => {
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{host}/{path}")
        }
        None => rest.rsplit('@').next().unwrap_or(rest).to_owned(),
    };
    format!("{scheme}://{rest}")
}

#[async_trait]
impl EventSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn deliver(&self, events: &[RoomEvent]) -> Result<()> {
        let body = batch_body(events);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let answer = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header(
                SIGNATURE_HEADER,
                signature(&self.secret, now, body.as_bytes()),
            )
            .body(body)
            .send()
            .await;
        // The URL may carry a secret: neither it nor reqwest's text (which
        // names it) goes into the error.
        match answer {
            Ok(answer) if answer.status().is_success() => Ok(()),
            Ok(answer) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("the receiver answered {}", answer.status().as_u16()),
            )),
            Err(err) if err.is_timeout() => Err(Error::new(
                ErrorKind::Unavailable,
                "the receiver did not answer in time",
            )),
            Err(_) => Err(Error::new(
                ErrorKind::Unavailable,
                "could not reach the receiver",
            )),
        }
    }
}

/// A request's body: `{"events":[…]}`, each as [`event_json`].
pub fn batch_body(events: &[RoomEvent]) -> String {
    let events: Vec<Value> = events.iter().map(event_json).collect();
    json!({ "events": events }).to_string()
}

/// One event: `{"id","type","room_id","seq"?,"at","data"}`. `id` is a
/// UUID, the same on every redelivery; `seq` the entry's (absent on
/// `room.*` and `member.banned`, which are not entries); `at` RFC 3339
/// with milliseconds. `data`: the entry (docs/contract.md §3) for
/// `entry.stored`, `{"user_id"}` for `member.joined`, `{"user_id",
/// "reason"}` for `member.left` (`left`, `kicked` or `room_closed`), and
/// the control event's own object for the others.
pub fn event_json(event: &RoomEvent) -> Value {
    let data: Value = match event {
        RoomEvent::Entry(e) => match e.kind {
            EntryKind::Join => json!({ "user_id": e.sender.as_str() }),
            EntryKind::Leave => json!({
                "user_id": e.sender.as_str(),
                "reason": e.reason.map_or("left", |r| r.as_str()),
            }),
            _ => serde_json::to_value(EntryJson::from(e)).unwrap_or(Value::Null),
        },
        RoomEvent::Control(o) => Value::Object(o.event.data()),
    };
    let mut out = Map::new();
    out.insert("id".into(), event.id().to_string().into());
    out.insert("type".into(), event.type_name().into());
    out.insert("room_id".into(), event.room_id().as_str().into());
    if let Some(seq) = event.seq() {
        out.insert("seq".into(), seq.into());
    }
    out.insert("at".into(), event.at().to_string().into());
    out.insert("data".into(), data);
    Value::Object(out)
}

/// The `Parlor-Signature` value for `body` sent at `t` (Unix seconds):
/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &[u8], t: u64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex(&mac(secret, t, body)))
}

fn mac(secret: &[u8], t: u64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `header` signs `body` with `secret` at a time within
/// `tolerance_secs` of `now` (Unix seconds), as a receiver checks it; any
/// of several `v1=` values may match (a secret being rotated). Compared in
/// constant time.
pub fn verify(secret: &[u8], header: &str, body: &[u8], now: u64, tolerance_secs: u64) -> bool {
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<u64>().ok(),
            Some(("v1", value)) => signatures.push(value),
            _ => {}
        }
    }
    let Some(t) = t else {
        return false;
    };
    if now.abs_diff(t) > tolerance_secs {
        return false;
    }
    let expected = hex(&mac(secret, t, body));
    signatures
        .iter()
        .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_t_dot_body() {
        // Computed apart from this code, with Python's hmac module:
        // hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest()
        let header = signature(b"key", 1, b"{}");
        assert_eq!(
            header,
            "t=1,v1=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn verify_refuses_what_it_should() {
        let body = b"{\"events\":[]}";
        let header = signature(b"s", 1_000, body);
        assert!(verify(b"s", &header, body, 1_000, 0));
        assert!(verify(b"s", &header, body, 1_300, 300));
        assert!(!verify(b"s", &header, body, 1_301, 300), "too old");
        assert!(
            !verify(b"s", &header, b"{\"events\":[1]}", 1_000, 300),
            "other body"
        );
        assert!(!verify(b"t", &header, body, 1_000, 300), "other secret");
        assert!(!verify(b"s", "v1=00", body, 1_000, 300), "no t");
        let rotated = format!("{header},v1=00");
        assert!(verify(b"s", &rotated, body, 1_000, 300));
    }

    #[test]
    fn labels_hide_credentials_and_queries() {
        assert_eq!(label("http://a:b@host:8/p?token=x"), "http://host:8/p");
        assert_eq!(label("http://host"), "http://host");
        assert_eq!(label("http://u@host#f"), "http://host");
    }

    #[test]
    fn names_keep_secrets_out_and_hooks_apart() {
        let a = WebhookSink::new("http://u:p@host/hook?token=1", b"s", Duration::from_secs(1));
        let b = WebhookSink::new("http://u:p@host/hook?token=2", b"s", Duration::from_secs(1));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.name().starts_with("http://host/hook #"), "{}", a.name());
        assert!(!a.name().contains("token") && !a.name().contains("u:p"));
        assert_ne!(a.name(), b.name());
        assert_eq!(a.name(), a.label());
    }

    #[test]
    fn only_plain_http_with_a_secret() {
        let t = Duration::from_secs(1);
        assert!(WebhookSink::new("https://x", b"s", t).is_err());
        assert!(WebhookSink::new("http://", b"s", t).is_err());
        assert!(WebhookSink::new("http://x", b"", t).is_err());
        assert!(WebhookSink::new("http://x/hook", b"s", t).is_ok());
    }
}
