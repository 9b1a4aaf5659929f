//! What every request passes through before and after its handler, in one layer: an id (sent
//! back as `x-request-id` and carried by the request's tracing span), the body limit
//! (`server.max_body_bytes`, 413), the timeout (`server.request_timeout_secs`, 408), the count
//! and latency by method, route and status, and a handler that always runs to its end.
//!
//! One hand-written layer rather than a stack of `from_fn` and tower-http layers: axum applies
//! `Router::layer` to every route, and each layer there clones the route's boxed service and
//! boxes a future of its own for every request. Issue 18's profile of the discovery document
//! found the five layers then in place cost a third of the request's CPU time.
//!
//! On a CPU where a bare handler costs 5 µs a request, even this layer's small costs showed
//! (discovery at 0.68–0.75 of the bare handler, 0.85–0.92 without the layer), so it does no work
//! a request does not need: the timeout's timer starts only when the handler first waits;
//! only a body of unknown length is wrapped to count its bytes (hyper holds a declared one to
//! its length); the id is formatted on the stack; each label set's metrics are found once.
//!
//! **Running to completion.** A handler dropped half-way could leave its database work
//! half-done: sqlx cannot always roll back a transaction whose `BEGIN` was cancelled, and the
//! pooled connection then refuses every later transaction (the benchmark harness found this
//! with clients that disconnect mid-exchange). The handler is polled in place, on the
//! connection's task; only when it is dropped before its end (the client went away, or the
//! timeout answered first) is it moved to a task of its own to finish there ([`Finish`]).

use crate::metrics::{HttpLabels, Metrics, RequestId};
use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

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

impl<S> tower::Service<Request> for EdgeService<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let metrics = self.edge.metrics.clone();
        let id = metrics.next_request_id();
        let method = crate::metrics::method_label(request.method());
        let route =
            request.extensions().get::<MatchedPath>().map_or("unmatched", |m| crate::metrics::intern(m.as_str()));
        let span = tracing::info_span!("request", id = %id, method = %method, path = %request.uri().path());
        let max_body = self.edge.max_body;
        let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let handler = if declared.is_some_and(|n| n > max_body as u64) {
            Handler::TooLarge
        } else {
            // A body whose length is known (declared, or none at all) cannot outgrow it: only
            // the others are counted as they are read.
            let known = HttpBody::size_hint(request.body()).upper().is_some_and(|n| n <= max_body as u64);
            let request = if known {
                request
            } else {
                request.map(|body| Body::new(http_body_util::Limited::new(body, max_body)))
            };
            // Called here, not in the future, so the service `poll_ready` readied answers it:
            // no clone of the route.
            Handler::Running(Finish(Some(Box::pin(self.inner.call(request)))))
        };
        EdgeFuture {
            handler,
            deadline: started + self.edge.timeout,
            timer: None,
            started,
            id,
            labels: HttpLabels { method, route, status: 0 },
            metrics,
            span,
        }
    }
}

/// What a request's handler is at.
enum Handler<F: Future<Output = Result<Response, Infallible>> + Send + 'static> {
    TooLarge,
    Running(Finish<F>),
    Answered,
}

/// A request on its way through the edge: its handler, polled in the request's span, and the
/// timeout. The timer is started only when the handler first has to wait, so a handler that
/// answers at once (the discovery document, a JWT introspected) never touches the runtime's
/// timer wheel.
pub struct EdgeFuture<F: Future<Output = Result<Response, Infallible>> + Send + 'static> {
    handler: Handler<F>,
    deadline: Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    started: Instant,
    id: RequestId,
    labels: HttpLabels,
    metrics: Arc<Metrics>,
    span: tracing::Span,
}

