//! The key-encryption key (KEK): encrypts at rest the secrets that must be recovered
//! (signing keys now, TOTP seeds later) with XChaCha20-Poly1305.
//!
//! Sealed form: `version byte (1) || 24-byte nonce || ciphertext+tag`. The associated data
//! names what is sealed (for example `signing-key:<kid>`), so a ciphertext cannot be moved
//! to another row and still open.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

const SEALED_V1: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KekError {
    #[error("the secret key must be 32 bytes, encoded in base64 or hex (got {0} bytes)")]
    BadLength(usize),
    #[error("the secret key is not valid base64 or hex")]
    BadEncoding,
    #[error("data could not be sealed")]
    Seal,
    #[error("sealed data could not be opened: wrong key-encryption key or corrupted data")]
    Open,
}

/// A 256-bit key-encryption key. `Debug` never prints it; it is wiped from memory on drop.
#[derive(Clone)]
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Parses the textual form: 64 hex digits, or 32 bytes in base64 (standard or url-safe).
    /// Surrounding whitespace (a trailing newline in a key file) is ignored.
    pub fn parse(text: &str) -> Result<Self, KekError> {
        let text = text.trim();
        let bytes = Zeroizing::new(if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            decode_hex(text).ok_or(KekError::BadEncoding)?
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
                .map_err(|_| KekError::BadEncoding)?
        });
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KekError::BadLength(bytes.len()))?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// The textual form written to a generated key file (standard base64).
    /// A key for one purpose, derived from this one (HMAC-SHA256 of `label`), so that one
    /// secret serves several jobs without one leaking into another.
    pub fn derive(&self, label: &[u8]) -> KeyEncryptionKey {
        Self::derived_from(self.0.as_ref(), label)
    }

    /// A sealing key derived from other secret material (HMAC-SHA256 keyed with `secret`): a
    /// refresh token seals its own successor, so that only whoever holds the token can open it.
    pub fn derived_from(secret: &[u8], label: &[u8]) -> KeyEncryptionKey {
        Self(Zeroizing::new(keyed_hash(secret, label)))
    }

    /// HMAC-SHA256 of `message` under this key.
    pub fn keyed_hash(&self, message: &[u8]) -> [u8; 32] {
        keyed_hash(self.0.as_ref(), message)
    }

    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.0.as_ref()))
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8], rng: &mut impl CryptoRngCore) -> Result<Vec<u8>, KekError> {
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let ct =
            cipher.encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad }).map_err(|_| KekError::Seal)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEALED_V1 {
            return Err(KekError::Open);
        }
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| KekError::Open)
    }
}

fn keyed_hash(key: &[u8], message: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// What the database keeps to tell whether a node was given the right KEK.
pub const KEK_CHECK_AAD: &[u8] = b"postern:kek-check";
pub const KEK_CHECK_PLAINTEXT: &[u8] = b"postern key-encryption key check v1";

#[cfg(test)]
mod tests {
    #[test]
    fn derived_keys_differ_by_purpose_and_seal_on_their_own() {
        let kek = KeyEncryptionKey::parse(&"ab".repeat(32)).unwrap();
        let (a, b) = (kek.derive(b"one"), kek.derive(b"two"));
        assert_ne!(a.to_text().as_str(), b.to_text().as_str());
        assert_eq!(a.to_text().as_str(), kek.derive(b"one").to_text().as_str(), "stable");
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let token = KeyEncryptionKey::derived_from(b"a refresh token", b"successor");
        let sealed = token.seal(b"pair", b"aad", &mut rng).unwrap();
        assert_eq!(token.open(&sealed, b"aad").unwrap().as_slice(), b"pair");
        assert!(kek.open(&sealed, b"aad").is_err(), "the KEK cannot open it");
        assert!(KeyEncryptionKey::derived_from(b"another token", b"successor").open(&sealed, b"aad").is_err());
        // RFC 4231 test case 2.
        let mac = keyed_hash(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    use super::*;
    use rand_core::SeedableRng;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(1)
    }

    #[test]
    fn seal_and_open_round_trip_bound_to_aad() {
        let mut rng = rng();
        let kek = KeyEncryptionKey::generate(&mut rng);
        let sealed = kek.seal(b"private key", b"signing-key:a", &mut rng).unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"private key"));
        assert_eq!(kek.open(&sealed, b"signing-key:a").as_deref().map(Vec::as_slice), Ok(&b"private key"[..]));
        assert_eq!(kek.open(&sealed, b"signing-key:b"), Err(KekError::Open));
        let other = KeyEncryptionKey::generate(&mut rng);
        assert_eq!(other.open(&sealed, b"signing-key:a"), Err(KekError::Open));
        assert_eq!(kek.open(&sealed[..10], b"signing-key:a"), Err(KekError::Open));
    }

    #[test]
    fn parses_base64_and_hex_and_refuses_wrong_lengths() {
        let kek = KeyEncryptionKey::generate(&mut rng());
        let text = kek.to_text();
        let again = KeyEncryptionKey::parse(&format!("{}\n", text.as_str())).map(|k| k.to_text());
        assert_eq!(again.as_deref().map(|s| s.as_str()), Ok(text.as_str()));
        assert!(KeyEncryptionKey::parse(&"ab".repeat(32)).is_ok());
        assert_eq!(KeyEncryptionKey::parse("c2hvcnQ=").err(), Some(KekError::BadLength(5)));
        assert_eq!(KeyEncryptionKey::parse("not base64 at all!").err(), Some(KekError::BadEncoding));
        assert!(!format!("{kek:?}").contains(text.as_str()));
    }
}
