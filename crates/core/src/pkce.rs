//! Proof Key for Code Exchange (RFC 7636), S256 only: `plain` is refused everywhere (RFC 9700
//! §2.1.1), and a verifier must match a stored challenge.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`.
pub fn verifier_syntax_ok(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(unreserved)
}

/// An S256 challenge is the base64url (no padding) of a SHA-256: exactly 43 characters.
pub fn challenge_syntax_ok(challenge: &str) -> bool {
    challenge.len() == 43 && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge`, compared in constant time.
pub fn verify(verifier: &str, challenge: &str) -> bool {
    verifier_syntax_ok(verifier) && crate::secret::constant_time_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(s256(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(verify(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }

    #[test]
    fn syntax() {
        assert!(!verifier_syntax_ok("short"));
        assert!(!verifier_syntax_ok(&"a".repeat(129)));
        assert!(!verifier_syntax_ok(&format!("{}!", "a".repeat(43))));
        assert!(verifier_syntax_ok(&"a~._-".repeat(10)));
        assert!(challenge_syntax_ok("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!challenge_syntax_ok("plain-challenge"));
        // A verifier used as its own challenge (what `plain` would do) never verifies.
        let v = "a".repeat(43);
        assert!(!verify(&v, &v));
    }
}
