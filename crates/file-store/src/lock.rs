//! The writers' lock: a file created exclusively.
//!
//! WASI 0.2's filesystem has no advisory locks, but it has exclusive
//! creation (`O_EXCL`), which is atomic on every local filesystem. A writer
//! holds the lock for one commit: it reads the log's tail, checks the
//! preconditions, appends and syncs, which takes milliseconds. A lock file
//! older than [`STALE`] was therefore left by a process that died holding
//! it, and the next writer takes it over.
//!
//! Taking over is a rename to a name of the taker's own: of several takers
//! only one can move a given file. The taker then checks that what it moved
//! is still stale; if another taker had meanwhile replaced it with a live
//! lock, that lock is linked back before anyone else can create one.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use scim_core::StoreError;

use crate::unavailable;

/// Age at which a lock file is taken to be abandoned.
pub const STALE: Duration = Duration::from_secs(10);
/// How long a writer waits for the lock before its commit fails
/// (`unavailable`: the component answers 503 and the client retries).
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// A held lock; dropping it releases it.
pub struct Lock {
    path: PathBuf,
    token: String,
}

impl Lock {
    pub fn acquire(path: &Path) -> Result<Lock, StoreError> {
        let token = format!("{:016x}", getrandom::u64().map_err(|e| unavailable("random source", e))?);
        let start = Instant::now();
        let mut pause = Duration::from_micros(200);
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    file.write_all(token.as_bytes()).map_err(|e| unavailable("writing the lock file", e))?;
                    return Ok(Lock { path: path.to_owned(), token });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if age(path).is_some_and(|age| age > STALE) {
                        take_over(path, &token);
                        continue;
                    }
                    if start.elapsed() > MAX_WAIT {
                        return Err(StoreError::Unavailable(format!(
                            "the store's lock {} has been held for over {} s",
                            path.display(),
                            MAX_WAIT.as_secs()
                        )));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(10));
                }
                Err(e) => return Err(unavailable(&format!("creating the lock file {}", path.display()), e)),
            }
        }
    }

    /// Whether the lock file is still this holder's (a holder that stalled
    /// past [`STALE`] may have lost it, and must not write then).
    pub fn still_held(&self) -> bool {
        read(&self.path).as_deref() == Some(self.token.as_str())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.still_held() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn read(path: &Path) -> Option<String> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    Some(text)
}

fn age(path: &Path) -> Option<Duration> {
    let modified = fs::metadata(path).ok()?.modified().ok()?;
    SystemTime::now().duration_since(modified).ok()
}

/// Moves an abandoned lock aside (see the module's comment).
fn take_over(path: &Path, token: &str) {
    let aside = path.with_extension(format!("stale-{token}"));
    if fs::rename(path, &aside).is_err() {
        return; // another taker moved it, or its holder released it
    }
    if age(&aside).is_some_and(|age| age > STALE) {
        let _ = fs::remove_file(&aside);
        eprintln!(
            "scimlet file store: took over the lock {}, abandoned for over {} s",
            path.display(),
            STALE.as_secs()
        );
    } else {
        // A live lock, created after the stale one was taken over by
        // someone else: give it back unless a new one already exists.
        let _ = fs::hard_link(&aside, path);
        let _ = fs::remove_file(&aside);
    }
}
