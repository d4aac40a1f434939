//! Where access tokens are kept so that several clients, or several processes, share one.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clock::to_unix_millis;
use crate::error::{Error, ErrorKind, Result};
use crate::token::{AccessToken, hex12};

/// The name under which a token is stored.
///
/// Derived from public values and a hash of the refresh token, never the secret itself, so that
/// clients with the same grant find the same entry and the store's listing reveals nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StoreKey(String);

impl StoreKey {
    /// A key made of ASCII letters, digits, `-`, `_` and `.` (1 to 200 characters).
    pub fn new(key: &str) -> Result<Self> {
        let ok = !key.is_empty()
            && key.len() <= 200
            && !key.starts_with('.')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(StoreKey(key.to_owned()))
        } else {
            Err(Error::config(format!(
                "token store key {key:?} must be 1-200 characters of A-Z, a-z, 0-9, '-', '_', '.'"
            )))
        }
    }

    /// The key for a grant: `namespace`, the client id, and a hash of the refresh token.
    pub fn derive(namespace: &str, client_id: &str, refresh_token: &SecretString) -> Self {
        let clean = |s: &str| -> String {
            s.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .take(48)
                .collect()
        };
        let mut h = Sha256::new();
        h.update(client_id.as_bytes());
        h.update([0]);
        h.update(refresh_token.expose_secret().as_bytes());
        StoreKey(format!(
            "{}-{}-{}",
            clean(namespace),
            clean(client_id),
            hex12(&h.finalize())
        ))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.0)
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a store keeps per key: the current access token and when recent refreshes happened
/// (so that a vendor's refresh-rate limit is respected across every client sharing the store).
#[derive(Clone, Debug)]
pub struct StoredToken {
    /// The current access token.
    pub token: AccessToken,
    /// Wall-clock times (Unix milliseconds) of recent refreshes, oldest first.
    pub refreshes: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct StoredRecord {
    access_token: String,
    expires_at_ms: Option<u64>,
    #[serde(default)]
    refreshes_ms: Vec<u64>,
}

impl StoredToken {
    /// Serializes the record (the token in clear: protect where it is written).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let record = StoredRecord {
            access_token: self.token.secret().expose_secret().to_owned(),
            expires_at_ms: self.token.expires_at().map(to_unix_millis),
            refreshes_ms: self.refreshes.clone(),
        };
        serde_json::to_vec(&record)
            .map_err(|e| Error::new(ErrorKind::Storage, "could not encode a token").with_source(e))
    }

    /// Parses a record written by [`StoredToken::to_json`].
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // The decode error is not attached as a source: serde's message may quote the input.
        let record: StoredRecord = serde_json::from_slice(bytes)
            .map_err(|_| Error::new(ErrorKind::Storage, "a stored token record is corrupt"))?;
        let expires_at = match record.expires_at_ms {
            Some(ms) => Some(
                std::time::UNIX_EPOCH
                    .checked_add(Duration::from_millis(ms))
                    .ok_or_else(|| {
                        Error::new(ErrorKind::Storage, "a stored token record is corrupt")
                    })?,
            ),
            None => None,
        };
        Ok(StoredToken {
            token: AccessToken::new(SecretString::from(record.access_token), expires_at),
            refreshes: record.refreshes_ms,
        })
    }
}

/// Proof that the holder may refresh the token of one key; released when dropped.
#[must_use = "the lease is released when dropped"]
pub struct StoreLease {
    _guard: Box<dyn Send + Sync>,
}

impl StoreLease {
    /// Wraps whatever releases the lease when dropped (a lock guard, a file handle, ...).
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        StoreLease {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for StoreLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLease")
    }
}

/// Keeps access tokens so that several clients (or processes) share one instead of each minting
/// their own.
///
/// A refresher takes the key's [`lock`](TokenStore::lock), loads the entry again (someone else
/// may have refreshed meanwhile), refreshes only if it still must, saves, and drops the lease.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The entry of `key`, if any.
    async fn load(&self, key: &StoreKey) -> Result<Option<StoredToken>>;
    /// Replaces the entry of `key`.
    async fn save(&self, key: &StoreKey, entry: &StoredToken) -> Result<()>;
    /// Waits for the exclusive right to refresh `key`.
    async fn lock(&self, key: &StoreKey) -> Result<StoreLease>;
}

