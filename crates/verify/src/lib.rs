//! What checking a Postern credential needs, and nothing more.
//!
//! The guard that protects an application verifies JWT access tokens with the issuer's
//! published keys, checks scopes and recognises API keys; it never signs, seals or hashes a
//! password. So those checks live here, with ring (for SHA-256 and signature verification) as
//! the only cryptography, and `postern-core` builds the issuing side on top of this crate and
//! re-exports it. An application that links the guard compiles neither Argon2, ChaCha20, the
//! `rsa` crate nor the key-encryption code.

pub mod apikey;
pub mod clock;
pub mod jwt;
pub mod key;
pub mod scope;
pub mod secret;
pub mod token;

/// Unix time in whole seconds, the only time unit the domain and storage use.
pub type UnixTime = i64;
