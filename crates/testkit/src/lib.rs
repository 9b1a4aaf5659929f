//! Test support shared by the crates' integration tests: a fresh database for every test, a
//! [`Visitor`] that plays a browser over HTTP, a real headless Chromium ([`browser`]), and an
//! application on another origin for it to be sent back to ([`client_app`]).
//!
//! SQLite databases live in a temporary directory removed on drop. PostgreSQL databases are
//! created in the cluster named by `POSTGRES_TEST_URL` (the test script starts a throwaway
//! cluster and sets it); each test gets its own database, so tests run in parallel. When the
//! variable is missing, PostgreSQL tests fail under `CI=true` and are skipped, loudly,
//! elsewhere.
// Test support, not product code: random database names may come from the thread RNG, and a
// test that cannot get its database should fail loudly.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod client_app;
pub mod proxy;
mod visitor;

pub use visitor::Visitor;

use rand::Rng;
use sqlx::Connection;

/// The environment variable naming a PostgreSQL server for tests (a maintenance database URL
/// such as `postgres://postgres@127.0.0.1:5432/postgres`).
pub const POSTGRES_ENV: &str = "POSTGRES_TEST_URL";

/// A fresh database. Keep it alive for the duration of the test.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
}

/// Which backends a test suite should run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// A fresh SQLite database file in a new temporary directory.
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("postern.db").display());
    TestDb { url, dir }
}

/// The PostgreSQL server URL, or `None` (with a line on stderr) when tests should skip it.
pub fn postgres_server() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{POSTGRES_ENV} is not set: under CI the PostgreSQL tests must run (use scripts/test)")
        }
        _ => {
            eprintln!("SKIPPED: PostgreSQL part of this test ({POSTGRES_ENV} not set; scripts/test sets it)");
            None
        }
    }
}

/// A fresh, empty PostgreSQL database, or `None` when PostgreSQL tests are skipped.
pub async fn postgres() -> Option<TestDb> {
    let server = postgres_server()?;
    let name = format!("postern_test_{:016x}", rand::thread_rng().r#gen::<u64>());
    let mut admin = sqlx::PgConnection::connect(&server).await.expect("connect to the test PostgreSQL server");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
    admin.close().await.ok();
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server.as_str(), String::new()),
    };
    let prefix = base.rsplit_once('/').map(|(p, _)| p).unwrap_or(base);
    let dir = tempfile::tempdir().expect("temporary directory");
    Some(TestDb { url: format!("{prefix}/{name}{query}"), dir })
}

/// A fresh database of the given kind (`None`: skipped PostgreSQL).
pub async fn fresh(kind: Kind) -> Option<TestDb> {
    match kind {
        Kind::Sqlite => Some(sqlite()),
        Kind::Postgres => postgres().await,
    }
}

/// How many token requests the server at `base` has answered with 200, from its `/metrics`.
pub async fn tokens_issued(base: &str) -> u64 {
    let metrics = reqwest::get(format!("{base}/metrics")).await.expect("metrics").text().await.expect("metrics text");
    let series = r#"postern_http_requests_total{method="POST",route="/oauth/token",status="200"} "#;
    metrics.lines().find_map(|l| l.strip_prefix(series)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// RFC 4648 base32 (a TOTP key as a page shows it, spaces ignored) back to bytes: the tests'
/// own decoder, independent of the server's encoder.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut buffer, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        let value = ALPHABET.find(c).unwrap_or_else(|| panic!("{c:?} is not base32"));
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}
