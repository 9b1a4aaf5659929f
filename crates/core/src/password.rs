//! Password hashing with Argon2id (RFC 9106), PHC string format.
//!
//! The defaults are OWASP's recommended minimum (19 MiB memory, 2 iterations, parallelism 1).
//! These functions are CPU-bound and synchronous; the server runs them on a bounded blocking
//! pool, never on the async threads. For unknown accounts, callers verify against a dummy hash
//! so that the response time does not tell whether an account exists.
//!
//! A verification needs `m` KiB of working memory. [`Argon2Memory`] lets a worker keep that
//! memory and reuse it: allocating 19 MiB per sign-in, on whichever thread runs it, leaves the
//! allocator holding hundreds of MiB after a burst of sign-ins. Its allocation is made large
//! enough that the system allocator always maps it on its own and unmaps it when it is freed
//! (see [`MAPPED_BLOCKS`]), so freeing it gives the memory back.

use argon2::password_hash::{self, PasswordHash, SaltString};
use argon2::{Argon2, Block, Params, Version};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};

/// Bounds on what a password may be: at least 8 characters (NIST SP 800-63B), at most 1024
/// bytes so that hashing cost stays bounded.
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Params {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP Password Storage Cheat Sheet: m=19456 KiB, t=2, p=1.
    fn default() -> Self {
        Self { memory_kib: 19_456, iterations: 2, parallelism: 1 }
    }
}

impl Argon2Params {
    /// Deliberately weak parameters that make tests fast. Never for production.
    pub const INSECURE_FOR_TESTS: Argon2Params = Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 };

    fn hasher(&self) -> Result<Argon2<'static>, PasswordError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| PasswordError::Params(e.to_string()))?;
        Ok(Argon2::new(argon2::Algorithm::Argon2id, Version::V0x13, params))
    }

    pub fn validate(&self) -> Result<(), PasswordError> {
        self.hasher().map(|_| ())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("this password is among the most common ones; choose another")]
    Common,
    #[error("the password must not contain your email address")]
    ContainsEmail,
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing failed")]
    Hash,
}

/// The built-in list of the most common passwords (eight characters or more), lower case.
const COMMON: &str = include_str!("common_passwords.txt");

/// Checks a new password against the policy before it is hashed: 8 characters to 1024 bytes,
/// not one of the most common passwords (case-insensitively), and not containing the account's
/// email address or the part of it before the `@` (when that part has four characters or
/// more).
pub fn check_new_password(password: &str, email: Option<&str>) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    let lower = password.to_lowercase();
    if COMMON.lines().any(|line| !line.starts_with('#') && line == lower) {
        return Err(PasswordError::Common);
    }
    if let Some(email) = email.map(str::trim).filter(|e| !e.is_empty()) {
        let email = email.to_lowercase();
        let local = email.split('@').next().unwrap_or_default();
        if lower.contains(&email) || (local.chars().count() >= 4 && lower.contains(local)) {
            return Err(PasswordError::ContainsEmail);
        }
    }
    Ok(())
}

/// Hashes a password with a fresh random salt; returns the PHC string. The working memory is
/// an [`Argon2Memory`] of its own, freed (and given back) on return.
pub fn hash_password(
    password: &str,
    params: &Argon2Params,
    rng: &mut impl CryptoRngCore,
) -> Result<String, PasswordError> {
    let salt = SaltString::generate(rng);
    let hasher = params.hasher()?;
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt.decode_b64(&mut salt_bytes).map_err(|_| PasswordError::Hash)?;
    let mut memory = Argon2Memory::default();
    let blocks = memory.blocks(hasher.params().block_count());
    let output = password_hash::Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        hasher.hash_password_into_with_memory(password.as_bytes(), raw_salt, out, &mut *blocks).map_err(Into::into)
    })
    .map_err(|_| PasswordError::Hash)?;
    let phc = PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: password_hash::ParamsString::try_from(hasher.params()).map_err(|_| PasswordError::Hash)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Verifies a password against a stored PHC string, with the parameters recorded in it.
/// A malformed stored hash verifies nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_in(password, phc, &mut Argon2Memory::default())
}

/// The least room an [`Argon2Memory`] reserves, in 1 KiB blocks: just over 32 MiB, the most
/// that glibc's allocator ever serves from its arenas. Smaller blocks may come from an arena
/// (its threshold rises to the size of the largest mapped block freed so far) and stay resident
/// after they are freed; blocks this large are always mapped, and unmapped when freed. Only the
/// `m` KiB a hash uses are ever touched, so the rest costs address space, not memory.
pub const MAPPED_BLOCKS: usize = 32 * 1024 + 4;

/// Working memory for Argon2, kept by one worker between verifications. It grows to the
/// largest `m` verified with and stays allocated until dropped.
#[derive(Default)]
pub struct Argon2Memory(Vec<Block>);

