//! [`JwtAuthenticator`]: JWTs (RFC 7519) signed with an HMAC secret, a PEM
//! public key or the keys of a JWK Set, and the claim rules ([`JwtRules`])
//! they must meet.

use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::{Validation, decode, decode_header, errors::ErrorKind as JwtErrorKind};
use parlor_engine::{Authenticator, Principal, Result, Timestamp, UserId};
use serde::Deserialize;

use crate::{
    keys::{self, KeyError, VerifyingKey},
    unauthenticated,
};

/// The default [`JwtRules::leeway`]: 5 s.
///
/// The leeway absorbs clock skew between the identity provider that stamps
/// `nbf` and this server (RFC 7519 §4.1.5 allows "some small leeway").
/// NTP-synced hosts differ by milliseconds; 5 s covers a host whose clock
/// drifted a little while still refusing, by a wide margin, a token meant
/// for later (an hour ahead is refused).
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);

/// The claims a token must carry beyond its signature.
///
/// - `sub` (the user id) and `exp` are required.
/// - `exp` (RFC 7519 §4.1.4): refused at and after `exp`, **with no
///   leeway**. A live connection is closed at `Principal::expires_at`; a
///   token accepted after its `exp` would give a principal already expired.
///   A server whose clock runs ahead sees tokens expire a little early,
///   which clients cover by renewing before `exp`.
/// - `nbf` (RFC 7519 §4.1.5), when present: refused while `now + leeway` is
///   before it.
/// - `aud` (RFC 7519 §4.1.3): with audiences configured, required and one of
///   its values must be one of them. With none configured, not checked (a
///   token carrying `aud` is accepted): the server has no name of its own to
///   compare. Configure it when the identity provider issues tokens for
///   other services too, or their tokens are good here.
/// - `iss` (RFC 7519 §4.1.1): with issuers configured, required and one of
///   them; otherwise not checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRules {
    leeway: Duration,
    audiences: Vec<String>,
    issuers: Vec<String>,
}

impl Default for JwtRules {
    fn default() -> Self {
        JwtRules {
            leeway: DEFAULT_LEEWAY,
            audiences: Vec::new(),
            issuers: Vec::new(),
        }
    }
}

impl JwtRules {
    /// How far ahead of this server's clock a token's `nbf` may be (default
    /// [`DEFAULT_LEEWAY`]; millisecond precision). Does not apply to `exp`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Accept tokens whose `aud` holds `audience` (call again for more);
    /// once any is set, tokens without `aud` are refused.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accept tokens whose `iss` is `issuer` (call again for more); once any
    /// is set, tokens without `iss` are refused.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }
}

/// JWTs (RFC 7519, compact JWS) checked against one or more keys:
///
/// - [`hs256`](Self::hs256): a shared secret, HS256;
/// - [`public_key_pem`](Self::public_key_pem): an RSA key (RS256, RS384,
///   RS512, PS256, PS384, PS512), an EC P-256 key (ES256) or P-384 (ES384);
/// - [`jwks`](Self::jwks): a JWK Set (RFC 7517) as identity providers
///   publish it; the token's `kid` header picks the key, and a token without
///   `kid` is accepted only when the set holds one key.
///
/// The algorithms a key verifies follow from the key, never from the token.
/// The claims must meet [`JwtRules`] (default: [`JwtRules::default`]).
/// Every failure is `UNAUTHENTICATED` with a short reason. An accepted
/// token gives `Principal::new(sub).expiring_at(exp)`.
pub struct JwtAuthenticator {
    keys: Vec<Checked>,
    /// Whether the token's `kid` picks the key (a JWK Set) or there is one
    /// key whatever the `kid` says (a secret or a PEM key).
    by_kid: bool,
    rules: JwtRules,
}

/// A key and the `jsonwebtoken` validation built for it and the rules.
struct Checked {
    key: VerifyingKey,
    validation: Validation,
}

