//! Prometheus metrics. Every request is counted and timed by method, route and status (by
//! `crate::edge`); the route is the matched route template (`/setup`, never the raw path), so
//! label cardinality stays bounded, and requests that match no route are counted as
//! `unmatched`.

use crate::per_thread::PerThread;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

mod http;

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

/// The registry and the metrics Postern records. Aligned, as [`crate::state::Shared`] is, away
/// from the `Arc` count each request writes.
#[repr(align(128))]
pub struct Metrics {
    registry: Registry,
    /// `http_requests_total` and `http_request_duration_seconds`, kept per thread.
    http: Arc<http::HttpStats>,
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
        let http = Arc::new(http::HttpStats::new());
        registry.register_collector(Box::new(http::Scrape(http.clone())));
        let device_events = Family::<EventLabels, Counter>::default();
        registry.register("device_events", "Device authorization grant events", device_events.clone());
        let email_events = Family::<EventLabels, Counter>::default();
        registry.register(
            "email_events",
            "Outgoing email: sent, logged, retried, failed, dropped",
            email_events.clone(),
        );
        Self { registry, http, device_events, email_events, request_ids: RequestIds::new() }
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
        self.http.observe(labels, elapsed);
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
/// through the logs. Each thread takes numbers from the shared counter a block at a time, so
/// a request does not write a cache line the other cores write too.
struct RequestIds {
    prefix: u32,
    next: AtomicU64,
    blocks: PerThread<Block>,
}

/// A thread's numbers: `next` up to, not including, `end`.
#[derive(Debug, Default)]
struct Block {
    next: u64,
    end: u64,
}

const BLOCK: u64 = 1024;

impl RequestIds {
    fn new() -> Self {
        let mut bytes = [0u8; 4];
        rand_core::RngCore::fill_bytes(&mut postern_core::system::os_rng(), &mut bytes);
        Self { prefix: u32::from_be_bytes(bytes), next: AtomicU64::new(1), blocks: PerThread::default() }
    }

    fn next(&self) -> RequestId {
        let n = self.blocks.with(|block| {
            if block.next == block.end {
                block.next = self.next.fetch_add(BLOCK, Ordering::Relaxed);
                block.end = block.next + BLOCK;
            }
            block.next += 1;
            block.next - 1
        });
        // Without this thread's block (a nested call), one number on its own.
        let n = n.unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed));
        RequestId { prefix: self.prefix, n }
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
        let mut buf = [0; ID_MAX];
        // Only ASCII digits, letters and a dash are written.
        f.write_str(std::str::from_utf8(self.write(&mut buf)).unwrap_or_default())
    }
}

/// 8 hex digits, a dash and at most 20 decimal digits.
const ID_MAX: usize = 29;

impl RequestId {
    /// The id as a header value, formatted on the stack.
    pub fn header_value(&self) -> Option<axum::http::HeaderValue> {
        let mut buf = [0; ID_MAX];
        axum::http::HeaderValue::from_bytes(self.write(&mut buf)).ok()
    }

    /// Writes `{prefix:08x}-{n:06}` into `buf` by hand: `core::fmt` was a tenth of the
    /// layer's own time.
    fn write<'b>(&self, buf: &'b mut [u8; ID_MAX]) -> &'b [u8] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, slot) in buf.iter_mut().take(8).enumerate() {
            *slot = HEX[((self.prefix >> (28 - 4 * i)) & 0xf) as usize];
        }
        buf[8] = b'-';
        let mut digits = [b'0'; 20];
        let (mut n, mut len) = (self.n, 0);
        while n > 0 || len < 6 {
            digits[19 - len] = b'0' + (n % 10) as u8;
            n /= 10;
            len += 1;
        }
        buf[9..9 + len].copy_from_slice(&digits[20 - len..]);
        &buf[..9 + len]
    }
}

