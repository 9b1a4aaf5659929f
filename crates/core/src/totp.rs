//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, six digits, 30-second
//! steps, what every authenticator app reads from an `otpauth://totp/` URI. A code is accepted
//! one step either side of now (clock drift), and only for a step later than the last one
//! accepted for that user, so a code cannot be used twice. Codes are compared in constant
//! time. The secret is 160 random bits (RFC 4226 §4), shown to people in base32.

use rand_core::CryptoRngCore;

/// Seconds per step (RFC 6238's default, what apps assume).
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps accepted either side of now.
pub const WINDOW: i64 = 1;

/// A TOTP secret (20 bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(…)")
    }
}

impl TotpSecret {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = vec![0u8; 20];
        rng.fill_bytes(&mut bytes);
        TotpSecret(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        TotpSecret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The secret as people type it: base32 (RFC 4648), no padding, in groups of four.
    pub fn display(&self) -> String {
        let plain = base32(&self.0);
        plain.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
    }

    /// The `otpauth://totp/` URI an authenticator app reads from a QR code: the label is
    /// `issuer:account`, and the issuer is repeated as a parameter (Google's key-URI format).
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20");
        format!(
            "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
            enc(issuer),
            enc(account),
            base32(&self.0),
            enc(issuer)
        )
    }
}

/// RFC 4648 base32, upper case, without padding.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The RFC 4226 HOTP value of `secret` at `counter`, `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = ring::hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([mac[offset] & 0x7f, mac[offset + 1], mac[offset + 2], mac[offset + 3]]);
    binary % 10u32.pow(digits)
}

/// The step `now` falls in.
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECS)
}

/// The six-digit code for `step`, zero-padded.
pub fn code_at(secret: &TotpSecret, step: i64) -> String {
    format!("{:0width$}", hotp(&secret.0, u64::try_from(step).unwrap_or(0), DIGITS), width = DIGITS as usize)
}

/// The step whose code `typed` is (within [`WINDOW`] of now and after `last_step`), or `None`.
/// Spaces and dashes in what was typed are ignored.
pub fn verify(secret: &TotpSecret, typed: &str, now: i64, last_step: i64) -> Option<i64> {
    let code: String = typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    // Every step in the window is computed and compared, whatever matched, in constant time.
    for step in (current - WINDOW)..=(current + WINDOW) {
        let expected = code_at(secret, step);
        let equal: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes()).into();
        if equal && step > last_step && found.is_none() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_test_vectors() {
        // RFC 6238 Appendix B, SHA1 mode, 8 digits, with the ASCII seed "12345678901234567890".
        let seed = b"12345678901234567890";
        for (time, expected) in [
            (59u64, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(hotp(seed, time / 30, 8), expected, "T = {time}");
        }
        // RFC 4226 Appendix D: HOTP values for counters 0 and 9, six digits.
        assert_eq!(hotp(seed, 0, 6), 755_224);
        assert_eq!(hotp(seed, 9, 6), 520_489);
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_once() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let now = 1_111_111_111; // step 37037037, 1 s into it
        let step = step_at(now);
        let code = code_at(&secret, step);
        assert_eq!(verify(&secret, &code, now, 0), Some(step));
        assert_eq!(verify(&secret, &format!("{} {}", &code[..3], &code[3..]), now, 0), Some(step), "spaces ignored");
        assert_eq!(verify(&secret, &code, now, step), None, "not twice");
        // The window edges, with the clock moved: the previous and next steps, not two away.
        assert_eq!(verify(&secret, &code_at(&secret, step - 1), now, 0), Some(step - 1));
        assert_eq!(verify(&secret, &code_at(&secret, step + 1), now, 0), Some(step + 1));
        assert_eq!(verify(&secret, &code_at(&secret, step - 2), now, 0), None);
        assert_eq!(verify(&secret, &code_at(&secret, step + 2), now, 0), None);
        let last_second_of_step = (step + 1) * STEP_SECS - 1;
        assert_eq!(verify(&secret, &code_at(&secret, step + 2), last_second_of_step, 0), None);
        assert_eq!(verify(&secret, &code_at(&secret, step + 2), last_second_of_step + 1, 0), Some(step + 2));
        assert_eq!(verify(&secret, "12345", now, 0), None);
        assert_eq!(verify(&secret, "abcdef", now, 0), None);
    }

    #[test]
    fn the_secret_is_shown_as_base32_and_in_the_key_uri() {
        // RFC 4648 §10 test vectors.
        for (plain, encoded) in [("", ""), ("f", "MY"), ("fo", "MZXQ"), ("foo", "MZXW6"), ("foobar", "MZXW6YTBOI")] {
            assert_eq!(base32(plain.as_bytes()), encoded);
        }
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(secret.display(), "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
        assert_eq!(
            secret.uri("id.example.org", "ann@example.org"),
            "otpauth://totp/id.example.org:ann%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=id.example.org&algorithm=SHA1&digits=6&period=30"
        );
    }
}