#[derive(Deserialize)]
struct Claims {
    // Options, so that a missing `sub` or `exp` reaches jsonwebtoken's
    // required-claims check (and its clear reason) instead of failing here.
    #[serde(default)]
    sub: Option<String>,
    /// NumericDate: seconds since the Unix epoch, possibly fractional
    /// (RFC 7519 §2).
    #[serde(default)]
    exp: Option<f64>,
    #[serde(default)]
    nbf: Option<f64>,
    /// Every other claim, kept for the room policy (`rooms` grants, an org
    /// id…): `Principal::claims` holds the whole payload.
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

impl JwtAuthenticator {
    /// Checks HS256 tokens signed with `secret`.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::new(vec![keys::secret(secret)], false)
    }

    /// Checks tokens signed with the private half of the PEM public key
    /// `pem` (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY`).
    ///
    /// Errors: not a public key of a supported type, or RSA under 2048 bits.
    pub fn public_key_pem(pem: &str) -> std::result::Result<Self, KeyError> {
        Ok(Self::new(vec![keys::from_pem(pem)?], false))
    }

    /// Checks tokens signed by any signing key of the JWK Set `json`
    /// (`{"keys": [...]}`); see [`JwtAuthenticator`] for how a key is picked.
    ///
    /// Errors: not a JWK Set, a malformed signing key, a duplicated `kid`,
    /// or no signing key this server can verify with.
    pub fn jwks(json: &str) -> std::result::Result<Self, KeyError> {
        Ok(Self::new(keys::from_jwks(json)?, true))
    }

    fn new(keys: Vec<VerifyingKey>, by_kid: bool) -> Self {
        let mut auth = JwtAuthenticator {
            keys: Vec::new(),
            by_kid,
            rules: JwtRules::default(),
        };
        auth.keys = keys
            .into_iter()
            .map(|key| Checked {
                validation: validation(&key, &auth.rules),
                key,
            })
            .collect();
        auth
    }

    /// The same authenticator, checking claims by `rules`.
    pub fn with_rules(mut self, rules: JwtRules) -> Self {
        for checked in &mut self.keys {
            checked.validation = validation(&checked.key, &rules);
        }
        self.rules = rules;
        self
    }

    /// What it checks, for a start-up log line: the algorithms and, for a
    /// JWK Set, the key ids. Holds no key material.
    pub fn describe(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|c| {
                let algs: Vec<String> = c.key.algorithms.iter().map(|a| format!("{a:?}")).collect();
                match &c.key.kid {
                    Some(kid) => format!("{kid}: {}", algs.join("/")),
                    None => algs.join("/"),
                }
            })
            .collect();
        keys.join(", ")
    }

    fn pick(&self, kid: Option<&str>) -> Result<&Checked> {
        if !self.by_kid || (self.keys.len() == 1 && kid.is_none()) {
            return Ok(&self.keys[0]);
        }
        let kid = kid.ok_or_else(|| unauthenticated("the token has no kid"))?;
        self.keys
            .iter()
            .find(|c| c.key.kid.as_deref() == Some(kid))
            .ok_or_else(|| unauthenticated("no key has the token's kid"))
    }
}

/// What `jsonwebtoken` checks: the signature, the algorithm against the key's,
/// the required claims, `aud` and `iss`. `exp` and `nbf` are checked by
/// [`check_times`], in milliseconds and with the leeway on `nbf` only, which
/// `Validation::leeway` (whole seconds, on both) cannot express.
fn validation(key: &VerifyingKey, rules: &JwtRules) -> Validation {
    let mut v = Validation::new(key.algorithms[0]);
    v.algorithms = key.algorithms.clone();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.leeway = 0;
    let mut required = vec!["exp", "sub"];
    if rules.audiences.is_empty() {
        // jsonwebtoken refuses a token with `aud` when none is configured.
        v.validate_aud = false;
    } else {
        v.set_audience(&rules.audiences);
        required.push("aud");
    }
    if !rules.issuers.is_empty() {
        v.set_issuer(&rules.issuers);
        required.push("iss");
    }
    v.set_required_spec_claims(&required);
    v
}

