//! Schema migrations: one folder per backend, embedded in the binary, applied in order inside
//! one transaction. PostgreSQL takes an advisory lock so that nodes starting together apply
//! each migration once; SQLite's `BEGIN IMMEDIATE` does the same. A database whose schema is
//! newer than the binary knows is refused, so an old node never writes to a newer schema.

use crate::{Backend, Db, Result, Store, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const fn m(version: i64, name: &'static str, sql: &'static str) -> Migration {
    Migration { version, name, sql }
}

const SQLITE: &[Migration] = &[
    m(1, "base", include_str!("../migrations/sqlite/0001_base.sql")),
    m(2, "access_tokens", include_str!("../migrations/sqlite/0002_access_tokens.sql")),
    m(3, "sign_in", include_str!("../migrations/sqlite/0003_sign_in.sql")),
    m(4, "refresh_tokens", include_str!("../migrations/sqlite/0004_refresh_tokens.sql")),
    m(5, "device_authorizations", include_str!("../migrations/sqlite/0005_device_authorizations.sql")),
    m(6, "api_keys", include_str!("../migrations/sqlite/0006_api_keys.sql")),
    m(7, "cut_off", include_str!("../migrations/sqlite/0007_cut_off.sql")),
    m(8, "entitlements", include_str!("../migrations/sqlite/0008_entitlements.sql")),
    m(9, "service_account_names", include_str!("../migrations/sqlite/0009_service_account_names.sql")),
    m(10, "sign_ins", include_str!("../migrations/sqlite/0010_sign_ins.sql")),
    m(11, "accounts", include_str!("../migrations/sqlite/0011_accounts.sql")),
    m(12, "second_factors", include_str!("../migrations/sqlite/0012_second_factors.sql")),
    m(13, "passkeys", include_str!("../migrations/sqlite/0013_passkeys.sql")),
    m(14, "access_token_amr", include_str!("../migrations/sqlite/0014_access_token_amr.sql")),
    m(15, "resources", include_str!("../migrations/sqlite/0015_resources.sql")),
    m(16, "bound_resources", include_str!("../migrations/sqlite/0016_bound_resources.sql")),
    m(17, "access_token_alg", include_str!("../migrations/sqlite/0017_access_token_alg.sql")),
    m(18, "api_key_audience", include_str!("../migrations/sqlite/0018_api_key_audience.sql")),
    m(19, "consent_resources", include_str!("../migrations/sqlite/0019_consent_resources.sql")),
    m(20, "self_registered_clients", include_str!("../migrations/sqlite/0020_self_registered_clients.sql")),
    m(21, "lean_refresh", include_str!("../migrations/sqlite/0021_lean_refresh.sql")),
    m(22, "bounded_refresh", include_str!("../migrations/sqlite/0022_bounded_refresh.sql")),
];

const POSTGRES: &[Migration] = &[
    m(1, "base", include_str!("../migrations/postgres/0001_base.sql")),
    m(2, "access_tokens", include_str!("../migrations/postgres/0002_access_tokens.sql")),
    m(3, "sign_in", include_str!("../migrations/postgres/0003_sign_in.sql")),
    m(4, "refresh_tokens", include_str!("../migrations/postgres/0004_refresh_tokens.sql")),
    m(5, "device_authorizations", include_str!("../migrations/postgres/0005_device_authorizations.sql")),
    m(6, "api_keys", include_str!("../migrations/postgres/0006_api_keys.sql")),
    m(7, "cut_off", include_str!("../migrations/postgres/0007_cut_off.sql")),
    m(8, "entitlements", include_str!("../migrations/postgres/0008_entitlements.sql")),
    m(9, "service_account_names", include_str!("../migrations/postgres/0009_service_account_names.sql")),
    m(10, "sign_ins", include_str!("../migrations/postgres/0010_sign_ins.sql")),
    m(11, "accounts", include_str!("../migrations/postgres/0011_accounts.sql")),
    m(12, "second_factors", include_str!("../migrations/postgres/0012_second_factors.sql")),
    m(13, "passkeys", include_str!("../migrations/postgres/0013_passkeys.sql")),
    m(14, "access_token_amr", include_str!("../migrations/postgres/0014_access_token_amr.sql")),
    m(15, "resources", include_str!("../migrations/postgres/0015_resources.sql")),
    m(16, "bound_resources", include_str!("../migrations/postgres/0016_bound_resources.sql")),
    m(17, "access_token_alg", include_str!("../migrations/postgres/0017_access_token_alg.sql")),
    m(18, "api_key_audience", include_str!("../migrations/postgres/0018_api_key_audience.sql")),
    m(19, "consent_resources", include_str!("../migrations/postgres/0019_consent_resources.sql")),
    m(20, "self_registered_clients", include_str!("../migrations/postgres/0020_self_registered_clients.sql")),
    m(21, "lean_refresh", include_str!("../migrations/postgres/0021_lean_refresh.sql")),
    m(22, "bounded_refresh", include_str!("../migrations/postgres/0022_bounded_refresh.sql")),
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS postern_migrations (
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";
const CURRENT: &str = "SELECT COALESCE(MAX(version), 0) FROM postern_migrations";
const RECORD: &str = "INSERT INTO postern_migrations (version, name, applied_at) VALUES ($1, $2, $3)";
/// Arbitrary constant naming Postern's migration lock among PostgreSQL advisory locks.
const PG_LOCK: &str = "SELECT pg_advisory_xact_lock(7303486517240817)";

/// What [`Store::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this call, in order (empty when the schema was already current).
    pub applied: Vec<i64>,
    /// The schema version now.
    pub version: i64,
}

fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

impl Store {
    /// The highest migration version this binary knows for this backend.
    pub fn known_schema_version(&self) -> i64 {
        migrations(self.backend()).iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Applies pending migrations. Refuses a schema newer than this binary knows.
    pub async fn migrate(&self, now: i64) -> Result<MigrationReport> {
        self.migrate_to(self.known_schema_version(), now).await
    }

    /// Applies pending migrations up to `target` only: what a database made by an older binary
    /// looks like, for tests of upgrades. Refuses a schema newer than this binary knows.
    pub async fn migrate_to(&self, target: i64, now: i64) -> Result<MigrationReport> {
        let known = self.known_schema_version();
        let list = migrations(self.backend()).iter().filter(|m| m.version <= target);
        let (applied, current) = in_tx!(self, tx => {
            if matches!(self.db, Db::Postgres(_)) {
                sqlx::query(PG_LOCK).execute(&mut *tx).await?;
            }
            sqlx::raw_sql(CREATE_TABLE).execute(&mut *tx).await?;
            let current: i64 = sqlx::query_scalar(CURRENT).fetch_one(&mut *tx).await?;
            if current > known {
                return Err(StoreError::SchemaTooNew { database: current, known });
            }
            let mut applied = Vec::new();
            for m in list.filter(|m| m.version > current) {
                tracing::info!(version = m.version, name = m.name, "applying migration");
                sqlx::raw_sql(m.sql).execute(&mut *tx).await?;
                sqlx::query(RECORD).bind(m.version).bind(m.name).bind(now).execute(&mut *tx).await?;
                applied.push(m.version);
            }
            (applied, current)
        });
        let version = applied.last().copied().unwrap_or(current);
        Ok(MigrationReport { applied, version })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_both_backends_agree() {
        for list in [SQLITE, POSTGRES] {
            assert!(list.windows(2).all(|w| w[0].version < w[1].version));
        }
        let v = |l: &[Migration]| l.iter().map(|m| (m.version, m.name)).collect::<Vec<_>>();
        assert_eq!(v(SQLITE), v(POSTGRES), "each migration exists for both backends");
    }
}
