//! OAuth clients, cached in memory for `clients.cache_secs`.
//!
//! Client authentication happens on every token, introspection and revocation request; reading
//! the client from the database each time would put a round trip on the hottest path. A change
//! made elsewhere (a rotated secret, a deleted client, via the admin command or another node)
//! therefore takes effect within `clients.cache_secs` (default 5 s; 0 turns the cache off).
//! Unknown client ids are not cached, so made-up ids cannot fill the memory. While the
//! database is out of reach, clients already cached are served from memory past their time.
//!
//! In front of the shared table, each runtime thread keeps its own copies of the clients it
//! served ([`crate::per_thread`]), so authenticating a client takes no lock and no reference
//! count another core writes. A copy lives no longer than the entry it was taken from.

use crate::per_thread::PerThread;
use postern_store::{Client, Store, StoreError};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const MAX_ENTRIES: usize = 10_000;

/// What a thread keeps of the clients it served: its own copy, and when the database gave it.
const MAX_LOCAL: usize = 1_000;
type Local = FxHashMap<String, (Arc<Client>, i64)>;

#[derive(Debug)]
pub struct ClientCache {
    ttl_secs: i64,
    entries: RwLock<HashMap<String, (Arc<Client>, i64)>>,
    local: PerThread<Local>,
}

impl ClientCache {
    pub fn new(ttl_secs: i64) -> Self {
        Self { ttl_secs, entries: RwLock::new(HashMap::new()), local: PerThread::default() }
    }

    pub async fn get(&self, store: &Store, client_id: &str, now: i64) -> Result<Option<Arc<Client>>, StoreError> {
        if self.ttl_secs > 0 {
            let fresh = |fetched: i64| now - fetched < self.ttl_secs;
            let mine = self.local.with(|local| {
                local.get(client_id).filter(|(_, fetched)| fresh(*fetched)).map(|(client, _)| client.clone())
            });
            if let Some(client) = mine.flatten() {
                return Ok(Some(client));
            }
            let shared = {
                let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
                entries.get(client_id).filter(|(_, fetched)| fresh(*fetched)).map(|(c, f)| (Client::clone(c), *f))
            };
            if let Some((client, fetched)) = shared {
                let client = Arc::new(client);
                self.keep_locally(client_id, &client, fetched);
                return Ok(Some(client));
            }
        }
        let client = match store.client_by_id(client_id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            // The database is out of reach: a client seen before keeps working from memory
            // (client credentials with JWTs need nothing else) until it answers again.
            Err(e) if e.is_unavailable() => {
                let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
                return entries.get(client_id).map(|(c, _)| Some(c.clone())).ok_or(e);
            }
            Err(e) => return Err(e),
        };
        let client = Arc::new(client);
        if self.ttl_secs > 0 {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(client_id.to_owned(), (client.clone(), now));
        }
        Ok(Some(client))
    }

    /// Keeps this thread's own copy of a client, fetched from the database at `fetched`.
    fn keep_locally(&self, client_id: &str, client: &Arc<Client>, fetched: i64) {
        self.local.with(|local| {
            if local.len() >= MAX_LOCAL {
                local.clear();
            }
            local.insert(client_id.to_owned(), (client.clone(), fetched));
        });
    }
}
