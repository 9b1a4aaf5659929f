//! The one provider of real time and real randomness.
//!
//! `clippy.toml` bans `SystemTime::now` and the OS/thread RNGs everywhere else, so every other
//! function takes the time and the random source as parameters and tests can fix both.

pub use postern_verify::clock::{Clock, FixedClock, SystemClock};

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
