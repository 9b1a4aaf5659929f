//! The tower layer: authenticate, optionally require a scope, hand the [`Principal`] on.

use crate::{Guard, GuardError, Principal};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// Made by [`Guard::layer`]; `.require_scope(…)` adds a scope every request must carry.
#[derive(Clone)]
pub struct GuardLayer {
    guard: Guard,
    scopes: Arc<[String]>,
}

impl GuardLayer {
    pub(crate) fn new(guard: Guard) -> Self {
        Self { guard, scopes: Arc::new([]) }
    }

    /// Every request must carry `scope` (403 `insufficient_scope` otherwise). May be called
    /// more than once; each scope is then required.
    pub fn require_scope(mut self, scope: impl Into<String>) -> Self {
        let mut scopes = self.scopes.to_vec();
        scopes.push(scope.into());
        self.scopes = scopes.into();
        self
    }
}

impl<S> tower::Layer<S> for GuardLayer {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService { inner, layer: self.clone() }
    }
}

#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    layer: GuardLayer,
}

impl<S> tower::Service<Request> for GuardService<S>
where
    S: tower::Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service that was polled ready is the one to call; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            // The body is not `Sync`, so only the head is borrowed across the check.
            let (mut parts, body) = request.into_parts();
            let checked = async {
                let principal: Principal = layer.guard.authenticate(&parts.headers).await?;
                for scope in layer.scopes.iter() {
                    principal.require(scope)?;
                }
                Ok::<_, GuardError>(principal)
            };
            let mut response = match checked.await {
                Ok(principal) => {
                    parts.extensions.insert(principal);
                    inner.call(Request::from_parts(parts, body)).await?
                }
                Err(e) => e.into_response(),
            };
            layer.guard.name_metadata(&mut response);
            Ok(response)
        })
    }
}
