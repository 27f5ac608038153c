//! Verification keys for [`JwtAuthenticator`](crate::JwtAuthenticator): an
//! HMAC secret, a PEM public key, or the keys of a JWK Set, each with the
//! algorithms it may verify.
//!
//! The algorithms come from the key, never from the token (RFC 8725 §2.1,
//! §3.1): an RSA key verifies RS*/PS* only, an EC key the one ES algorithm of
//! its curve, a secret HS256 only. So a token whose header says `HS256` can
//! never be checked against an RSA public key used as an HMAC secret
//! ("algorithm confusion"), and `alg: none` is refused (jsonwebtoken has no
//! such algorithm).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse},
};
use p256::pkcs8::DecodePublicKey as _;
use rsa::{BigUint, RsaPublicKey, pkcs1::DecodeRsaPublicKey as _, traits::PublicKeyParts as _};
use serde::Deserialize;

/// Why a key or a key set cannot be used, said for an operator. The message
/// never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

impl KeyError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        KeyError(message.into())
    }
}

/// The RSA algorithms, all safe with one RSA key (RFC 7518 §3.3, §3.5).
const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Smallest RSA modulus accepted, in bits: RFC 7518 §3.3 ("a key of size
/// 2048 bits or larger MUST be used").
const MIN_RSA_BITS: usize = 2048;

/// One key, the algorithms it verifies, and its `kid` (JWK Set keys only).
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) key: DecodingKey,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) kid: Option<String>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // DecodingKey's own Debug redacts the material; the algorithms and
        // kid are what an operator needs.
        f.debug_struct("VerifyingKey")
            .field("algorithms", &self.algorithms)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// An HMAC secret: HS256 only.
pub(crate) fn secret(secret: &[u8]) -> VerifyingKey {
    VerifyingKey {
        key: DecodingKey::from_secret(secret),
        algorithms: vec![Algorithm::HS256],
        kid: None,
    }
}

/// A PEM public key: RSA (`PUBLIC KEY` or `RSA PUBLIC KEY`) verifies RS256,
/// RS384, RS512, PS256, PS384, PS512; EC P-256 verifies ES256; EC P-384
/// verifies ES384.
pub(crate) fn from_pem(pem: &str) -> Result<VerifyingKey, KeyError> {
    let pem = pem.trim();
    if let Ok(key) =
        RsaPublicKey::from_public_key_pem(pem).or_else(|_| RsaPublicKey::from_pkcs1_pem(pem))
    {
        return rsa_key(&key, None, None);
    }
    if let Ok(key) = p256::PublicKey::from_public_key_pem(pem) {
        return Ok(ec_key(&key.to_sec1_bytes(), Algorithm::ES256, None));
    }
    if let Ok(key) = p384::PublicKey::from_public_key_pem(pem) {
        return Ok(ec_key(&key.to_sec1_bytes(), Algorithm::ES384, None));
    }
    let hint = if pem.contains("PRIVATE KEY") {
        " (this is a private key: give its public half, `openssl pkey -pubout`)"
    } else if pem.contains("CERTIFICATE") {
        " (this is a certificate: give its public key, `openssl x509 -pubkey -noout`)"
    } else {
        ""
    };
    Err(KeyError::new(format!(
        "not a PEM public key of a supported type: RSA of at least {MIN_RSA_BITS} bits, EC P-256 or EC P-384{hint}"
    )))
}

/// The signature verification keys of a JWK Set (RFC 7517 §5).
///
/// Keys for something else are skipped, as identity providers publish
/// encryption keys beside their signing keys: `use` other than `sig`,
/// `key_ops` without `verify`, an encryption `alg` (`RSA-OAEP`, …), key
/// types or curves this server cannot verify (P-521, OKP), and symmetric
/// (`oct`) keys — a JWK Set holds public keys, and HMAC secrets are
/// configured as such. Each skip is logged with its `kid`.
///
/// Errors: not a JWK Set, a signing key that is malformed (bad base64, not a
/// point on its curve, RSA under 2048 bits, an `alg` that does not fit the
/// key), two keys with one `kid`, or no usable key at all.
pub(crate) fn from_jwks(json: &str) -> Result<Vec<VerifyingKey>, KeyError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let set: RawSet = serde_json::from_str(json)
        .map_err(|e| KeyError::new(format!("not a JWK Set (RFC 7517 §5): {e}")))?;
    let mut keys: Vec<VerifyingKey> = Vec::with_capacity(set.keys.len());
    for (index, raw) in set.keys.into_iter().enumerate() {
        let jwk: Jwk = serde_json::from_value(raw)
            .map_err(|e| KeyError::new(format!("key #{index}: not a JWK: {e}")))?;
        let name = match &jwk.common.key_id {
            Some(kid) => format!("key {kid:?}"),
            None => format!("key #{index}"),
        };
        match from_jwk(&jwk) {
            Ok(Usable::Yes(key)) => {
                if let Some(kid) = &key.kid
                    && keys.iter().any(|k| k.kid.as_ref() == Some(kid))
                {
                    return Err(KeyError::new(format!("two keys have the kid {kid:?}")));
                }
                keys.push(key);
            }
            Ok(Usable::Skipped(why)) => {
                tracing::info!(key = %name, why, "JWK Set: key skipped");
            }
            Err(e) => return Err(KeyError::new(format!("{name}: {e}"))),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::new(
            "the JWK Set has no key for verifying signatures (RSA, EC P-256 or EC P-384)",
        ));
    }
    if keys.len() > 1 {
        for key in keys.iter().filter(|k| k.kid.is_none()) {
            // With several keys a token must name its key: this one never will be.
            tracing::warn!(algorithms = ?key.algorithms, "JWK Set: a key without kid among several is never used");
        }
    }
    Ok(keys)
}

