//! Asking Postern about opaque tokens and API keys (RFC 7662), with a short cache.
//!
//! Answers are cached by the SHA-256 of the credential (the credential itself is not kept):
//! an active answer for `positive_ttl` (never past the credential's own `exp`), an inactive one
//! for `negative_ttl`. So a revocation is seen within `positive_ttl`. Concurrent requests with the
//! same credential share one call (single-flight). Failures to reach Postern are not cached.

use crate::GuardError;
use crate::cache::TtlCache;
use postern_proto::IntrospectionResponse;
use postern_verify::secret::TokenHash;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Postern's answer: `Some` when active.
pub(crate) type Answer = Option<Arc<IntrospectionResponse>>;

type Flight = Arc<OnceCell<Result<Answer, GuardError>>>;

pub(crate) struct Introspector {
    pub(crate) endpoint: String,
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
    pub(crate) positive_ttl: i64,
    pub(crate) negative_ttl: i64,
    cache: TtlCache<Answer>,
    inflight: Mutex<HashMap<TokenHash, Flight>>,
    calls: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Introspector {
    pub(crate) fn new(
        endpoint: String,
        client_id: String,
        client_secret: String,
        (positive_ttl, negative_ttl): (i64, i64),
        max_entries: usize,
    ) -> Self {
        Self {
            endpoint,
            client_id,
            client_secret,
            positive_ttl,
            negative_ttl,
            cache: TtlCache::new(max_entries),
            inflight: Mutex::default(),
            calls: AtomicU64::new(0),
        }
    }

    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The answer for `token` at `now`, from the cache or from one call shared by everyone
    /// asking at the same time.
    pub(crate) async fn introspect(&self, http: &reqwest::Client, token: &str, now: i64) -> Result<Answer, GuardError> {
        let key = TokenHash::of(token);
        if let Some(hit) = self.cache.get(&key, now) {
            return Ok(hit);
        }
        let flight = lock(&self.inflight).entry(key).or_default().clone();
        let result = flight.get_or_init(|| self.call(http, token)).await.clone();
        if let Ok(answer) = &result {
            self.remember(key, answer.clone(), now);
        }
        // Cached first, then the flight is ended, so a request arriving in between finds one
        // or the other and never starts a second call.
        let mut inflight = lock(&self.inflight);
        if inflight.get(&key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            inflight.remove(&key);
        }
        result
    }

    fn remember(&self, key: TokenHash, answer: Answer, now: i64) {
        let until = match &answer {
            Some(a) => (now + self.positive_ttl).min(a.exp.unwrap_or(i64::MAX)),
            None => now + self.negative_ttl,
        };
        self.cache.insert(key, answer, until, now);
    }

    async fn call(&self, http: &reqwest::Client, token: &str) -> Result<Answer, GuardError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let unavailable = |e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, endpoint = %self.endpoint, "introspection failed");
            GuardError::Unavailable("the credential could not be checked".into())
        };
        let response = http
            .post(&self.endpoint)
            .basic_auth(form_encode(&self.client_id), Some(form_encode(&self.client_secret)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={}", form_encode(token)))
            .send()
            .await
            .map_err(|e| unavailable(&e))?;
        if !response.status().is_success() {
            // 401 here means the guard's own client credentials are wrong: the app is
            // misconfigured, and the caller is not to blame.
            return Err(unavailable(&response.status()));
        }
        let body: IntrospectionResponse = response.json().await.map_err(|e| unavailable(&e))?;
        Ok(body.active.then(|| Arc::new(body)))
    }
}

/// `application/x-www-form-urlencoded` encoding (RFC 6749 §2.3.1 asks for it in Basic too).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b+c/d~é"), "a+b%2Bc%2Fd%7E%C3%A9");
        assert_eq!(form_encode("pst_u_AZaz09"), "pst_u_AZaz09");
    }

    #[test]
    fn cache_times_and_bounds() {
        let i = Introspector::new("http://x".into(), "c".into(), "s".into(), (5, 3), 2);
        let active = |exp| Some(Arc::new(IntrospectionResponse { active: true, exp: Some(exp), ..Default::default() }));
        let (a, b, c) = (TokenHash::of("a"), TokenHash::of("b"), TokenHash::of("c"));
        i.remember(a, active(1_000), 100);
        i.remember(b, active(102), 100);
        assert_eq!(i.cache.until(&a), Some(105), "positive answers live positive_ttl");
        assert_eq!(i.cache.until(&b), Some(102), "never past the credential's exp");
        i.remember(c, None, 103);
        assert_eq!(i.cache.until(&c), Some(106), "negative answers live negative_ttl");
        assert_eq!(i.cache.until(&b), None, "expired entries make room");
        assert_eq!(i.cache.len(), 2);
        assert!(i.cache.get(&a, 104).is_some() && i.cache.get(&a, 105).is_none());
    }
}
