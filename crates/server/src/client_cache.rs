//! OAuth clients, cached in memory for `clients.cache_secs`.
//!
//! Client authentication happens on every token, introspection and revocation request; reading
//! the client from the database each time would put a round trip on the hottest path. A change
//! made elsewhere (a rotated secret, a deleted client, via the admin command or another node)
//! therefore takes effect within `clients.cache_secs` (default 5 s; 0 turns the cache off).
//! Unknown client ids are not cached, so made-up ids cannot fill the memory. While the
//! database is out of reach, clients already cached are served from memory past their time.

use postern_store::{Client, Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

const MAX_ENTRIES: usize = 10_000;

#[derive(Debug)]
pub struct ClientCache {
    ttl_secs: i64,
    entries: RwLock<HashMap<String, (Arc<Client>, i64)>>,
}

impl ClientCache {
    pub fn new(ttl_secs: i64) -> Self {
        Self { ttl_secs, entries: RwLock::new(HashMap::new()) }
    }

    pub async fn get(&self, store: &Store, client_id: &str, now: i64) -> Result<Option<Arc<Client>>, StoreError> {
        if self.ttl_secs > 0 {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            if let Some((client, fetched)) = entries.get(client_id)
                && now - fetched < self.ttl_secs
            {
                return Ok(Some(client.clone()));
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
}
