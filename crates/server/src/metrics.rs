//! Prometheus metrics. Every request is counted and timed by method, route and status (by
//! `crate::edge`); the route is the matched route template (`/setup`, never the raw path), so
//! label cardinality stays bounded, and requests that match no route are counted as
//! `unmatched`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~4 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

/// The registry and the metrics Postern records.
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<HttpLabels, Histogram, fn() -> Histogram>,
    /// Device flow events: authorization, approval, denial, expired, slow_down, wrong_code.
    pub device_events: Family<EventLabels, Counter>,
    pub email_events: Family<EventLabels, Counter>,
    request_ids: RequestIds,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("postern");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        registry.register("http_requests", "HTTP requests served", http_requests.clone());
        registry.register("http_request_duration_seconds", "Time to serve an HTTP request", http_duration.clone());
        let device_events = Family::<EventLabels, Counter>::default();
        registry.register("device_events", "Device authorization grant events", device_events.clone());
        let email_events = Family::<EventLabels, Counter>::default();
        registry.register(
            "email_events",
            "Outgoing email: sent, logged, retried, failed, dropped",
            email_events.clone(),
        );
        Self { registry, http_requests, http_duration, device_events, email_events, request_ids: RequestIds::new() }
    }

    /// Counts what happened to an outgoing message.
    pub fn email_event(&self, event: &'static str) {
        self.email_events.get_or_create(&EventLabels { event }).inc();
    }

    /// How many outgoing messages had `event` happen to them so far.
    pub fn email_count(&self, event: &'static str) -> u64 {
        self.email_events.get_or_create(&EventLabels { event }).get()
    }

    /// Counts a device-flow event.
    pub fn device_event(&self, event: &'static str) {
        self.device_events.get_or_create(&EventLabels { event }).inc();
    }

    /// A new request id: unique enough to follow one request through the logs.
    pub fn next_request_id(&self) -> String {
        self.request_ids.next()
    }

    /// Counts a served request and records how long it took.
    pub fn observe(&self, labels: &HttpLabels, elapsed: std::time::Duration) {
        self.http_requests.get_or_create(labels).inc();
        self.http_duration.get_or_create(labels).observe(elapsed.as_secs_f64());
    }

    /// The registry, for later issues to add their domain counters at start-up.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Request ids: a random per-process prefix and a counter; unique enough to follow one request
/// through the logs, and free of any lock.
struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut bytes = [0u8; 4];
        rand_core::RngCore::fill_bytes(&mut postern_core::system::os_rng(), &mut bytes);
        Self { prefix: bytes.iter().map(|b| format!("{b:02x}")).collect(), next: AtomicU64::new(1) }
    }
    fn next(&self) -> String {
        format!("{}-{:06}", self.prefix, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// Route templates as `&'static str`, so labelling a request allocates nothing. The set is the
/// router's templates, so it is small and fixed; it is capped all the same.
pub(crate) fn intern(route: &str) -> &'static str {
    static ROUTES: std::sync::OnceLock<std::sync::RwLock<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let set = ROUTES.get_or_init(Default::default);
    if let Some(found) = set.read().unwrap_or_else(|p| p.into_inner()).get(route) {
        return found;
    }
    let mut set = set.write().unwrap_or_else(|p| p.into_inner());
    if set.len() >= 1000 {
        return "other";
    }
    let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}

pub(crate) fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