/// NumericDate seconds to milliseconds, saturating (NaN gives 0).
fn millis(seconds: f64) -> i64 {
    (seconds * 1000.0) as i64
}

/// `exp` and `nbf` against `now`; the token's expiry on success.
fn check_times(claims: &Claims, now: Timestamp, leeway: Duration) -> Result<Timestamp> {
    let exp = claims
        .exp
        .map(millis)
        .ok_or_else(|| unauthenticated("the token lacks exp"))?;
    // RFC 7519 §4.1.4: "the current date/time MUST be before" exp.
    if now.millis() >= exp {
        return Err(unauthenticated("the token has expired"));
    }
    if let Some(nbf) = claims.nbf {
        let leeway = i64::try_from(leeway.as_millis()).unwrap_or(i64::MAX);
        if now.millis().saturating_add(leeway) < millis(nbf) {
            return Err(unauthenticated("the token is not valid yet (nbf)"));
        }
    }
    // A far-future `exp` ("never expires") is held at the last time RFC 3339
    // can write, so that it can be printed and turned into a timer.
    Ok(Timestamp(exp).min(Timestamp::MAX))
}

fn reason(e: &jsonwebtoken::errors::Error) -> String {
    match e.kind() {
        JwtErrorKind::MissingRequiredClaim(claim) => format!("the token lacks {claim}"),
        JwtErrorKind::InvalidAudience => "the token is not for this audience (aud)".into(),
        JwtErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".into(),
        JwtErrorKind::InvalidAlgorithm => "the token's algorithm does not fit the key".into(),
        JwtErrorKind::InvalidSignature => "the token's signature is not valid".into(),
        _ => "the token is not valid".into(),
    }
}

