//! What every HTML page response shares: security headers, the message page, the `Origin`
//! check for forms.

use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use postern_pages::{MessagePage, render};

/// Pages that carry a secret in their URL or form are not cached, not framed, and not referred
/// to other sites. (`same-origin`, not `no-referrer`: with `no-referrer` browsers send
/// `Origin: null` on the page's own form, which the origin check would then refuse.)
pub fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    response
}

/// A unix time in RFC 3339: `2027-01-15T08:00:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A unix time for people: `2027-01-15 08:00 UTC`.
pub fn utc(unix: i64) -> String {
    let text = rfc3339(unix);
    format!("{} {} UTC", &text[..10], &text[11..16])
}

pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, render(&MessagePage { title, message: text }))
}

/// A state-changing request must come from our own pages: refuse a foreign `Origin` or a
/// cross-site fetch.
pub fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(origin) => origin == state.issuer_origin(),
        None => true,
    };
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    origin_ok && !matches!(site, Some("cross-site"))
}

/// Why a posted form was refused before its handler looked at it.
pub enum Refused {
    /// The body could not be read (400, 413 or 415, as the rejection says).
    Unreadable(StatusCode),
    /// Foreign `Origin`, or a missing or wrong CSRF token.
    Forged,
}

impl Refused {
    pub fn into_response(self) -> Response {
        match self {
            Refused::Unreadable(status) => {
                message(status, "Request refused", "The form could not be read. Open the page again.")
            }
            Refused::Forged => {
                message(StatusCode::FORBIDDEN, "Request refused", "This form has expired. Open the page again.")
            }
        }
    }
}

/// A form posted from our own page: readable, same origin, and carrying the CSRF token of this
/// browser (`csrf` picks it from the form).
pub fn checked_form<T>(
    state: &AppState,
    headers: &HeaderMap,
    form: Result<axum::Form<T>, axum::extract::rejection::FormRejection>,
    csrf: fn(&T) -> &str,
) -> Result<T, Refused> {
    let form = form.map_err(|r| Refused::Unreadable(r.status()))?.0;
    if !same_origin(state, headers) || !crate::session::csrf_ok(state, headers, csrf(&form)) {
        return Err(Refused::Forged);
    }
    Ok(form)
}
