//! What every handler can reach. A handle over one `Arc`: axum clones the state for every
//! extractor and middleware of every request, so a clone is one reference count, not one per
//! field.

use crate::config::Config;
use crate::keyring::KeyRing;
use crate::metrics::Metrics;
use crate::node::NodeState;
use postern_core::system::Clock;
use postern_store::Store;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The fields of [`AppState`].
///
/// Aligned to two cache lines so that none of them shares a line with the `Arc`'s reference
/// count, which every request writes from whichever core serves it: read beside it, each
/// field would be fetched from the other core's cache again.
#[derive(Debug)]
#[repr(align(128))]
pub struct Shared {
    pub store: Store,
    pub config: Arc<Config>,
    /// The issuer identifier, without a trailing slash.
    pub issuer: Arc<str>,
    pub clock: Arc<dyn Clock>,
    pub keys: KeyRing,
    pub metrics: Arc<Metrics>,
    /// The discovery document, serialized once at start (shared, never copied per request).
    pub discovery_json: axum::body::Bytes,
    /// What this node keeps for itself: caches, throttles, the password pool (see
    /// [`NodeState`] for what that means with several nodes).
    pub node: Arc<NodeState>,
    /// Outgoing email (queued; see `crate::mail`).
    pub mail: crate::mail::Outbox,
    /// The WebAuthn relying party; `None` when the issuer is not a domain name (no passkeys).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The time in milliseconds, for [`BearerSecret::generate_ordered`](postern_core::secret::BearerSecret::generate_ordered).
    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// The emails this server sends, with links to its pages.
    pub fn letters(&self) -> crate::letters::Sender {
        crate::letters::Sender::new(&self.issuer)
    }

    /// The issuer's origin (`scheme://host[:port]`), for `Origin` checks.
    pub fn issuer_origin(&self) -> String {
        url::Url::parse(&self.issuer).map(|u| u.origin().ascii_serialization()).unwrap_or_default()
    }
}

impl axum::extract::FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}
