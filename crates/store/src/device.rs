//! Device authorizations (RFC 8628): created by the device, decided by the user on the
//! activation pages, consumed once by the polling device.

use crate::refresh::{NewFamily, NewRefresh, insert_refresh};
use crate::{AccessTokenRecord, ClientId, Result, Store, StoreError, UserId, sql};
use postern_core::oauth::RefreshRule;
use postern_core::secret::TokenHash;

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for its person.
    Pending,
    /// Approved; the next poll gets the tokens.
    Approved,
    Denied,
    /// Its tokens were issued.
    Consumed,
}

impl DeviceStatus {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Consumed => "consumed",
        }
    }
}

impl TryFrom<String> for DeviceStatus {
    type Error = StoreError;
    fn try_from(s: String) -> std::result::Result<Self, StoreError> {
        [DeviceStatus::Pending, DeviceStatus::Approved, DeviceStatus::Denied, DeviceStatus::Consumed]
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("device authorization status {s:?}")))
    }
}

/// A device authorization as the pages and the poller see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub client_id: ClientId,
    pub scope: String,
    pub status: DeviceStatus,
    pub created_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The resources the device asked for (space-separated; empty: none).
    pub resource: String,
}

/// [`DeviceAuthorization`] as stored, its status as text.
#[derive(sqlx::FromRow)]
pub(crate) struct DeviceRow {
    client_id: ClientId,
    scope: String,
    status: String,
    created_at: i64,
    expires_at: i64,
    ip: Option<String>,
    user_agent: Option<String>,
    resource: String,
}

impl DeviceRow {
    /// The columns [`DeviceRow::from_sqlite`] reads, in their order in the statement.
    // Read by the test that checks the statements against their mappers.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const SQLITE_COLUMNS: [&str; 8] =
        ["client_id", "scope", "status", "created_at", "expires_at", "ip", "user_agent", "resource"];

    /// The row of a read in place ([`crate::readers`]), by position ([`Self::SQLITE_COLUMNS`]).
    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceRow> {
        Ok(DeviceRow {
            client_id: ClientId::new(row.get::<_, String>(0)?),
            scope: row.get(1)?,
            status: row.get(2)?,
            created_at: row.get(3)?,
            expires_at: row.get(4)?,
            ip: row.get(5)?,
            user_agent: row.get(6)?,
            resource: row.get(7)?,
        })
    }
}

impl TryFrom<DeviceRow> for DeviceAuthorization {
    type Error = StoreError;
    fn try_from(r: DeviceRow) -> std::result::Result<Self, StoreError> {
        Ok(DeviceAuthorization {
            client_id: r.client_id,
            scope: r.scope,
            status: DeviceStatus::try_from(r.status)?,
            created_at: r.created_at,
            expires_at: r.expires_at,
            ip: r.ip,
            user_agent: r.user_agent,
            resource: r.resource,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewDeviceAuthorization<'a> {
    pub device_code: TokenHash,
    pub user_code: TokenHash,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub now: i64,
    pub expires_at: i64,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// The resources asked for (space-separated; empty: none).
    pub resource: &'a str,
}

/// The user's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'a> {
    Approve { user_id: &'a str, auth_time: i64, amr: &'a str },
    Deny { user_id: &'a str },
}

/// What an approved authorization grants, returned once, to the poll that consumes it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeviceGrant {
    pub user_id: Option<UserId>,
    pub scope: String,
    pub auth_time: Option<i64>,
    pub amr: Option<String>,
}

/// What consuming issues besides the access token: the access token's identifiers (recorded on
/// the refresh family) and the family to start.
#[derive(Debug, Clone)]
pub struct DeviceIssuance<'a> {
    pub access_jti: Option<&'a str>,
    pub access_token_hash: Option<TokenHash>,
    /// The audience of an opaque access token (stored with it).
    pub audience: &'a str,
    pub access_expires_at: i64,
    /// A refresh-token family to start, if the rule says so for the request's scope.
    pub refresh: Option<NewFamily>,
    pub refresh_rule: RefreshRule,
}

impl Store {
    /// Stores a new authorization; `Conflict` when the user code collides with a stored one
    /// (the caller draws another).
    pub async fn create_device_authorization(&self, d: &NewDeviceAuthorization<'_>) -> Result<()> {
        if let Some(writer) = &self.writer {
            let row = crate::batch::DeviceRow {
                device_code: d.device_code.0,
                user_code: d.user_code.0,
                client_id: d.client_id.to_owned(),
                scope: d.scope.to_owned(),
                now: d.now,
                expires_at: d.expires_at,
                ip: d.ip.map(str::to_owned),
                user_agent: d.user_agent.map(str::to_owned),
                resource: d.resource.to_owned(),
            };
            return writer.insert(crate::batch::Insert::Device(row)).await.map(|_| ());
        }
        on_db!(self, p => sqlx::query(sql::DEVICE_INSERT)
            .bind(d.device_code.as_bytes()).bind(d.user_code.as_bytes()).bind(d.client_id).bind(d.scope)
            .bind(d.now).bind(d.expires_at).bind(d.ip).bind(d.user_agent).bind(d.resource)
            .execute(p).await.map(|r| r.rows_affected()))
        .map_err(StoreError::conflict_as("user code"))?;
        Ok(())
    }

