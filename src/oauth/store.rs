//! The files beside a refresh token.
//!
//! For `refresh_token_file = "alice.refresh"` popferry keeps:
//! * `alice.refresh` itself: the refresh token, nothing else, so a token
//!   obtained elsewhere can be pasted in. A rotated token replaces it by
//!   rename after an fsync, so a crash leaves the old file or the new one,
//!   never a torn one, and the new token is on disk before the access token
//!   that came with it is used.
//! * `alice.refresh.cache`: the current access token, its expiry and the
//!   last refresh or error, so `popferry fetch` from cron does not refresh
//!   every minute and `popferry oauth status` has something to show.
//! * `alice.refresh.lock`: an advisory lock held across each refresh, so
//!   two processes sharing the token never refresh at once (a provider that
//!   revokes a refresh token once it is used would refuse the second).
//!
//! All three are created mode 0600: they hold secrets.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{margin, AccessToken, OAuthError};
use crate::config::Secret;

/// An access token in memory.
#[derive(Debug, Clone)]
pub(super) struct Cached {
    secret: Secret,
    expires_at: SystemTime,
    lifetime: Duration,
    pub fresh: bool,
}

impl Cached {
    pub fn new(secret: Secret, lifetime: Duration, now: SystemTime) -> Cached {
        Cached {
            secret,
            expires_at: now + lifetime,
            lifetime,
            fresh: true,
        }
    }

    /// Far enough from expiry to start a login with.
    pub fn usable(&self, now: SystemTime) -> bool {
        now + margin(self.lifetime) < self.expires_at
    }

    pub fn token(&self, fresh: bool) -> AccessToken {
        AccessToken {
            secret: self.secret.clone(),
            fresh,
        }
    }

    /// Once handed out, a token is no longer fresh.
    pub fn settled(mut self) -> Cached {
        self.fresh = false;
        self
    }

    pub fn is(&self, secret: &Secret) -> bool {
        &self.secret == secret
    }
}

/// The cache file's contents. Deliberately not `Debug`: it holds the
/// access token.
#[derive(Serialize, Deserialize, Default)]
pub(super) struct CacheFile {
    access_token: Option<String>,
    /// Seconds since the epoch.
    expires_at: Option<u64>,
    lifetime_secs: Option<u64>,
    pub refreshed_at: Option<u64>,
    pub refreshes: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<u64>,
    /// SHA-256 of a refresh token the endpoint refused for good. Until the
    /// file holds another one, popferry does not ask again.
    pub refused_refresh_token: Option<String>,
}

impl CacheFile {
    pub fn cached(&self) -> Option<Cached> {
        let token = self.access_token.clone()?;
        let lifetime = Duration::from_secs(self.lifetime_secs?);
        let expires_at = UNIX_EPOCH + Duration::from_secs(self.expires_at?);
        Some(Cached {
            secret: Secret::new(token),
            expires_at,
            lifetime,
            fresh: false,
        })
    }

    pub fn refreshed(&mut self, cached: &Cached, now: SystemTime) {
        self.access_token = Some(cached.secret.expose().to_owned());
        self.expires_at = Some(epoch_secs(cached.expires_at));
        self.lifetime_secs = Some(cached.lifetime.as_secs());
        self.refreshed_at = Some(epoch_secs(now));
        self.refreshes += 1;
        self.last_error = None;
        self.last_error_at = None;
        self.refused_refresh_token = None;
    }

    pub fn failed(&mut self, error: &OAuthError, refused: Option<String>, now: SystemTime) {
        self.last_error = Some(error.to_string());
        self.last_error_at = Some(epoch_secs(now));
        if refused.is_some() {
            self.refused_refresh_token = refused;
        }
    }
}

/// What `popferry oauth status` shows for one refresh-token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub signed_in: bool,
    pub expires_at: Option<SystemTime>,
    pub refreshed_at: Option<SystemTime>,
    pub refreshes: u64,
    pub last_error: Option<(SystemTime, String)>,
}

#[derive(Debug, Clone)]
pub(super) struct Store {
    refresh: PathBuf,
    cache: PathBuf,
    lock: PathBuf,
}

