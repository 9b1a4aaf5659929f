//! Rate limits on the anonymous requests that make the server store a row or send an email:
//! device authorizations, authorization requests kept waiting for a sign-in, sign-ins started,
//! registrations, reset or verification links, and clients registering themselves. Each is counted per client address (behind
//! trusted proxies, the forwarded one) and per client, per node (`limits.*` settings; 0 turns
//! one off); emails also per recipient address. Past a limit the answer is 429 with
//! `Retry-After`.

use crate::config::LimitsConfig;
use postern_core::rate::RateLimit;
use postern_core::throttle::{Policy, Throttle};
use std::sync::Mutex;

const CAPACITY: usize = 100_000;

#[derive(Debug)]
pub struct AnonymousWrites {
    devices_by_address: Mutex<RateLimit>,
    requests_by_address: Mutex<RateLimit>,
    by_client: Mutex<RateLimit>,
    emails_by_address: Mutex<RateLimit>,
    emails_by_recipient: Mutex<Throttle>,
    registrations_by_address: Mutex<RateLimit>,
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
            emails_by_address: Mutex::new(RateLimit::new(config.emails_per_address, CAPACITY)),
            emails_by_recipient: Mutex::new(Throttle::new(Policy::EMAIL, CAPACITY)),
            registrations_by_address: Mutex::new(RateLimit::new(config.client_registrations_per_address, CAPACITY)),
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

    /// A client registration (RFC 7591) from `address`.
    pub fn client_registration(&self, address: &str, now: i64) -> Result<(), i64> {
        hit(&self.registrations_by_address, address, now)
    }

    /// A client ID metadata document read for a request from `address`: counted like
    /// registrations, in a bucket of its own.
    pub fn document_read(&self, address: &str, now: i64) -> Result<(), i64> {
        hit(&self.registrations_by_address, &format!("document:{address}"), now)
    }

    /// A request from `address` that sends an email about `recipient` (a normalized email
    /// address, or any string the caller was given: the limit must not depend on whether an
    /// account exists).
    pub fn email(&self, address: &str, recipient: &str, now: i64) -> Result<(), i64> {
        hit(&self.emails_by_address, address, now)?;
        let mut recipients = self.emails_by_recipient.lock().unwrap_or_else(|p| p.into_inner());
        recipients.check(recipient, now)?;
        recipients.fail(recipient, now);
        Ok(())
    }
}
