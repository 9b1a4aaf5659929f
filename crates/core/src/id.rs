//! Random identifiers for rows (users, clients): 128 bits, lower-case hex. Rows made at a high
//! rate (refresh-token families) take a time-ordered one instead, so that a database index on
//! it takes new rows at its end rather than on a random page (see `crate::secret`).

use rand_core::CryptoRngCore;

/// 16 random bytes as 32 lower-case hex characters.
pub fn random_id(rng: &mut impl CryptoRngCore) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The unix time in milliseconds (its low 48 bits) then 10 random bytes, as 32 lower-case hex
/// characters: later ids sort after earlier ones (to the millisecond), and 80 random bits keep
/// ids made in the same millisecond apart. An id is not a secret; it tells when it was made.
pub fn ordered_id(rng: &mut impl CryptoRngCore, millis: i64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&crate::secret::time_bytes(millis));
    rng.fill_bytes(&mut bytes[6..]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use rand_core::SeedableRng;

    #[test]
    fn ids_are_hex_and_distinct() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let a = super::random_id(&mut rng);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_ne!(a, super::random_id(&mut rng));
    }

    #[test]
    fn ordered_ids_sort_by_time_and_stay_distinct() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let millis = 1_796_000_000_123;
        let (a, b) = (super::ordered_id(&mut rng, millis), super::ordered_id(&mut rng, millis));
        let later = super::ordered_id(&mut rng, millis + 1);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(&a[..12], format!("{millis:012x}"));
        assert_ne!(a, b);
        assert!(a < later && b < later);
    }
}
