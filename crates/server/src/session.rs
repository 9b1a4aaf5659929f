//! Browser sessions and CSRF protection for Postern's own pages.
//!
//! The session cookie holds a 256-bit random token (only its hash is stored), is `HttpOnly`,
//! `SameSite=Lax`, and on an https issuer `Secure` with the `__Host-` prefix. A new token is
//! issued at every sign-in. Forms carry a CSRF token that must equal the CSRF cookie (double
//! submit, compared in constant time); state-changing requests also pass the `Origin` check.

use crate::error::PageError;
use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use postern_core::secret::{BearerSecret, TokenHash, constant_time_eq};
use postern_store::{Session, StoreError};

/// Cookie names, with the `__Host-` prefix when the issuer is https.
pub fn cookie_name(state: &AppState, base: &str) -> String {
    if state.issuer.starts_with("https://") { format!("__Host-{base}") } else { base.to_owned() }
}

pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let secure = if state.issuer.starts_with("https://") { "; Secure" } else { "" };
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}"))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// The signed-in session of this request, if any. Extends the idle deadline at most once a
/// minute, so reading pages does not write on every request. A storage failure is an error,
/// not "signed out": the caller answers "try again", and nobody is sent to sign in again.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Result<Option<(TokenHash, Session)>, StoreError> {
    let Some(token) = cookie_value(headers, &cookie_name(state, SESSION_COOKIE)) else {
        return Ok(None);
    };
    if token.len() != 43 {
        return Ok(None);
    }
    let hash = TokenHash::of(token);
    let now = state.now();
    let Some(session) = state.store.session(&hash, now).await? else {
        return Ok(None);
    };
    if now - session.last_seen_at >= 60 {
        let idle = (now + state.config.sessions.idle_secs).min(session.expires_at);
        if let Err(e) = state.store.touch_session(&hash, now, idle).await {
            tracing::warn!(error = %e, "could not extend a session");
        }
    }
    Ok(Some((hash, session)))
}

/// [`current`] for a page handler: a storage failure is already the "try again" page.
pub async fn on_page(state: &AppState, headers: &HeaderMap) -> Result<Option<(TokenHash, Session)>, Response> {
    current(state, headers).await.map_err(|e| PageError::from(e).into_response())
}

pub const SESSION_COOKIE: &str = "postern_session";
pub const CSRF_COOKIE: &str = "postern_csrf";

/// The CSRF token for a form: the one in the cookie, or a new one to set (returned as the
/// `Set-Cookie` header to add).
pub fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    let name = cookie_name(state, CSRF_COOKIE);
    match cookie_value(headers, &name) {
        Some(v) if v.len() == 43 => (v.to_owned(), None),
        _ => {
            let token = BearerSecret::generate(&mut postern_core::system::os_rng()).expose().to_owned();
            let cookie = set_cookie(state, &name, &token, None);
            (token, Some(cookie))
        }
    }
}

/// Whether a form's CSRF token matches the cookie.
pub fn csrf_ok(state: &AppState, headers: &HeaderMap, form_token: &str) -> bool {
    match cookie_value(headers, &cookie_name(state, CSRF_COOKIE)) {
        Some(cookie) => !form_token.is_empty() && constant_time_eq(cookie.as_bytes(), form_token.as_bytes()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; postern_session=abc"));
        h.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie_value(&h, "postern_session"), Some("abc"));
        assert_eq!(cookie_value(&h, "b"), Some("2"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
