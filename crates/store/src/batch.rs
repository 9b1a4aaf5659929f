//! Group commit for SQLite writes on hot endpoints: inserts (device authorizations, opaque
//! access tokens) and refresh-token rotations.
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
//! A rotation is the conditional update of the old token (`rotated_at IS NULL`) and, only if it
//! won, the insert of the new token (and its opaque access token): two statements of the
//! batch's transaction. Of two rotations of one token in one batch the second finds it rotated
//! and is answered `Conflict`, as it would have been in a transaction of its own. Batching them
//! takes each refresh's commit, and its wait for SQLite's one writer, off the request path
//! (issue 18: at about 1,200 rotations a second in transactions of their own, the writers'
//! turns were the limit).
//!
//! PostgreSQL takes concurrent writers well and is written directly, one transaction per
//! request.

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

/// A refresh-token rotation: `old` is marked rotated with its sealed successor pair, and only
/// if that happened (it was not rotated yet) `new` is stored, with its opaque access token.
#[derive(Debug, Clone)]
pub(crate) struct RotationRow {
    pub old: [u8; 32],
    pub now: i64,
    pub sealed: Vec<u8>,
    pub new: RefreshRow,
    pub access: Option<AccessRow>,
}

/// A new refresh token, owned.
#[derive(Debug, Clone)]
pub(crate) struct RefreshRow {
    pub hash: [u8; 32],
    pub grant_id: String,
    pub scope: String,
    pub issued_at: i64,
    pub idle_expires_at: i64,
    pub access_jti: Option<String>,
    pub access_token_hash: Option<[u8; 32]>,
    pub access_expires_at: i64,
}

/// A code redemption ([`crate::authorize::Redemption`], owned): the code is consumed by its
/// own conditional update, and what it issues stored, within the batch's transaction.
#[derive(Debug, Clone)]
pub(crate) struct RedemptionRow {
    code: [u8; 32],
    now: i64,
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    access_jti: Option<String>,
    opaque_access: Option<(postern_core::secret::TokenHash, String)>,
    access_expires_at: i64,
    refresh: Option<crate::refresh::NewFamily>,
    refresh_rule: postern_core::oauth::RefreshRule,
}

impl RedemptionRow {
    pub(crate) fn new(code: &postern_core::secret::TokenHash, now: i64, r: &crate::Redemption<'_>) -> Self {
        Self {
            code: code.0,
            now,
            client_id: r.client_id.to_owned(),
            redirect_uri: r.redirect_uri.to_owned(),
            code_challenge: r.code_challenge.to_owned(),
            access_jti: r.access_jti.map(str::to_owned),
            opaque_access: r.opaque_access.map(|(h, audience)| (h, audience.to_owned())),
            access_expires_at: r.access_expires_at,
            refresh: r.refresh.clone(),
            refresh_rule: r.refresh_rule,
        }
    }

    fn redemption(&self) -> crate::Redemption<'_> {
        crate::Redemption {
            client_id: &self.client_id,
            redirect_uri: &self.redirect_uri,
            code_challenge: &self.code_challenge,
            access_jti: self.access_jti.as_deref(),
            opaque_access: self.opaque_access.as_ref().map(|(h, audience)| (*h, audience.as_str())),
            access_expires_at: self.access_expires_at,
            refresh: self.refresh.clone(),
            refresh_rule: self.refresh_rule,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Insert {
    Device(DeviceRow),
    Access(AccessRow),
    Rotation(Box<RotationRow>),
    Redemption(Box<RedemptionRow>),
}

/// What a job did, once its batch is committed (a job that did nothing is answered
/// `Conflict`).
#[derive(Debug)]
pub(crate) enum Done {
    /// The row is stored, the token rotated.
    Written,
    /// The code was consumed: what it stood for.
    Redeemed(Box<crate::CodeGrant>),
}

impl Insert {
    fn key(&self) -> [u8; 32] {
        match self {
            Insert::Device(d) => d.device_code,
            Insert::Access(a) => a.hash,
            Insert::Rotation(r) => r.old,
            Insert::Redemption(r) => r.code,
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Insert::Device(_) => "user code",
            Insert::Access(_) => "access token",
            Insert::Rotation(_) => "rotated refresh token",
            Insert::Redemption(_) => "redeemed code",
        }
    }
}

struct Job {
    insert: Insert,
    done: oneshot::Sender<Result<Done>>,
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
        tokio::spawn(checkpoints(options.clone(), turn.clone(), jobs.downgrade()));
        tokio::spawn(run(options, receiver, turn));
        Writer { jobs }
    }

    /// Queues one write and waits until its batch is committed. `Conflict` when a unique
    /// constraint refused the row, or the token to rotate was rotated already.
    pub(crate) async fn insert(&self, insert: Insert) -> Result<Done> {
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
            Ok(written) => {
                held = Some(conn);
                for (job, done) in batch.drain(..).zip(written) {
                    let _ = job.done.send(done.ok_or(StoreError::Conflict(job.insert.what())));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, rows = batch.len(), "batched write failed; retrying job by job");
                // After a failed commit (a full disk, say) the connection can stay inside the
                // transaction and refuse every later one: the retries get a fresh connection.
                drop(conn);
                let mut fresh = match writer_connection(&options).await {
                    Ok(c) => c,
                    Err(_) => {
                        let message = e.to_string();
                        for job in batch.drain(..) {
                            let _ = job.done.send(Err(StoreError::Database(sqlx::Error::Protocol(message.clone()))));
                        }
                        continue;
                    }
                };
                let mut failed = false;
                for job in batch.drain(..) {
                    let my_turn = turn.lock().await;
                    let answer = write_one(&mut fresh, &job.insert).await;
                    drop(my_turn);
                    failed |= answer.as_ref().is_err_and(|e| !matches!(e, StoreError::Conflict(_)));
                    let _ = job.done.send(answer);
                }
                if !failed {
                    held = Some(fresh);
                }
            }
        }
    }
}