/// Route templates as `&'static str`, so labelling a request allocates nothing. The set is the
/// router's templates, so it is small and fixed; it is capped all the same.
///
/// Each thread remembers the templates it has seen by their address (axum hands every request
/// of a route the same `Arc<str>`), checked against the text, so a request costs neither the
/// shared set's lock, which both cores would take turns on, nor hashing the text.
pub(crate) fn intern(route: &str) -> &'static str {
    thread_local! {
        static SEEN: std::cell::RefCell<rustc_hash::FxHashMap<(usize, usize), &'static str>> =
            Default::default();
    }
    let at = (route.as_ptr() as usize, route.len());
    if let Some(found) = SEEN.with_borrow(|seen| seen.get(&at).copied()).filter(|found| *found == route) {
        return found;
    }
    let found = intern_shared(route);
    SEEN.with_borrow_mut(|seen| {
        if seen.len() >= 1000 {
            seen.clear();
        }
        seen.insert(at, found);
    });
    found
}

fn intern_shared(route: &str) -> &'static str {
    static ROUTES: std::sync::OnceLock<std::sync::RwLock<std::collections::HashSet<&'static str>>> =
        std::sync::OnceLock::new();
    let set = ROUTES.get_or_init(Default::default);
    if let Some(found) = set.read().unwrap_or_else(|p| p.into_inner()).get(route) {
        return found;
    }
    let mut set = set.write().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = set.get(route) {
        return found;
    }
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
    use super::{HttpLabels, Metrics, RequestId, RequestIds};
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
    fn requests_recorded_on_many_threads_are_one_series_with_its_buckets() {
        let metrics = Metrics::new();
        let labels = HttpLabels { method: "POST", route: "/oauth/token", status: 200 };
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        metrics.observe(&labels, Duration::from_micros(1500));
                    }
                });
            }
        });
        metrics.observe(&labels, Duration::from_secs(60));
        let text = metrics.encode();
        let value = |series: &str| {
            text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')).and_then(|v| v.parse::<f64>().ok())
        };
        let set = r#"method="POST",route="/oauth/token",status="200""#;
        assert_eq!(value(&format!("postern_http_requests_total{{{set}}}")), Some(401.0), "{text}");
        assert_eq!(value(&format!("postern_http_request_duration_seconds_count{{{set}}}")), Some(401.0), "{text}");
        let sum = value(&format!("postern_http_request_duration_seconds_sum{{{set}}}")).unwrap_or_default();
        assert!((sum - 60.6).abs() < 1e-6, "{text}");
        // Cumulative, as Prometheus reads them: none by 1 ms, all but the minute by 2 ms.
        let bucket = |le: &str| value(&format!("postern_http_request_duration_seconds_bucket{{le=\"{le}\",{set}}}"));
        assert_eq!(bucket("0.001"), Some(0.0), "{text}");
        assert_eq!(bucket("0.002"), Some(400.0), "{text}");
        assert_eq!(bucket("4.096"), Some(400.0), "{text}");
        assert_eq!(bucket("+Inf"), Some(401.0), "{text}");
        assert!(text.contains("# TYPE postern_http_request_duration_seconds histogram"), "{text}");
        assert!(text.contains("# TYPE postern_http_requests counter"), "{text}");
    }

    #[test]
    fn request_ids_read_the_same_in_the_log_and_the_header() {
        let ids = RequestIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        // Other threads take other blocks of numbers.
        let elsewhere: Vec<RequestId> = std::thread::scope(|scope| {
            let threads: Vec<_> =
                (0..3).map(|_| scope.spawn(|| (0..1500).map(|_| ids.next()).collect::<Vec<_>>())).collect();
            threads.into_iter().flat_map(|t| t.join().unwrap_or_default()).collect()
        });
        let mut all: Vec<u64> = elsewhere.iter().chain([&a, &b]).map(|id| id.n).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 4502, "every id differs");
        for id in [a, b] {
            let header = id.header_value().and_then(|v| v.to_str().ok().map(str::to_owned));
            assert_eq!(header, Some(id.to_string()));
        }
        assert!(a.to_string().ends_with("-000001"), "{a}");
        for (prefix, n) in [(0, 0), (0xd744_63b6, 42), (u32::MAX, 999_999), (7, 1_000_000), (0x0abc_def0, u64::MAX)] {
            let id = RequestId { prefix, n };
            assert_eq!(id.to_string(), format!("{prefix:08x}-{n:06}"));
            assert_eq!(id.header_value().map(|v| v.as_bytes().to_vec()), Some(id.to_string().into_bytes()));
        }
    }
}
