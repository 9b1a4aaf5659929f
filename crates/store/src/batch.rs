//! Group commit for SQLite inserts on hot endpoints (device authorizations, opaque access
//! tokens).
//!
//! SQLite has one writer: with one committed `INSERT` per request, callers queue on the write
//! lock and an insert-heavy endpoint stops at a few thousand requests per second. Instead,
//! concurrent inserts are handed to one writer task, which takes every insert already waiting
//! (up to [`MAX_BATCH`]), writes them with one multi-row `INSERT … ON CONFLICT DO NOTHING
//! RETURNING` per table inside one transaction, commits once, and only then answers each
//! caller: what a caller is told was stored is committed. A row that hits a unique constraint
//! (a colliding user code) is answered `Conflict` without failing its neighbours; if a batch
//! fails as a whole (say, a client deleted meanwhile breaks a foreign key), each of its rows is
//! retried on its own so only the faulty one fails.
//!
//! PostgreSQL takes concurrent writers well and is written directly, one statement per row.

use crate::{Result, StoreError};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, QueryBuilder, Row};
use std::collections::HashSet;
use tokio::sync::{mpsc, oneshot};

/// The most rows one batch takes (SQLite allows 32,766 bound parameters per statement; a
/// row binds at most 9).
pub(crate) const MAX_BATCH: usize = 256;

/// A new device authorization, owned so it can travel to the writer task.
#[derive(Debug, Clone)]
pub(crate) struct DeviceRow {
    pub device_code: [u8; 32],
    pub user_code: [u8; 32],
    pub client_id: String,
    pub scope: String,
    pub now: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub resource: String,
}

/// A new opaque access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessRow {
    pub hash: [u8; 32],
    pub record: crate::AccessTokenRecord,
}

#[derive(Debug)]
pub(crate) enum Insert {
    Device(DeviceRow),
    Access(AccessRow),
}

impl Insert {
    fn key(&self) -> [u8; 32] {
        match self {
            Insert::Device(d) => d.device_code,
            Insert::Access(a) => a.hash,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Insert::Device(_) => "user code",
            Insert::Access(_) => "access token",
        }
    }
}

struct Job {
    insert: Insert,
    done: oneshot::Sender<Result<()>>,
}

/// The sending side of the writer task; the task ends when the last sender is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task on the current Tokio runtime.
    pub(crate) fn start(options: SqliteConnectOptions, turn: crate::WriteTurn) -> Writer {
        let (jobs, receiver) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(options, receiver, turn));
        Writer { jobs }
    }

    /// Queues one insert and waits until its batch is committed. `Conflict` when a unique
    /// constraint refused the row.
    pub(crate) async fn insert(&self, insert: Insert) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.jobs.send(Job { insert, done }).await.map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answer.await.map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?
    }
}

async fn run(options: SqliteConnectOptions, mut receiver: mpsc::Receiver<Job>, turn: crate::WriteTurn) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    // A connection of its own, outside the pool (so the pool keeps its size), kept open: its
    // page cache stays warm, where a pooled connection would find its cache invalidated by the
    // others' writes. Reopened after an error.
    let mut held: Option<SqliteConnection> = None;
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut conn = match held.take() {
            Some(c) => c,
            None => match writer_connection(&options).await {
                Ok(c) => c,
                Err(e) => {
                    let message = e.to_string();
                    for job in batch.drain(..) {
                        let _ = job.done.send(Err(StoreError::Database(sqlx::Error::Protocol(message.clone()))));
                    }
                    continue;
                }
            },
        };
        // The batch's transaction takes its turn with the store's other writers.
        let my_turn = turn.lock().await;
        let written = write_batch(&mut conn, &batch).await;
        drop(my_turn);
        match written {
            Ok(inserted) => {
                held = Some(conn);
                for job in batch.drain(..) {
                    let answer = if inserted.contains(&job.insert.key()) {
                        Ok(())
                    } else {
                        Err(StoreError::Conflict(job.insert.what()))
                    };
                    let _ = job.done.send(answer);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, rows = batch.len(), "batched insert failed; retrying row by row");
                for job in batch.drain(..) {
                    let my_turn = turn.lock().await;
                    let answer = write_one(&mut conn, &job.insert).await;
                    drop(my_turn);
                    let _ = job.done.send(answer);
                }
            }
        }
    }
}

