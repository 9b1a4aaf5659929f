//! Random identifiers for rows (users, clients): 128 bits, lower-case hex.

use rand_core::CryptoRngCore;

/// 16 random bytes as 32 lower-case hex characters.
pub fn random_id(rng: &mut impl CryptoRngCore) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
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
}
