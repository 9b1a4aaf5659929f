//! Postern's protocol and domain rules, with no I/O.
//!
//! Nothing here talks to a network, a database or a file: the clock and the random source come
//! in as parameters (`now: i64` unix seconds, `rng: &mut impl CryptoRngCore`), so expiry,
//! rotation and secret generation are plain unit tests. The only place allowed to read the
//! system clock or the operating system's random source is [`system`], the one provider the
//! server hands down. CI proves this crate's dependency tree has no tokio, sqlx, axum or reqwest.

pub mod apikey;
pub mod client;
pub mod client_address;
pub mod client_auth;
pub mod device;
pub mod email;
pub mod id;
pub mod jwt;
pub mod kek;
pub mod oauth;
pub mod oidc;
pub mod password;
pub mod pkce;
pub mod rate;
pub mod secret;
pub mod signing;
pub mod system;
pub mod throttle;
pub mod time;
pub mod token;
pub mod totp;
pub mod user_agent;

pub use postern_verify::scope;
pub use rand_core::CryptoRngCore;

pub use postern_verify::UnixTime;
