//! [`OriginPolicy`]: which browser pages may call the API and open sockets,
//! checked before any handler (and so before a WebSocket upgrade), and the
//! CORS answers that let an allowed page on another origin call the API.
//!
//! One policy, one layer ([`OriginPolicy::protect`]): the raw transport
//! (`parlor-ws`) wraps its own router in it, and a server wraps any other
//! router it mounts (the reference server: `/graphql` and `/graphql/ws` of
//! `parlor-graphql`) in the same one.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::{
        HeaderMap, HeaderName, HeaderValue, Method,
        header::{AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER},
    },
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use parlor_engine::{Error, ErrorKind};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::ApiError;

/// How long a browser may cache a preflight answer (10 min, Chromium's cap
/// is 2 h): pages repeat the same calls, and each preflight is a round trip.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Which origins may use the API from a browser.
///
/// A request without `Origin` (curl, bots, native apps) is always allowed:
/// the check only keeps a browser page from another site from acting with a
/// user's token. A request with `Origin` is allowed when the origin is the
/// server's own (`scheme://host[:port]` matching the request's `Host`, or with
/// [`trust_forwarded`](OriginPolicy::trust_forwarded) the proxy's forwarded
/// host and scheme) or one of the listed ones (`*` allows every origin);
/// otherwise it gets 403 `{"error":{"code":"FORBIDDEN",…}}` and no CORS
/// headers (docs/contract.md §7, §9). Listed origins also get CORS answers (the Fetch
/// standard's preflight and `Access-Control-Allow-Origin`).
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Listed origins, lower case, without a trailing `/`.
    listed: Vec<String>,
    /// `*` was listed.
    any: bool,
    trust_forwarded: bool,
}

impl OriginPolicy {
    /// The server's own origin plus `listed` (e.g. `https://chat.example.com`;
    /// `*` for any). Forwarded headers are not trusted.
    pub fn new<I, S>(listed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut inner = Inner::default();
        for origin in listed {
            let origin = origin.as_ref().trim().trim_end_matches('/');
            if origin == "*" {
                inner.any = true;
            } else if !origin.is_empty() {
                inner.listed.push(origin.to_ascii_lowercase());
            }
        }
        OriginPolicy {
            inner: Arc::new(inner),
        }
    }

    /// Whether the server's own origin is taken from a reverse proxy's
    /// headers: `Forwarded` (RFC 7239, its `host` and `proto`), else
    /// `X-Forwarded-Host` and `X-Forwarded-Proto` — the last value of each,
    /// the one the proxy next to the server wrote. Off by default: without
    /// a proxy that sets them, a client could forge them.
    pub fn trust_forwarded(self, trust: bool) -> Self {
        let inner = Inner {
            listed: self.inner.listed.clone(),
            any: self.inner.any,
            trust_forwarded: trust,
        };
        OriginPolicy {
            inner: Arc::new(inner),
        }
    }

    /// Whether a request with these headers may go on: no `Origin`, or an
    /// allowed one.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        headers
            .get(ORIGIN)
            .is_none_or(|origin| self.allows_origin(origin, headers))
    }

    /// Wraps `router` in the origin check and, inside it, tower-http's
    /// [`CorsLayer`] for the allowed origins: methods `GET`, `POST`,
    /// `OPTIONS`; request headers `Authorization`, `Content-Type`,
    /// `X-Api-Key`; `Retry-After` exposed (sent with `RATE_LIMITED`).
    pub fn protect<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router
            .layer(self.cors())
            .layer(middleware::from_fn_with_state(self.clone(), check))
    }

    fn cors(&self) -> CorsLayer {
        let policy = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, parts| {
                policy.allows_origin(origin, &parts.headers)
            }))
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                AUTHORIZATION,
                CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
            ])
            .expose_headers([RETRY_AFTER])
            .max_age(PREFLIGHT_MAX_AGE)
    }

    fn allows_origin(&self, origin: &HeaderValue, headers: &HeaderMap) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let origin = origin.trim_end_matches('/');
        self.inner.any
            || self
                .inner
                .listed
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin))
            || self.is_own(origin, headers)
    }

    /// `origin` is the server's own: same host and port as the request was
    /// addressed to, and the same scheme when the proxy says which.
    fn is_own(&self, origin: &str, headers: &HeaderMap) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false; // `null` (sandboxed frames, file://) and garbage
        };
        let forwarded = if self.inner.trust_forwarded {
            forwarded(headers)
        } else {
            None
        };
        let (host, proto) = match forwarded {
            Some(own) => own,
            None => match headers.get(HOST).and_then(|h| h.to_str().ok()) {
                Some(host) => (host.to_owned(), None),
                None => return false,
            },
        };
        if proto.is_some_and(|p| !p.eq_ignore_ascii_case(scheme)) {
            return false;
        }
        without_default_port(scheme, authority)
            .eq_ignore_ascii_case(without_default_port(scheme, host.trim()))
    }
}

