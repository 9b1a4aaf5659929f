//! `postern admin audit`

use super::Ctx;
use crate::output::{emit, table, time};
use serde_json::json;

pub async fn run(
    ctx: &Ctx,
    since: Option<std::time::Duration>,
    action: Option<String>,
    limit: i64,
) -> anyhow::Result<()> {
    let since = since.map_or(0, |d| ctx.now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    let events = ctx.store.list_audit(since, action.as_deref(), limit.clamp(1, 100_000)).await?;
    let value = json!(
        events
            .iter()
            .map(|e| {
                let details: serde_json::Value =
                    e.details.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or(serde_json::Value::Null);
                json!({
                    "id": e.id, "at": e.at, "actor": e.actor, "action": e.action, "target": e.target,
                    "ip": e.ip, "user_agent": e.user_agent, "outcome": e.outcome, "details": details,
                })
            })
            .collect::<Vec<_>>()
    );
    emit(ctx.json, &value, || {
        let rows: Vec<Vec<String>> = events
            .iter()
            .map(|e| {
                vec![
                    time(e.at),
                    e.actor.clone(),
                    e.action.clone(),
                    e.target.clone().unwrap_or_default(),
                    e.outcome.clone(),
                    e.ip.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(&["TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "IP"], &rows)
    });
    Ok(())
}
