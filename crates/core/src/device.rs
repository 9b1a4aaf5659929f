//! The Device Authorization Grant's user codes (RFC 8628 §6.1): eight characters from the
//! consonant alphabet `BCDFGHJKLMNPQRSTVWXZ` (no vowels, so no words; no look-alike digits),
//! shown as `XXXX-XXXX`; entry ignores case, dashes and spaces. 20^8 ≈ 2.6 × 10^10 codes, with
//! guessing bounded by a per-IP and per-session limit.

use rand_core::CryptoRngCore;

pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const LENGTH: usize = 8;

/// A user code in its canonical form (eight letters of [`ALPHABET`], no dash). Only
/// [`UserCode::generate`] and [`UserCode::parse`] make one, so a value of this type is always a
/// well-formed code, whichever layer it reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserCode(String);

impl UserCode {
    /// A new code, chosen without modulo bias.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut out = String::with_capacity(LENGTH);
        // One draw from the random source covers a code unless many bytes are rejected (each
        // draw is a system call with the OS source).
        let mut bytes = [0u8; 2 * LENGTH];
        while out.len() < LENGTH {
            rng.fill_bytes(&mut bytes);
            // 240 = 12 × 20: reject the top 16 values so each letter is equally likely.
            for b in bytes.iter().filter(|b| **b < 240).take(LENGTH - out.len()) {
                out.push(ALPHABET[(b % 20) as usize] as char);
            }
        }
        UserCode(out)
    }

    /// What a person typed (case, dashes and spaces ignored), or `None` when it cannot be a
    /// user code.
    pub fn parse(input: &str) -> Option<Self> {
        let code: String =
            input.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')).map(|c| c.to_ascii_uppercase()).collect();
        (code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(UserCode(code))
    }

    /// The canonical form (what is hashed and carried in URLs).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `XXXX-XXXX`, for people.
    pub fn display(&self) -> String {
        format!("{}-{}", &self.0[..4], &self.0[4..])
    }
}

impl std::fmt::Display for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn codes_use_the_alphabet_and_normalize_back() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
        for _ in 0..200 {
            let code = UserCode::generate(&mut rng);
            assert_eq!(code.as_str().len(), 8);
            assert!(code.as_str().bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            let shown = code.display();
            assert_eq!(shown.len(), 9);
            assert_eq!(UserCode::parse(&shown.to_lowercase()).as_ref(), Some(&code));
            let c = code.as_str();
            assert_eq!(UserCode::parse(&format!(" {} {} ", &c[..4], &c[4..])).as_ref(), Some(&code));
        }
    }

    /// Hands out the bytes it was given, in order, and counts its draws.
    struct Scripted {
        bytes: Vec<u8>,
        draws: usize,
    }

    impl rand_core::RngCore for Scripted {
        fn next_u32(&mut self) -> u32 {
            unreachable!("user codes draw bytes")
        }
        fn next_u64(&mut self) -> u64 {
            unreachable!("user codes draw bytes")
        }
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            self.draws += 1;
            let rest = self.bytes.split_off(dest.len());
            dest.copy_from_slice(&self.bytes);
            self.bytes = rest;
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
            self.fill_bytes(dest);
            Ok(())
        }
    }

    impl rand_core::CryptoRng for Scripted {}

    #[test]
    fn a_code_is_one_draw_and_biased_bytes_are_skipped() {
        // 0 → B, 19 → Z, 20 → B again (20 mod 20), 239 → Z; 240 and above are refused.
        let mut first = vec![0, 240, 19, 255, 20, 239, 1, 2, 3, 4];
        first.resize(16, 0);
        let mut rng = Scripted { bytes: first, draws: 0 };
        assert_eq!(UserCode::generate(&mut rng).as_str(), "BZBZCDFG");
        assert_eq!(rng.draws, 1);

        // Too few usable bytes in the first draw: the rest come from the next one.
        let mut bytes = vec![250; 13];
        bytes.extend([5, 6, 7]);
        bytes.extend([8, 9, 10, 11, 12]);
        bytes.resize(32, 0);
        let mut rng = Scripted { bytes, draws: 0 };
        assert_eq!(UserCode::generate(&mut rng).as_str(), "HJKLMNPQ");
        assert_eq!(rng.draws, 2);
    }

    #[test]
    fn impossible_inputs_are_refused() {
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "BCDF-GHJA", "BCDF-GHJ1", "ÄBCD-FGHJ"] {
            assert_eq!(UserCode::parse(bad), None, "{bad}");
        }
    }
}