/// A store within one process.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<StoreKey, StoredToken>>,
    locks: Mutex<HashMap<StoreKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.entries.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("MemoryStore").field("entries", &n).finish()
    }
}

fn poisoned() -> Error {
    Error::new(
        ErrorKind::Storage,
        "the in-memory token store lock is poisoned",
    )
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<StoredToken>> {
        Ok(self
            .entries
            .lock()
            .map_err(|_| poisoned())?
            .get(key)
            .cloned())
    }

    async fn save(&self, key: &StoreKey, entry: &StoredToken) -> Result<()> {
        self.entries
            .lock()
            .map_err(|_| poisoned())?
            .insert(key.clone(), entry.clone());
        Ok(())
    }

    async fn lock(&self, key: &StoreKey) -> Result<StoreLease> {
        let lock = self
            .locks
            .lock()
            .map_err(|_| poisoned())?
            .entry(key.clone())
            .or_default()
            .clone();
        Ok(StoreLease::new(lock.lock_owned().await))
    }
}

/// A store in a directory, shared by the processes of one machine.
///
/// Each key is a file `<key>.token.json` (written atomically: a temporary file renamed over the
/// old one, readable by the owner only) beside a lock file `<key>.lock` taken with an exclusive
/// advisory file lock while refreshing. A lock held longer than the
/// [`lock_timeout`](FileStore::lock_timeout) (a hung process) is an error rather than a hang.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    lock_timeout: Duration,
}

impl FileStore {
    /// A store in `dir`, created (owner-only on Unix) if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(|e| {
            storage(
                format!("could not create token directory {}", dir.display()),
                e,
            )
        })?;
        Ok(FileStore {
            dir,
            lock_timeout: Duration::from_secs(30),
        })
    }

    /// How long [`lock`](TokenStore::lock) waits for another process (default 30 s).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn token_path(&self, key: &StoreKey) -> PathBuf {
        self.dir.join(format!("{key}.token.json"))
    }
}

fn storage(what: String, e: std::io::Error) -> Error {
    Error::new(ErrorKind::Storage, what).with_source(e)
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<StoredToken>> {
        let path = self.token_path(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => match StoredToken::from_json(&bytes) {
                Ok(entry) => Ok(Some(entry)),
                Err(_) => {
                    // A torn or foreign file must not block refreshing: treat it as absent; the
                    // next save replaces it.
                    tracing::warn!(path = %path.display(), "ignoring a corrupt token file");
                    Ok(None)
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(storage(format!("could not read {}", path.display()), e)),
        }
    }

    async fn save(&self, key: &StoreKey, entry: &StoredToken) -> Result<()> {
        let bytes = entry.to_json()?;
        let dir = self.dir.clone();
        let path = self.token_path(key);
        tokio::task::spawn_blocking(move || -> Result<()> {
            // NamedTempFile is created with mode 0600 and renamed atomically over the old file.
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)
                .map_err(|e| storage(format!("could not write in {}", dir.display()), e))?;
            tmp.write_all(&bytes)
                .and_then(|()| tmp.as_file().sync_all())
                .map_err(|e| storage("could not write a token file".into(), e))?;
            tmp.persist(&path)
                .map_err(|e| storage(format!("could not replace {}", path.display()), e.error))?;
            Ok(())
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Storage, "token file writer stopped").with_source(e))?
    }

    async fn lock(&self, key: &StoreKey) -> Result<StoreLease> {
        let path = self.dir.join(format!("{key}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| storage(format!("could not open {}", path.display()), e))?;
        let deadline = tokio::time::Instant::now() + self.lock_timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StoreLease::new(LockedFile(file))),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(storage(format!("could not lock {}", path.display()), e));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!(
                        "another process has held {} for over {:?}",
                        path.display(),
                        self.lock_timeout
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }
}

/// Unlocks (by closing) the lock file when dropped.
struct LockedFile(#[allow(dead_code)] File);
