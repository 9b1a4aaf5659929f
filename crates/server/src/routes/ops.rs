//! Operations endpoints: liveness, readiness, metrics.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::time::Duration;

/// The process is alive and serving HTTP.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The server can do its work: the database answers within two seconds.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    // Ready means a write could be made now, not only that a connection answers.
    match tokio::time::timeout(Duration::from_secs(2), state.store.can_write()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: database error");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database did not answer in time\n"),
    }
}

/// Prometheus exposition (OpenMetrics text).
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}