#[async_trait]
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, token: &str) -> Result<Principal> {
        // The header names the key (`kid`); the key, not the header, names
        // the algorithms `decode` accepts.
        let header = decode_header(token).map_err(|_| unauthenticated("the token is not valid"))?;
        // RFC 7515 §4.1.11: extensions listed in `crit` must be understood,
        // and this server understands none.
        if header.crit.as_ref().is_some_and(|c| !c.is_empty()) {
            return Err(unauthenticated(
                "the token has critical header parameters (crit) this server does not support",
            ));
        }
        let checked = self.pick(header.kid.as_deref())?;
        let data = decode::<Claims>(token, &checked.key.key, &checked.validation)
            .map_err(|e| unauthenticated(&reason(&e)))?;
        let expires_at = check_times(&data.claims, Timestamp::now(), self.rules.leeway)?;
        let claims = data.claims;
        let sub = claims.sub.as_deref().unwrap_or_default();
        let user = UserId::new(sub)
            .map_err(|_| unauthenticated("the token's sub is not a valid user id"))?;
        let mut payload = claims.rest;
        payload.insert("sub".into(), sub.into());
        for (name, value) in [("exp", claims.exp), ("nbf", claims.nbf)] {
            // As the token wrote it: a whole NumericDate stays an integer.
            let number = value.and_then(|v| match v.fract() == 0.0 && v.abs() < 9.0e15 {
                true => Some(serde_json::Number::from(v as i64)),
                false => serde_json::Number::from_f64(v),
            });
            if let Some(number) = number {
                payload.insert(name.into(), number.into());
            }
        }
        Ok(Principal::new(user)
            .expiring_at(expires_at)
            .with_claims(payload))
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use parlor_engine::ErrorKind;
    use serde_json::{Value, json};

    use super::*;

    // The test keys of the end-to-end suite (tests/fixtures/make.sh).
    const RSA_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/rsa_private.der");
    const RSA_PUBLIC: &str = include_str!("../../../tests/fixtures/rsa_public.pem");
    const EC_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/ec_private.der");
    const EC2_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/ec2_private.der");
    const EC_PUBLIC: &str = include_str!("../../../tests/fixtures/ec_public.pem");
    const EC384_PUBLIC: &str = include_str!("../../../tests/fixtures/ec384_public.pem");
    const JWKS: &str = include_str!("../../../tests/fixtures/jwks.json");

    fn now() -> i64 {
        Timestamp::now().millis() / 1000
    }

    fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        encode(&header, &claims, key).unwrap()
    }

    fn hs(secret: &[u8], claims: Value) -> String {
        sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(secret),
            claims,
        )
    }

    fn alice() -> Value {
        json!({"sub": "alice", "exp": now() + 60})
    }

    async fn refused(auth: &JwtAuthenticator, token: &str) -> String {
        let err = auth.authenticate(token).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{token}");
        err.to_string()
    }

    async fn user(auth: &JwtAuthenticator, token: &str) -> String {
        auth.authenticate(token)
            .await
            .unwrap_or_else(|e| panic!("{token}: {e}"))
            .user
            .as_str()
            .to_owned()
    }

    #[tokio::test]
    async fn every_claim_is_kept_for_the_room_policy() {
        let auth = JwtAuthenticator::hs256(b"s3cret");
        let exp = now() + 60;
        let rooms = json!([{"match": "team-*", "allow": ["join", "read"]}]);
        let token = hs(
            b"s3cret",
            json!({"sub": "bob", "exp": exp, "rooms": rooms, "org": "acme"}),
        );
        let principal = auth.authenticate(&token).await.unwrap();
        assert_eq!(principal.claims["rooms"], rooms);
        assert_eq!(principal.claims["org"], "acme");
        assert_eq!(principal.claims["sub"], "bob");
        assert_eq!(principal.claims["exp"], exp, "an integer, as in the token");
    }

    #[tokio::test]
    async fn jwt_needs_a_good_signature_sub_and_exp() {
        let auth = JwtAuthenticator::hs256(b"s3cret");
        let exp = now() + 60;
        let ok = hs(b"s3cret", json!({"sub": "alice", "exp": exp}));
        let principal = auth.authenticate(&ok).await.unwrap();
        assert_eq!(principal.user.as_str(), "alice");
        assert_eq!(principal.expires_at, Some(Timestamp(exp * 1000)));

        let cases = [
            (hs(b"other", alice()), "signature"),
            (hs(b"s3cret", json!({"exp": now() + 60})), "lacks sub"),
            (hs(b"s3cret", json!({"sub": "alice"})), "lacks exp"),
            (
                hs(b"s3cret", json!({"sub": "not valid!", "exp": now() + 60})),
                "sub",
            ),
            ("garbage".to_owned(), "not valid"),
        ];
        for (t, why) in cases {
            let message = refused(&auth, &t).await;
            assert!(message.contains(why), "{message} should say {why}");
        }
    }

    #[tokio::test]
    async fn a_fractional_exp_is_a_numeric_date_too() {
        let auth = JwtAuthenticator::hs256(b"k");
        let exp = now() as f64 + 60.25;
        let t = hs(b"k", json!({"sub": "alice", "exp": exp}));
        let principal = auth.authenticate(&t).await.unwrap();
        assert_eq!(principal.expires_at, Some(Timestamp(millis(exp))));
    }

    #[tokio::test]
    async fn exp_has_no_leeway() {
        let auth = JwtAuthenticator::hs256(b"k")
            .with_rules(JwtRules::default().leeway(Duration::from_secs(60)));
        let t = hs(b"k", json!({"sub": "alice", "exp": now() - 1}));
        assert!(refused(&auth, &t).await.contains("expired"));

        let claims = |exp: f64| Claims {
            sub: Some("a".into()),
            exp: Some(exp),
            nbf: None,
            rest: Default::default(),
        };
        let at = Timestamp(1_000_000_000_000);
        let leeway = Duration::from_secs(60);
        // At exp exactly: expired (RFC 7519 §4.1.4, "before").
        assert!(check_times(&claims(1_000_000_000.0), at, leeway).is_err());
        assert_eq!(
            check_times(&claims(1_000_000_000.001), at, leeway).unwrap(),
            Timestamp(1_000_000_000_001)
        );
    }

    #[tokio::test]
    async fn an_exp_past_the_year_9999_is_held_at_timestamp_max() {
        let auth = JwtAuthenticator::hs256(b"k");
        // jsonwebtoken reads `exp` as an integer: one beyond u64 is missing.
        let huge = hs(b"k", json!({"sub": "alice", "exp": 1e300}));
        assert!(refused(&auth, &huge).await.contains("exp"));
        for exp in [json!(253_402_300_800_i64), json!(9_007_199_254_740_991_i64)] {
            let t = hs(b"k", json!({"sub": "alice", "exp": exp}));
            let principal = auth.authenticate(&t).await.unwrap();
            assert_eq!(principal.expires_at, Some(Timestamp::MAX), "{exp}");
            // Printable (a `Display` error would panic in `to_string`).
            assert_eq!(
                principal.expires_at.unwrap().to_string(),
                "9999-12-31T23:59:59.999Z"
            );
        }
    }

    #[tokio::test]
    async fn nbf_ahead_is_refused_beyond_the_leeway() {
        let auth = JwtAuthenticator::hs256(b"k");
        let with_nbf = |nbf: i64| {
            hs(
                b"k",
                json!({"sub": "alice", "exp": now() + 7200, "nbf": nbf}),
            )
        };
        let message = refused(&auth, &with_nbf(now() + 3600)).await;
        assert!(message.contains("not valid yet"), "{message}");
        // Within the default 5 s leeway, in the past, and at now: accepted.
        for nbf in [now() + 2, now() - 60, now()] {
            assert_eq!(user(&auth, &with_nbf(nbf)).await, "alice");
        }
        // A 20 s skew needs a larger leeway.
        assert!(refused(&auth, &with_nbf(now() + 20)).await.contains("nbf"));
        let lenient = JwtAuthenticator::hs256(b"k")
            .with_rules(JwtRules::default().leeway(Duration::from_secs(30)));
        assert_eq!(user(&lenient, &with_nbf(now() + 20)).await, "alice");
        let strict =
            JwtAuthenticator::hs256(b"k").with_rules(JwtRules::default().leeway(Duration::ZERO));
        refused(&strict, &with_nbf(now() + 2)).await;
        // A malformed nbf is not ignored.
        refused(
            &auth,
            &hs(b"k", json!({"sub": "a", "exp": now() + 60, "nbf": "soon"})),
        )
        .await;

        // The boundary, to the millisecond.
        let claims = |nbf: f64| Claims {
            sub: Some("a".into()),
            exp: Some(2_000_000_000.0),
            nbf: Some(nbf),
            rest: Default::default(),
        };
        let at = Timestamp(1_000_000_000_000);
        let leeway = Duration::from_millis(5000);
        assert!(check_times(&claims(1_000_000_005.0), at, leeway).is_ok());
        assert!(check_times(&claims(1_000_000_005.001), at, leeway).is_err());
    }

    #[tokio::test]
    async fn aud_is_checked_only_when_configured() {
        let open = JwtAuthenticator::hs256(b"k");
        for aud in [json!("someone"), json!(["a", "b"])] {
            let t = hs(b"k", json!({"sub": "alice", "exp": now() + 60, "aud": aud}));
            assert_eq!(user(&open, &t).await, "alice", "{aud}");
        }

        let auth = JwtAuthenticator::hs256(b"k")
            .with_rules(JwtRules::default().audience("parlor").audience("chat"));
        let with_aud =
            |aud: Value| hs(b"k", json!({"sub": "alice", "exp": now() + 60, "aud": aud}));
        assert_eq!(user(&auth, &with_aud(json!("parlor"))).await, "alice");
        assert_eq!(user(&auth, &with_aud(json!("chat"))).await, "alice");
        assert_eq!(
            user(&auth, &with_aud(json!(["other", "chat"]))).await,
            "alice"
        );
        assert!(
            refused(&auth, &with_aud(json!("other")))
                .await
                .contains("aud")
        );
        assert!(
            refused(&auth, &with_aud(json!(["x", "y"])))
                .await
                .contains("aud")
        );
        assert!(
            refused(&auth, &hs(b"k", alice()))
                .await
                .contains("lacks aud")
        );
    }

    #[tokio::test]
    async fn iss_is_checked_only_when_configured() {
        let with_iss = |iss: &str| hs(b"k", json!({"sub": "alice", "exp": now() + 60, "iss": iss}));
        assert_eq!(
            user(&JwtAuthenticator::hs256(b"k"), &with_iss("anyone")).await,
            "alice"
        );

        let auth = JwtAuthenticator::hs256(b"k")
            .with_rules(JwtRules::default().issuer("https://id.example"));
        assert_eq!(user(&auth, &with_iss("https://id.example")).await, "alice");
        assert!(
            refused(&auth, &with_iss("https://evil.example"))
                .await
                .contains("iss")
        );
        assert!(
            refused(&auth, &hs(b"k", alice()))
                .await
                .contains("lacks iss")
        );
    }

    #[tokio::test]
    async fn rsa_and_ec_public_keys_from_pem() {
        let rsa = JwtAuthenticator::public_key_pem(RSA_PUBLIC).unwrap();
        let rsa_key = EncodingKey::from_rsa_der(RSA_PRIVATE);
        for alg in [Algorithm::RS256, Algorithm::PS256, Algorithm::RS512] {
            let t = sign(alg, None, &rsa_key, alice());
            assert_eq!(user(&rsa, &t).await, "alice", "{alg:?}");
        }
        // A PEM key is the one key: a kid in the token does not matter.
        let t = sign(Algorithm::RS256, Some("whatever"), &rsa_key, alice());
        assert_eq!(user(&rsa, &t).await, "alice");
        // Claims rules apply to public keys too.
        let expired = sign(
            Algorithm::RS256,
            None,
            &rsa_key,
            json!({"sub": "a", "exp": now() - 1}),
        );
        refused(&rsa, &expired).await;
        // Another key's signature, and an ES256 token, are refused.
        let ec_key = EncodingKey::from_ec_der(EC_PRIVATE);
        refused(&rsa, &sign(Algorithm::ES256, None, &ec_key, alice())).await;

        let ec = JwtAuthenticator::public_key_pem(EC_PUBLIC).unwrap();
        let t = sign(Algorithm::ES256, None, &ec_key, alice());
        let principal = ec.authenticate(&t).await.unwrap();
        assert_eq!(principal.user.as_str(), "alice");
        assert!(principal.expires_at.is_some());
        let other = EncodingKey::from_ec_der(EC2_PRIVATE);
        refused(&ec, &sign(Algorithm::ES256, None, &other, alice())).await;

        let p384 = JwtAuthenticator::public_key_pem(EC384_PUBLIC).unwrap();
        assert_eq!(p384.describe(), "ES384");
        assert_eq!(ec.describe(), "ES256");
        assert_eq!(rsa.describe(), "RS256/RS384/RS512/PS256/PS384/PS512");
    }

    /// An HS256 token whose "secret" is the server's public key: the classic
    /// algorithm confusion (RFC 8725 §2.1). The key, not the header, fixes
    /// the algorithm, so it never verifies.
    #[tokio::test]
    async fn algorithm_confusion_and_alg_none_are_refused() {
        use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
        let pem = JwtAuthenticator::public_key_pem(RSA_PUBLIC).unwrap();
        let jwks = JwtAuthenticator::jwks(JWKS).unwrap();
        let der = rsa::pkcs8::DecodePublicKey::from_public_key_pem(RSA_PUBLIC)
            .map(|k: rsa::RsaPublicKey| {
                rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&k)
                    .unwrap()
                    .as_bytes()
                    .to_vec()
            })
            .unwrap();
        for secret in [RSA_PUBLIC.as_bytes(), RSA_PUBLIC.trim().as_bytes(), &der] {
            for kid in [None, Some("rsa-1")] {
                let forged = sign(
                    Algorithm::HS256,
                    kid,
                    &EncodingKey::from_secret(secret),
                    alice(),
                );
                refused(&pem, &forged).await;
                refused(&jwks, &forged).await;
            }
        }

        let body = URL_SAFE_NO_PAD.encode(alice().to_string());
        for header in [
            json!({"alg": "none", "typ": "JWT"}),
            json!({"alg": "none", "kid": "rsa-1"}),
        ] {
            let head = URL_SAFE_NO_PAD.encode(header.to_string());
            for token in [format!("{head}.{body}."), format!("{head}.{body}")] {
                refused(&pem, &token).await;
                refused(&jwks, &token).await;
                refused(&JwtAuthenticator::hs256(b"k"), &token).await;
            }
        }
    }

    #[tokio::test]
    async fn unknown_critical_header_parameters_are_refused() {
        let auth = JwtAuthenticator::hs256(b"k");
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["b64".into()]);
        let t = encode(&header, &alice(), &EncodingKey::from_secret(b"k")).unwrap();
        assert!(refused(&auth, &t).await.contains("crit"));
    }

    #[tokio::test]
    async fn a_jwk_set_picks_the_key_by_kid() {
        let auth = JwtAuthenticator::jwks(JWKS).unwrap();
        assert_eq!(
            auth.describe(),
            "rsa-1: RS256, ec-1: ES256, ec-2: ES256",
            "the encryption key is skipped"
        );
        let ec1 = EncodingKey::from_ec_der(EC_PRIVATE);
        let ec2 = EncodingKey::from_ec_der(EC2_PRIVATE);
        let rsa = EncodingKey::from_rsa_der(RSA_PRIVATE);
        assert_eq!(
            user(&auth, &sign(Algorithm::ES256, Some("ec-1"), &ec1, alice())).await,
            "alice"
        );
        assert_eq!(
            user(&auth, &sign(Algorithm::ES256, Some("ec-2"), &ec2, alice())).await,
            "alice"
        );
        assert_eq!(
            user(&auth, &sign(Algorithm::RS256, Some("rsa-1"), &rsa, alice())).await,
            "alice"
        );

        // The kid picks exactly one key: ec-2's signature under kid ec-1 fails.
        assert!(
            refused(&auth, &sign(Algorithm::ES256, Some("ec-1"), &ec2, alice()))
                .await
                .contains("signature")
        );
        assert!(
            refused(&auth, &sign(Algorithm::ES256, Some("nope"), &ec1, alice()))
                .await
                .contains("kid")
        );
        assert!(
            refused(&auth, &sign(Algorithm::ES256, None, &ec1, alice()))
                .await
                .contains("kid")
        );
        // rsa-1 says alg RS256: PS256 with the same key is not taken.
        refused(&auth, &sign(Algorithm::PS256, Some("rsa-1"), &rsa, alice())).await;
        // The encryption key (use enc) is no signing key.
        refused(&auth, &sign(Algorithm::RS256, Some("enc-1"), &rsa, alice())).await;

        // A set of one key takes tokens without kid.
        let set: Value = serde_json::from_str(JWKS).unwrap();
        let one = json!({"keys": [set["keys"][1]]});
        let single = JwtAuthenticator::jwks(&one.to_string()).unwrap();
        assert_eq!(
            user(&single, &sign(Algorithm::ES256, None, &ec1, alice())).await,
            "alice"
        );
        refused(
            &single,
            &sign(Algorithm::ES256, Some("ec-2"), &ec2, alice()),
        )
        .await;

        // Rules apply to JWK Set keys too.
        let auth = auth.with_rules(JwtRules::default().audience("parlor"));
        refused(&auth, &sign(Algorithm::ES256, Some("ec-1"), &ec1, alice())).await;
        let for_us = json!({"sub": "alice", "exp": now() + 60, "aud": "parlor"});
        assert_eq!(
            user(&auth, &sign(Algorithm::ES256, Some("ec-1"), &ec1, for_us)).await,
            "alice"
        );
    }
}