impl Store {
    pub fn new(refresh_token_file: &Path) -> Store {
        let beside = |suffix: &str| {
            let mut name = refresh_token_file.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Store {
            refresh: refresh_token_file.to_owned(),
            cache: beside(".cache"),
            lock: beside(".lock"),
        }
    }

    pub fn refresh_token_path(&self) -> &Path {
        &self.refresh
    }

    /// `None` when nobody has signed in yet.
    pub fn read_refresh_token(&self) -> Result<Option<Secret>, OAuthError> {
        match fs::read_to_string(&self.refresh) {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => Ok(Some(Secret::new(text.trim().to_owned()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(self.error("read", &self.refresh, source)),
        }
    }

    pub fn write_refresh_token(&self, token: &Secret) -> Result<(), OAuthError> {
        let text = format!("{}\n", token.expose());
        replace(&self.refresh, text.as_bytes())
            .map_err(|source| self.error("write", &self.refresh, source))
    }

    /// A missing or unreadable cache is an empty one: it only saves work.
    pub fn read_cache(&self) -> CacheFile {
        let mut text = String::new();
        let read = File::open(&self.cache).and_then(|mut f| f.read_to_string(&mut text));
        match read {
            Ok(_) => serde_json::from_str(&text).unwrap_or_default(),
            Err(_) => CacheFile::default(),
        }
    }

    pub fn write_cache(&self, cache: &CacheFile) -> Result<(), OAuthError> {
        let text = serde_json::to_vec(cache).map_err(io::Error::other);
        text.and_then(|text| replace(&self.cache, &text))
            .map_err(|source| self.error("write", &self.cache, source))
    }

    /// Drops `token` from the cache file if it is still the one there.
    pub fn forget(&self, token: &Secret) -> Result<(), OAuthError> {
        let _lock = self.lock()?;
        let mut cache = self.read_cache();
        if cache.access_token.as_deref() == Some(token.expose()) {
            cache.access_token = None;
            self.write_cache(&cache)?;
        }
        Ok(())
    }

    /// Blocks until no other process is refreshing this token.
    pub fn lock(&self) -> Result<File, OAuthError> {
        let file = self.lock_file()?;
        file.lock()
            .map_err(|source| self.error("lock", &self.lock, source))?;
        Ok(file)
    }

    /// Fails now if the folder cannot take the files a sign-in writes, so
    /// that nobody consents only to have the refresh token dropped.
    pub fn prepare(&self) -> Result<(), OAuthError> {
        self.lock_file().map(drop)
    }

    fn lock_file(&self) -> Result<File, OAuthError> {
        private_options()
            .write(true)
            .truncate(false)
            .open(&self.lock)
            .map_err(|source| self.error("create", &self.lock, source))
    }

    pub fn status(&self) -> Status {
        let cache = self.read_cache();
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        Status {
            signed_in: matches!(self.read_refresh_token(), Ok(Some(_))),
            expires_at: cache.access_token.as_ref().and(cache.expires_at).map(at),
            refreshed_at: cache.refreshed_at.map(at),
            refreshes: cache.refreshes,
            last_error: cache
                .last_error
                .zip(cache.last_error_at.map(at))
                .map(|(e, t)| (t, e)),
        }
    }

    fn error(&self, action: &'static str, path: &Path, source: io::Error) -> OAuthError {
        OAuthError::Store {
            action,
            path: path.to_owned(),
            source,
        }
    }
}

/// SHA-256 of a refresh token, to recognise one without keeping it.
pub(super) fn digest(token: &Secret) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.expose().as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn epoch_secs(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it
/// over `path` and syncs the folder, so the rename itself is durable.
fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let mut file = private_options()
        .write(true)
        .truncate(true)
        .open(&temporary)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all());
    if let Err(error) = written.and_then(|()| fs::rename(&temporary, path)) {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    File::open(folder.unwrap_or(Path::new(".")))?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_token_replaces_the_file_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&dir.path().join("alice.refresh"));
        assert!(store.read_refresh_token().unwrap().is_none());
        store
            .write_refresh_token(&Secret::new("one".into()))
            .unwrap();
        store
            .write_refresh_token(&Secret::new("two".into()))
            .unwrap();
        let token = store.read_refresh_token().unwrap().unwrap();
        assert_eq!(token.expose(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.refresh_token_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["alice.refresh"], "no temporary file left behind");
    }

    #[test]
    fn the_cache_round_trips_and_forgets_a_refused_token() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(&dir.path().join("t"));
        let now = SystemTime::now();
        let cached = Cached::new(Secret::new("access".into()), Duration::from_secs(3600), now);
        let mut cache = store.read_cache();
        cache.refreshed(&cached, now);
        store.write_cache(&cache).unwrap();
        let back = store.read_cache().cached().unwrap();
        assert!(back.is(&Secret::new("access".into())));
        assert!(back.usable(now));
        assert!(!back.usable(now + Duration::from_secs(3600 - 299)));
        store.forget(&Secret::new("other".into())).unwrap();
        assert!(store.read_cache().cached().is_some());
        store.forget(&Secret::new("access".into())).unwrap();
        assert!(store.read_cache().cached().is_none());
        assert_eq!(store.status().refreshes, 1);
    }
}