/// How often the write-ahead log is copied into the database and started over. The last copy
/// (`RESTART`) holds the writers off, for longer the more was written since the one before:
/// every second, the harness's writers had a p99 of 60–85 ms; every 100 ms, 18–26 ms, at the
/// same rates (BENCHMARKS.md, issue 18 session 13).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Copies the write-ahead log into the database every [`CHECKPOINT_EVERY`] and has the next
/// write start it over, on a connection of its own, for as long as the writer lives (`alive`).
///
/// SQLite's own automatic checkpoints are `PASSIVE`, run by whichever connection commits past
/// the threshold: under steady reads and writes the log is never started over and grows
/// without end (issue 18's harness saw 128 MB after four minutes), and every read then
/// searches a longer log. `RESTART` starts it over, but it holds off every writer while it
/// runs: run by the writer task under its turn, it stalled each second's writes behind a
/// second's worth of pages copied and synced (the writers' p99 of 75–90 ms in issue 18's
/// harness). So the copying is done first, `PASSIVE`, beside the writer; then, in the
/// writers' turn, `RESTART` has only the last few pages to copy before it starts the log over
/// (waiting for the readers of older snapshots, which are short). `journal_size_limit`
/// (writer_connection) then cuts the file back. A checkpoint that fails is left to the next.
/// A tick whose log has not grown since the last (an idle server) stops after the `PASSIVE`
/// look, which copies nothing and syncs nothing.
async fn checkpoints(options: SqliteConnectOptions, turn: crate::WriteTurn, alive: mpsc::WeakSender<Job>) {
    let mut conn: Option<SqliteConnection> = None;
    // The log's length in frames at the last tick.
    let mut last_frames = -1;
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match writer_connection(&options).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tracing::debug!(error = %e, "no connection for the write-ahead log checkpoint");
                    continue;
                }
            },
        };
        // (busy, frames in the log, frames copied)
        let copied = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut *c).await;
        let restarted = match copied {
            // Nothing was written since the last tick: the log is as it was left.
            Ok((_, frames, _)) if frames == last_frames => Ok(()),
            Ok((_, frames, _)) => {
                last_frames = frames;
                let _turn = turn.lock().await;
                sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(&mut *c).await.map(drop)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = restarted {
            last_frames = -1;
            tracing::debug!(error = %e, "write-ahead log checkpoint failed");
            conn = None;
        }
    }
}

/// Opens the writer's connection. Measured under load (BENCHMARKS.md, device flow): a multi-row
/// insert needs a statement journal, which by default spills to a temporary file (open, write,
/// unlink per batch), hence `temp_store = MEMORY`; checkpoints every 8,192 WAL pages (32 MiB)
/// instead of 1,000 cost fewer fsyncs. Its page cache is 2 MiB: it was 8, and filled up under
/// the device flow's inserts (each user code lands on a random index page), for no speed that
/// alternating runs could tell apart (issue 18, session 15); most rows now go at the end of
/// their indexes, whose pages stay in a small cache.
async fn writer_connection(options: &SqliteConnectOptions) -> Result<SqliteConnection> {
    let mut conn = SqliteConnection::connect_with(options).await?;
    sqlx::query("PRAGMA cache_size = -2048").execute(&mut conn).await?;
    sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut conn).await?;
    sqlx::query("PRAGMA wal_autocheckpoint = 8192").execute(&mut conn).await?;
    sqlx::query("PRAGMA journal_size_limit = 16777216").execute(&mut conn).await?;
    Ok(conn)
}

