//! Point reads on SQLite, run by the thread that asks for them.
//!
//! sqlx runs each SQLite connection on a thread of its own: a query is a message to that
//! thread, its rows a message back, and the pool pings the connection (one more round trip)
//! each time it is handed back. For a read that finds one row by its key SQLite's own work is a
//! few microseconds; issue 18's profiles found the hand-offs around it (futex wake-ups and
//! context switches between the runtime's threads and sqlx's) were most of the cost: userinfo
//! spent 29 % of its samples in futex calls against 5 % in `sqlite3_step`.
//!
//! The reads on the token endpoints' paths (a refresh token with its family and user, the user
//! behind a token, a code's resources, an opaque token, a device code's authorization) and on
//! the authorization endpoint's (the sign-in session, the consent) therefore go through this
//! small set of rusqlite connections instead, used in place. Each is read-only (`query_only`),
//! keeps its prepared statements, and waits in an idle list between reads; one that failed is
//! closed rather than reused. In WAL mode a reader never waits for the writer, so a read blocks
//! the calling thread no longer than the statement runs (the busy timeout covers the rare
//! moments SQLite makes a reader wait, such as recovery after a crash). Its read transaction
//! ends with the read: the statement is reset when its rows are dropped.
//!
//! PostgreSQL, and an SQLite database in memory (which another connection cannot open), are
//! read through sqlx like everything else.

use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, Row, ToSql};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Idle connections kept (more may be open at once; those beyond are closed after their read).
const MAX_IDLE: usize = 8;

/// Placeholder names, by position: the statements are shared with sqlx and PostgreSQL, which
/// number their parameters `$1`, `$2`, …
const PLACEHOLDERS: [&str; 4] = ["$1", "$2", "$3", "$4"];

/// The read connections of one SQLite file.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the database file at `path`; `None` for a database in memory.
    pub(crate) fn for_file(path: &Path) -> Option<Readers> {
        let name = path.to_string_lossy();
        if name.is_empty() || name == ":memory:" || name.starts_with("file:") {
            return None;
        }
        Some(Readers { path: path.to_owned(), idle: Mutex::new(Vec::new()) })
    }

    /// Runs `sql` with `binds` (in the order of their `$n`) and maps its first row, if any.
    pub(crate) fn one<T>(
        &self,
        sql: &str,
        binds: &[&dyn ToSql],
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let conn = match self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(conn) => conn,
            None => self.open()?,
        };
        let answer = run(&conn, sql, binds, map);
        if answer.is_ok()
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(conn);
        }
        answer.map_err(StoreError::from)
    }

    fn open(&self) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Reads only; 1 MiB of page cache, as the pool's connections have.
        conn.execute_batch("PRAGMA query_only = ON; PRAGMA cache_size = -1024;")?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(conn)
    }

    /// How many connections wait idle (for tests).
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.len()).unwrap_or(0)
    }
}

fn run<T>(
    conn: &Connection,
    sql: &str,
    binds: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    if statement.parameter_count() != binds.len() {
        return Err(rusqlite::Error::InvalidParameterCount(binds.len(), statement.parameter_count()));
    }
    for (i, value) in binds.iter().enumerate() {
        // Bound by position only where the statement names them `$1`, `$2`, … in that order.
        let expected = PLACEHOLDERS.get(i).copied();
        if expected.is_none() || statement.parameter_name(i + 1) != expected {
            return Err(rusqlite::Error::InvalidParameterName(format!("parameter {} of {sql}", i + 1)));
        }
        statement.raw_bind_parameter(i + 1, value)?;
    }
    let mut rows = statement.raw_query();
    match rows.next()? {
        Some(row) => map(row).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database() -> (tempfile::TempDir, Readers) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("r.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO t VALUES ('a', 1), ('b', 2);")
            .expect("schema");
        let readers = Readers::for_file(&path).expect("a file");
        (dir, readers)
    }

    #[test]
    fn reads_a_row_by_its_placeholders_and_keeps_the_connection() {
        let (_dir, readers) = database();
        let v = readers.one("SELECT v FROM t WHERE k = $1", &[&"b"], |r| r.get::<_, i64>(0)).expect("read");
        assert_eq!(v, Some(2));
        assert_eq!(readers.one("SELECT v FROM t WHERE k = $1", &[&"z"], |r| r.get::<_, i64>(0)).expect("read"), None);
        assert_eq!(readers.idle_count(), 1);
    }

    #[test]
    fn refuses_placeholders_out_of_order_and_writes() {
        let (_dir, readers) = database();
        let swapped = readers.one("SELECT v FROM t WHERE k = $2 AND v = $1", &[&1, &"a"], |r| r.get::<_, i64>(0));
        assert!(swapped.is_err(), "{swapped:?}");
        let write = readers.one("DELETE FROM t WHERE k = $1 RETURNING v", &[&"a"], |r| r.get::<_, i64>(0));
        assert!(write.is_err(), "a reader must not write: {write:?}");
        // The failed connections were not kept; the row is still there.
        assert_eq!(readers.idle_count(), 0);
        assert_eq!(
            readers.one("SELECT v FROM t WHERE k = $1", &[&"a"], |r| r.get::<_, i64>(0)).expect("read"),
            Some(1)
        );
    }

    /// The rows read in place are mapped by position: each statement's columns must be, in
    /// order, those its mapper reads.
    #[tokio::test]
    async fn each_statement_read_in_place_has_the_columns_its_mapper_reads() {
        use crate::sql;
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("m.db");
        let store = crate::Store::connect(&format!("sqlite://{}", path.display()), crate::PoolOptions::default())
            .await
            .expect("connect");
        store.migrate(0).await.expect("migrate");
        let refresh_with_user: Vec<&str> =
            crate::RefreshRecord::SQLITE_COLUMNS.iter().chain(crate::User::SQLITE_COLUMNS.iter()).copied().collect();
        let expected: [(&str, Vec<&str>); 7] = [
            (sql::USER_COLUMNS_BY_ID, crate::User::SQLITE_COLUMNS.to_vec()),
            (sql::REFRESH_GET_WITH_USER, refresh_with_user),
            (sql::DEVICE_BY_DEVICE_CODE, crate::device::DeviceRow::SQLITE_COLUMNS.to_vec()),
            (sql::ACCESS_TOKEN_BY_HASH, crate::AccessTokenRecord::SQLITE_COLUMNS.to_vec()),
            (sql::CODE_RESOURCE, vec!["resource"]),
            (sql::SESSION_GET, crate::Session::SQLITE_COLUMNS.to_vec()),
            (sql::CONSENT_GET, vec!["scope", "resources"]),
        ];
        let conn = Connection::open(&path).expect("open");
        for (statement, columns) in expected {
            let prepared = conn.prepare(statement).expect("prepare");
            assert_eq!(prepared.column_names(), columns, "{statement}");
        }
        store.close().await;
    }

    #[test]
    fn a_database_in_memory_has_no_readers() {
        assert!(Readers::for_file(Path::new(":memory:")).is_none());
    }
}
