//! Bearer secrets: generated with ≥ 256 bits of randomness, stored only as a SHA-256 hash,
//! compared in constant time (the hash and the comparison are `postern-verify`'s).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use postern_verify::secret::{TokenHash, constant_time_eq};
use rand_core::CryptoRngCore;

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

    fn rand_chacha_like() -> impl CryptoRngCore {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }
}