    /// The authorization a device polls with (a read: polling writes nothing).
    pub async fn device_authorization(&self, device_code: &TokenHash) -> Result<Option<DeviceAuthorization>> {
        if let Some(readers) = &self.readers {
            let row = readers.one(sql::DEVICE_BY_DEVICE_CODE, &[&device_code.as_bytes()], DeviceRow::from_sqlite)?;
            return row.map(DeviceAuthorization::try_from).transpose();
        }
        let row: Option<DeviceRow> = on_db!(self, p => sqlx::query_as(sql::DEVICE_BY_DEVICE_CODE).bind(device_code.as_bytes()).fetch_optional(p).await)?;
        row.map(DeviceAuthorization::try_from).transpose()
    }

    /// A pending, unexpired authorization by user code, for the confirmation page.
    pub async fn pending_device_authorization(
        &self,
        user_code: &TokenHash,
        now: i64,
    ) -> Result<Option<DeviceAuthorization>> {
        let row: Option<DeviceRow> = on_db!(self, p => sqlx::query_as(sql::DEVICE_PENDING_BY_USER_CODE)
            .bind(user_code.as_bytes()).bind(now).fetch_optional(p).await)?;
        row.map(DeviceAuthorization::try_from).transpose()
    }

    /// Records the user's decision on a pending authorization; `false` when it was no longer
    /// pending (decided elsewhere, expired).
    pub async fn decide_device_authorization(
        &self,
        user_code: &TokenHash,
        now: i64,
        decision: Decision<'_>,
    ) -> Result<bool> {
        let (status, user, auth_time, amr) = match decision {
            Decision::Approve { user_id, auth_time, amr } => {
                (DeviceStatus::Approved.as_str(), user_id, Some(auth_time), Some(amr))
            }
            Decision::Deny { user_id } => (DeviceStatus::Denied.as_str(), user_id, None, None),
        };
        let n = on_db!(self, p => sqlx::query(sql::DEVICE_DECIDE)
            .bind(user_code.as_bytes()).bind(now).bind(status).bind(user).bind(auth_time).bind(amr)
            .execute(p).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Consumes an approved authorization for `client_id`: of concurrent polls exactly one gets
    /// the grant. Starts the refresh family in the same transaction when the issuance's rule
    /// says so for the request's scope.
    pub async fn consume_device_authorization(
        &self,
        device_code: &TokenHash,
        client_id: &str,
        now: i64,
        issuance: &DeviceIssuance<'_>,
    ) -> Result<Option<DeviceGrant>> {
        let won = in_tx!(self, tx => {
            let won: Option<DeviceGrant> = sqlx::query_as(sql::DEVICE_CONSUME)
                .bind(device_code.as_bytes()).bind(now).bind(client_id)
                .fetch_optional(&mut *tx).await?;
            if let (Some(g), Some(token)) = (&won, &issuance.access_token_hash) {
                let user = g.user_id.clone().unwrap_or_default();
                let record = AccessTokenRecord {
                    client_id: ClientId::new(client_id),
                    subject: user.to_string(),
                    user_id: Some(user),
                    scope: g.scope.clone(),
                    audience: issuance.audience.to_owned(),
                    auth_time: g.auth_time,
                    issued_at: now,
                    expires_at: issuance.access_expires_at,
                    amr: g.amr.clone().unwrap_or_default(),
                };
                crate::tokens::insert_access(token, &record).execute(&mut *tx).await?;
            }
            let rule = issuance.refresh_rule;
            let family = issuance.refresh.as_ref().filter(|_| won.as_ref().is_some_and(|g| rule.issues_for(&g.scope)));
            if let (Some(g), Some(f), Some(user_id)) = (&won, family, won.as_ref().and_then(|g| g.user_id.as_deref())) {
                sqlx::query(sql::GRANT_INSERT)
                    .bind(&f.grant_id).bind(client_id).bind(user_id).bind(&g.scope).bind(g.auth_time.unwrap_or(now))
                    .bind(g.amr.as_deref().unwrap_or("pwd")).bind(now).bind(f.expires_at).bind(&f.audience)
                    .execute(&mut *tx).await?;
                let first = NewRefresh {
                    hash: f.token_hash,
                    grant_id: &f.grant_id,
                    scope: &g.scope,
                    issued_at: now,
                    idle_expires_at: f.idle_expires_at.min(f.expires_at),
                    access_jti: issuance.access_jti,
                    access_token_hash: issuance.access_token_hash,
                    access_expires_at: issuance.access_expires_at,
                };
                insert_refresh(&first).execute(&mut *tx).await?;
            }
            won
        });
        Ok(won)
    }
}
