//! What can go wrong when logging in or using a session. The OAuth error codes of RFC 6749 §5.2
//! and RFC 8628 §3.5 keep their names; the two a user must tell apart at a glance (they said no,
//! they took too long) and the one that means "log in again" have variants of their own.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No session is stored for this issuer, client and profile.
    #[error("not logged in: run the login command first")]
    NotLoggedIn,
    /// The server refused the refresh token (`invalid_grant`: expired, revoked, or the user was
    /// removed). The stored session has been deleted; the user has to log in again.
    #[error("the session has ended ({0}); log in again")]
    SessionEnded(String),
    /// The user, or the server, said no (`access_denied`).
    #[error("access_denied: the login was denied{}", describe(.0))]
    AccessDenied(Option<String>),
    /// The device code expired before it was approved (`expired_token`), or the browser did not
    /// come back in time.
    #[error("expired_token: the login was not completed in time")]
    ExpiredToken,
    /// Any other OAuth error answer, by its RFC code.
    #[error("{code}{}", describe(.description))]
    OAuth { code: ErrorCode, description: Option<String> },
    /// The server could not be reached, or did not answer in time.
    #[error("cannot reach {url}: {message}")]
    Network { url: String, message: String },
    /// The server answered, but not as the protocol says (a 5xx, a body that is not the JSON
    /// expected, discovery for another issuer).
    #[error("unexpected answer from {url}: {message}")]
    Protocol { url: String, message: String },
    /// The answer reaching the loopback listener says it comes from another issuer (RFC 9207).
    #[error("the authorization response came from {got:?}, not {expected}: refused (mix-up attack?)")]
    IssuerMismatch { expected: String, got: Option<String> },
    /// No browser could be opened (no display, or the opener failed).
    #[error("cannot open a browser: {0}")]
    NoBrowser(String),
    /// The token store could not be read or written.
    #[error("token store: {0}")]
    Store(String),
    /// The issuer does not offer what this login needs (for example no device endpoint).
    #[error("{0}")]
    Unsupported(String),
}

fn describe(description: &Option<String>) -> String {
    description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

/// An OAuth error code (RFC 6749 §5.2, §4.1.2.1; RFC 8628 §3.5; RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    InvalidToken,
    /// A code this crate does not know, kept as sent.
    Other(String),
}

impl ErrorCode {
    pub fn parse(code: &str) -> Self {
        match code {
            "invalid_request" => Self::InvalidRequest,
            "invalid_client" => Self::InvalidClient,
            "invalid_grant" => Self::InvalidGrant,
            "unauthorized_client" => Self::UnauthorizedClient,
            "unsupported_grant_type" => Self::UnsupportedGrantType,
            "invalid_scope" => Self::InvalidScope,
            "access_denied" => Self::AccessDenied,
            "server_error" => Self::ServerError,
            "temporarily_unavailable" => Self::TemporarilyUnavailable,
            "authorization_pending" => Self::AuthorizationPending,
            "slow_down" => Self::SlowDown,
            "expired_token" => Self::ExpiredToken,
            "invalid_token" => Self::InvalidToken,
            other => Self::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidToken => "invalid_token",
            Self::Other(code) => code,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The error for an OAuth error answer, with the codes that have variants of their own
    /// mapped to them.
    pub(crate) fn oauth(code: &str, description: Option<String>) -> Self {
        match ErrorCode::parse(code) {
            ErrorCode::AccessDenied => Error::AccessDenied(description),
            ErrorCode::ExpiredToken => Error::ExpiredToken,
            code => Error::OAuth { code, description },
        }
    }

    /// The OAuth error code, when the server answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::OAuth { code, .. } => Some(code.clone()),
            Error::AccessDenied(_) => Some(ErrorCode::AccessDenied),
            Error::ExpiredToken => Some(ErrorCode::ExpiredToken),
            _ => None,
        }
    }

    pub(crate) fn network(url: &str, e: &reqwest::Error) -> Self {
        // reqwest's message names the URL with its query; ours names the endpoint only.
        let message = if e.is_timeout() { "timed out".to_owned() } else { root_cause(e) };
        Error::Network { url: url.to_owned(), message }
    }

    pub(crate) fn protocol(url: &str, message: impl Into<String>) -> Self {
        Error::Protocol { url: url.to_owned(), message: message.into() }
    }

    pub(crate) fn store(context: &str, e: impl fmt::Display) -> Self {
        Error::Store(format!("{context}: {e}"))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
