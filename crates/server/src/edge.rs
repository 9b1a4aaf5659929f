//! What every request passes through before and after its handler, in one layer: an id (sent
//! back as `x-request-id` and carried by the request's tracing span), the body limit
//! (`server.max_body_bytes`, 413), the timeout (`server.request_timeout_secs`, 408), the count
//! and latency by method, route and status, and a handler that always runs to its end.
//!
//! One hand-written layer rather than a stack of `from_fn` and tower-http layers: axum applies
//! `Router::layer` to every route, and each layer there clones the route's boxed service and
//! boxes a future of its own for every request. Issue 18's profile of the discovery document
//! found the five layers then in place cost a third of the request's CPU time; this one costs
//! two small allocations.
//!
//! **Running to completion.** A handler dropped half-way could leave its database work
//! half-done: sqlx cannot always roll back a transaction whose `BEGIN` was cancelled, and the
//! pooled connection then refuses every later transaction (the benchmark harness found this
//! with clients that disconnect mid-exchange). The handler is polled in place, on the
//! connection's task; only when it is dropped before its end (the client went away, or the
//! timeout answered first) is it moved to a task of its own to finish there ([`Finish`]).

use crate::metrics::{HttpLabels, Metrics};
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// The layer; `Router::layer(Edge::new(..))` puts it in front of every route and the fallback.
#[derive(Clone)]
pub struct Edge {
    metrics: Arc<Metrics>,
    timeout: Duration,
    max_body: usize,
}

impl Edge {
    pub fn new(metrics: Arc<Metrics>, timeout: Duration, max_body: usize) -> Self {
        Self { metrics, timeout, max_body }
    }
}

impl<S> tower::Layer<S> for Edge {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EdgeService { inner, edge: self.clone() }
    }
}

/// One route behind the [`Edge`].
#[derive(Clone)]
pub struct EdgeService<S> {
    inner: S,
    edge: Edge,
}

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl<S> tower::Service<Request> for EdgeService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Answer {
        let started = Instant::now();
        let metrics = self.edge.metrics.clone();
        let id = metrics.next_request_id();
        let method = crate::metrics::method_label(request.method());
        let route =
            request.extensions().get::<MatchedPath>().map_or("unmatched", |m| crate::metrics::intern(m.as_str()));
        let span = tracing::info_span!("request", id = %id, method = %method, path = %request.uri().path());
        let max_body = self.edge.max_body;
        let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        // The inner service was made ready by `poll_ready`; a fresh clone takes its place.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let handler = if declared.is_some_and(|n| n > max_body as u64) {
            None
        } else {
            let request = request.map(|body| Body::new(http_body_util::Limited::new(body, max_body)));
            let call = inner.call(request);
            Some(Finish(Some(Box::pin(async move {
                match call.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            }))))
        };
        let timeout = self.edge.timeout;
        Box::pin(
            async move {
                let mut response = match handler {
                    None => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
                    Some(handler) => match tokio::time::timeout(timeout, handler).await {
                        Ok(response) => response,
                        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
                    },
                };
                let elapsed = started.elapsed();
                let status = response.status().as_u16();
                metrics.observe(&HttpLabels { method, route, status }, elapsed);
                tracing::debug!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, "served");
                if let Ok(value) = HeaderValue::from_str(&id) {
                    response.headers_mut().insert("x-request-id", value);
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// A handler's future that, dropped unfinished, finishes in a task of its own. A panic in it
/// answers 500 rather than ending the connection's task.
struct Finish<F: Future<Output = Response> + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future<Output = Response> + Send + 'static> Future for Finish<F> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let Some(handler) = self.0.as_mut() else {
            return Poll::Ready(internal("a request handler was polled after it finished"));
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(response)) => {
                self.0 = None;
                Poll::Ready(response)
            }
            Err(_) => {
                // A panicked future must not be polled again, nor finished elsewhere.
                self.0 = None;
                Poll::Ready(internal("a request handler panicked"))
            }
        }
    }
}

impl<F: Future<Output = Response> + Send + 'static> Drop for Finish<F> {
    fn drop(&mut self) {
        if let Some(handler) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(handler);
        }
    }
}

fn internal(what: &str) -> Response {
    tracing::error!("{what}");
    crate::error::WebError::Internal(what.to_owned()).into_response()
}

