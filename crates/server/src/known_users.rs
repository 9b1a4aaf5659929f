//! Enabled users as `/userinfo` describes them, kept per node for
//! `tokens.revocation_sync_secs`.
//!
//! A relying party may call userinfo for each request it serves. Reading the user's row every
//! time put a database read on that path, a third of its CPU on SQLite. What userinfo
//! releases (the address, whether it is verified, the name) and the fact that the user is
//! enabled are kept here instead, for as long as a cut-off takes to reach every node's
//! deny-list ([`crate::revocations`]). So a user disabled or deleted elsewhere (another node,
//! the admin command) is refused by userinfo within the same time as their JWTs are refused
//! everywhere. The node that disables, deletes or changes a user forgets the entry at once,
//! and an entry read before such a change cannot be put back after it ([`KnownUsers::forget`]
//! moves a generation on). Disabled and unknown users are never kept: each of their requests
//! reads the database. Bounded by size: past [`MAX_ENTRIES`] the table starts over.

use postern_store::{Store, StoreError};
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// At most this many users (a hundred bytes or so each).
const MAX_ENTRIES: usize = 10_000;

/// What userinfo may release about an enabled user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    pub email: String,
    pub email_verified: bool,
    pub name: Option<String>,
}

#[derive(Debug, Default)]
pub struct KnownUsers {
    ttl_secs: i64,
    /// user id -> (what is released, when it was read)
    entries: RwLock<FxHashMap<String, (Arc<Released>, i64)>>,
    /// Moved on by every [`KnownUsers::forget`]; a read that saw it move does not keep its row.
    generation: AtomicU64,
}

impl KnownUsers {
    pub fn new(ttl_secs: u64) -> Self {
        Self { ttl_secs: i64::try_from(ttl_secs).unwrap_or(i64::MAX), ..Self::default() }
    }

    /// What userinfo releases about user `id`, or `None` when there is no such user or the
    /// user is disabled.
    pub async fn enabled(&self, store: &Store, id: &str, now: i64) -> Result<Option<Arc<Released>>, StoreError> {
        if self.ttl_secs > 0 {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some((released, read_at)) = entries.get(id)
                && (0..self.ttl_secs).contains(&(now - read_at))
            {
                return Ok(Some(released.clone()));
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let Some(user) = store.user_by_id(id).await?.filter(|u| !u.disabled) else {
            return Ok(None);
        };
        let released =
            Arc::new(Released { email: user.email, email_verified: user.email_verified, name: user.display_name });
        if self.ttl_secs > 0 {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            // Checked under the lock `forget` takes too: no forget happened since the read.
            if self.generation.load(Ordering::Acquire) == generation {
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
                entries.insert(id.to_owned(), (released.clone(), now));
            }
        }
        Ok(Some(released))
    }

    /// Forgets user `id` after this node disabled, deleted or changed them; a read of the row
    /// still in flight is answered but not kept.
    pub fn forget(&self, id: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(id);
    }
}
