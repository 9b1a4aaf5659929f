//! JSON Web Tokens (RFC 7519) in JWS compact serialization (RFC 7515): reading and verifying
//! them. Signing is `postern-core`'s (`postern_core::jwt::sign`).
//!
//! Verification is strict on purpose: the header's `alg` must be the algorithm of the key named
//! by `kid` (so `none` and algorithm confusion are impossible), the token is bounded in size, and
//! every part must be canonical base64url. Claim checks (expiry, audience) belong to the caller,
//! with `now` as a parameter.

use crate::key::PublicKey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Longest token accepted for verification; ours are far shorter.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("malformed token")]
    Malformed,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("algorithm does not match the key")]
    Algorithm,
    #[error("bad signature")]
    Signature,
    #[error("unexpected token type")]
    Type,
    #[error("the token could not be signed")]
    Signing,
}

/// Whether two `typ` values name the same media type.
fn same_type(a: &str, b: &str) -> bool {
    let short = |t: &str| {
        let t = t.trim();
        match t.get(..12) {
            Some(prefix) if prefix.eq_ignore_ascii_case("application/") => t[12..].to_owned(),
            _ => t.to_owned(),
        }
    };
    short(a).eq_ignore_ascii_case(&short(b))
}

/// Whether a string has the shape of a compact JWS (three base64url parts), without verifying.
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN_BYTES
        && token.split('.').count() == 3
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The header of a compact JWS, decoded but not verified: for choosing the key and refusing an
/// algorithm before any signature work.
pub fn peek_header(token: &str) -> Result<Header, JwtError> {
    if !looks_like_jwt(token) {
        return Err(JwtError::Malformed);
    }
    decode_json(token.split('.').next().unwrap_or_default())
}

/// Verifies the signature with the key `find_key(kid)` returns and decodes the claims.
/// `typ` is checked when given, as a media type: case-insensitively, with or without its
/// `application/` prefix (RFC 7515 §4.1.9; RFC 9068 §2.1 names `at+jwt` and
/// `application/at+jwt`).
pub fn verify<'k, C: DeserializeOwned>(
    token: &str,
    typ: Option<&str>,
    find_key: impl FnOnce(&str) -> Option<&'k PublicKey>,
) -> Result<(Header, C), JwtError> {
    if !looks_like_jwt(token) {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Header = decode_json(h)?;
    if let Some(expected) = typ
        && !header.typ.as_deref().is_some_and(|t| same_type(t, expected))
    {
        return Err(JwtError::Type);
    }
    let kid = header.kid.as_deref().ok_or(JwtError::UnknownKey)?;
    let key = find_key(kid).ok_or(JwtError::UnknownKey)?;
    if header.alg != key.algorithm().as_str() {
        return Err(JwtError::Algorithm);
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    if !key.verify(signing_input.as_bytes(), &signature) {
        return Err(JwtError::Signature);
    }
    let claims = decode_json(p)?;
    Ok((header, claims))
}

fn decode_json<T: DeserializeOwned>(part: &str) -> Result<T, JwtError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// A JSON value that is one string or an array of strings (the `aud` claim, RFC 7519 §4.1.3);
/// one element is written as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OneOrMany(pub Vec<String>);

impl Serialize for OneOrMany {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => s.serialize_str(one),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::One(s) => OneOrMany(vec![s]),
            Raw::Many(v) => OneOrMany(v),
        })
    }
}

impl OneOrMany {
    pub fn contains(&self, value: &str) -> bool {
        self.0.iter().any(|v| v == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_is_a_media_type_with_or_without_application() {
        assert!(same_type("at+jwt", "at+jwt"));
        assert!(same_type("application/at+JWT", "at+jwt"));
        assert!(same_type("JWT", "application/jwt"));
        assert!(!same_type("at+jwt", "JWT"));
        assert!(!same_type("application/", "at+jwt"));
    }

    #[test]
    fn audience_is_one_or_many() {
        assert_eq!(serde_json::to_string(&OneOrMany(vec!["a".into()])).unwrap(), r#""a""#);
        assert_eq!(serde_json::to_string(&OneOrMany(vec!["a".into(), "b".into()])).unwrap(), r#"["a","b"]"#);
        let one: OneOrMany = serde_json::from_str(r#""a""#).unwrap();
        let many: OneOrMany = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert!(one.contains("a") && many.contains("b") && !many.contains("c"));
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_key_is_looked_up() {
        let never = |_: &str| -> Option<&PublicKey> { None };
        assert_eq!(verify::<serde_json::Value>("a.b", None, never).err(), Some(JwtError::Malformed));
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(verify::<serde_json::Value>(&long, None, never).err(), Some(JwtError::Malformed));
        assert_eq!(peek_header("a.b.c").err(), Some(JwtError::Malformed));
    }
}
