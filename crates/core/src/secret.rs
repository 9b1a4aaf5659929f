//! Bearer secrets: generated with ≥ 256 bits of randomness, stored only as a SHA-256 hash,
//! compared in constant time (the hash and the comparison are `postern-verify`'s).
//!
//! The secrets a busy server writes most (codes, device codes, refresh tokens, opaque access
//! tokens) are *time-ordered*: six bytes of the time they were made come before the 32 random
//! ones, and their stored hash starts with those six bytes ([`stored_hash`]). A database index on
//! the hash then takes new rows at its end, a few pages per batch of writes, instead of one
//! random page per row; with a plain SHA-256 every insert dirtied a page of its own, and every
//! dirtied page is written to the log and again to the database. The time is not a secret (the
//! token's holder knows when it got it); the 32 random bytes are, as for any other secret, and
//! 26 bytes of SHA-256 follow the time in the hash.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
pub use postern_verify::secret::{TokenHash, constant_time_eq};
use rand_core::CryptoRngCore;

/// How long a time-ordered secret is: 6 bytes of time and 32 random ones, base64url (51
/// characters; a plain secret has 43).
pub const ORDERED_LEN: usize = 51;

/// The stored form of a presented secret: for a time-ordered one ([`ORDERED_LEN`] characters),
/// its six bytes of time then the first 26 bytes of its SHA-256; for any other, its SHA-256.
/// The time is read from the secret itself, so the lookup needs nothing else, and secrets made
/// before time-ordering (43 characters) are found as they always were.
pub fn stored_hash(secret: &str) -> TokenHash {
    let mut hash = TokenHash::of(secret);
    if let Some(time) = ordered_time(secret) {
        hash.0.copy_within(..26, 6);
        hash.0[..6].copy_from_slice(&time);
    }
    hash
}

/// The six bytes of time a time-ordered secret starts with (its first eight characters).
fn ordered_time(secret: &str) -> Option<[u8; 6]> {
    let head = secret.as_bytes().get(..8).filter(|_| secret.len() == ORDERED_LEN)?;
    let mut time = [0u8; 6];
    (URL_SAFE_NO_PAD.decode_slice(head, &mut time).ok()? == 6).then_some(time)
}

/// The first six bytes of a time-ordered secret or id: the low 48 bits of `millis`, big-endian.
pub(crate) fn time_bytes(millis: i64) -> [u8; 6] {
    let mut time = [0u8; 6];
    time.copy_from_slice(&millis.to_be_bytes()[2..]);
    time
}

/// A freshly generated secret: 32 random bytes, base64url without padding (43 characters), or
/// with the time before them ([`BearerSecret::generate_ordered`], 51 characters).
/// Its `Debug` prints nothing of the value.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerSecret(String);

impl BearerSecret {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A secret for a row written often: `millis` (the unix time in milliseconds, its low 48
    /// bits, big-endian) then 32 random bytes; see the module's documentation.
    pub fn generate_ordered(rng: &mut impl CryptoRngCore, millis: i64) -> Self {
        let mut bytes = [0u8; 38];
        bytes[..6].copy_from_slice(&time_bytes(millis));
        rng.fill_bytes(&mut bytes[6..]);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The value to show once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The only form that is ever stored ([`stored_hash`]).
    pub fn hash(&self) -> TokenHash {
        stored_hash(&self.0)
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

    #[test]
    fn ordered_secrets_start_with_their_time_and_so_do_their_hashes() {
        let mut rng = rand_chacha_like();
        let millis = 1_796_000_000_123;
        let a = BearerSecret::generate_ordered(&mut rng, millis);
        let b = BearerSecret::generate_ordered(&mut rng, millis + 1);
        assert_eq!(a.expose().len(), ORDERED_LEN);
        assert_ne!(a.expose()[8..], b.expose()[8..]);
        let decoded = URL_SAFE_NO_PAD.decode(a.expose()).unwrap();
        assert_eq!(decoded[..6], millis.to_be_bytes()[2..]);
        // The hash: the time, then the first 26 bytes of SHA-256 of the whole secret.
        let (ha, hb) = (a.hash(), b.hash());
        assert_eq!(ha.0[..6], millis.to_be_bytes()[2..]);
        assert_eq!(ha.0[6..], TokenHash::of(a.expose()).0[..26]);
        assert!(ha.0 < hb.0, "a later secret's hash sorts after");
        assert!(stored_hash(a.expose()).matches(ha.as_bytes()), "a presented secret finds its row");
        assert!(!stored_hash(b.expose()).matches(ha.as_bytes()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn other_secrets_keep_their_plain_sha256() {
        let mut rng = rand_chacha_like();
        let plain = BearerSecret::generate(&mut rng);
        assert_eq!(plain.hash(), TokenHash::of(plain.expose()), "43 characters: as before");
        let ordered = BearerSecret::generate_ordered(&mut rng, 5);
        // Not a time-ordered secret: another length, or a start that is not base64url.
        for other in
            [&ordered.expose()[1..], &format!("{}!", ordered.expose()), &format!("!{}", &ordered.expose()[1..])]
        {
            assert_eq!(stored_hash(other), TokenHash::of(other), "{other}");
        }
        assert_eq!(stored_hash(""), TokenHash::of(""));
        assert_eq!(stored_hash("é"), TokenHash::of("é"));
    }

    fn rand_chacha_like() -> impl CryptoRngCore {
        rand_chacha::ChaCha20Rng::seed_from_u64(7)
    }
}
