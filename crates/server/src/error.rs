//! One error type for the HTTP edge. It sets the status, sends a safe message in the
//! protocol's format (RFC 6749 §5.2 JSON for API endpoints), and logs the full cause; internal
//! details never reach the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use postern_proto::OAuthErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// Something went wrong on our side; the cause is logged, the client sees a generic line.
    #[error("internal error: {0}")]
    Internal(String),
}

impl WebError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<postern_store::StoreError> for WebError {
    fn from(e: postern_store::StoreError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, error, description) = match &self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "not_found", None),
            WebError::InvalidRequest(m) => (StatusCode::BAD_REQUEST, "invalid_request", Some(m.clone())),
            WebError::Forbidden(m) => (StatusCode::FORBIDDEN, "access_denied", Some((*m).to_owned())),
            WebError::Unavailable(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                Some((*m).to_owned()),
            ),
            WebError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    Some("internal error".to_owned()),
                )
            }
        };
        let body = OAuthErrorBody {
            error: error.to_owned(),
            error_description: description,
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        response
    }
}
