//! Prometheus metrics and the middleware that observes every request.
//!
//! The outer middleware gives each request an id (sent back as `x-request-id` and carried by
//! its tracing span), then counts it and records its latency by method, route and status. The
//! route is the matched route template (`/setup`, never the raw path), tagged onto the
//! response by a small inner layer, so label cardinality stays bounded; requests that match no
//! route are counted as `unmatched`.

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::Instrument;

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

/// The route a request matched, carried from the inner layer to the outer one.
#[derive(Clone)]
struct RouteLabel(&'static str);

/// Route templates as `&'static str`, so labelling a request allocates nothing. The set is the
/// router's templates, so it is small and fixed; it is capped all the same.
fn intern(route: &str) -> &'static str {
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

fn method_label(method: &axum::http::Method) -> &'static str {
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

/// Inner layer (`route_layer`): tags the response with the matched route template.
pub async fn tag_route(matched: MatchedPath, req: Request, next: Next) -> Response {
    let route = RouteLabel(intern(matched.as_str()));
    let mut response = next.run(req).await;
    response.extensions_mut().insert(route);
    response
}

/// Outer layer: request id, span, count and latency.
pub async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let id = metrics.request_ids.next();
    let method = method_label(req.method());
    let span = tracing::info_span!("request", id = %id, method = %method, path = %req.uri().path());
    let mut response = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let route = response.extensions().get::<RouteLabel>().map_or("unmatched", |r| r.0);
    let status = response.status().as_u16();
    let labels = HttpLabels { method, route, status };
    metrics.http_requests.get_or_create(&labels).inc();
    metrics.http_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
    span.in_scope(|| tracing::debug!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, "served"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