impl Argon2Memory {
    /// The first `n` blocks, allocated (never less than [`MAPPED_BLOCKS`] reserved) if needed.
    fn blocks(&mut self, n: usize) -> &mut [Block] {
        if self.0.len() < n {
            if self.0.capacity() < n {
                // A fresh allocation rather than a growth: nothing to copy.
                self.0 = Vec::with_capacity(n.max(MAPPED_BLOCKS));
            }
            self.0.resize(n, Block::default());
        }
        &mut self.0[..n]
    }
}

impl std::fmt::Debug for Argon2Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Argon2Memory({} KiB)", self.0.len())
    }
}

/// [`verify_password`] in `memory`, which allocates nothing once `memory` is large enough.
pub fn verify_password_in(password: &str, phc: &str, memory: &mut Argon2Memory) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else { return false };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let (Ok(params), Ok(algorithm)) = (Params::try_from(&parsed), argon2::Algorithm::try_from(parsed.algorithm)) else {
        return false;
    };
    let Ok(version) = parsed.version.map(Version::try_from).transpose() else { return false };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else { return false };
    let blocks = memory.blocks(params.block_count());
    let mut out = [0u8; 64];
    let Some(out) = out.get_mut(..expected.len()) else { return false };
    let hasher = Argon2::new(algorithm, version.unwrap_or_default(), params);
    if hasher.hash_password_into_with_memory(password.as_bytes(), salt, out, blocks).is_err() {
        return false;
    }
    subtle::ConstantTimeEq::ct_eq(&*out, expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn hash_then_verify() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
        let p = Argon2Params::INSECURE_FOR_TESTS;
        let h = hash_password("correct horse", &p, &mut rng).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horsE", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert_ne!(h, hash_password("correct horse", &p, &mut rng).unwrap(), "salts differ");
        // The argon2 crate's own hashes (stored by earlier versions) verify too.
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::generate(&mut rng);
        let theirs = Argon2::default().hash_password(b"correct horse", &salt).unwrap().to_string();
        assert!(verify_password("correct horse", &theirs) && !verify_password("correct horsE", &theirs));
    }

    #[test]
    fn reused_memory_verifies_the_same() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(10);
        let small = hash_password("correct horse", &Argon2Params::INSECURE_FOR_TESTS, &mut rng).unwrap();
        let larger = Argon2Params { memory_kib: 256, iterations: 2, parallelism: 2 };
        let large = hash_password("battery staple", &larger, &mut rng).unwrap();
        let mut memory = Argon2Memory::default();
        for _ in 0..2 {
            assert!(verify_password_in("correct horse", &small, &mut memory));
            assert!(verify_password_in("battery staple", &large, &mut memory));
            assert!(!verify_password_in("battery stapler", &large, &mut memory));
            assert!(!verify_password_in("correct horse", &large, &mut memory));
        }
        assert_eq!(memory.0.len(), 256, "grown to the largest m, then kept");
        assert!(memory.0.capacity() >= MAPPED_BLOCKS, "reserved large enough to be mapped on its own");
        assert!(verify_password_in("correct horse", &small, &mut memory), "a smaller m after a larger one");
        // Hashes made by the argon2 crate's own verifier agree.
        use argon2::password_hash::PasswordVerifier;
        let parsed = PasswordHash::new(&large).unwrap();
        assert!(Argon2::default().verify_password(b"battery staple", &parsed).is_ok());
        assert!(!verify_password_in("x", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ", &mut memory), "no hash part");
    }

    #[test]
    fn policy_and_parameters_are_checked() {
        assert_eq!(check_new_password("short", None), Err(PasswordError::TooShort));
        assert_eq!(check_new_password(&"x".repeat(2000), None), Err(PasswordError::TooLong));
        assert_eq!(check_new_password("long enough", None), Ok(()));
        for common in ["password123", "PassWord123", "qwertyuiop", "iloveyou"] {
            assert_eq!(check_new_password(common, None), Err(PasswordError::Common), "{common}");
        }
        assert_eq!(check_new_password("#  the most", None), Ok(()), "the list's comment is not a password");
        let email = Some("Ann.Smith@example.org");
        assert_eq!(check_new_password("my ann.smith secret", email), Err(PasswordError::ContainsEmail));
        assert_eq!(check_new_password("ANN.SMITH@EXAMPLE.ORG", email), Err(PasswordError::ContainsEmail));
        assert_eq!(check_new_password("annual report 2026", email), Ok(()), "only the whole local part counts");
        assert_eq!(
            check_new_password("bob is here!", Some("bob@example.org")),
            Ok(()),
            "short local parts are not checked"
        );
        assert!(Argon2Params { memory_kib: 1, iterations: 0, parallelism: 1 }.validate().is_err());
        assert!(Argon2Params::default().validate().is_ok());
    }
}
