//! Recording what people did, from the pages and the use cases behind them. The audit log is
//! not on the request's critical path: a failure to record is logged, never shown.

use crate::routes::ClientMeta;
use crate::state::AppState;
use postern_store::NewAuditEvent;

/// Records `event` at the server's time; a failure is logged.
pub async fn record(state: &AppState, event: &NewAuditEvent<'_>) {
    if let Err(e) = state.store.record_audit(event, state.now()).await {
        tracing::error!(error = %e, action = event.action, "could not record an audit event");
    }
}

/// Records what `actor` (a user id, or `anonymous` before anyone signed in) did to `target`,
/// from the client `meta` describes.
pub async fn by(state: &AppState, meta: &ClientMeta, actor: &str, action: &str, target: &str) {
    let event = NewAuditEvent {
        actor,
        action,
        target: Some(target),
        ip: meta.ip.as_deref(),
        user_agent: meta.user_agent.as_deref(),
        outcome: "success",
        details: None,
    };
    record(state, &event).await;
}
