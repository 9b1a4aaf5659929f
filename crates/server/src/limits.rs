//! Rate limits on the anonymous requests that make the server store a row: device
//! authorizations, authorization requests kept waiting for a sign-in, and sign-ins started. Each is counted per
//! client address (behind trusted proxies, the forwarded one) and per client, per node
//! (`limits.*` settings; 0 turns one off). Past a limit the answer is 429 with `Retry-After`.

use crate::config::LimitsConfig;
use postern_core::rate::RateLimit;
use std::sync::Mutex;

const CAPACITY: usize = 100_000;

#[derive(Debug)]
pub struct AnonymousWrites {
    devices_by_address: Mutex<RateLimit>,
    requests_by_address: Mutex<RateLimit>,
    by_client: Mutex<RateLimit>,
}

fn hit(limit: &Mutex<RateLimit>, key: &str, now: i64) -> Result<(), i64> {
    limit.lock().unwrap_or_else(|p| p.into_inner()).hit(key, now)
}

impl AnonymousWrites {
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            devices_by_address: Mutex::new(RateLimit::new(config.device_authorizations_per_address, CAPACITY)),
            requests_by_address: Mutex::new(RateLimit::new(config.authorization_requests_per_address, CAPACITY)),
            by_client: Mutex::new(RateLimit::new(config.per_client, CAPACITY)),
        }
    }

    /// A device authorization from `address` (a `ClientMeta::limit_key`) for `client_id`.
    pub fn device_authorization(&self, address: &str, client_id: &str, now: i64) -> Result<(), i64> {
        hit(&self.devices_by_address, address, now)?;
        hit(&self.by_client, &format!("device:{client_id}"), now)
    }

    /// A sign-in started for a waiting authorization request or device (a stored row too);
    /// counted per address like authorization requests, in a bucket of its own.
    pub fn sign_in(&self, address: &str, now: i64) -> Result<(), i64> {
        hit(&self.requests_by_address, &format!("sign-in:{address}"), now)
    }

    /// An authorization request about to be kept waiting for a sign-in or consent.
    pub fn authorization_request(&self, address: &str, client_id: &str, now: i64) -> Result<(), i64> {
        hit(&self.requests_by_address, address, now)?;
        hit(&self.by_client, &format!("authorize:{client_id}"), now)
    }
}