/// Opens the writer's connection. Measured under load (BENCHMARKS.md, device flow): a multi-row
/// insert needs a statement journal, which by default spills to a temporary file (open, write,
/// unlink per batch), hence `temp_store = MEMORY`; a larger page cache (8 MiB) keeps the
/// indexes' pages; checkpoints every 8,192 WAL pages (32 MiB) instead of 1,000 cost fewer fsyncs.
async fn writer_connection(options: &SqliteConnectOptions) -> Result<SqliteConnection> {
    let mut conn = SqliteConnection::connect_with(options).await?;
    sqlx::query("PRAGMA cache_size = -8192").execute(&mut conn).await?;
    sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut conn).await?;
    sqlx::query("PRAGMA wal_autocheckpoint = 8192").execute(&mut conn).await?;
    Ok(conn)
}

/// Writes a batch in one transaction; returns the keys of the rows actually inserted.
async fn write_batch(conn: &mut SqliteConnection, batch: &[Job]) -> Result<HashSet<[u8; 32]>> {
    let devices: Vec<&DeviceRow> =
        batch.iter().filter_map(|j| if let Insert::Device(d) = &j.insert { Some(d) } else { None }).collect();
    let tokens: Vec<&AccessRow> =
        batch.iter().filter_map(|j| if let Insert::Access(a) = &j.insert { Some(a) } else { None }).collect();
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut inserted = HashSet::with_capacity(batch.len());
    if !devices.is_empty() {
        let rows = device_insert(&devices).build().fetch_all(&mut *tx).await?;
        collect_keys(&rows, &mut inserted)?;
    }
    if !tokens.is_empty() {
        let rows = access_insert(&tokens).build().fetch_all(&mut *tx).await?;
        collect_keys(&rows, &mut inserted)?;
    }
    tx.commit().await?;
    Ok(inserted)
}

async fn write_one(conn: &mut SqliteConnection, insert: &Insert) -> Result<()> {
    let mut query = match insert {
        Insert::Device(d) => device_insert(&[d]),
        Insert::Access(a) => access_insert(&[a]),
    };
    let rows = query.build().fetch_all(conn).await?;
    if rows.is_empty() { Err(StoreError::Conflict(insert.what())) } else { Ok(()) }
}

fn collect_keys(rows: &[sqlx::sqlite::SqliteRow], into: &mut HashSet<[u8; 32]>) -> Result<()> {
    for row in rows {
        let key: Vec<u8> = row.try_get(0)?;
        let key: [u8; 32] = key.try_into().map_err(|_| StoreError::Corrupt("a stored hash is not 32 bytes".into()))?;
        into.insert(key);
    }
    Ok(())
}

fn device_insert<'a>(rows: &[&'a DeviceRow]) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::new(
        "INSERT INTO device_authorizations (device_code_hash, user_code_hash, client_id, scope, status, created_at, expires_at, ip, user_agent, resource) ",
    );
    q.push_values(rows, |mut b, d| {
        b.push_bind(&d.device_code[..])
            .push_bind(&d.user_code[..])
            .push_bind(&d.client_id)
            .push_bind(&d.scope)
            .push_bind(crate::device::DeviceStatus::Pending.as_str())
            .push_bind(d.now)
            .push_bind(d.expires_at)
            .push_bind(&d.ip)
            .push_bind(&d.user_agent)
            .push_bind(&d.resource);
    });
    q.push(" ON CONFLICT DO NOTHING RETURNING device_code_hash");
    q
}

fn access_insert<'a>(rows: &[&'a AccessRow]) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::new(
        "INSERT INTO access_tokens (token_hash, client_id, user_id, subject, scope, audience, auth_time, issued_at, expires_at, amr) ",
    );
    q.push_values(rows, |mut b, a| {
        let r = &a.record;
        b.push_bind(&a.hash[..])
            .push_bind(&r.client_id)
            .push_bind(&r.user_id)
            .push_bind(&r.subject)
            .push_bind(&r.scope)
            .push_bind(&r.audience)
            .push_bind(r.auth_time)
            .push_bind(r.issued_at)
            .push_bind(r.expires_at)
            .push_bind(&r.amr);
    });
    q.push(" ON CONFLICT DO NOTHING RETURNING token_hash");
    q
}
