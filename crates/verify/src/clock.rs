//! The clock a verifier reads: the real one, or one a test sets. `clippy.toml` bans
//! `SystemTime::now` everywhere else, so every other function takes the time as a parameter.

use crate::UnixTime;

/// A source of the current time, so the server can be driven by a fake clock in tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current unix time in seconds.
    fn now(&self) -> UnixTime;

    /// Current unix time in milliseconds (only for ordering what is made within a second; a
    /// clock that keeps seconds only answers the start of its second).
    fn now_millis(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        self.now_millis() / 1000
    }

    #[allow(clippy::disallowed_methods)] // the one place the system clock is read
    fn now_millis(&self) -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => 0,
        }
    }
}

/// A clock that says what it is told; for tests and tools.
#[derive(Debug, Default)]
pub struct FixedClock(pub std::sync::atomic::AtomicI64);

impl FixedClock {
    pub fn new(now: UnixTime) -> Self {
        Self(std::sync::atomic::AtomicI64::new(now))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
