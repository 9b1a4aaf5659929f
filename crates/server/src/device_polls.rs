//! When each pending device code last polled, in memory, so that polling costs no database
//! write (RFC 8628 §3.5 `slow_down`). A device polling faster than its interval gets
//! `slow_down` and its interval grows by 5 seconds for good.
//!
//! A code enters the table only after a poll has read it from the database (valid, pending,
//! this client). A later poll that comes too soon is then answered `slow_down` from the table
//! alone, without reading the database: a device hammering the endpoint costs no I/O. A poll on
//! time reads the authorization again, so an approval or denial is seen at the first poll that
//! respects the interval, whichever node recorded it.
//!
//! Several nodes on one database each keep their own table: a device whose polls are spread
//! over nodes by a load balancer is checked per node, so it may poll up to once per interval
//! per node before `slow_down`, and each node reads the database at most once per interval per
//! device. The interval is advice to well-behaved clients; the bound on abuse is the request
//! rate each node can serve, not this table.

use postern_core::secret::TokenHash;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// The most codes remembered: 100,000 pending device flows on one node is more than 160 new
/// ones a second for their whole 10-minute life. Past it, polls read the database as a first
/// poll does. An entry takes 49 bytes in the table (with its hash map's share), so a full
/// table is about 6.4 MiB, never more.
const MAX_ENTRIES: usize = 100_000;

/// A code's key: the last half of its stored hash, plenty to tell 100,000 codes apart (a
/// collision would only mean a `slow_down` for a device that was on time). Not the first half:
/// a time-ordered code's hash starts with the time it was made
/// ([`postern_core::secret::stored_hash`]), the same for every code of that millisecond.
type Key = [u8; 16];

fn key(code: &TokenHash) -> Key {
    let mut k = [0u8; 16];
    k.copy_from_slice(&code.0[16..]);
    k
}

#[derive(Debug)]
struct Entry {
    /// The client that polled it, as a keyed hash of its id (see [`Table::client`]).
    client: u64,
    expires_at: i64,
    last_poll: i64,
    interval: i32,
}

