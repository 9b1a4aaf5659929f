//! Postern's own pages (sign-in, sign-out, forgotten passwords, the account page, the device
//! pages, the first-admin setup), and what every HTML response shares: security headers, the
//! message page, the `Origin` check for forms. Errors on these pages are `crate::error::PageError`.

pub mod account;
pub mod account_access;
pub mod account_security;
pub mod activation;
pub mod invitation;
pub mod login;
pub mod logout;
pub mod passkeys;
pub mod password;
pub mod registration;
pub mod second_step;
pub mod setup;

use crate::state::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use postern_pages::{MessagePage, render};

/// Pages that carry a secret in their URL or form are not cached, not framed, and not referred
/// to other sites. (`same-origin`, not `no-referrer`: with `no-referrer` browsers send
/// `Origin: null` on the page's own form, which the origin check would then refuse.)
pub fn page(status: StatusCode, html: String) -> Response {
    page_with(status, html, &Policy::default())
}

/// What a page's `Content-Security-Policy` allows beyond the strict default: nothing loads but
/// inline styles, nothing frames the page, and forms post to our own origin only.
#[derive(Default)]
pub struct Policy<'a> {
    /// Scripts from our own origin (`script-src 'self'`), which may call our own origin
    /// (`connect-src 'self'`); no page runs inline scripts.
    pub own_scripts: bool,
    /// The client a form on this page ends at. Chromium and Safari check `form-action` against
    /// every hop of the redirect chain a form submission starts, so the sign-in form of an
    /// authorization request, the consent form and the logout confirmation, which all end
    /// with a redirect to the client, must name the client's origin too.
    pub form_target: Option<&'a FormTarget>,
}

/// The origin of a validated redirect URI, as a CSP source expression: `https://app.example.org`,
/// `http://127.0.0.1:53817`, or `com.example.app:` for a private-use scheme (RFC 8252 §7.1),
/// whose origin is opaque. Built only from a URI already checked against the client's
/// registration, and from the parsed URL, so it never holds `;`, `,`, quotes or spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormTarget(String);

impl FormTarget {
    pub fn of(redirect_uri: &str) -> Option<FormTarget> {
        let url = url::Url::parse(redirect_uri).ok()?;
        let source = match url.origin() {
            origin @ url::Origin::Tuple(..) => origin.ascii_serialization(),
            url::Origin::Opaque(_) => format!("{}:", url.scheme()),
        };
        source.bytes().all(|b| b.is_ascii_alphanumeric() || b".:/-+[]".contains(&b)).then_some(FormTarget(source))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The policy header: `default-src 'none'` and only what `policy` adds.
fn content_security_policy(policy: &Policy) -> HeaderValue {
    // The passkey script asks our own origin for WebAuthn options (fetch: connect-src).
    let script = if policy.own_scripts { "script-src 'self'; connect-src 'self'; " } else { "" };
    let target = policy.form_target.map(|t| format!(" {}", t.as_str())).unwrap_or_default();
    let value = format!(
        "default-src 'none'; {script}style-src 'unsafe-inline'; form-action 'self'{target}; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        )
    })
}

/// A page with the headers of [`page`] and the content security policy `policy` describes.
pub fn page_with(status: StatusCode, html: String, policy: &Policy) -> Response {
    let mut response = (status, Html(html)).into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CONTENT_SECURITY_POLICY, content_security_policy(policy));
    response
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

#[cfg(test)]
mod tests {
    use super::*;

    fn csp(policy: &Policy) -> String {
        content_security_policy(policy).to_str().unwrap_or_default().to_owned()
    }

    #[test]
    fn the_default_policy_stays_strict() {
        assert_eq!(
            csp(&Policy::default()),
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
        );
    }

    #[test]
    fn a_form_target_adds_only_the_clients_origin() {
        let cases = [
            ("https://app.example.org/cb?x=1", "https://app.example.org"),
            ("https://app.example.org:8443/cb", "https://app.example.org:8443"),
            ("http://127.0.0.1:53817/callback", "http://127.0.0.1:53817"),
            ("http://[::1]:40000/callback", "http://[::1]:40000"),
            ("com.example.app:/oauth", "com.example.app:"),
        ];
        for (uri, source) in cases {
            let target = FormTarget::of(uri);
            assert_eq!(target.as_ref().map(FormTarget::as_str), Some(source), "{uri}");
            let policy = Policy { own_scripts: false, form_target: target.as_ref() };
            assert!(csp(&policy).contains(&format!("form-action 'self' {source}; frame-ancestors")), "{uri}");
        }
        assert_eq!(FormTarget::of("not a url"), None);
    }

    #[test]
    fn own_scripts_add_script_src_and_connect_src_self() {
        let policy = Policy { own_scripts: true, form_target: None };
        assert!(csp(&policy).starts_with("default-src 'none'; script-src 'self'; connect-src 'self'; style-src"));
    }
}