/// Writes a batch in one transaction; returns, job by job, what it did (`None`: nothing, a
/// row refused, a token rotated already, a code not redeemed).
async fn write_batch(conn: &mut SqliteConnection, batch: &[Job]) -> Result<Vec<Option<Done>>> {
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
    // Rotations: one conditional update for all (a token named twice is rotated by its first
    // job only; the others lost the race), then the winners' new rows.
    let mut rotations: Vec<&RotationRow> = Vec::new();
    let mut seen = HashSet::new();
    for job in batch {
        if let Insert::Rotation(r) = &job.insert
            && seen.insert(r.old)
        {
            rotations.push(r.as_ref());
        }
    }
    let mut rotated = HashSet::new();
    if !rotations.is_empty() {
        let rows = rotate_update(&rotations).build().fetch_all(&mut *tx).await?;
        collect_keys(&rows, &mut rotated)?;
        let winners: Vec<&RotationRow> = rotations.into_iter().filter(|r| rotated.contains(&r.old)).collect();
        if !winners.is_empty() {
            successor_insert(&winners).build().execute(&mut *tx).await?;
            refresh_insert(&winners).build().execute(&mut *tx).await?;
            let access: Vec<&AccessRow> = winners.iter().filter_map(|r| r.access.as_ref()).collect();
            if !access.is_empty() {
                access_insert(&access).build().execute(&mut *tx).await?;
            }
        }
    }
    let mut done = Vec::with_capacity(batch.len());
    for job in batch {
        done.push(match &job.insert {
            // Only the job that was first to name its token won.
            Insert::Rotation(r) => rotated.remove(&r.old).then_some(Done::Written),
            Insert::Redemption(r) => redeem_in(&mut tx, r).await?.map(|g| Done::Redeemed(Box::new(g))),
            other => inserted.contains(&other.key()).then_some(Done::Written),
        });
    }
    tx.commit().await?;
    Ok(done)
}

/// One redemption inside the batch's transaction: the code's grant if it won.
async fn redeem_in(tx: &mut SqliteConnection, row: &RedemptionRow) -> Result<Option<crate::CodeGrant>> {
    let r = row.redemption();
    Ok(redeem!(tx, &row.code[..], row.now, r))
}

/// One rotation inside a transaction of its own; whether it won.
async fn rotate_one(conn: &mut SqliteConnection, r: &RotationRow) -> Result<bool> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let won = !rotate_update(&[r]).build().fetch_all(&mut *tx).await?.is_empty();
    if won {
        successor_insert(&[r]).build().execute(&mut *tx).await?;
        refresh_insert(&[r]).build().execute(&mut *tx).await?;
        if let Some(a) = &r.access {
            access_insert(&[a]).build().execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(won)
}

async fn write_one(conn: &mut SqliteConnection, insert: &Insert) -> Result<Done> {
    let mut query = match insert {
        Insert::Device(d) => device_insert(&[d]),
        Insert::Access(a) => access_insert(&[a]),
        Insert::Rotation(r) => {
            let won = rotate_one(conn, r).await?;
            return if won { Ok(Done::Written) } else { Err(StoreError::Conflict(insert.what())) };
        }
        Insert::Redemption(r) => {
            let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
            let won = redeem_in(&mut tx, r).await?;
            tx.commit().await?;
            return won.map(|g| Done::Redeemed(Box::new(g))).ok_or(StoreError::Conflict(insert.what()));
        }
    };
    let rows = query.build().fetch_all(conn).await?;
    if rows.is_empty() { Err(StoreError::Conflict(insert.what())) } else { Ok(Done::Written) }
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

/// Marks the tokens rotated where not rotated yet; returns the hashes of those it rotated
/// (`refresh_tokens` has no row for a hash twice).
fn rotate_update<'a>(rows: &[&'a RotationRow]) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::new("WITH v(hash, rotated_at) AS (");
    q.push_values(rows, |mut b, r| {
        b.push_bind(&r.old[..]).push_bind(r.now);
    });
    q.push(
        ") UPDATE refresh_tokens SET rotated_at = v.rotated_at FROM v \
         WHERE refresh_tokens.token_hash = v.hash AND refresh_tokens.rotated_at IS NULL RETURNING token_hash",
    );
    q
}

/// The winners' sealed successor pairs, kept for the grace window.
fn successor_insert<'a>(rows: &[&'a RotationRow]) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::new("INSERT INTO refresh_successors (token_hash, sealed, rotated_at) ");
    q.push_values(rows, |mut b, r| {
        b.push_bind(&r.old[..]).push_bind(&r.sealed).push_bind(r.now);
    });
    q
}

fn refresh_insert<'a>(rows: &[&'a RotationRow]) -> QueryBuilder<'a, Sqlite> {
    let mut q = QueryBuilder::new(
        "INSERT INTO refresh_tokens (token_hash, grant_id, scope, issued_at, idle_expires_at, access_jti, access_token_hash, access_expires_at) ",
    );
    q.push_values(rows, |mut b, r| {
        let n = &r.new;
        b.push_bind(&n.hash[..])
            .push_bind(&n.grant_id)
            .push_bind(&n.scope)
            .push_bind(n.issued_at)
            .push_bind(n.idle_expires_at)
            .push_bind(&n.access_jti)
            .push_bind(n.access_token_hash.map(|h| h.to_vec()))
            .push_bind(n.access_expires_at);
    });
    q
}
