//! JWT access tokens whose signature this node has checked, found by their signature.
//!
//! A resource server presents the same access token for each of its requests while the token
//! lives (introspection, userinfo), and checking an Ed25519 signature costs some 40 µs where
//! finding it here costs well under one. Only the signature check (and the issuer) is
//! remembered: expiry and revocation are checked on every use by the caller, as for a token
//! seen the first time. A remembered token whose signing key is no longer published is checked
//! again (and refused).
//!
//! An entry is found by the token's signature part and used only if the whole token presented
//! is, compared in constant time, the one that was verified: another header or payload under a
//! copied signature finds nothing. (Hashing the whole token for a key, as before, cost more
//! than the rest of the lookup: 0.26 µs of a JWT introspection's 13.)
//!
//! Each thread keeps its own table ([`crate::per_thread`]): a token is checked once per
//! runtime thread, and a request then takes no lock another core takes.
//!
//! Bounded by size: past [`MAX_ENTRIES`] a thread's table starts over, so a flood of valid
//! tokens costs their verification, never memory.

use crate::per_thread::PerThread;
use postern_core::secret::constant_time_eq;
use postern_core::token::AccessClaims;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// At most this many tokens a thread (under a kilobyte each).
const MAX_ENTRIES: usize = 2_048;

#[derive(Debug)]
struct Entry {
    /// The whole token that was verified.
    token: Box<str>,
    /// The key that signed it.
    kid: String,
    claims: Arc<AccessClaims>,
}

/// By the token's signature part. Only tokens whose signature verified are entered, so the
/// keys are not the presenter's to choose, and a cheap hash is enough.
type Table = FxHashMap<Box<str>, Entry>;

/// The part after the last dot (a JWS's signature).
fn signature(token: &str) -> &str {
    token.rsplit_once('.').map_or(token, |(_, signature)| signature)
}

#[derive(Debug, Default)]
pub struct VerifiedTokens {
    tables: PerThread<Table>,
}

impl VerifiedTokens {
    /// The claims of `token` if its signature was checked before with a key that
    /// `still_published(kid)` says is still in the key set.
    pub fn get(&self, token: &str, still_published: impl FnOnce(&str) -> bool) -> Option<Arc<AccessClaims>> {
        self.tables
            .with(|table| {
                let entry = table.get(signature(token))?;
                let same = constant_time_eq(entry.token.as_bytes(), token.as_bytes());
                (same && still_published(&entry.kid)).then(|| entry.claims.clone())
            })
            .flatten()
    }

    /// Remembers that `token`, signed by `kid`, verified to `claims`.
    pub fn insert(&self, token: &str, kid: String, claims: Arc<AccessClaims>) {
        self.tables.with(|table| {
            if table.len() >= MAX_ENTRIES {
                table.clear();
            }
            table.insert(signature(token).into(), Entry { token: token.into(), kid, claims });
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.tables.with(|table| table.len()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jti: &str) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "https://id.example".into(),
            sub: "u1".into(),
            aud: postern_core::jwt::OneOrMany(vec!["https://api.example".into()]),
            client_id: "c1".into(),
            scope: "read".into(),
            jti: jti.into(),
            iat: 100,
            exp: 200,
            auth_time: None,
            amr: Vec::new(),
            acr: None,
        })
    }

    #[test]
    fn a_token_is_remembered_only_while_its_key_is_published_and_the_table_is_bounded() {
        let verified = VerifiedTokens::default();
        let token = "header.payload.signature";
        assert!(verified.get(token, |_| true).is_none(), "never checked");
        verified.insert(token, "k1".into(), claims("j1"));
        assert_eq!(verified.get(token, |kid| kid == "k1").map(|c| c.jti.clone()), Some("j1".into()));
        assert!(verified.get(token, |_| false).is_none(), "its key was withdrawn: check again");
        assert!(verified.get("header.payload.signaturf", |_| true).is_none(), "another signature");
        assert!(verified.get("header.payloae.signature", |_| true).is_none(), "the signature on another payload");
        assert!(verified.get("header.payload.signature.", |_| true).is_none(), "another string");
        assert!(verified.get("signature", |_| true).is_none(), "the signature alone");
        for i in 0..MAX_ENTRIES {
            verified.insert(&format!("h.p.{i}"), "k1".into(), claims("j"));
        }
        assert!(verified.len() <= MAX_ENTRIES, "bounded");
    }
}
