//! Every request's count and latency, kept per thread and added up when `/metrics` is read.
//!
//! prometheus-client's `Counter` and `Histogram` are shared by every thread: each request
//! incremented one counter and took the histogram's write lock, so the cores took turns on the
//! same cache lines, and a lookup table in front of them took a shared read lock as well
//! (issue 18 measured about 0.15 µs a request of the discovery document's 9). Here each thread
//! writes to a shard of its own under a lock no other thread normally takes; a scrape locks
//! each shard in turn and merges the series by their labels.

use super::HttpLabels;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds: 0.5 ms, doubling to about 4 s. A last
/// bucket, `+Inf`, takes the rest.
const BOUNDS: usize = 14;

fn bounds() -> [f64; BOUNDS] {
    let mut bounds = [0.0005; BOUNDS];
    for i in 1..BOUNDS {
        bounds[i] = bounds[i - 1] * 2.0;
    }
    bounds
}

/// A label set by the addresses of its `&'static str`s (`intern` gives each route template
/// one), so finding a series hashes five integers. Two keys for the same labels (a string
/// not interned) are two series in a shard, merged by their labels at scrape time.
type SeriesKey = (usize, usize, usize, usize, u16);

fn key(labels: &HttpLabels) -> SeriesKey {
    (
        labels.method.as_ptr() as usize,
        labels.method.len(),
        labels.route.as_ptr() as usize,
        labels.route.len(),
        labels.status,
    )
}

#[derive(Debug, Clone)]
struct Series {
    labels: HttpLabels,
    count: u64,
    sum: f64,
    /// Not cumulative: each observation counts in the first bucket whose bound holds it.
    buckets: [u64; BOUNDS + 1],
}

impl Series {
    fn new(labels: HttpLabels) -> Self {
        Self { labels, count: 0, sum: 0.0, buckets: [0; BOUNDS + 1] }
    }

    fn add(&mut self, other: &Series) {
        self.count += other.count;
        self.sum += other.sum;
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
    }
}

/// One thread's series, on a cache line of its own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Shard(Mutex<FxHashMap<SeriesKey, Series>>);

/// The request counter and latency histogram by method, route and status.
#[derive(Debug)]
pub(super) struct HttpStats {
    shards: Box<[Shard]>,
    bounds: [f64; BOUNDS],
}

/// Which shard this thread writes to: threads take them in turn as they first record.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i)
}

impl HttpStats {
    /// Twice as many shards as cores, so the runtime's workers seldom share one.
    pub(super) fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        let shards = (2 * cores).clamp(4, 256);
        Self { shards: (0..shards).map(|_| Shard::default()).collect(), bounds: bounds() }
    }

    pub(super) fn observe(&self, labels: &HttpLabels, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = self.bounds.iter().position(|bound| seconds <= *bound).unwrap_or(BOUNDS);
        let Some(shard) = self.shards.get(shard_index() % self.shards.len()) else { return };
        let mut series = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded as the labels are: routes are interned (at most 1,000), methods and
        // statuses are few.
        let series = series.entry(key(labels)).or_insert_with(|| Series::new(*labels));
        series.count += 1;
        series.sum += seconds;
        if let Some(n) = series.buckets.get_mut(bucket) {
            *n += 1;
        }
    }

    /// Every shard's series, added up by label values, in label order.
    fn merged(&self) -> BTreeMap<(&'static str, &'static str, u16), Series> {
        let mut merged: BTreeMap<_, Series> = BTreeMap::new();
        for shard in &*self.shards {
            let series = shard.0.lock().unwrap_or_else(PoisonError::into_inner);
            for s in series.values() {
                let labels = (s.labels.route, s.labels.method, s.labels.status);
                merged.entry(labels).and_modify(|m| m.add(s)).or_insert_with(|| s.clone());
            }
        }
        merged
    }
}

/// What the registry encodes: `http_requests_total` and `http_request_duration_seconds`.
#[derive(Debug)]
pub(super) struct Scrape(pub(super) Arc<HttpStats>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let merged = self.0.merged();
        let mut requests =
            encoder.encode_descriptor("http_requests", "HTTP requests served.", None, MetricType::Counter)?;
        for series in merged.values() {
            requests.encode_family(&series.labels)?.encode_counter::<NoLabelSet, u64, u64>(&series.count, None)?;
        }
        let mut duration = encoder.encode_descriptor(
            "http_request_duration_seconds",
            "Time to serve an HTTP request.",
            None,
            MetricType::Histogram,
        )?;
        for series in merged.values() {
            let buckets: Vec<(f64, u64)> =
                self.0.bounds.iter().copied().chain([f64::MAX]).zip(series.buckets).collect();
            duration.encode_family(&series.labels)?.encode_histogram::<NoLabelSet>(
                series.sum,
                series.count,
                &buckets,
                None,
            )?;
        }
        Ok(())
    }
}
