//! Sessions in a JSON file, `tokens.json`, in the tool's configuration directory
//! (`$XDG_CONFIG_HOME/<app>/` on Linux, the platform's equivalent elsewhere).
//!
//! - The directory is made 0700 and the file 0600 (on Unix), so other users cannot read tokens.
//! - Writes go to a temporary file that is synced and renamed over the old one: a crash leaves
//!   the old file or the new one, never half of either.
//! - The file carries a format version. A file that cannot be read, or is in a version this code
//!   does not know, means "logged out" with a warning; the next write moves it aside
//!   (`tokens.json.unreadable-<time>`) rather than destroying what a newer version wrote.
//! - The write lock is an advisory lock on `tokens.lock` beside it (`std::fs::File::lock`, in
//!   the standard library since Rust 1.89, so no locking crate is needed).

use super::{SessionKey, StoreLock, StoredSession, TokenStore};
use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// The format version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
const FILE_NAME: &str = "tokens.json";
const LOCK_NAME: &str = "tokens.lock";

/// Sessions in `<dir>/tokens.json`.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Contents {
    version: u32,
    sessions: Vec<StoredSession>,
}

/// What reading the file found.
enum Read {
    Missing,
    Sessions(Vec<StoredSession>),
    Unreadable(String),
}

impl FileStore {
    /// The store of the tool called `app`, in the platform's configuration directory.
    pub fn for_app(app: &str) -> Result<Self, Error> {
        let base =
            dirs::config_dir().ok_or_else(|| Error::Store("no configuration directory (is HOME set?)".into()))?;
        Ok(Self::in_dir(base.join(app)))
    }

    /// A store in `dir`, created when first written.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file the sessions are in.
    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    fn read(&self) -> Read {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Read::Missing,
            Err(e) => return Read::Unreadable(format!("cannot read {}: {e}", path.display())),
        };
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        match serde_json::from_slice::<Version>(&bytes) {
            Ok(Version { version: FORMAT_VERSION }) => {}
            Ok(Version { version }) => {
                return Read::Unreadable(format!(
                    "{} is in format version {version}, which this version does not read",
                    path.display()
                ));
            }
            Err(e) => return Read::Unreadable(format!("{} is not a token file ({e})", path.display())),
        }
        match serde_json::from_slice::<Contents>(&bytes) {
            Ok(contents) => Read::Sessions(contents.sessions),
            Err(e) => Read::Unreadable(format!("{} is damaged ({e})", path.display())),
        }
    }

    /// The sessions in the file; nothing (with a warning) when it cannot be read.
    fn sessions(&self) -> Vec<StoredSession> {
        match self.read() {
            Read::Missing => Vec::new(),
            Read::Sessions(sessions) => sessions,
            Read::Unreadable(why) => {
                tracing::warn!("{why}; treating it as logged out");
                Vec::new()
            }
        }
    }

    /// Reads, changes and writes back the sessions.
    fn update(&self, change: impl FnOnce(&mut Vec<StoredSession>)) -> Result<(), Error> {
        let mut sessions = match self.read() {
            Read::Missing => Vec::new(),
            Read::Sessions(sessions) => sessions,
            Read::Unreadable(why) => {
                let aside = self.dir.join(format!("{FILE_NAME}.unreadable-{}", crate::unix_now()));
                fs::rename(self.path(), &aside)
                    .map_err(|e| Error::store("cannot move the unreadable file aside", e))?;
                tracing::warn!("{why}; moved to {}", aside.display());
                Vec::new()
            }
        };
        change(&mut sessions);
        sessions.sort_by_key(StoredSession::key);
        let bytes = serde_json::to_vec_pretty(&Contents { version: FORMAT_VERSION, sessions })
            .map_err(|e| Error::store("cannot encode the sessions", e))?;
        self.write_atomically(&bytes)
    }

    fn ensure_dir(&self) -> Result<(), Error> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir).map_err(|e| Error::store(&format!("cannot create {}", self.dir.display()), e))?;
        // A directory made earlier, by hand or by an older version, is tightened as well.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::store(&format!("cannot restrict {}", self.dir.display()), e))?;
        }
        Ok(())
    }

    fn write_atomically(&self, bytes: &[u8]) -> Result<(), Error> {
        self.ensure_dir()?;
        // A random name, created exclusively (O_CREAT|O_EXCL, which also refuses a symlink
        // planted at that name): nobody can make us write through a link or into their file.
        let temp = self.dir.join(format!(".{FILE_NAME}.{}.tmp", crate::random_token()));
        let written = (|| {
            let mut file = private_file(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, self.path())?;
            // The rename is durable once the directory is synced too.
            #[cfg(unix)]
            fs::File::open(&self.dir)?.sync_all()?;
            Ok::<_, std::io::Error>(())
        })();
        written.map_err(|e| {
            let _ = fs::remove_file(&temp);
            Error::store(&format!("cannot write {}", self.path().display()), e)
        })
    }
}

