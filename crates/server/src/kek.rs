//! Where the key-encryption key comes from, and the check that it is the right one.
//!
//! Order: `secret_key` / `secret_key_file` from the configuration; otherwise, on SQLite, the
//! file `secret.key` in the data directory, generated (mode 0600) on first start. On
//! PostgreSQL the key must be given: nodes sharing a database must share the key, and a key
//! generated on one node's disk would lock the others out of the signing keys.
//!
//! The database keeps a value sealed with the key; a node given a different key refuses to
//! start instead of failing later on every signature.

use crate::config::Config;
use postern_core::kek::{KEK_CHECK_AAD, KEK_CHECK_PLAINTEXT, KeyEncryptionKey};
use postern_store::{Backend, Store};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the key in use came from (for the start-up banner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KekSource {
    Configured,
    File(PathBuf),
    Generated(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum KekError {
    #[error("secret_key: {0}")]
    Invalid(postern_core::kek::KekError),
    #[error(
        "PostgreSQL needs an explicit key-encryption key: set POSTERN_SECRET_KEY (or POSTERN_SECRET_KEY_FILE) to 32 random bytes in base64, for example the output of `head -c 32 /dev/urandom | base64`, and give every node sharing this database the same key"
    )]
    MissingForPostgres,
    #[error("key file {path}: {source}")]
    File { path: PathBuf, source: std::io::Error },
    #[error("key file {0}: {1}")]
    BadFile(PathBuf, postern_core::kek::KekError),
    #[error(
        "the key-encryption key does not match the one this database was set up with; start with the original POSTERN_SECRET_KEY (or secret.key file)"
    )]
    Mismatch,
    #[error("database: {0}")]
    Store(#[from] postern_store::StoreError),
}

/// Finds or creates the key, without touching the database.
pub fn resolve(config: &Config, backend: Backend) -> Result<(KeyEncryptionKey, KekSource), KekError> {
    if let Some(secret) = &config.secret_key {
        let kek = KeyEncryptionKey::parse(secret.expose()).map_err(KekError::Invalid)?;
        return Ok((kek, KekSource::Configured));
    }
    if backend == Backend::Postgres {
        return Err(KekError::MissingForPostgres);
    }
    let path = config.data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let kek = KeyEncryptionKey::parse(&text).map_err(|e| KekError::BadFile(path.clone(), e))?;
            Ok((kek, KekSource::File(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let kek = KeyEncryptionKey::generate(&mut postern_core::system::os_rng());
            match write_private_file(&path, kek.to_text().as_bytes()) {
                Ok(()) => Ok((kek, KekSource::Generated(path))),
                // Another process (an admin command, a second server) created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|source| KekError::File { path: path.clone(), source })?;
                    let kek = KeyEncryptionKey::parse(&text).map_err(|e| KekError::BadFile(path.clone(), e))?;
                    Ok((kek, KekSource::File(path)))
                }
                Err(source) => Err(KekError::File { path, source }),
            }
        }
        Err(source) => Err(KekError::File { path, source }),
    }
}

/// Checks the key against the value sealed in the database (recording it on first start).
pub async fn verify(store: &Store, kek: &KeyEncryptionKey, now: i64) -> Result<(), KekError> {
    let sealed =
        kek.seal(KEK_CHECK_PLAINTEXT, KEK_CHECK_AAD, &mut postern_core::system::os_rng()).map_err(KekError::Invalid)?;
    let stored = store.init_kek_check(&sealed, now).await?;
    match kek.open(&stored, KEK_CHECK_AAD) {
        Ok(plain) if plain.as_slice() == KEK_CHECK_PLAINTEXT => Ok(()),
        _ => Err(KekError::Mismatch),
    }
}

/// Creates `path` with mode 0600, failing if it exists (so two processes never both write it).
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.write_all(b"\n")?;
    file.sync_all()
}
