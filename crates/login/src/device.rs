//! The device authorization grant from the device's side (RFC 8628): ask for a code, show it,
//! poll until the user has answered. Polling waits `interval` before each request, adds 5 s for
//! good on every `slow_down` (§3.5), backs off when the server cannot be reached, and stops at
//! `expires_in`. Dropping the future cancels it.

use crate::client::{Client, Tokens, read_json};
use crate::error::{Error, ErrorCode};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// What the user needs to approve the login elsewhere.
#[derive(Clone, Deserialize)]
pub struct DeviceAuthorization {
    device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    /// Seconds between polls; RFC 8628 §3.2 says 5 when the server does not say.
    #[serde(default = "default_interval")]
    pub interval: u64,
}

fn default_interval() -> u64 {
    5
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The longest wait between polls while the server cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The longest a device login waits, whatever `expires_in` the server gives.
const MAX_DEVICE_LIFETIME_SECS: u64 = 86_400;

/// When a device login gives up: `expires_in` from `now`, a day at most whatever the server
/// says (a huge value would overflow the clock).
fn deadline(now: Instant, expires_in: u64) -> Instant {
    let lifetime = Duration::from_secs(expires_in.min(MAX_DEVICE_LIFETIME_SECS));
    now.checked_add(lifetime).unwrap_or(now)
}

impl Client {
    /// Asks for a device code and user code (RFC 8628 §3.1).
    pub async fn start_device_login(&self, scopes: &[&str]) -> Result<DeviceAuthorization, Error> {
        let url =
            self.endpoint(self.metadata().device_authorization_endpoint.as_ref(), "device authorization endpoint")?;
        let scope = scopes.join(" ");
        let mut form = vec![("client_id", self.client_id())];
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let response = self.http().post(&url).form(&form).send().await.map_err(|e| Error::network(&url, &e))?;
        let mut device: DeviceAuthorization = read_json(&url, response).await?;
        // What is shown on a terminal carries no control characters (no escape sequences from
        // a hostile server).
        device.user_code = crate::printable(&device.user_code);
        device.verification_uri = crate::printable(&device.verification_uri);
        device.verification_uri_complete = device.verification_uri_complete.as_deref().map(crate::printable);
        Ok(device)
    }

    /// Polls the token endpoint until the user approves (tokens), denies
    /// ([`Error::AccessDenied`]) or the code expires ([`Error::ExpiredToken`]).
    pub async fn finish_device_login(&self, device: &DeviceAuthorization) -> Result<Tokens, Error> {
        let url = self.endpoint(self.metadata().token_endpoint.as_ref(), "token endpoint")?;
        let deadline = deadline(Instant::now(), device.expires_in);
        let mut pace = Pace::new(device.interval);
        loop {
            let wait = pace.wait;
            if Instant::now() + wait >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(Error::ExpiredToken);
            }
            tokio::time::sleep(wait).await;
            let form =
                [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", &device.device_code)];
            match self.token_request(&url, &form).await {
                Ok(tokens) => return Ok(tokens),
                Err(e) => pace.after(e)?,
            }
        }
    }
}

/// When to poll next (RFC 8628 §3.5).
struct Pace {
    /// The agreed interval: the server's, plus 5 s for every `slow_down`.
    interval: Duration,
    /// The wait before the next poll: the interval, or longer while the server is unreachable.
    wait: Duration,
}

impl Pace {
    fn new(interval_secs: u64) -> Self {
        let interval = Duration::from_secs(interval_secs.max(1));
        Self { interval, wait: interval }
    }

    /// Takes in a poll's error: keep polling (at what pace), or stop with the error.
    fn after(&mut self, error: Error) -> Result<(), Error> {
        match error {
            Error::OAuth { code: ErrorCode::AuthorizationPending, .. } => self.wait = self.interval,
            Error::OAuth { code: ErrorCode::SlowDown, .. } => {
                self.interval += Duration::from_secs(5);
                self.wait = self.interval;
            }
            Error::Network { url, message } => {
                // Back off while the server cannot be reached, then carry on at the agreed pace.
                tracing::warn!(%url, %message, "cannot reach the server; retrying");
                self.wait = (self.wait * 2).min(MAX_BACKOFF.max(self.interval));
            }
            e => return Err(e),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_huge_expires_in_is_clamped_not_a_panic() {
        let now = Instant::now();
        assert_eq!(super::deadline(now, u64::MAX), now + Duration::from_secs(86_400));
        assert_eq!(super::deadline(now, 600), now + Duration::from_secs(600));
    }

    use super::*;

    fn oauth(code: &str) -> Error {
        Error::oauth(code, None)
    }

    fn network() -> Error {
        Error::Network { url: "http://127.0.0.1:1/oauth/token".into(), message: "connection refused".into() }
    }

    #[test]
    fn slow_down_adds_five_seconds_for_good_and_outages_back_off() {
        let mut pace = Pace::new(2);
        assert_eq!(pace.wait, Duration::from_secs(2));
        pace.after(oauth("authorization_pending")).unwrap();
        assert_eq!(pace.wait, Duration::from_secs(2));
        pace.after(oauth("slow_down")).unwrap();
        assert_eq!(pace.wait, Duration::from_secs(7));
        pace.after(oauth("authorization_pending")).unwrap();
        assert_eq!(pace.wait, Duration::from_secs(7), "the slower pace stays");
        pace.after(oauth("slow_down")).unwrap();
        assert_eq!(pace.wait, Duration::from_secs(12));
        let waits: Vec<u64> = (0..4)
            .map(|_| {
                pace.after(network()).unwrap();
                pace.wait.as_secs()
            })
            .collect();
        assert_eq!(waits, [24, 48, 60, 60], "doubling, capped at a minute");
        pace.after(oauth("authorization_pending")).unwrap();
        assert_eq!(pace.wait, Duration::from_secs(12), "back to the agreed pace");
    }

    #[test]
    fn denial_expiry_and_other_errors_stop_polling() {
        let mut pace = Pace::new(0);
        assert_eq!(pace.wait, Duration::from_secs(1), "never faster than once a second");
        assert!(matches!(pace.after(oauth("access_denied")), Err(Error::AccessDenied(_))));
        assert!(matches!(pace.after(oauth("expired_token")), Err(Error::ExpiredToken)));
        let other = pace.after(oauth("invalid_grant"));
        assert!(matches!(other, Err(Error::OAuth { code: ErrorCode::InvalidGrant, .. })), "{other:?}");
    }
}
