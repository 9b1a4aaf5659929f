//! API keys: personal access tokens (act as their user) and service-account keys.
//!
//! Format, after GitHub's token format: `pst_` + a kind letter (`u` personal, `s` service
//! account) + `_` + 43 base62 characters of randomness (43 × log2 62 ≈ 256.04 bits) + 6 base62
//! characters of CRC32 over everything before them. The fixed prefix lets a secret scanner find
//! keys; the checksum lets it (and us) reject a mistyped or made-up string offline, before any
//! lookup. The key is stored only as the SHA-256 of the whole string; the first
//! [`PUBLIC_PREFIX_LEN`] characters are kept in clear to tell keys apart in lists. Generating
//! keys is `postern-core`'s (`postern_core::apikey::NewApiKey`).

use crate::secret::TokenHash;

/// The alphabet of a key's random part and checksum.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of a key's random part.
pub const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// `pst_` + kind letter + `_`.
pub const HEAD_LEN: usize = 6;
/// Length of every key.
pub const KEY_LEN: usize = HEAD_LEN + RANDOM_LEN + CHECKSUM_LEN;
/// How much of a key is kept in clear: the head and 8 random characters (about 48 bits).
pub const PUBLIC_PREFIX_LEN: usize = HEAD_LEN + 8;

/// Whose authority a key carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// A personal access token: acts as its user.
    Personal,
    /// A service account's key.
    ServiceAccount,
}

impl KeyKind {
    pub fn letter(self) -> char {
        match self {
            KeyKind::Personal => 'u',
            KeyKind::ServiceAccount => 's',
        }
    }

    pub fn from_letter(letter: char) -> Option<KeyKind> {
        match letter {
            'u' => Some(KeyKind::Personal),
            's' => Some(KeyKind::ServiceAccount),
            _ => None,
        }
    }

    /// The name used on the wire (introspection's `key_kind`) and in lists.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Personal => "personal",
            KeyKind::ServiceAccount => "service_account",
        }
    }
}

/// Why a string is not an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("an API key starts with pst_u_ or pst_s_")]
    Prefix,
    #[error("an API key is {KEY_LEN} characters of [0-9A-Za-z_]")]
    Shape,
    #[error("the API key's checksum does not match (mistyped or truncated)")]
    Checksum,
}

/// What a well-formed key string says about itself, before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey {
    pub kind: KeyKind,
    pub hash: TokenHash,
}

/// Whether a presented credential is meant as an API key (to route it; [`parse`] checks it).
pub fn looks_like_key(s: &str) -> bool {
    s.starts_with("pst_")
}

/// Checks a key's prefix, shape and checksum.
pub fn parse(s: &str) -> Result<ParsedKey, KeyFormatError> {
    let mut head = s.chars();
    let kind = match (head.next(), head.next(), head.next(), head.next(), head.next(), head.next()) {
        (Some('p'), Some('s'), Some('t'), Some('_'), Some(letter), Some('_')) => {
            KeyKind::from_letter(letter).ok_or(KeyFormatError::Prefix)?
        }
        _ => return Err(KeyFormatError::Prefix),
    };
    if s.len() != KEY_LEN || !s.as_bytes()[HEAD_LEN..].iter().all(|b| b.is_ascii_alphanumeric()) {
        return Err(KeyFormatError::Shape);
    }
    let (body, sum) = s.split_at(KEY_LEN - CHECKSUM_LEN);
    if checksum(body) != sum {
        return Err(KeyFormatError::Checksum);
    }
    Ok(ParsedKey { kind, hash: TokenHash::of(s) })
}

/// The public prefix shown in lists, `pst_u_ab12cd34…`.
pub fn display_prefix(public_prefix: &str) -> String {
    format!("{public_prefix}\u{2026}")
}

/// CRC32 of `body` as 6 base62 digits, most significant first (62⁶ > 2³²).
pub fn checksum(body: &str) -> String {
    let mut n = crc32fast::hash(body.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|b| *b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed key with this random part (43 base62 characters).
    fn key(kind: char, random: &str) -> String {
        let body = format!("pst_{kind}_{random}");
        format!("{body}{}", checksum(&body))
    }

    #[test]
    fn the_checksum_is_crc32_in_base62() {
        // CRC32("123456789") = 0xCBF43926 = 3,421,780,262, which is "3jZRME" in base62.
        assert_eq!(checksum("123456789"), "3jZRME");
        assert_eq!(checksum(""), "000000", "CRC32 of nothing is 0");
    }

    #[test]
    fn well_formed_keys_parse_and_malformed_ones_are_rejected_offline() {
        let random = "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0u1V";
        let good = key('u', random);
        assert_eq!(parse(&good), Ok(ParsedKey { kind: KeyKind::Personal, hash: TokenHash::of(&good) }));
        assert_eq!(parse(&key('s', random)).map(|k| k.kind), Ok(KeyKind::ServiceAccount));
        let mut typo = good.clone().into_bytes();
        typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(typo).unwrap_or_default();
        assert_eq!(parse(&typo), Err(KeyFormatError::Checksum));
        assert_eq!(parse(&good[..KEY_LEN - 1]), Err(KeyFormatError::Shape));
        assert_eq!(parse(&format!("{good}x")), Err(KeyFormatError::Shape));
        assert_eq!(parse(&key('x', random)), Err(KeyFormatError::Prefix));
        assert_eq!(parse(&good.replacen("pst_u_", "ghp_u_", 1)), Err(KeyFormatError::Prefix));
        assert_eq!(parse("pst_u_é"), Err(KeyFormatError::Shape));
        assert_eq!(parse(""), Err(KeyFormatError::Prefix));
        assert!(looks_like_key(&typo) && !looks_like_key("eyJhbGciOi"));
    }
}
