//! The per-node sign-in throttles (per account and per client address), around
//! `postern_core::throttle`. Several nodes on one database each keep their own table, so the
//! effective limit is per node; the back-off still makes guessing hopeless.
//!
//! The two limits answer differently. Past the per-account budget a sign-in is refused (429
//! with `Retry-After`): that is what stops guessing one person's password. Past the per-address
//! budget it is slowed down instead (held for the back-off, at most [`MAX_SLOWDOWN_SECS`], with
//! at most [`SLOWED_PER_ADDRESS`] held at once): many people can share one address (an office,
//! a carrier NAT), and a correct password must not be refused because someone else there
//! guessed wrong. An attempt is counted from the moment it starts, so parallel requests cannot
//! spend more than the budget (see `Throttle::begin`).

use postern_core::throttle::{Policy, Throttle};
use std::collections::HashMap;
use std::sync::Mutex;

/// The longest a sign-in is held because its address is over budget.
pub const MAX_SLOWDOWN_SECS: i64 = 5;
/// How many slowed sign-ins one address may have waiting at once; more are refused.
pub const SLOWED_PER_ADDRESS: u32 = 4;

#[derive(Debug)]
pub struct SignInThrottle {
    account: Mutex<Throttle>,
    address: Mutex<Throttle>,
    /// Sign-ins currently held per address.
    slowed: Mutex<HashMap<String, u32>>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self {
            account: Mutex::new(Throttle::new(Policy::ACCOUNT, 100_000)),
            address: Mutex::new(Throttle::new(Policy::IP, 100_000)),
            slowed: Mutex::new(HashMap::new()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A sign-in attempt under way: ends as a failure or a success; dropped otherwise (the
/// server was busy, the handler returned early), it is abandoned and counts as neither.
#[must_use]
pub struct Attempt<'a> {
    throttle: &'a SignInThrottle,
    account: String,
    address: String,
    /// The address was over budget: this attempt is held for this long first, and counted
    /// among the address's held attempts rather than its budget.
    slowed: Option<i64>,
    ended: bool,
}

impl SignInThrottle {
    /// Starts a sign-in for `account` from `address` at `now`: `Err(seconds)` when it is
    /// refused (the account is blocked, or the address already has too many held).
    pub fn begin(&self, account: &str, address: &str, now: i64) -> Result<Attempt<'_>, i64> {
        lock(&self.account).begin(account, now)?;
        let address_begun = lock(&self.address).begin(address, now);
        let slowed = match address_begun {
            Ok(()) => None,
            Err(wait) => {
                let mut slowed = lock(&self.slowed);
                let held = slowed.entry(address.to_owned()).or_insert(0);
                if *held >= SLOWED_PER_ADDRESS {
                    drop(slowed);
                    lock(&self.account).abandon(account);
                    return Err(wait.min(MAX_SLOWDOWN_SECS));
                }
                *held += 1;
                Some(wait.min(MAX_SLOWDOWN_SECS))
            }
        };
        Ok(Attempt { throttle: self, account: account.to_owned(), address: address.to_owned(), slowed, ended: false })
    }
}

impl Attempt<'_> {
    /// How long to hold this attempt before verifying it, if its address is over budget.
    pub fn slowdown(&self) -> Option<std::time::Duration> {
        self.slowed.map(|s| std::time::Duration::from_secs(u64::try_from(s).unwrap_or(0)))
    }

    pub fn fail(mut self, now: i64) {
        lock(&self.throttle.account).fail_attempt(&self.account, now);
        let mut address = lock(&self.throttle.address);
        if self.slowed.is_some() {
            address.fail(&self.address, now);
        } else {
            address.fail_attempt(&self.address, now);
        }
        drop(address);
        self.end();
    }

    pub fn succeed(mut self) {
        lock(&self.throttle.account).succeed(&self.account);
        // The address keeps its record: one success there says nothing about the others.
        self.end_address();
        self.end();
    }

    /// Ends the address's part of an attempt that did not fail.
    fn end_address(&self) {
        if self.slowed.is_none() {
            lock(&self.throttle.address).abandon(&self.address);
        }
    }

    fn end(&mut self) {
        if self.slowed.take().is_some() {
            let mut slowed = lock(&self.throttle.slowed);
            if let Some(n) = slowed.get_mut(&self.address) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    slowed.remove(&self.address);
                }
            }
        }
        self.ended = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        lock(&self.throttle.account).abandon(&self.account);
        self.end_address();
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_budget_is_slowed_not_refused_and_an_account_is_refused() {
        let t = SignInThrottle::default();
        for i in 0..Policy::IP.free {
            t.begin(&format!("acct:{i}"), "ip:a", 0).unwrap().fail(0);
        }
        // Over the address budget: held, not refused; a success there goes through.
        let attempt = t.begin("acct:ann", "ip:a", 0).unwrap();
        assert_eq!(attempt.slowdown(), Some(std::time::Duration::from_secs(2)));
        attempt.succeed();
        // Only a few held at once per address.
        let held: Vec<_> =
            (0..SLOWED_PER_ADDRESS).map(|i| t.begin(&format!("acct:h{i}"), "ip:a", 0).unwrap()).collect();
        assert!(t.begin("acct:more", "ip:a", 0).is_err());
        assert!(t.begin("acct:more", "ip:b", 0).is_ok_and(|a| a.slowdown().is_none()), "other addresses unaffected");
        drop(held);
        assert!(t.begin("acct:more", "ip:a", 0).is_ok(), "dropped attempts give their place back");

        // Past the account budget: refused.
        for _ in 0..Policy::ACCOUNT.free {
            t.begin("acct:bob", "ip:c", 10).unwrap().fail(10);
        }
        assert_eq!(t.begin("acct:bob", "ip:d", 10).err(), Some(2));
    }
}