enum Usable {
    Yes(VerifyingKey),
    Skipped(&'static str),
}

fn from_jwk(jwk: &Jwk) -> Result<Usable, KeyError> {
    let common = &jwk.common;
    if matches!(
        common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Ok(Usable::Skipped("its use is not sig"));
    }
    if let Some(ops) = &common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Ok(Usable::Skipped("its key_ops lack verify"));
    }
    let stated = match common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RSA1_5 | KeyAlgorithm::RSA_OAEP | KeyAlgorithm::RSA_OAEP_256) => {
            return Ok(Usable::Skipped("an encryption algorithm"));
        }
        Some(alg) => match Algorithm::try_from(alg) {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(Usable::Skipped("an algorithm this server does not verify")),
        },
    };
    let kid = common.key_id.clone();
    let key = match &jwk.algorithm {
        AlgorithmParameters::RSA(params) => {
            let n = b64(&params.n, "n")?;
            let e = b64(&params.e, "e")?;
            let key = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e))
                .map_err(|e| KeyError::new(format!("not an RSA public key: {e}")))?;
            rsa_key(&key, stated, kid)?
        }
        AlgorithmParameters::EllipticCurve(params) => {
            let alg = match params.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Ok(Usable::Skipped("a curve this server does not verify")),
            };
            if stated.is_some_and(|s| s != alg) {
                return Err(KeyError::new(format!(
                    "its alg {stated:?} does not fit a {:?} key",
                    params.curve
                )));
            }
            let mut point = vec![0x04];
            point.extend(b64(&params.x, "x")?);
            point.extend(b64(&params.y, "y")?);
            let valid = match alg {
                Algorithm::ES256 => p256::PublicKey::from_sec1_bytes(&point).is_ok(),
                _ => p384::PublicKey::from_sec1_bytes(&point).is_ok(),
            };
            if !valid {
                return Err(KeyError::new("x and y are not a point on its curve"));
            }
            ec_key(&point, alg, kid)
        }
        AlgorithmParameters::OctetKey(_) => {
            return Ok(Usable::Skipped(
                "a symmetric (oct) key: a JWK Set is for public keys",
            ));
        }
        _ => {
            return Ok(Usable::Skipped("a key type this server does not verify"));
        }
    };
    Ok(Usable::Yes(key))
}

fn b64(value: &str, field: &str) -> Result<Vec<u8>, KeyError> {
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| KeyError::new(format!("its {field} is not base64url")))
}

fn rsa_key(
    key: &RsaPublicKey,
    stated: Option<Algorithm>,
    kid: Option<String>,
) -> Result<VerifyingKey, KeyError> {
    let bits = key.n().bits();
    if bits < MIN_RSA_BITS {
        return Err(KeyError::new(format!(
            "an RSA key of {bits} bits; at least {MIN_RSA_BITS} are required (RFC 7518 §3.3)"
        )));
    }
    let algorithms = match stated {
        None => RSA_ALGORITHMS.to_vec(),
        Some(alg) if RSA_ALGORITHMS.contains(&alg) => vec![alg],
        Some(alg) => {
            return Err(KeyError::new(format!(
                "its alg {alg:?} does not fit an RSA key"
            )));
        }
    };
    Ok(VerifyingKey {
        key: DecodingKey::from_rsa_raw_components(&key.n().to_bytes_be(), &key.e().to_bytes_be()),
        algorithms,
        kid,
    })
}

