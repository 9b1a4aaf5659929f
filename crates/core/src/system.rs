//! The one provider of real time and real randomness.
//!
//! `clippy.toml` bans `SystemTime::now` and the OS/thread RNGs everywhere else, so every other
//! function takes the time and the random source as parameters and tests can fix both.

use crate::UnixTime;

/// A source of the current time, so the server can be driven by a fake clock in tests.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Current unix time in seconds.
    fn now(&self) -> UnixTime;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the system clock is read
    fn now(&self) -> UnixTime {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
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

/// The operating system's cryptographic random source.
#[allow(clippy::disallowed_types)] // the one place the OS random source is named
pub fn os_rng() -> rand_core::OsRng {
    rand_core::OsRng
}

/// The operating system's random source as ring wants it (ring's RSA signing uses it for
/// blinding; the signatures themselves are deterministic).
pub fn ring_rng() -> ring::rand::SystemRandom {
    ring::rand::SystemRandom::new()
}
