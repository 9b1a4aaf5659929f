//! Password verification on a bounded pool: at most one Argon2id computation per core at a
//! time, a bounded number waiting, and a quick "busy" beyond that (the caller answers 503 with
//! `Retry-After`), so a flood of sign-ins cannot starve the rest of the server. Unknown accounts
//! are verified against a dummy hash with the same parameters, so timing does not reveal which
//! emails exist. Each running computation borrows working memory that the pool keeps (one
//! block of `m` KiB per core at most), so a burst of sign-ins does not grow the heap; the pool
//! gives it back once sign-ins stop ([`PasswordPool::release_if_idle`]), so 19 MiB per core does
//! not stay resident for good after the first sign-in.

use postern_core::password::{Argon2Memory, Argon2Params};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// One caller's place in the waiting count, given back when dropped.
struct Waiting<'a> {
    count: &'a AtomicUsize,
    /// How many were waiting before this caller.
    ahead: usize,
}

impl<'a> Waiting<'a> {
    fn join(count: &'a AtomicUsize) -> Self {
        Self { count, ahead: count.fetch_add(1, Ordering::SeqCst) }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("too many sign-ins are being checked; try again shortly")]
pub struct Busy;

#[derive(Debug)]
pub struct PasswordPool {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    dummy_hash: String,
    /// Working memory not in use; never more than one per permit.
    memories: Arc<Mutex<Vec<Argon2Memory>>>,
    /// Verifications started, and their count at the last [`Self::release_if_idle`].
    uses: AtomicU64,
    uses_seen: AtomicU64,
}

impl PasswordPool {
    /// A pool with one slot per core and `queue_per_core` waiting slots per core. The dummy hash
    /// is computed here, once, with the configured parameters.
    pub async fn new(params: Argon2Params, queue_per_core: usize) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let dummy_hash =
            crate::bootstrap::hash_password(params, "postern dummy password".to_owned()).await.unwrap_or_default();
        Self {
            running: Arc::new(Semaphore::new(cores)),
            waiting: AtomicUsize::new(0),
            max_waiting: cores * queue_per_core,
            dummy_hash,
            memories: Arc::default(),
            uses: AtomicU64::new(0),
            uses_seen: AtomicU64::new(0),
        }
    }

    /// Frees the kept working memory if no verification started since the previous call (a task
    /// calls it every few seconds, [`crate::maintenance::release_password_memory`]): memory stays
    /// while sign-ins come, and goes one or two calls after the last. Blocks this large are
    /// mapped and unmapped whole by the allocator, so freeing them gives the memory back to the
    /// system.
    pub fn release_if_idle(&self) {
        let uses = self.uses.load(Ordering::SeqCst);
        if self.uses_seen.swap(uses, Ordering::SeqCst) == uses
            && let Ok(mut free) = self.memories.lock()
        {
            free.clear();
        }
    }

    /// How many blocks of working memory the pool keeps for the next sign-ins.
    pub fn kept_blocks(&self) -> usize {
        self.memories.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Verifies `password` against `stored` (or against the dummy hash when there is no account
    /// or no password, which then always fails).
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, Busy> {
        // The place in the queue is given back by a guard, so that a caller that stops waiting
        // (its request cancelled) cannot leave the queue counted full for good.
        let place = Waiting::join(&self.waiting);
        if place.ahead >= self.max_waiting {
            return Err(Busy);
        }
        let permit = self.running.clone().acquire_owned().await;
        drop(place);
        let Ok(permit) = permit else { return Err(Busy) };
        let (hash, real) = match stored {
            Some(h) => (h.to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let password = password.to_owned();
        self.uses.fetch_add(1, Ordering::SeqCst);
        let memories = self.memories.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let taken = memories.lock().map(|mut free| free.pop()).unwrap_or_default();
            let mut memory = taken.unwrap_or_default();
            let ok = postern_core::password::verify_password_in(&password, &hash, &mut memory);
            if let Ok(mut free) = memories.lock() {
                free.push(memory);
            }
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false);
        Ok(ok && real)
    }
}

/// Why a password was not hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error(transparent)]
    Busy(#[from] Busy),
    #[error("password hashing failed")]
    Failed,
}

impl PasswordPool {
    /// Hashes a new password with `params` in the same slots as verifications (a flood of
    /// registrations is bounded like a flood of sign-ins).
    pub async fn hash(&self, params: Argon2Params, password: &str) -> Result<String, HashError> {
        let place = Waiting::join(&self.waiting);
        if place.ahead >= self.max_waiting {
            return Err(HashError::Busy(Busy));
        }
        let permit = self.running.clone().acquire_owned().await;
        drop(place);
        let Ok(permit) = permit else { return Err(HashError::Busy(Busy)) };
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let hashed = postern_core::password::hash_password(&password, &params, &mut postern_core::system::os_rng());
            drop(permit);
            hashed
        })
        .await
        .map_err(|_| HashError::Failed)?
        .map_err(|_| HashError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn callers_that_stop_waiting_give_their_place_back() {
        let params = Argon2Params::INSECURE_FOR_TESTS;
        let pool = Arc::new(PasswordPool::new(params, 1).await);
        let stored = crate::bootstrap::hash_password(params, "correct horse".to_owned()).await.unwrap_or_default();
        // Every running slot taken: callers queue.
        let cores = pool.max_waiting;
        let held = pool.running.clone().acquire_many_owned(u32::try_from(cores).unwrap_or(1)).await;
        let mut waiting = tokio::task::JoinSet::new();
        for _ in 0..cores {
            let (pool, stored) = (pool.clone(), stored.clone());
            waiting.spawn(async move { pool.verify("correct horse", Some(&stored)).await });
        }
        let queued = async {
            while pool.waiting.load(Ordering::SeqCst) < cores {
                tokio::task::yield_now().await;
            }
        };
        assert!(tokio::time::timeout(std::time::Duration::from_secs(10), queued).await.is_ok(), "all queued");
        assert_eq!(pool.verify("correct horse", Some(&stored)).await, Err(Busy), "the queue is full");
        // The waiting requests are cancelled (their clients went away), then the slots free up.
        waiting.abort_all();
        while waiting.join_next().await.is_some() {}
        drop(held);
        assert_eq!(pool.waiting.load(Ordering::SeqCst), 0);
        assert_eq!(pool.verify("correct horse", Some(&stored)).await, Ok(true), "not counted full for good");
    }

    #[tokio::test]
    async fn working_memory_is_kept_while_sign_ins_come_and_freed_when_they_stop() {
        let params = Argon2Params::INSECURE_FOR_TESTS;
        let pool = PasswordPool::new(params, 1).await;
        let stored = crate::bootstrap::hash_password(params, "correct horse".to_owned()).await.unwrap_or_default();
        let kept = PasswordPool::kept_blocks;
        assert_eq!(pool.verify("correct horse", Some(&stored)).await, Ok(true));
        assert_eq!(kept(&pool), 1, "kept for the next sign-in");
        pool.release_if_idle();
        assert_eq!(kept(&pool), 1, "a sign-in came since the last pass");
        pool.release_if_idle();
        assert_eq!(kept(&pool), 0, "none since: freed");
        assert_eq!(pool.verify("wrong horse", Some(&stored)).await, Ok(false), "and taken again when needed");
        assert_eq!(kept(&pool), 1);
    }
}
