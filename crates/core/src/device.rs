//! The Device Authorization Grant's user codes (RFC 8628 §6.1): eight characters from the
//! consonant alphabet `BCDFGHJKLMNPQRSTVWXZ` (no vowels, so no words; no look-alike digits),
//! shown as `XXXX-XXXX`; entry ignores case, dashes and spaces. 20^8 ≈ 2.6 × 10^10 codes, with
//! guessing bounded by a per-IP and per-session limit.

use rand_core::CryptoRngCore;

pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const LENGTH: usize = 8;

/// A new user code in its canonical form (eight letters, no dash), chosen without modulo bias.
pub fn generate_user_code(rng: &mut impl CryptoRngCore) -> String {
    let mut out = String::with_capacity(LENGTH);
    while out.len() < LENGTH {
        let mut b = [0u8; 1];
        rng.fill_bytes(&mut b);
        // 240 = 12 × 20: reject the top 16 values so each letter is equally likely.
        if b[0] < 240 {
            out.push(ALPHABET[(b[0] % 20) as usize] as char);
        }
    }
    out
}

/// `XXXX-XXXX` for display.
pub fn display(code: &str) -> String {
    if code.len() == LENGTH { format!("{}-{}", &code[..4], &code[4..]) } else { code.to_owned() }
}

/// The canonical form of what a user typed, or `None` when it cannot be a user code.
pub fn normalize(input: &str) -> Option<String> {
    let code: String =
        input.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')).map(|c| c.to_ascii_uppercase()).collect();
    (code.len() == LENGTH && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn codes_use_the_alphabet_and_normalize_back() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(21);
        for _ in 0..200 {
            let code = generate_user_code(&mut rng);
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            let shown = display(&code);
            assert_eq!(shown.len(), 9);
            assert_eq!(normalize(&shown.to_lowercase()).as_deref(), Some(code.as_str()));
            assert_eq!(normalize(&format!(" {} {} ", &code[..4], &code[4..])).as_deref(), Some(code.as_str()));
        }
    }

    #[test]
    fn impossible_inputs_are_refused() {
        for bad in ["", "BCDF-GHJ", "BCDF-GHJKL", "BCDF-GHJA", "BCDF-GHJ1", "ÄBCD-FGHJ"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
