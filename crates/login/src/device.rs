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
        read_json(&url, response).await
    }

    /// Polls the token endpoint until the user approves (tokens), denies
    /// ([`Error::AccessDenied`]) or the code expires ([`Error::ExpiredToken`]).
    pub async fn finish_device_login(&self, device: &DeviceAuthorization) -> Result<Tokens, Error> {
        let url = self.endpoint(self.metadata().token_endpoint.as_ref(), "token endpoint")?;
        let deadline = Instant::now() + Duration::from_secs(device.expires_in);
        let mut interval = Duration::from_secs(device.interval.max(1));
        let mut wait = interval;
        loop {
            if Instant::now() + wait >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(Error::ExpiredToken);
            }
            tokio::time::sleep(wait).await;
            let form =
                [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", &device.device_code)];
            match self.token_request(&url, &form).await {
                Ok(tokens) => return Ok(tokens),
                Err(Error::OAuth { code: ErrorCode::AuthorizationPending, .. }) => wait = interval,
                Err(Error::OAuth { code: ErrorCode::SlowDown, .. }) => {
                    interval += Duration::from_secs(5);
                    wait = interval;
                }
                Err(Error::Network { url, message }) => {
                    // §3.5: back off on connection trouble, then carry on at the agreed pace.
                    tracing::warn!(%url, %message, "cannot reach the server; retrying");
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
