//! Exponential back-off against guessing (passwords now; user codes and TOTP later).
//!
//! Each key (an account, an IP address) may fail `free` times; after that every further failure
//! doubles the wait before the next attempt is allowed, from `base_secs` up to `max_secs`.
//! Failures are forgotten `forget_secs` after the last one, and a success resets the key. The
//! table is bounded: when full, entries that no longer block anything are dropped first, then the
//! oldest. Time is a parameter; the server keeps one table per node in memory.
//!
//! Checking and recording are one step for slow attempts (a password verification takes tens
//! of milliseconds): [`Throttle::begin`] counts an attempt in flight as a failure until it
//! ends, so parallel attempts cannot spend more than the free budget, and past the budget only
//! one attempt at a time is let through. Every `begin` ends with `fail`, `succeed` or
//! `abandon`.

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub free: u32,
    pub base_secs: i64,
    pub max_secs: i64,
    pub forget_secs: i64,
}

impl Policy {
    /// Per account: five free failures, then 2 s, 4 s, … up to 15 minutes.
    pub const ACCOUNT: Policy = Policy { free: 5, base_secs: 2, max_secs: 900, forget_secs: 3600 };
    /// Emails sent about one address (reset links, verification links, invitations): three
    /// free, then a minute, two, … up to an hour, so nobody's mailbox can be flooded.
    pub const EMAIL: Policy = Policy { free: 3, base_secs: 60, max_secs: 3600, forget_secs: 3600 };
    /// Per IP address: more room (shared NATs), then the same curve.
    pub const IP: Policy = Policy { free: 20, base_secs: 2, max_secs: 900, forget_secs: 3600 };

    fn delay_after(&self, failures: u32) -> i64 {
        if failures < self.free {
            return 0;
        }
        let exponent = (failures - self.free).min(30);
        self.base_secs.saturating_mul(1i64 << exponent).min(self.max_secs)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: i64,
    blocked_until: i64,
    /// Attempts begun and not yet ended.
    in_flight: u32,
}

#[derive(Debug)]
pub struct Throttle {
    policy: Policy,
    capacity: usize,
    entries: HashMap<String, Entry>,
}

impl Throttle {
    pub fn new(policy: Policy, capacity: usize) -> Self {
        Self { policy, capacity: capacity.max(1), entries: HashMap::new() }
    }

    /// `Err(seconds)` when `key` must wait before trying again.
    pub fn check(&self, key: &str, now: i64) -> Result<(), i64> {
        match self.entries.get(key) {
            Some(e) if e.blocked_until > now => Err(e.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Starts an attempt: `Err(seconds)` while the key is blocked, or (`Err(1)`) when the
    /// attempts already in flight would use up what is left of the free budget and one is
    /// still running. Otherwise the attempt counts as in flight until it ends.
    pub fn begin(&mut self, key: &str, now: i64) -> Result<(), i64> {
        self.check(key, now)?;
        let free = self.policy.free;
        let entry = self.entry(key, now);
        if entry.failures + entry.in_flight >= free && entry.in_flight > 0 {
            return Err(1);
        }
        entry.in_flight += 1;
        Ok(())
    }

    /// Ends an attempt that neither failed nor succeeded (the server was busy, say).
    pub fn abandon(&mut self, key: &str) {
        if let Some(e) = self.entries.get_mut(key) {
            e.in_flight = e.in_flight.saturating_sub(1);
        }
    }

    /// Ends an attempt begun with [`Throttle::begin`] as a failure.
    pub fn fail_attempt(&mut self, key: &str, now: i64) -> i64 {
        self.abandon(key);
        self.fail(key, now)
    }

    fn entry(&mut self, key: &str, now: i64) -> &mut Entry {
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            self.evict(now);
        }
        let policy = self.policy;
        let entry = self.entries.entry(key.to_owned()).or_insert(Entry {
            failures: 0,
            last_failure: now,
            blocked_until: 0,
            in_flight: 0,
        });
        if now - entry.last_failure > policy.forget_secs {
            entry.failures = 0;
        }
        entry
    }

    /// Records a failure; returns how long the key must now wait (0 while failures are free).
    /// An attempt begun with [`Throttle::begin`] ends with [`Throttle::fail_attempt`] instead.
    pub fn fail(&mut self, key: &str, now: i64) -> i64 {
        let policy = self.policy;
        let entry = self.entry(key, now);
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        let delay = policy.delay_after(entry.failures);
        entry.blocked_until = now + delay;
        delay
    }

    pub fn succeed(&mut self, key: &str) {
        self.entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict(&mut self, now: i64) {
        let forget = self.policy.forget_secs;
        self.entries.retain(|_, e| e.in_flight > 0 || (e.blocked_until > now && now - e.last_failure <= forget));
        let oldest = self.entries.iter().min_by_key(|(_, e)| e.last_failure).map(|(k, _)| k.clone());
        if self.entries.len() >= self.capacity
            && let Some(oldest) = oldest
        {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy { free: 3, base_secs: 2, max_secs: 16, forget_secs: 100 };

    #[test]
    fn free_failures_then_doubling_up_to_the_cap() {
        let mut t = Throttle::new(P, 10);
        let delays: Vec<i64> = (0..7).map(|_| t.fail("a", 1000)).collect();
        assert_eq!(delays, [0, 0, 2, 4, 8, 16, 16]);
        assert_eq!(t.check("a", 1000), Err(16));
        assert_eq!(t.check("a", 1016), Ok(()));
        assert_eq!(t.check("b", 1000), Ok(()), "keys are independent");
    }

    #[test]
    fn success_resets_and_old_failures_are_forgotten() {
        let mut t = Throttle::new(P, 10);
        for _ in 0..3 {
            t.fail("a", 0);
        }
        t.succeed("a");
        assert_eq!(t.fail("a", 1), 0);
        for _ in 0..5 {
            t.fail("b", 0);
        }
        assert_eq!(t.fail("b", 500), 0, "forgotten after forget_secs");
    }

    #[test]
    fn parallel_attempts_cannot_spend_more_than_the_budget() {
        let mut t = Throttle::new(P, 10);
        // Forty attempts begun together: only the free budget's worth go through.
        let begun = (0..40).filter(|_| t.begin("a", 1000).is_ok()).count();
        assert_eq!(begun, 3);
        for _ in 0..3 {
            t.fail_attempt("a", 1000);
        }
        assert_eq!(t.begin("a", 1001), Err(1), "blocked by the third failure");
        // Past the budget, one attempt at a time once the wait is over.
        assert_eq!(t.begin("a", 1002), Ok(()));
        assert_eq!(t.begin("a", 1002), Err(1));
        t.abandon("a");
        assert_eq!(t.begin("a", 1002), Ok(()));
        assert_eq!(t.fail_attempt("a", 1002), 4);
        // A success ends everything.
        assert_eq!(t.begin("b", 0), Ok(()));
        t.succeed("b");
        assert_eq!(t.check("b", 0), Ok(()));
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut t = Throttle::new(P, 3);
        for i in 0..10 {
            t.fail(&format!("k{i}"), i);
        }
        assert!(t.len() <= 3);
    }
}
