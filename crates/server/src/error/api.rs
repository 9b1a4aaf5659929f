//! The JSON API's error (`/api/…` and `/userinfo`): problems with the credential as RFC 6750
//! §3 says (401 `invalid_token` or a bare challenge, 403 `insufficient_scope`, each with
//! `WWW-Authenticate: Bearer`), other refusals as `{"error", "error_description"}`, and
//! failures on our side as 503 `temporarily_unavailable` (with `Retry-After`) or 500
//! `server_error`, their cause logged and never sent.

use super::{Cause, Failure, RETRY_AFTER_SECS, no_store};
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::borrow::Cow;

type Text = Cow<'static, str>;

#[derive(Debug)]
pub enum ApiError {
    /// No credential at all: 401 with a bare `Bearer` challenge (RFC 6750 §3.1).
    Unauthenticated(Text),
    /// 401 `invalid_token`: expired, revoked, malformed or for another audience.
    InvalidToken(Text),
    /// 403 `insufficient_scope`.
    InsufficientScope(Text),
    /// 403 `invalid_request`: the request may not be made this way (a cross-origin change).
    Forbidden(Text),
    /// 400 `invalid_request`.
    BadRequest(Text),
    /// 404 `not_found`: nothing of that name among the caller's.
    NotFound(Text),
    /// 409 `conflict`: it exists already.
    Conflict(Text),
    /// Our side failed.
    Failed(Cause),
}

impl ApiError {
    pub fn failed(e: impl Failure) -> Self {
        ApiError::Failed(Cause::of(e))
    }
}

impl From<postern_store::StoreError> for ApiError {
    fn from(e: postern_store::StoreError) -> Self {
        ApiError::failed(e)
    }
}

/// A `WWW-Authenticate: Bearer` value (RFC 6750 §3). The description is cut down to the
/// characters §3 allows in it (printable ASCII without `"` and `\`), so nothing a caller sent
/// can end the quoted string or the header.
pub fn bearer_challenge(code: Option<&str>, description: &str) -> HeaderValue {
    let Some(code) = code else {
        return HeaderValue::from_static("Bearer realm=\"postern\"");
    };
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| match c {
                '"' => '\'',
                '\\' => '/',
                ' '..='~' => c,
                _ => '?',
            })
            .collect()
    };
    let value =
        format!("Bearer realm=\"postern\", error=\"{}\", error_description=\"{}\"", safe(code), safe(description));
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"postern\""))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, description, challenge) = match self {
            ApiError::Unauthenticated(d) => (StatusCode::UNAUTHORIZED, None, d, true),
            ApiError::InvalidToken(d) => (StatusCode::UNAUTHORIZED, Some("invalid_token"), d, true),
            ApiError::InsufficientScope(d) => (StatusCode::FORBIDDEN, Some("insufficient_scope"), d, true),
            ApiError::Forbidden(d) => (StatusCode::FORBIDDEN, Some("invalid_request"), d, true),
            ApiError::BadRequest(d) => (StatusCode::BAD_REQUEST, Some("invalid_request"), d, false),
            ApiError::NotFound(d) => (StatusCode::NOT_FOUND, Some("not_found"), d, false),
            ApiError::Conflict(d) => (StatusCode::CONFLICT, Some("conflict"), d, false),
            ApiError::Failed(cause) => match cause.log("api") {
                StatusCode::SERVICE_UNAVAILABLE => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Some("temporarily_unavailable"),
                    Cow::Borrowed("try again shortly"),
                    true,
                ),
                status => (status, Some("server_error"), Cow::Borrowed("internal error"), false),
            },
        };
        let body = json!({ "error": code.unwrap_or("invalid_request"), "error_description": description });
        let mut r = (status, Json(body)).into_response();
        no_store(&mut r);
        if challenge {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, bearer_challenge(code, &description));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_cannot_be_broken_out_of() {
        let v = bearer_challenge(Some("invalid_token"), "the scope \"a\\\" b\" is\r\nSet-Cookie: x=1");
        let v = v.to_str().unwrap();
        assert_eq!(
            v,
            "Bearer realm=\"postern\", error=\"invalid_token\", error_description=\"the scope 'a/' b' is??Set-Cookie: x=1\""
        );
        assert_eq!(bearer_challenge(None, "ignored"), "Bearer realm=\"postern\"");
    }

    #[test]
    fn failures_say_try_again_only_when_the_database_is_out_of_reach() {
        let outage = ApiError::Failed(Cause { text: "pool timed out".into(), unavailable: true }).into_response();
        assert_eq!(outage.status(), 503);
        assert_eq!(outage.headers()[header::RETRY_AFTER], RETRY_AFTER_SECS);
        let bug = ApiError::Failed(Cause { text: "constraint".into(), unavailable: false }).into_response();
        assert_eq!(bug.status(), 500);
        assert!(bug.headers().get(header::WWW_AUTHENTICATE).is_none());
        let scope = ApiError::InsufficientScope("the openid scope is required".into()).into_response();
        assert_eq!(scope.status(), 403);
        assert!(scope.headers()[header::WWW_AUTHENTICATE].to_str().unwrap().contains("insufficient_scope"));
    }
}
