//! API keys: generating them. Their format, parsing and checksum are `postern-verify`'s
//! (an application's guard recognises keys too), re-exported here.

use crate::secret::TokenHash;
pub use postern_verify::apikey::*;
use rand_core::CryptoRngCore;

/// A newly generated key. `Debug` prints only the public prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiKey {
    key: String,
    pub kind: KeyKind,
}

impl NewApiKey {
    pub fn generate(kind: KeyKind, rng: &mut impl CryptoRngCore) -> NewApiKey {
        let mut key = String::with_capacity(KEY_LEN);
        key.push_str("pst_");
        key.push(kind.letter());
        key.push('_');
        let mut filled = 0;
        let mut bytes = [0u8; 64];
        while filled < RANDOM_LEN {
            rng.fill_bytes(&mut bytes);
            // Rejection sampling keeps every character uniform: 248 = 4 × 62.
            for b in bytes.iter().filter(|b| **b < 248).take(RANDOM_LEN - filled) {
                key.push(BASE62[usize::from(*b % 62)] as char);
                filled += 1;
            }
        }
        key.push_str(&checksum(&key));
        NewApiKey { key, kind }
    }

    /// The key, to show once to its owner.
    pub fn expose(&self) -> &str {
        &self.key
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.key)
    }

    pub fn public_prefix(&self) -> &str {
        &self.key[..PUBLIC_PREFIX_LEN]
    }
}

impl std::fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NewApiKey({}…)", self.public_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn generated_keys_have_the_format_and_parse_back() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for kind in [KeyKind::Personal, KeyKind::ServiceAccount] {
            let key = NewApiKey::generate(kind, &mut rng);
            let s = key.expose();
            assert_eq!(s.len(), KEY_LEN);
            assert!(s.starts_with(&format!("pst_{}_", kind.letter())));
            assert!(s[HEAD_LEN..].bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(parse(s), Ok(ParsedKey { kind, hash: key.hash() }));
            assert_eq!(key.public_prefix(), &s[..14]);
            assert!(!format!("{key:?}").contains(&s[14..]), "Debug shows only the prefix");
        }
        let a = NewApiKey::generate(KeyKind::Personal, &mut rng);
        assert_ne!(a, NewApiKey::generate(KeyKind::Personal, &mut rng));
    }
}