/// `point` is the uncompressed SEC1 point `04 | x | y`, already checked.
fn ec_key(point: &[u8], alg: Algorithm, kid: Option<String>) -> VerifyingKey {
    VerifyingKey {
        key: DecodingKey::from_ec_der(point),
        algorithms: vec![alg],
        kid,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const RSA_PUBLIC: &str = include_str!("../../../tests/fixtures/rsa_public.pem");
    const EC_PRIVATE: &[u8] = include_bytes!("../../../tests/fixtures/ec_private.der");
    const JWKS: &str = include_str!("../../../tests/fixtures/jwks.json");

    fn set() -> Value {
        serde_json::from_str(JWKS).unwrap()
    }

    fn jwks_error(keys: Value) -> String {
        from_jwks(&json!({ "keys": keys }).to_string())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn pem_keys_that_cannot_be_used_are_refused_with_a_reason() {
        assert!(
            from_pem("hello")
                .unwrap_err()
                .to_string()
                .contains("not a PEM public key")
        );
        let private = pem_rfc7468_like("PRIVATE KEY", EC_PRIVATE);
        assert!(
            from_pem(&private)
                .unwrap_err()
                .to_string()
                .contains("private key")
        );
        // An RSA key under 2048 bits (RFC 7518 §3.3).
        let small = RsaPublicKey::from_public_key_pem(RSA_PUBLIC).unwrap();
        let small = RsaPublicKey::new(
            BigUint::from_bytes_be(&odd_half(&small.n().to_bytes_be())),
            small.e().clone(),
        )
        .unwrap();
        assert!(
            rsa_key(&small, None, None)
                .unwrap_err()
                .to_string()
                .contains("1024 bits")
        );
        // Surrounding whitespace is fine.
        assert!(from_pem(&format!("\n\n{RSA_PUBLIC}\n\n")).is_ok());
    }

    /// The first half of a 2048-bit modulus, made odd: a 1024-bit modulus
    /// the rsa crate takes.
    fn odd_half(n: &[u8]) -> Vec<u8> {
        let mut half = n[..128].to_vec();
        half[127] |= 1;
        half
    }

    /// A PEM block of `der` under `label`, as openssl writes it.
    fn pem_rfc7468_like(label: &str, der: &[u8]) -> String {
        use base64::engine::general_purpose::STANDARD;
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn jwk_sets_that_cannot_be_used_are_refused_with_a_reason() {
        assert!(
            from_jwks("{")
                .unwrap_err()
                .to_string()
                .contains("not a JWK Set")
        );
        assert!(
            from_jwks("[]")
                .unwrap_err()
                .to_string()
                .contains("not a JWK Set")
        );
        assert!(jwks_error(json!([])).contains("no key"));
        let keys = set()["keys"].clone();
        let (rsa, ec) = (keys[0].clone(), keys[1].clone());

        assert!(jwks_error(json!([ec, ec])).contains("two keys have the kid \"ec-1\""));
        let mut wrong_alg = ec.clone();
        wrong_alg["alg"] = json!("RS256");
        assert!(jwks_error(json!([wrong_alg])).contains("does not fit"));
        let mut hs_on_rsa = rsa.clone();
        hs_on_rsa["alg"] = json!("HS256");
        assert!(jwks_error(json!([hs_on_rsa])).contains("does not fit an RSA key"));
        let mut off_curve = ec.clone();
        off_curve["y"] = off_curve["x"].clone();
        assert!(jwks_error(json!([off_curve])).contains("not a point"));
        let mut bad_b64 = rsa.clone();
        bad_b64["n"] = json!("!!!");
        assert!(jwks_error(json!([bad_b64])).contains("base64url"));
        let mut small = rsa.clone();
        let n = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
        small["n"] = json!(URL_SAFE_NO_PAD.encode(odd_half(&n)));
        assert!(jwks_error(json!([small])).contains("at least 2048"));
        // Only keys for something else: nothing to verify with.
        let oct = json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0"});
        let enc = keys[3].clone();
        let p521 = json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"});
        let okp = json!({"kty": "OKP", "crv": "Ed25519", "x": "AA"});
        let ops = json!({"kty": "EC", "crv": "P-256", "x": ec["x"], "y": ec["y"], "key_ops": ["encrypt"]});
        assert!(jwks_error(json!([oct, enc, p521, okp, ops])).contains("no key"));
    }

    #[test]
    fn a_jwk_without_alg_takes_its_family() {
        let keys = set()["keys"].clone();
        let mut rsa = keys[0].clone();
        rsa.as_object_mut().unwrap().remove("alg");
        let loaded = from_jwks(&json!({ "keys": [rsa, keys[1]] }).to_string()).unwrap();
        assert_eq!(loaded[0].algorithms, RSA_ALGORITHMS.to_vec());
        assert_eq!(loaded[1].algorithms, vec![Algorithm::ES256]);
        assert_eq!(loaded[1].kid.as_deref(), Some("ec-1"));
    }
}
