//! Bearer secrets: generated with ≥ 256 bits of randomness, stored only as a SHA-256 hash,
//! compared in constant time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A freshly generated secret: 32 random bytes, base64url without padding (43 characters).
/// Its `Debug` prints nothing of the value.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerSecret(String);

impl BearerSecret {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The value to show once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The only form that is ever stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for BearerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerSecret([redacted])")
    }
}

/// SHA-256 of a bearer secret, the form in which secrets are stored and looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Constant-time comparison with a stored hash of any length.
    pub fn matches(&self, stored: &[u8]) -> bool {
        constant_time_eq(&self.0, stored)
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// Compares two byte strings without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn secrets_are_long_distinct_and_hash_stably() {
        let mut rng = rand_chacha_like();
        let a = BearerSecret::generate(&mut rng);
        let b = BearerSecret::generate(&mut rng);
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a, b);
        assert!(a.hash().matches(TokenHash::of(a.expose()).as_bytes()));
        assert!(!a.hash().matches(b.hash().as_bytes()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn constant_time_eq_checks_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    fn rand_chacha_like() -> impl CryptoRngCore {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }
}
