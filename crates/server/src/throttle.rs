//! The per-node sign-in throttles (per account and per IP address), around
//! `postern_core::throttle`. Several nodes on one database each keep their own table, so the
//! effective limit is per node; the back-off still makes guessing hopeless.

use postern_core::throttle::{Policy, Throttle};
use std::sync::Mutex;

#[derive(Debug)]
pub struct SignInThrottle {
    account: Mutex<Throttle>,
    ip: Mutex<Throttle>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self {
            account: Mutex::new(Throttle::new(Policy::ACCOUNT, 100_000)),
            ip: Mutex::new(Throttle::new(Policy::IP, 100_000)),
        }
    }
}

fn table(keys: &str) -> bool {
    keys.starts_with("acct:")
}

impl SignInThrottle {
    fn with<R>(&self, key: &str, f: impl FnOnce(&mut Throttle) -> R) -> R {
        let m = if table(key) { &self.account } else { &self.ip };
        let mut guard = match m.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        f(&mut guard)
    }

    /// `Err(seconds)`: the longest wait any of `keys` must sit out.
    pub fn check(&self, keys: &[&str], now: i64) -> Result<(), i64> {
        let wait = keys.iter().filter_map(|k| self.with(k, |t| t.check(k, now).err())).max();
        wait.map_or(Ok(()), Err)
    }

    pub fn fail(&self, keys: &[&str], now: i64) {
        for k in keys {
            self.with(k, |t| t.fail(k, now));
        }
    }

    pub fn succeed(&self, key: &str) {
        self.with(key, |t| t.succeed(key));
    }
}
