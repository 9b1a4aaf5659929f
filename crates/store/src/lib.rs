//! Postern's storage: one SQL subset over SQLite (embedded default) and PostgreSQL (several
//! nodes sharing one database).
//!
//! Typed pools rather than sqlx's `Any` driver: every statement lives once in [`sql`] with
//! `$1…$n` placeholders, which both SQLite and PostgreSQL accept, and the [`on_db!`] macro
//! expands a method body once per backend. Timestamps are integer unix seconds passed in by the
//! caller; one-time artifacts are consumed with a single conditional `UPDATE … RETURNING`.
//! Methods are named for domain operations, not tables.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

/// Runs `$body` with `$p` bound to the backend's pool (`&SqlitePool` or `&PgPool`).
macro_rules! on_db {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite($p) => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` inside a write transaction bound to `$tx` (SQLite: after this process's other
/// writers, see [`Store::write_turn`], and with `BEGIN IMMEDIATE`, so writers queue on the lock
/// instead of failing on upgrade) and commits it. An early return
/// with `?` (or `return Err(…)`) drops the transaction, which rolls it back.
///
/// A connection whose transaction failed anywhere, `COMMIT` included, is closed rather than
/// returned to the pool: after a failed commit (a full disk, say) SQLite's connection can stay
/// inside the transaction, and sqlx would then refuse every later `BEGIN` on it ("non-zero
/// transaction depth") long after the disk has room again.
macro_rules! in_tx {
    ($store:expr, $tx:ident => $body:expr) => {
        match &$store.db {
            $crate::Db::Sqlite(pool) => {
                let _turn = $store.write_turn().await;
                tx_on!(pool, begin_with("BEGIN IMMEDIATE"), $tx => $body)
            }
            $crate::Db::Postgres(pool) => tx_on!(pool, begin(), $tx => $body),
        }
    };
}

/// One backend's arm of [`in_tx!`]: a pooled connection, the transaction begun with
/// `Connection::$begin`, and the connection closed if anything failed.
macro_rules! tx_on {
    ($pool:expr, $begin:ident($($arg:expr),*), $tx:ident => $body:expr) => {{
        let mut conn = $pool.acquire().await?;
        let outcome: $crate::Result<_> = async {
            let mut $tx = sqlx::Connection::$begin(&mut *conn $(, $arg)*).await?;
            let out = $body;
            $tx.commit().await?;
            Ok(out)
        }
        .await;
        if outcome.is_err() {
            conn.close_on_drop();
        }
        outcome?
    }};
}

/// Inside a transaction `$tx`: revokes the refresh family `$grant` and every access token
/// issued in it that may still be valid (JWTs onto the deny-list, opaque tokens deleted);
/// pushes the JWT ids put on the deny-list, with their expiry, onto `$revoked`.
macro_rules! revoke_family {
    ($tx:ident, $grant:expr, $now:expr, $revoked:expr) => {{
        sqlx::query($crate::sql::GRANT_REVOKE).bind($grant).bind($now).execute(&mut *$tx).await?;
        let issued: Vec<$crate::authorize::Issued> =
            sqlx::query_as($crate::sql::GRANT_ACCESS_TOKENS).bind($grant).bind($now).fetch_all(&mut *$tx).await?;
        for i in issued {
            if let (Some(jti), Some(exp)) = (&i.access_jti, i.access_expires_at) {
                sqlx::query($crate::sql::JWT_REVOKE).bind(jti).bind(exp).bind($now).execute(&mut *$tx).await?;
                $revoked.push((jti.clone(), exp));
            }
            if let Some(hash) = &i.access_token_hash {
                sqlx::query($crate::sql::ACCESS_TOKEN_DELETE).bind(hash).execute(&mut *$tx).await?;
            }
        }
    }};
}

/// Inside a transaction `$tx`: ends every session of user `$user` but the one whose hash is
/// `$keep` (empty: none kept) and revokes all their refresh families; evaluates to the JWT ids
/// put on the deny-list, with their expiry.
macro_rules! cut_off {
    ($tx:ident, $user:expr, $keep:expr, $now:expr) => {{
        sqlx::query($crate::sql::USER_SESSIONS_END).bind($user).bind($keep).execute(&mut *$tx).await?;
        let grants: Vec<String> =
            sqlx::query_scalar($crate::sql::USER_GRANTS_LIVE).bind($user).fetch_all(&mut *$tx).await?;
        let mut revoked: Vec<(String, i64)> = Vec::new();
        for grant in &grants {
            revoke_family!($tx, grant, $now, revoked);
        }
        revoked
    }};
}

/// Inside a transaction `$tx`: every JWT access token issued to user `$user` until `$now` is
/// refused until the longest access-token lifetime of any client has passed (a minute beyond,
/// for the leeway verifiers allow on `exp`); evaluates to that time.
macro_rules! refuse_subject {
    ($tx:ident, $user:expr, $now:expr) => {{
        let longest: i64 = sqlx::query_scalar($crate::sql::CLIENT_MAX_ACCESS_TTL).fetch_one(&mut *$tx).await?;
        let until = $now + longest + 60;
        sqlx::query($crate::sql::SUBJECT_REVOKE).bind($user).bind($now).bind(until).execute(&mut *$tx).await?;
        until
    }};
}

/// Inside a transaction `$tx`: redeems the code whose hash is `$hash` (bytes) at `$now` for the
/// [`authorize::Redemption`] `$r`, by one conditional update, and stores what it issues (the
/// opaque access token, the refresh family and its first token) if it won; evaluates to the
/// code's grant if it won. Run in a transaction of its own on PostgreSQL, and among the
/// group-commit writer's jobs on SQLite ([`batch`]).
macro_rules! redeem {
    ($tx:ident, $hash:expr, $now:expr, $r:expr) => {{
        let token_hash = $r.opaque_access.as_ref().map(|(h, _)| h.as_bytes().to_vec());
        let grant_id = $r.refresh.as_ref().map(|f| f.grant_id.as_str());
        let won: Option<$crate::CodeGrant> = sqlx::query_as($crate::sql::CODE_REDEEM)
            .bind($hash)
            .bind($now)
            .bind($r.access_jti)
            .bind(&token_hash)
            .bind($r.access_expires_at)
            .bind($r.client_id)
            .bind($r.redirect_uri)
            .bind($r.code_challenge)
            .bind(grant_id)
            .fetch_optional(&mut *$tx)
            .await?;
        if let (Some(g), Some((token, audience))) = (&won, &$r.opaque_access) {
            let record = $crate::AccessTokenRecord {
                client_id: g.client_id.clone(),
                user_id: Some(g.user_id.clone()),
                subject: g.user_id.to_string(),
                scope: g.scope.clone(),
                audience: (*audience).to_owned(),
                auth_time: Some(g.auth_time),
                issued_at: $now,
                expires_at: $r.access_expires_at,
                amr: g.amr.clone(),
            };
            $crate::tokens::insert_access(token, &record).execute(&mut *$tx).await?;
        }
        let family = $r.refresh.as_ref().filter(|_| won.as_ref().is_some_and(|g| $r.refresh_rule.issues_for(&g.scope)));
        if let (Some(g), Some(f)) = (&won, family) {
            sqlx::query($crate::sql::GRANT_INSERT)
                .bind(&f.grant_id)
                .bind(&g.client_id)
                .bind(&g.user_id)
                .bind(&g.scope)
                .bind(g.auth_time)
                .bind(&g.amr)
                .bind($now)
                .bind(f.expires_at)
                .bind(&f.audience)
                .execute(&mut *$tx)
                .await?;
            let first = $crate::refresh::NewRefresh {
                hash: f.token_hash,
                grant_id: &f.grant_id,
                scope: &g.scope,
                issued_at: $now,
                idle_expires_at: f.idle_expires_at.min(f.expires_at),
                access_jti: $r.access_jti,
                access_token_hash: $r.opaque_access.as_ref().map(|(h, _)| *h),
                access_expires_at: $r.access_expires_at,
            };
            $crate::refresh::insert_refresh(&first).execute(&mut *$tx).await?;
        }
        won
    }};
}

pub mod access;
pub mod apikeys;
pub mod audit;
pub mod authorize;
mod batch;
pub mod cleanup;
pub mod clients;
pub mod device;
pub mod email_links;
pub mod entitlements;
pub mod ids;
pub mod keys;
pub mod migrate;
pub mod passkeys;
mod readers;
pub mod refresh;
pub mod resources;
pub mod second_factors;
pub mod self_registered;
pub mod sessions;
pub mod setup;
pub mod sign_ins;
pub mod sql;
pub mod tokens;
pub mod users;

pub use access::{ConsentEntry, GrantEntry, SessionEntry};
pub use apikeys::{ApiKeyRecord, KeyOwner, KeyUse, NewApiKeyRow, RegisteredScope, ServiceAccount};
pub use audit::{AuditEvent, NewAuditEvent};
pub use authorize::{CodeGrant, CodeOutcome, Consent, Issued, NewCode, Redemption};
pub use clients::{Client, ClientPolicy, ClientUpdate, NewClient, RegisteredBy};
pub use device::{Decision, DeviceAuthorization, DeviceGrant, DeviceIssuance, DeviceStatus, NewDeviceAuthorization};
pub use email_links::{EmailChanged, EmailLink, LinkPurpose, NewEmailLink, Redeemed};
pub use entitlements::Entitlement;
pub use ids::{ClientId, UserId};
pub use keys::StoredKey;
pub use migrate::MigrationReport;
pub use passkeys::{Ceremony, NewPasskey, StoredPasskey};
pub use refresh::{NewFamily, NewRefresh, RefreshRecord, RefreshWithUser};
pub use resources::Resource;
pub use second_factors::TotpFactor;
pub use self_registered::RegistrationToken;
pub use sessions::{NewSession, Session};
pub use sign_ins::{NewSignIn, SignInRow};
pub use tokens::{AccessTokenRecord, NewAccessToken, RevokedJwt, RevokedSubject};
pub use users::{Disabled, NewUser, User};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the database schema is at version {database}, newer than this postern knows ({known}); upgrade postern")]
    SchemaTooNew { database: i64, known: i64 },
    #[error("unsupported database URL: expected sqlite://… or postgres://…")]
    UnsupportedUrl,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A read through [`readers`] (SQLite's hot point reads) failed.
    #[error("database error: {0}")]
    Read(#[from] rusqlite::Error),
}

impl StoreError {
    /// Whether the database is out of reach or overloaded rather than the request being wrong:
    /// no connection to be had in time, the connection lost, the server shutting down or
    /// refusing connections, a statement cancelled by its timeout, SQLite busy or its disk
    /// full. Callers answer 503 with `Retry-After` for these, never a bare 500.
    pub fn is_unavailable(&self) -> bool {
        if let StoreError::Read(e) = self {
            return e.sqlite_error_code().is_some_and(|c| {
                use rusqlite::ErrorCode::*;
                matches!(c, DatabaseBusy | DatabaseLocked | SystemIoFailure | DiskFull | CannotOpen)
            });
        }
        let StoreError::Database(e) = self else { return false };
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
                true
            }
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // PostgreSQL: connection exceptions (08…), operator intervention (57…, among
                // them a statement timeout), insufficient resources (53…). SQLite: BUSY (5),
                // LOCKED (6), IOERR (10), FULL (13) and their extended codes.
                code.starts_with("08")
                    || code.starts_with("57")
                    || code.starts_with("53")
                    || code.parse::<i64>().is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 10 | 13))
            }
            _ => false,
        }
    }

    /// Maps a unique-constraint violation to `Conflict(what)`, other errors unchanged.
    pub(crate) fn conflict_as(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Pool settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before the database counts as
    /// unavailable.
    pub acquire_timeout: Duration,
    /// PostgreSQL only: statements running longer are cancelled (a frozen server does not
    /// hold requests for the whole freeze).
    pub statement_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: Db,
    /// SQLite only: the group-commit writer for hot inserts ([`batch`]).
    pub(crate) writer: Option<batch::Writer>,
    /// SQLite only: the turn each write transaction of this process waits for ([`Store::write_turn`]).
    pub(crate) turn: Option<WriteTurn>,
    /// SQLite in a file only: the hot point reads, run in place ([`readers`]).
    pub(crate) readers: Option<std::sync::Arc<readers::Readers>>,
}

/// SQLite lets one writer in at a time. The write transactions of this process take turns on
/// this lock before they ask SQLite for its own: a writer that asks SQLite while another holds
/// the lock waits in SQLite's busy handler, which sleeps in steps of 1, 2, 5, 10, … up to 100
/// ms, so under load most of a write's time was sleep (issue 18: 737 refreshes a second, p99
/// 684 ms). Here a writer is woken the moment the previous one commits. Other processes (the
/// admin CLI) still meet SQLite's busy timeout.
pub(crate) type WriteTurn = std::sync::Arc<tokio::sync::Mutex<()>>;

impl Store {
    /// Opens a pool. SQLite files are created if missing and run in WAL mode with a busy
    /// timeout, foreign keys and `secure_delete` on.
    pub async fn connect(url: &str, options: PoolOptions) -> Result<Store> {
        match Backend::of_url(url).ok_or(StoreError::UnsupportedUrl)? {
            Backend::Sqlite => {
                let connect = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
                    // Deleted and overwritten content is zeroed, not left in free pages for a
                    // copy of the file to give away.
                    .pragma("secure_delete", "on")
                    // 1 MiB of page cache per connection instead of 2: the hot pages (the
                    // upper levels of the indexes) fit, the rest is in the system's cache.
                    .pragma("cache_size", "-1024");
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    // A connection to a local file does not go stale; pinging it before each
                    // use was a round trip to its worker thread per query (issue 18's profile).
                    .test_before_acquire(false)
                    .connect_with(connect.clone())
                    .await?;
                let turn = WriteTurn::default();
                let readers = readers::Readers::for_file(connect.get_filename()).map(std::sync::Arc::new);
                let writer = batch::Writer::start(connect, turn.clone());
                Ok(Store { db: Db::Sqlite(pool), writer: Some(writer), turn: Some(turn), readers })
            }
            Backend::Postgres => {
                let timeout_ms = options.statement_timeout.as_millis().to_string();
                let connect = PgConnectOptions::from_str(url)?.options([("statement_timeout", timeout_ms.as_str())]);
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Ok(Store { db: Db::Postgres(pool), writer: None, turn: None, readers: None })
            }
        }
    }

    /// Waits for this process's turn to write (SQLite; `None` at once on PostgreSQL, which
    /// takes concurrent writers). Held until the transaction has committed or rolled back.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.turn {
            Some(turn) => Some(turn.lock().await),
            None => None,
        }
    }

    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        on_db!(self, p => sqlx::query(sql::PING).execute(p).await.map(|_| ()))?;
        Ok(())
    }

    /// Whether a write transaction can be opened now (SQLite: the write lock can be taken;
    /// PostgreSQL: a transaction id can be assigned, which a read-only or frozen server
    /// cannot). Nothing is written.
    pub async fn can_write(&self) -> Result<()> {
        match &self.db {
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(sql::PING).execute(&mut *tx).await?;
                tx.rollback().await?;
            }
            Db::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(sql::PG_TXID).execute(&mut *tx).await?;
                tx.rollback().await?;
            }
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned (graceful shutdown).
    pub async fn close(&self) {
        on_db!(self, p => p.close().await)
    }

    /// Prepares every statement of [`sql::ALL`] against this (migrated) database and returns
    /// the names of those that fail with the error, so a test can prove the SQL is valid on
    /// both backends.
    pub async fn prepare_all_statements(&self) -> Vec<(&'static str, String)> {
        use sqlx::Executor;
        let mut failures = Vec::new();
        for (name, statement) in sql::ALL {
            let result = on_db!(self, p => p.prepare(statement).await.map(|_| ()));
            if let Err(e) = result {
                failures.push((*name, e.to_string()));
            }
        }
        failures
    }
}

/// Decodes a JSON list kept in a TEXT column.
pub(crate) fn json_list<T: serde::de::DeserializeOwned>(column: &'static str, text: &str) -> Result<Vec<T>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

/// Encodes a list for a TEXT column.
pub(crate) fn to_json_list<T: serde::Serialize>(items: &[T]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}