impl<F: Future<Output = Result<Response, Infallible>> + Send + 'static> Future for EdgeFuture<F> {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let _entered = this.span.enter();
        let mut response = match std::mem::replace(&mut this.handler, Handler::Answered) {
            Handler::TooLarge => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            Handler::Answered => return Poll::Ready(Ok(internal("a request was polled after it was answered"))),
            Handler::Running(mut handler) => match Pin::new(&mut handler).poll(cx) {
                Poll::Ready(response) => response,
                Poll::Pending => {
                    let deadline = tokio::time::Instant::from_std(this.deadline);
                    let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if timer.as_mut().poll(cx).is_pending() {
                        this.handler = Handler::Running(handler);
                        return Poll::Pending;
                    }
                    // Dropped unfinished, the handler goes on in a task of its own.
                    drop(handler);
                    StatusCode::REQUEST_TIMEOUT.into_response()
                }
            },
        };
        let elapsed = this.started.elapsed();
        let status = response.status().as_u16();
        this.metrics.observe(&HttpLabels { status, ..this.labels }, elapsed);
        tracing::debug!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, "served");
        if let Some(value) = this.id.header_value() {
            // Made at compile time: a name given as text is parsed and copied on each insert.
            response.headers_mut().insert(const { header::HeaderName::from_static("x-request-id") }, value);
        }
        Poll::Ready(Ok(response))
    }
}

/// A handler's future that, dropped unfinished, finishes in a task of its own. A panic in it
/// answers 500 rather than ending the connection's task.
struct Finish<F: Future<Output = Result<Response, Infallible>> + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future<Output = Result<Response, Infallible>> + Send + 'static> Future for Finish<F> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let Some(handler) = self.0.as_mut() else {
            return Poll::Ready(internal("a request handler was polled after it finished"));
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(response)) => {
                self.0 = None;
                Poll::Ready(response.unwrap_or_else(|never| match never {}))
            }
            Err(_) => {
                // A panicked future must not be polled again, nor finished elsewhere.
                self.0 = None;
                Poll::Ready(internal("a request handler panicked"))
            }
        }
    }
}

impl<F: Future<Output = Result<Response, Infallible>> + Send + 'static> Drop for Finish<F> {
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
        // Undeclared, the body's own length is checked; the extractor answers 413.
        let undeclared = Request::post("/echo").body(Body::from("a".repeat(17))).unwrap_or_default();
        assert_eq!(app.clone().oneshot(undeclared).await.unwrap_or_default().status(), 413);
        let fits = Request::post("/echo").body(Body::from("a".repeat(16))).unwrap_or_default();
        assert_eq!(app.clone().oneshot(fits).await.unwrap_or_default().status(), 200);
        // A body of unknown length (a chunked upload) is cut off as it is read.
        let streamed = Request::post("/echo").body(Body::new(Unsized(Some("a".repeat(17).into())))).unwrap_or_default();
        assert_eq!(app.clone().oneshot(streamed).await.unwrap_or_default().status(), 413);
        let fits = Request::post("/echo").body(Body::new(Unsized(Some("a".repeat(16).into())))).unwrap_or_default();
        let response = app.clone().oneshot(fits).await.unwrap_or_default();
        assert_eq!(response.status(), 200);
        let echoed = axum::body::to_bytes(response.into_body(), 64).await.unwrap_or_default();
        assert_eq!(echoed.len(), 16, "the whole body reached the handler");
        // Counted under the route template, and an unknown path as unmatched.
        assert_eq!(app.oneshot(get("/nowhere")).await.unwrap_or_default().status(), 404);
        let text = metrics.encode();
        assert!(text.contains(r#"method="POST",route="/echo",status="413""#), "{text}");
        assert!(text.contains(r#"method="GET",route="unmatched",status="404""#), "{text}");
    }

    /// A body that does not say how long it is, as a chunked upload's.
    struct Unsized(Option<axum::body::Bytes>);

    impl axum::body::HttpBody for Unsized {
        type Data = axum::body::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Ready(self.0.take().map(|data| Ok(hyper::body::Frame::data(data))))
        }
    }

    #[tokio::test]
    async fn each_response_carries_its_own_request_id() {
        let app = axum::Router::new()
            .route("/", axum::routing::get(|| async { "ok" }))
            .layer(edge(&Arc::new(Metrics::new()), Duration::from_secs(30)));
        let mut ids = Vec::new();
        for _ in 0..2 {
            let response = app.clone().oneshot(get("/")).await.unwrap_or_default();
            let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
            // Eight hex digits of the process, a dash, the request's number.
            let (prefix, number) = id.split_once('-').unwrap_or_default();
            assert!(prefix.len() == 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            assert!(number.len() >= 6 && number.bytes().all(|b| b.is_ascii_digit()), "{id}");
            ids.push(id.to_owned());
        }
        assert_ne!(ids[0], ids[1]);
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