async fn check(State(policy): State<OriginPolicy>, request: Request, next: Next) -> Response {
    if !policy.allows(request.headers()) {
        let origin = request
            .headers()
            .get(ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("<not text>");
        tracing::info!(
            origin,
            path = request.uri().path(),
            "refused a request from a disallowed origin"
        );
        return ApiError(Error::new(ErrorKind::Forbidden, "origin not allowed")).into_response();
    }
    next.run(request).await
}

/// The host and scheme a trusted proxy says the client used, both from one
/// source: `X-Forwarded-Host` (with `X-Forwarded-Proto`) when present — what
/// nginx and most load balancers set, overwriting what the client sent —
/// else RFC 7239 `Forwarded`. Never a host from one and a scheme from the
/// other, since a proxy that sets one may pass the client's other through.
fn forwarded(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let last =
        |name: &str| last_element(headers, name).map(|v| v.trim().trim_matches('"').to_owned());
    if let Some(host) = last("x-forwarded-host") {
        let proto = last("x-forwarded-proto").filter(|p| !p.is_empty());
        return Some((host, proto));
    }
    let rfc7239 = last_element(headers, "forwarded").map(|element| {
        let mut host = None;
        let mut proto = None;
        for pair in split_unquoted(&element, ';') {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"').to_owned();
            match key.trim().to_ascii_lowercase().as_str() {
                "host" => host = Some(value),
                "proto" => proto = Some(value),
                _ => {}
            }
        }
        (host, proto)
    });
    let (host, proto) = rfc7239?;
    Some((host?, proto.filter(|p| !p.is_empty())))
}

/// The last comma-separated element over every line of header `name`.
fn last_element(headers: &HeaderMap, name: &str) -> Option<String> {
    let line = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .next_back()?;
    split_unquoted(line, ',')
        .into_iter()
        .rev()
        .find(|e| !e.trim().is_empty())
        .map(str::to_owned)
}

/// Splits at `sep` outside double quotes (RFC 7239 quotes values holding
/// `:` or `,`).
fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `host:443` for https (`:80` for http) is `host`: browsers leave the
/// default port out of `Origin`, proxies may put it into their headers.
fn without_default_port<'a>(scheme: &str, authority: &'a str) -> &'a str {
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" | "wss" => ":443",
        "http" | "ws" => ":80",
        _ => return authority,
    };
    authority.strip_suffix(default).unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue};

    use super::OriginPolicy;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn own_origin_is_allowed_with_or_without_a_list() {
        let own = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080"),
        ]);
        let evil = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080"),
        ]);
        let none = OriginPolicy::new::<_, &str>([]);
        assert!(none.allows(&own));
        assert!(!none.allows(&evil));
        let listed = OriginPolicy::new(["https://chat.example.com/"]);
        assert!(listed.allows(&own), "a list adds to the own origin");
        assert!(!listed.allows(&evil));
        let from_chat = headers(&[("origin", "https://Chat.Example.com"), ("host", "x")]);
        assert!(listed.allows(&from_chat));
        assert!(OriginPolicy::new(["*"]).allows(&evil));
        assert!(
            none.allows(&headers(&[("host", "x")])),
            "no Origin: not a browser page"
        );
        let null = headers(&[("origin", "null"), ("host", "null")]);
        assert!(!none.allows(&null));
    }

    #[test]
    fn default_ports_match_their_absence() {
        let p = OriginPolicy::new::<_, &str>([]);
        assert!(p.allows(&headers(&[
            ("origin", "http://a.test"),
            ("host", "a.test:80")
        ])));
        assert!(!p.allows(&headers(&[
            ("origin", "http://a.test"),
            ("host", "a.test:8080")
        ])));
    }

    #[test]
    fn forwarded_headers_count_only_when_trusted() {
        let behind_nginx = headers(&[
            ("origin", "https://chat.example.com"),
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "chat.example.com"),
            ("x-forwarded-proto", "https"),
        ]);
        assert!(!OriginPolicy::new::<_, &str>([]).allows(&behind_nginx));
        let trusting = OriginPolicy::new::<_, &str>([]).trust_forwarded(true);
        assert!(trusting.allows(&behind_nginx));
        let wrong_scheme = headers(&[
            ("origin", "http://chat.example.com"),
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "chat.example.com"),
            ("x-forwarded-proto", "https"),
        ]);
        assert!(!trusting.allows(&wrong_scheme));
        let rfc7239 = headers(&[
            ("origin", "https://chat.example.com:8443"),
            ("host", "upstream"),
            ("forwarded", "for=1.2.3.4;host=forged.example;proto=https"),
            (
                "forwarded",
                "for=192.0.2.60;proto=https;host=\"chat.example.com:8443\"",
            ),
        ]);
        assert!(
            trusting.allows(&rfc7239),
            "the nearest proxy's element counts"
        );
        // A client's own `Forwarded` passed through a proxy that sets only
        // X-Forwarded-*: the proxy's headers win, whole.
        let mixed = headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "chat.example.com"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "host=evil.example;proto=http"),
        ]);
        assert!(!trusting.allows(&mixed), "one source for host and scheme");
        let mut mixed_ok = mixed.clone();
        mixed_ok.insert("origin", "https://chat.example.com".parse().unwrap());
        assert!(trusting.allows(&mixed_ok));
        let no_forwarding = headers(&[("origin", "http://upstream:1"), ("host", "upstream:1")]);
        assert!(
            trusting.allows(&no_forwarding),
            "no forwarded headers: Host"
        );
    }
}
