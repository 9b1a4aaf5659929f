//! The audit log: who did what to what, from where, and how it ended.

use crate::{Result, Store, sql};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub outcome: String,
    pub details: Option<String>,
}

/// An event to record. `actor` names who acted (`cli`, `system`, `user:<id>`, `anonymous`).
#[derive(Debug, Clone, Default)]
pub struct NewAuditEvent<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub outcome: &'a str,
    pub details: Option<serde_json::Value>,
}

impl Store {
    pub async fn record_audit(&self, e: &NewAuditEvent<'_>, now: i64) -> Result<()> {
        let details = e.details.as_ref().map(|d| d.to_string());
        on_db!(self, p => sqlx::query(sql::AUDIT_INSERT)
            .bind(now).bind(e.actor).bind(e.action).bind(e.target).bind(e.ip).bind(e.user_agent).bind(e.outcome).bind(&details)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Newest first, at or after `since`, optionally of one action.
    pub async fn list_audit(&self, since: i64, action: Option<&str>, limit: i64) -> Result<Vec<AuditEvent>> {
        Ok(on_db!(self, p => sqlx::query_as(sql::AUDIT_LIST).bind(since).bind(action).bind(limit).fetch_all(p).await)?)
    }
}
