//! Errors at the HTTP edge: one type per surface, each sending a safe message in its surface's
//! format and logging the full cause, so internal details never reach the client (dropshot's
//! split of external and internal messages).
//!
//! - OAuth and OpenID endpoints: [`WebError`] and [`server_error`], RFC 6749 §5.2 JSON.
//! - The JSON API and userinfo: [`ApiError`], RFC 6750 challenges and JSON.
//! - Pages: [`PageError`], the message page.
//!
//! A storage failure is "try again shortly" (503 with `Retry-After`) on every surface when the
//! database is out of reach or overloaded, and never mistaken for "not signed in" or "not found".

mod api;
mod page;

pub use api::{ApiError, bearer_challenge};
pub use page::PageError;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use postern_core::oauth::OAuthError;
use postern_proto::OAuthErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    /// Something went wrong on our side; the cause is logged, the client sees a generic line.
    #[error("internal error: {0}")]
    Internal(String),
    /// An OAuth endpoint's error, in RFC 6749 §5.2 form.
    #[error(transparent)]
    OAuth(#[from] OAuthError),
}

impl From<postern_store::StoreError> for WebError {
    fn from(e: postern_store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}

/// What went wrong on our side, as an OAuth endpoint says it: `temporarily_unavailable` (503
/// with `Retry-After`) when the database is out of reach or overloaded, `server_error` (500)
/// otherwise. The cause is logged, never sent. One function for every grant and endpoint.
pub fn server_error(e: impl Failure) -> OAuthError {
    if e.unavailable() {
        tracing::warn!(error = %e, "database unavailable");
        OAuthError::TemporarilyUnavailable
    } else {
        tracing::error!(error = %e, "request failed on our side");
        OAuthError::ServerError
    }
}

/// An error on our side that may mean "try again shortly" rather than "broken".
pub trait Failure: std::fmt::Display {
    fn unavailable(&self) -> bool {
        false
    }
}

/// What a surface keeps of a failure: the cause for the log, and whether it means "try again".
#[derive(Debug)]
pub struct Cause {
    pub(crate) text: String,
    pub(crate) unavailable: bool,
}

impl Cause {
    pub fn of(e: impl Failure) -> Self {
        Cause { text: e.to_string(), unavailable: e.unavailable() }
    }

    /// Logs the cause (a warning for an outage, an error otherwise) and says which status to send.
    pub fn log(&self, surface: &str) -> axum::http::StatusCode {
        if self.unavailable {
            tracing::warn!(error = %self.text, surface, "database unavailable");
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            tracing::error!(error = %self.text, surface, "request failed on our side");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// `Retry-After` on answers that mean "try again shortly".
pub(crate) const RETRY_AFTER_SECS: &str = "5";

impl Failure for postern_store::StoreError {
    fn unavailable(&self) -> bool {
        self.is_unavailable()
    }
}
impl Failure for &str {}
impl Failure for String {}
impl Failure for serde_json::Error {}
impl Failure for postern_core::kek::KekError {}
impl Failure for postern_core::jwt::JwtError {}
impl Failure for postern_core::password::PasswordError {}

/// RFC 6749 §5.1: token responses (and their errors) must not be cached.
pub fn no_store(response: &mut Response) {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A 200 JSON answer that is never cached (token, introspection and device authorization
/// responses), serialized into one buffer sized for a token response rather than one grown as
/// it is written. A body that cannot be serialized is a `server_error`.
pub fn no_store_json(body: &impl serde::Serialize) -> Response {
    let mut bytes = Vec::with_capacity(1024);
    if let Err(e) = serde_json::to_writer(&mut bytes, body) {
        tracing::error!(error = %e, "response not serializable");
        return WebError::OAuth(OAuthError::ServerError).into_response();
    }
    let mut response = Response::new(axum::body::Body::from(bytes));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    no_store(&mut response);
    response
}

/// 429 in RFC 6749 §5.2 form, with `Retry-After`: a rate limit (see `crate::limits`).
pub fn too_many_requests(wait: i64) -> Response {
    let body = OAuthErrorBody {
        error: "temporarily_unavailable".to_owned(),
        error_description: Some(format!("too many requests; try again in {wait} seconds")),
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    no_store(&mut response);
    if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}

fn oauth_response(e: &OAuthError) -> Response {
    let status = match e {
        OAuthError::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
        OAuthError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        OAuthError::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let body = OAuthErrorBody { error: e.code().to_owned(), error_description: e.description() };
    let mut response = (status, Json(body)).into_response();
    no_store(&mut response);
    if let OAuthError::InvalidClient { .. } = e {
        // RFC 6749 §5.2 requires it when Basic was tried; HTTP requires it on every 401.
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"postern\""));
    }
    if let OAuthError::TemporarilyUnavailable = e {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    response
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::OAuth(e) = &self {
            return oauth_response(e);
        }
        let (status, error, description) = match &self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
            WebError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error", Some("internal error".to_owned()))
            }
            WebError::OAuth(e) => (StatusCode::BAD_REQUEST, e.code(), e.description()),
        };
        let body = OAuthErrorBody { error: error.to_owned(), error_description: description };
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_no_store_json_answer_is_axum_s_json_with_no_store() {
        let body = serde_json::json!({ "active": true, "scope": "a ".repeat(700), "n": 1 });
        let ours = no_store_json(&body);
        let mut axum_s = Json(&body).into_response();
        no_store(&mut axum_s);
        assert_eq!(ours.status(), StatusCode::OK);
        assert_eq!(ours.headers(), axum_s.headers());
        let read = |r: Response| axum::body::to_bytes(r.into_body(), usize::MAX);
        assert_eq!(read(ours).await.unwrap(), read(axum_s).await.unwrap(), "past the first buffer too");
    }
}