#[cfg(test)]
mod tests {
    use super::Edge;
    use crate::metrics::Metrics;
    use axum::body::Body;
    use axum::http::Request;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::sync::oneshot;
    use tower::ServiceExt;

    fn edge(metrics: &Arc<Metrics>, timeout: Duration) -> Edge {
        Edge::new(metrics.clone(), timeout, 16)
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_handler_finishes_when_its_caller_goes_away() {
        let (started_tx, started) = oneshot::channel::<()>();
        let (release, release_rx) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel::<()>();
        let steps = Arc::new(Mutex::new(Some((started_tx, release_rx, done_tx))));
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(move || async move {
                    let Some((started_tx, release_rx, done_tx)) = steps.lock().ok().and_then(|mut s| s.take()) else {
                        return;
                    };
                    let _ = started_tx.send(());
                    let _ = release_rx.await;
                    let _ = done_tx.send(());
                }),
            )
            .layer(edge(&Arc::new(Metrics::new()), Duration::from_secs(30)));
        let call = tokio::spawn(app.oneshot(get("/")));
        started.await.ok();
        // The caller goes away mid-request; the handler is then allowed to go on.
        call.abort();
        assert!(call.await.is_err_and(|e| e.is_cancelled()));
        release.send(()).ok();
        let finished = tokio::time::timeout(Duration::from_secs(5), done).await;
        assert!(matches!(finished, Ok(Ok(()))), "the handler ran to its end");
    }

    #[tokio::test]
    async fn a_slow_handler_is_answered_408_and_still_finishes() {
        let (done_tx, done) = oneshot::channel::<()>();
        let done_tx = Arc::new(Mutex::new(Some(done_tx)));
        let app = axum::Router::new()
            .route(
                "/slow",
                axum::routing::get(move || async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Some(tx) = done_tx.lock().ok().and_then(|mut t| t.take()) {
                        let _ = tx.send(());
                    }
                }),
            )
            .layer(edge(&Arc::new(Metrics::new()), Duration::from_millis(20)));
        let response = app.oneshot(get("/slow")).await.unwrap_or_default();
        assert_eq!(response.status(), 408);
        assert!(response.headers().contains_key("x-request-id"));
        let finished = tokio::time::timeout(Duration::from_secs(5), done).await;
        assert!(matches!(finished, Ok(Ok(()))), "the handler ran to its end after the 408");
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_whether_declared_or_not() {
        let metrics = Arc::new(Metrics::new());
        let app = axum::Router::new()
            .route("/echo", axum::routing::post(|body: String| async move { body }))
            .layer(edge(&metrics, Duration::from_secs(30)));
        let declared = Request::post("/echo").header("content-length", "17").body(Body::from("a".repeat(17)));
        let response = app.clone().oneshot(declared.unwrap_or_default()).await.unwrap_or_default();
        assert_eq!(response.status(), 413, "refused from its Content-Length");
        // Without a length the body is cut off as it is read; the extractor answers 413.
        let streamed = Request::post("/echo").body(Body::from("a".repeat(17))).unwrap_or_default();
        assert_eq!(app.clone().oneshot(streamed).await.unwrap_or_default().status(), 413);
        let fits = Request::post("/echo").body(Body::from("a".repeat(16))).unwrap_or_default();
        assert_eq!(app.clone().oneshot(fits).await.unwrap_or_default().status(), 200);
        // Counted under the route template, and an unknown path as unmatched.
        assert_eq!(app.oneshot(get("/nowhere")).await.unwrap_or_default().status(), 404);
        let text = metrics.encode();
        assert!(text.contains(r#"method="POST",route="/echo",status="413""#), "{text}");
        assert!(text.contains(r#"method="GET",route="unmatched",status="404""#), "{text}");
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500() {
        #[allow(clippy::panic)]
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = axum::Router::new()
            .route("/boom", axum::routing::get(boom))
            .layer(edge(&Arc::new(Metrics::new()), Duration::from_secs(30)));
        let response = app.clone().oneshot(get("/boom")).await.unwrap_or_default();
        assert_eq!(response.status(), 500);
        assert_eq!(app.oneshot(get("/boom")).await.unwrap_or_default().status(), 500, "and the next request too");
    }
}