/// A new file only the owner can read and write; fails if anything exists at `path`.
fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

impl TokenStore for FileStore {
    fn load(&self, key: &SessionKey) -> Result<Option<StoredSession>, Error> {
        Ok(self.sessions().into_iter().find(|s| s.key() == *key))
    }

    fn list(&self) -> Result<Vec<StoredSession>, Error> {
        Ok(self.sessions())
    }

    fn save(&self, session: &StoredSession) -> Result<(), Error> {
        let key = session.key();
        self.update(|sessions| {
            sessions.retain(|s| s.key() != key);
            sessions.push(session.clone());
        })
    }

    fn remove(&self, key: &SessionKey) -> Result<(), Error> {
        if !self.sessions().iter().any(|s| s.key() == *key) {
            return Ok(());
        }
        self.update(|sessions| sessions.retain(|s| s.key() != *key))
    }

    fn lock(&self) -> Result<StoreLock, Error> {
        self.ensure_dir()?;
        let path = self.dir.join(LOCK_NAME);
        let file = private_file_keep(&path).map_err(|e| Error::store(&format!("cannot open {}", path.display()), e))?;
        file.lock().map_err(|e| Error::store(&format!("cannot lock {}", path.display()), e))?;
        // The lock is released when the file is closed, that is when the StoreLock is dropped.
        Ok(StoreLock::new(file))
    }
}

/// Opens (creating if needed, never truncating) a file only the owner can use.
fn private_file_keep(path: &Path) -> std::io::Result<fs::File> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(profile: &str) -> StoredSession {
        StoredSession {
            profile: profile.into(),
            issuer: "https://auth.example.org".into(),
            client_id: "cli".into(),
            access_token: format!("at-{profile}"),
            refresh_token: Some(format!("rt-{profile}")),
            expires_at: Some(2_000_000_000),
            scope: None,
            subject: None,
            display_name: None,
            logged_in_at: 1_800_000_000,
            refreshed_at: None,
        }
    }

    #[test]
    #[cfg(unix)]
    fn the_temporary_file_is_created_exclusively_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"theirs").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(private_file(&link).is_err(), "a planted link is refused");
        assert!(private_file(&target).is_err(), "so is an existing file");
        assert_eq!(fs::read(&target).unwrap(), b"theirs");
    }

    #[test]
    fn sessions_round_trip_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::in_dir(dir.path().join("app"));
        assert!(store.list().unwrap().is_empty(), "no file yet: logged out");
        store.save(&session("work")).unwrap();
        store.save(&session("home")).unwrap();
        let mut newer = session("work");
        newer.access_token = "at-2".into();
        store.save(&newer).unwrap();
        let all = store.list().unwrap();
        assert_eq!(all.iter().map(|s| s.profile.as_str()).collect::<Vec<_>>(), ["home", "work"]);
        assert_eq!(store.load(&newer.key()).unwrap().unwrap().access_token, "at-2");
        store.remove(&newer.key()).unwrap();
        store.remove(&newer.key()).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn the_directory_is_0700_and_the_file_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        fs::create_dir(&app).unwrap();
        fs::set_permissions(&app, fs::Permissions::from_mode(0o755)).unwrap();
        let store = FileStore::in_dir(&app);
        store.save(&session("p")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&app), 0o700, "a wider directory made earlier is tightened");
        assert_eq!(mode(&store.path()), 0o600);
        let leftovers: Vec<_> = fs::read_dir(&app).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(FILE_NAME)], "no temporary file left behind");
    }

    #[test]
    fn a_corrupt_or_newer_file_is_logged_out_and_kept_aside() {
        for contents in ["{not json", r#"{"version": 99, "sessions": "a new shape"}"#, r#"{"version": 1}"#] {
            let dir = tempfile::tempdir().unwrap();
            let store = FileStore::in_dir(dir.path());
            fs::write(store.path(), contents).unwrap();
            assert!(store.list().unwrap().is_empty(), "{contents}: logged out");
            assert!(store.load(&session("p").key()).unwrap().is_none());
            store.save(&session("p")).unwrap();
            assert_eq!(store.list().unwrap().len(), 1, "{contents}: written afresh");
            let aside: Vec<_> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with("tokens.json.unreadable-"))
                .collect();
            assert_eq!(aside.len(), 1, "{contents}: the old file is kept");
            assert_eq!(fs::read_to_string(dir.path().join(&aside[0])).unwrap(), contents);
        }
    }

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::in_dir(dir.path());
        let held = store.lock().unwrap();
        let other = fs::OpenOptions::new().write(true).open(dir.path().join(LOCK_NAME)).unwrap();
        assert!(matches!(other.try_lock(), Err(fs::TryLockError::WouldBlock)), "another open file must wait");
        drop(held);
        other.try_lock().unwrap();
    }
}
