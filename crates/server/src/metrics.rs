//! Prometheus metrics. Every request is counted and timed by method, route and status (by
//! `crate::edge`); the route is the matched route template (`/setup`, never the raw path), so
//! label cardinality stays bounded, and requests that match no route are counted as
//! `unmatched`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rustc_hash::FxHashMap;
use std::sync::RwLock;
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
    /// Each label set's counter and histogram, found in the families once and kept: a served
    /// request then costs one lookup with a cheap hash instead of two with SipHash.
    http_series: RwLock<FxHashMap<SeriesKey, HttpSeries>>,
    request_ids: RequestIds,
}

/// A label set by the addresses of its `&'static str`s (`intern` gives each route template
/// one): two keys for the same labels find the same series in the families, so the worst an
/// unshared string can do is take a second slot.
type SeriesKey = (usize, usize, usize, usize, u16);

struct HttpSeries {
    requests: Counter,
    duration: Histogram,
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
        Self {
            registry,
            http_requests,
            http_duration,
            device_events,
            email_events,
            http_series: RwLock::default(),
            request_ids: RequestIds::new(),
        }
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
    pub fn next_request_id(&self) -> RequestId {
        self.request_ids.next()
    }

    /// Counts a served request and records how long it took.
    pub fn observe(&self, labels: &HttpLabels, elapsed: std::time::Duration) {
        let key = (
            labels.method.as_ptr() as usize,
            labels.method.len(),
            labels.route.as_ptr() as usize,
            labels.route.len(),
            labels.status,
        );
        let seconds = elapsed.as_secs_f64();
        if let Some(series) = self.http_series.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            series.requests.inc();
            series.duration.observe(seconds);
            return;
        }
        let mut all = self.http_series.write().unwrap_or_else(|p| p.into_inner());
        // Bounded as the families are: routes are interned (at most 1,000), methods and
        // statuses are few.
        let series = all.entry(key).or_insert_with(|| HttpSeries {
            requests: self.http_requests.get_or_create(labels).clone(),
            duration: self.http_duration.get_or_create(labels).clone(),
        });
        series.requests.inc();
        series.duration.observe(seconds);
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
    prefix: u32,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        let mut bytes = [0u8; 4];
        rand_core::RngCore::fill_bytes(&mut postern_core::system::os_rng(), &mut bytes);
        Self { prefix: u32::from_be_bytes(bytes), next: AtomicU64::new(1) }
    }
    fn next(&self) -> RequestId {
        RequestId { prefix: self.prefix, n: self.next.fetch_add(1, Ordering::Relaxed) }
    }
}

/// One request's id, `d74463b6-000042`: written into the request's span and its
/// `x-request-id` header, never held as a `String`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    prefix: u32,
    n: u64,
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}-{:06}", self.prefix, self.n)
    }
}

impl RequestId {
    /// The id as a header value, formatted on the stack.
    pub fn header_value(&self) -> Option<axum::http::HeaderValue> {
        // 8 hex digits, a dash and at most 20 decimal digits.
        let mut buf = StackText { bytes: [0; 32], len: 0 };
        std::fmt::Write::write_fmt(&mut buf, format_args!("{self}")).ok()?;
        axum::http::HeaderValue::from_bytes(buf.bytes.get(..buf.len)?).ok()
    }
}

struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.bytes.get_mut(self.len..end).ok_or(std::fmt::Error)?.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::{HttpLabels, Metrics, RequestIds};
    use std::time::Duration;

    #[test]
    fn a_label_set_is_one_series_however_its_strings_are_held() {
        let metrics = Metrics::new();
        let labels = HttpLabels { method: "GET", route: "/healthz", status: 200 };
        metrics.observe(&labels, Duration::from_millis(1));
        metrics.observe(&labels, Duration::from_millis(3));
        // The same labels in strings of their own: the cache keeps a second key, the
        // families one series.
        let route: &'static str = Box::leak(String::from("/healthz").into_boxed_str());
        metrics.observe(&HttpLabels { route, ..labels }, Duration::from_millis(2));
        metrics.observe(&HttpLabels { status: 404, ..labels }, Duration::from_millis(2));
        let text = metrics.encode();
        let count = |series: &str| text.lines().find(|l| l.starts_with(series)).map(|l| l.rsplit(' ').next());
        let ok = r#"{method="GET",route="/healthz",status="200"}"#;
        assert_eq!(count(&format!("postern_http_requests_total{ok}")), Some(Some("3")), "{text}");
        assert_eq!(count(&format!("postern_http_request_duration_seconds_count{ok}")), Some(Some("3")), "{text}");
        let missing = r#"{method="GET",route="/healthz",status="404"}"#;
        assert_eq!(count(&format!("postern_http_requests_total{missing}")), Some(Some("1")), "{text}");
    }

    #[test]
    fn request_ids_read_the_same_in_the_log_and_the_header() {
        let ids = RequestIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        for id in [a, b] {
            let header = id.header_value().and_then(|v| v.to_str().ok().map(str::to_owned));
            assert_eq!(header, Some(id.to_string()));
        }
        assert!(a.to_string().ends_with("-000001"), "{a}");
    }
}
