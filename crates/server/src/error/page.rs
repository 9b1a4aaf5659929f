//! The pages' error: what a person sees when a page cannot go on. It renders the message page
//! (with the pages' headers) and logs the cause of a failure on our side, so a handler says
//! `?` or `PageError::failed(e, "…")` instead of building the page and the log line itself.
//! An outage is 503 "Try again shortly" with `Retry-After`, never a page that looks like
//! "signed out".

use super::{Cause, Failure, RETRY_AFTER_SECS};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: &'static str,
    text: Cow<'static, str>,
    cause: Option<Cause>,
    retry_after: Option<i64>,
}

/// What a failed page says when its handler has nothing more precise.
const TRY_AGAIN: &str = "Something went wrong on our side. Try again shortly.";

impl PageError {
    /// Our side failed: 503 if the database is out of reach or overloaded, 500 otherwise;
    /// `text` says what could not be done.
    pub fn failed(e: impl Failure, text: &'static str) -> Self {
        PageError {
            status: StatusCode::OK,
            title: "Try again",
            text: Cow::Borrowed(text),
            cause: Some(Cause::of(e)),
            retry_after: None,
        }
    }

    /// [`PageError::failed`] for a failure already reduced to its [`Cause`].
    pub fn from_cause(cause: Cause, text: &'static str) -> Self {
        PageError {
            status: StatusCode::OK,
            title: "Try again",
            text: Cow::Borrowed(text),
            cause: Some(cause),
            retry_after: None,
        }
    }

    /// A page that refuses the request, with its own status, title and text; nothing is logged.
    pub fn refused(status: StatusCode, title: &'static str, text: impl Into<Cow<'static, str>>) -> Self {
        PageError { status, title, text: text.into(), cause: None, retry_after: None }
    }

    /// 503 with `Retry-After`: this node is too busy for the request now (not a failure).
    pub fn busy(wait: i64, text: &'static str) -> Self {
        PageError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            title: "Try again",
            text: Cow::Borrowed(text),
            cause: None,
            retry_after: Some(wait),
        }
    }

    /// 429 with `Retry-After`: a throttle said wait.
    pub fn too_many(wait: i64, text: impl Into<Cow<'static, str>>) -> Self {
        PageError {
            status: StatusCode::TOO_MANY_REQUESTS,
            title: "Try again later",
            text: text.into(),
            cause: None,
            retry_after: Some(wait),
        }
    }
}

impl From<postern_store::StoreError> for PageError {
    fn from(e: postern_store::StoreError) -> Self {
        PageError::failed(e, TRY_AGAIN)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self.cause {
            Some(cause) => cause.log("page"),
            None => self.status,
        };
        let mut r = crate::routes::pages::message(status, self.title, &self.text);
        let retry = match (self.retry_after, status) {
            (Some(wait), _) => Some(wait.to_string()),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(RETRY_AFTER_SECS.to_owned()),
            _ => None,
        };
        if let Some(v) = retry.and_then(|v| HeaderValue::from_str(&v).ok()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Cause;

    #[test]
    fn an_outage_is_503_with_retry_after_and_a_bug_is_500() {
        let mut outage = PageError::failed("x", "Your account could not be shown. Try again shortly.");
        outage.cause = Some(Cause { text: "pool timed out".into(), unavailable: true });
        let r = outage.into_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[header::RETRY_AFTER], RETRY_AFTER_SECS);
        assert!(r.headers().contains_key(header::CONTENT_SECURITY_POLICY), "a page like any other");
        let bug = PageError::failed("constraint", TRY_AGAIN).into_response();
        assert_eq!(bug.status(), 500);
        assert!(!bug.headers().contains_key(header::RETRY_AFTER));
        let wait = PageError::too_many(7, "Try again in 7 seconds.").into_response();
        assert_eq!(wait.status(), 429);
        assert_eq!(wait.headers()[header::RETRY_AFTER], "7");
    }
}
