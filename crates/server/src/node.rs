//! What each node keeps for itself, in memory, grouped so that running several nodes on one
//! database is reasoned about in one place. Everything else a node knows it reads from the
//! database; everything here is a cache, a counter or a pool of this process alone.
//!
//! | part | what it is | with several nodes |
//! | --- | --- | --- |
//! | `clients` | registered clients, for `clients.cache_secs` | a change (a rotated secret, a removed redirect URI) reaches every node within that time |
//! | `api_keys` | verified API keys, for `api_keys.cache_secs` (100,000 at most, and 1,000 for each runtime thread, which keeps its own copies) | a revoked key stops on the node that revoked it at once, on the others within that time |
//! | `revoked` | the deny-list of JWT ids and per-user cut-offs | loaded from the database by sequence every `tokens.revocation_sync_secs`; the node that revokes knows at once |
//! | `device_polls` | when each device code last polled (100,000 codes at most, 6.4 MiB) | a device polling different nodes in turn may poll faster than `slow_down` allows, never more than once per node per interval |
//! | `users` | enabled users as userinfo describes them (10,000 at most), for `tokens.revocation_sync_secs` | a user disabled, deleted or changed elsewhere is seen within that time, as the deny-list sees a cut-off; the node that does it forgets the user at once |
//! | `verified_tokens` | JWT access tokens whose signature was checked, by their signature (2,048 at most for each runtime thread, which keeps its own) | each node checks a token's signature once per runtime thread; expiry and revocation are checked on every use |
//! | `throttle` | sign-in failures per account and per client address | the limits are per node: N nodes allow N times the attempts, still hopeless for guessing |
//! | `device_attempts` | wrong user codes per address, browser and user | per node, like `throttle` |
//! | `anonymous_writes` | rate limits on anonymous requests that store rows | per node, like `throttle` |
//! | `passwords` | the Argon2id worker pool and its queue | per node by nature: it bounds this node's CPU and memory |
//! | `documents` | when each client ID metadata document was read, and how long it stays fresh | each node reads a document itself; a change reaches every node within the document's cache time |
//! | `client_uses` | when clients that registered themselves last got a token | written by each node's maintenance pass; a client is deleted only once unused for far longer |
//!
//! Every part is bounded by size as well as by time (the caches and counters hold 10,000 or
//! 100,000 entries at most, the password pool one Argon2id block per core, freed once sign-ins
//! stop), but one: the deny-list mirrors the database's list of revoked, unexpired JWTs, and
//! must hold all of it to refuse them; it grows only by authenticated revocations and empties as
//! those tokens expire.
//!
//! Nothing here is needed for correctness across nodes: each part either expires, is
//! re-read from the database, or only limits how fast a client may go on this node.

use crate::apikeys::KeyVerifier;
use crate::client_cache::ClientCache;
use crate::device_polls::DevicePolls;
use crate::limits::AnonymousWrites;
use crate::passwords::PasswordPool;
use crate::revocations::DenyList;
use crate::throttle::SignInThrottle;
use postern_core::throttle::Throttle;
use std::sync::Mutex;

#[derive(Debug)]
pub struct NodeState {
    pub clients: ClientCache,
    pub api_keys: KeyVerifier,
    pub revoked: DenyList,
    pub device_polls: DevicePolls,
    pub verified_tokens: crate::verified_tokens::VerifiedTokens,
    pub users: crate::known_users::KnownUsers,
    pub throttle: SignInThrottle,
    /// Wrong user codes per IP address and per browser.
    pub device_attempts: Mutex<Throttle>,
    pub anonymous_writes: AnonymousWrites,
    pub passwords: PasswordPool,
    pub client_uses: crate::client_registration::ClientUses,
    pub documents: crate::metadata_documents::DocumentTimes,
}
