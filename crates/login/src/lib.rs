//! Log a command-line tool in with Postern (or any OAuth 2.0 server with discovery), keep the
//! session, and call APIs with it.
//!
//! - **Logging in**: the browser flow of RFC 8252 (a loopback listener, S256 PKCE, `state` and
//!   `iss` checked) when a browser can be opened, the device flow of RFC 8628 otherwise (polling
//!   at the server's pace, `slow_down` honoured, denial and expiry told apart).
//! - **Keeping the session**: a [`TokenStore`]; [`FileStore`] by default (0600 file in a 0700
//!   directory, atomic writes, a corrupt file means logged out), [`MemoryStore`], and
//!   `KeyringStore` with the `keyring` feature.
//! - **Using it**: [`Session::access_token`] refreshes before expiry, [`Session::http`] refreshes
//!   and retries once on a 401, refreshes are shared within a process and take turns between
//!   processes, and a refresh token the server refuses logs the user out cleanly.
//!
//! ```no_run
//! use postern_login::{Client, FileStore, LoginOptions, Session};
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), postern_login::Error> {
//! let client = Client::discover("https://auth.example.org", "my-cli").await?;
//! let store = Arc::new(FileStore::for_app("my-cli")?);
//! let session = match Session::open(&client, store.clone(), "default").await? {
//!     Some(session) => session,
//!     None => {
//!         let options = LoginOptions { scopes: vec!["openid".into(), "offline_access".into()], ..Default::default() };
//!         let tokens = client.login(&options, |prompt| eprintln!("{prompt}")).await?;
//!         Session::start(&client, store, "default", tokens).await?
//!     }
//! };
//! let answer = session.http().get("https://api.example.org/projects").await?;
//! # Ok(()) }
//! ```
//!
//! The protocol is written here on `reqwest` rather than on the `oauth2` crate: the device
//! poller of `oauth2` 5 polls before the first interval, hides connection failures from the
//! caller and keeps its deadline on its own clock, and this crate needs RFC 9207's `iss` check
//! and the store's locking around every refresh anyway. Postern itself is tested against the
//! `oauth2` and `openidconnect` crates, so the wire format is checked independently of this code.

mod browser;
mod client;
mod device;
mod error;
mod http;
mod login;
mod session;
mod store;

pub use browser::{BrowserOptions, Opener, has_display, system_opener};
pub use client::{Client, Tokens};
pub use device::DeviceAuthorization;
pub use error::{Error, ErrorCode};
pub use http::AuthorizedHttp;
pub use login::{LoginOptions, Method, Prompt};
pub use session::{SKEW_SECS, Session};
#[cfg(feature = "keyring")]
pub use store::KeyringStore;
pub use store::{FileStore, MemoryStore, SessionKey, StoreLock, StoredSession, TokenStore};

/// This machine's clock, in Unix seconds. A client library has no injected clock: token expiry
/// is judged by the clock of the machine that uses the token.
#[allow(clippy::disallowed_methods)]
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// 32 random bytes from the OS, base64url: PKCE verifiers and `state` values. This crate stays
/// free of `postern-core`, so it reads the OS random source itself.
#[allow(clippy::disallowed_types)]
/// `text` without control characters (escape sequences included), for printing what a server
/// sent on a terminal.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

pub(crate) fn random_token() -> String {
    use base64::Engine;
    use rand_core::RngCore;
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets without stopping at the first difference.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_text_has_no_control_characters() {
        assert_eq!(super::printable("ABCD-EFGH\u{1b}]0;owned\u{7}\r\n"), "ABCD-EFGH]0;owned");
        assert_eq!(super::printable("Ann Émile"), "Ann Émile");
    }
}
