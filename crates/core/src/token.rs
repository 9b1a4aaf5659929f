//! Access tokens: the RFC 9068 JWT profile (its claims are `postern-verify`'s, re-exported
//! here, since a verifier reads them too) and token identifiers.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use postern_verify::token::*;
use rand_core::CryptoRngCore;

/// A token identifier (`jti`): 128 random bits, base64url.
pub fn new_jti(rng: &mut impl CryptoRngCore) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}