impl Entry {
    /// Records a poll at `now`; one that comes sooner than the interval grows it by 5 s and
    /// returns the new one.
    fn record(&mut self, now: i64) -> Result<(), i64> {
        let too_soon = now - self.last_poll < i64::from(self.interval);
        self.last_poll = now;
        if too_soon {
            self.interval = self.interval.saturating_add(5);
            return Err(i64::from(self.interval));
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
pub struct DevicePolls {
    polls: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// device-code key -> what the last poll learnt
    entries: HashMap<Key, Entry>,
    /// Keys the client-id hashes, so that no client can pick an id that passes for another's.
    clients: std::collections::hash_map::RandomState,
    /// When expired entries were last swept out of a full table: at most once a second, so a
    /// full table does not scan itself for every new code.
    swept_at: i64,
}

impl Table {
    fn client(&self, client_id: &str) -> u64 {
        self.clients.hash_one(client_id)
    }
}

impl DevicePolls {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.polls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fast path, before any database read: `Some(new_interval)` when `client_id` polls a
    /// code it was seen polling before, unexpired, sooner than its interval allows (the
    /// interval has then grown by 5 s). `None`: read the authorization and call [`Self::poll`].
    pub fn too_soon(&self, code: &TokenHash, client_id: &str, now: i64) -> Option<i64> {
        let mut polls = self.table();
        let client = polls.client(client_id);
        let entry = polls.entries.get_mut(&key(code))?;
        if entry.client != client || now >= entry.expires_at || now - entry.last_poll >= i64::from(entry.interval) {
            return None;
        }
        entry.record(now).err()
    }

    /// Records a poll at `now` of a code read from the database (pending or approved, issued to
    /// `client_id`, expiring at `expires_at`). `Err(new_interval)` when it came too soon.
    pub fn poll(
        &self,
        code: &TokenHash,
        client_id: &str,
        expires_at: i64,
        now: i64,
        base_interval: i64,
    ) -> Result<(), i64> {
        let mut polls = self.table();
        let k = key(code);
        if polls.entries.len() >= MAX_ENTRIES && !polls.entries.contains_key(&k) {
            // Codes live minutes: forget those that have expired, once a second at most.
            if polls.swept_at != now {
                polls.swept_at = now;
                polls.entries.retain(|_, e| now < e.expires_at);
            }
            // Still full: this code is not remembered, so its polls read the database (as
            // its first poll did) until there is room; the table never grows past its bound.
            if polls.entries.len() >= MAX_ENTRIES {
                return Ok(());
            }
        }
        let client = polls.client(client_id);
        let entry = polls.entries.entry(k).or_insert_with(|| Entry {
            client,
            expires_at,
            last_poll: i64::MIN / 2,
            interval: i32::try_from(base_interval).unwrap_or(i32::MAX),
        });
        entry.record(now)
    }

    /// Forgets a code (consumed, denied or expired).
    pub fn forget(&self, code: &TokenHash) {
        self.table().entries.remove(&key(code));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_too_fast_grows_the_interval_for_good() {
        let polls = DevicePolls::default();
        let code = TokenHash::of("device-code");
        let poll = |now| polls.poll(&code, "c1", 1000, now, 5);
        assert_eq!(poll(100), Ok(()));
        assert_eq!(poll(105), Ok(()), "exactly on time");
        assert_eq!(poll(108), Err(10), "too soon: +5 s");
        assert_eq!(poll(115), Err(15), "10 s are now needed");
        assert_eq!(poll(130), Ok(()), "15 s later is fine");
        polls.forget(&code);
        assert_eq!(poll(131), Ok(()));
    }

    #[test]
    fn the_fast_path_answers_only_known_codes_of_the_same_client_polled_too_soon() {
        let polls = DevicePolls::default();
        let code = TokenHash::of("device-code");
        assert_eq!(polls.too_soon(&code, "c1", 100), None, "never read: go to the database");
        assert_eq!(polls.poll(&code, "c1", 200, 100, 5), Ok(()));
        assert_eq!(polls.too_soon(&code, "c2", 101), None, "another client: the database says invalid_grant");
        assert_eq!(polls.too_soon(&code, "c1", 101), Some(10));
        assert_eq!(polls.too_soon(&code, "c1", 111), None, "on time (10 s): read the database again");
        assert_eq!(polls.poll(&code, "c1", 200, 111, 5), Ok(()), "the grown interval stays");
        assert_eq!(polls.poll(&code, "c1", 200, 115, 5), Err(15));
        assert_eq!(polls.too_soon(&code, "c1", 200), None, "expired: the database says expired_token");
    }

    #[test]
    fn a_full_table_stays_bounded_and_does_not_scan_for_every_new_code() {
        assert_eq!(std::mem::size_of::<(Key, Entry)>(), 48, "the size the bound's memory figure assumes");
        let polls = DevicePolls::default();
        for i in 0..MAX_ENTRIES {
            assert_eq!(polls.poll(&TokenHash::of(&i.to_string()), "c1", 1000, 10, 5), Ok(()));
        }
        // Full of live codes: new ones are answered (from the database) but not remembered.
        let late = TokenHash::of("late");
        assert_eq!(polls.poll(&late, "c1", 1000, 11, 5), Ok(()));
        assert_eq!(polls.poll(&late, "c1", 1000, 11, 5), Ok(()), "not remembered, so no slow_down");
        assert_eq!(polls.table().entries.len(), MAX_ENTRIES);
        assert_eq!(polls.table().swept_at, 11, "swept once this second");
        // Once they expire, the next second's sweep makes room.
        assert_eq!(polls.poll(&late, "c1", 2000, 1000, 5), Ok(()));
        assert_eq!(polls.table().entries.len(), 1);
    }
}
