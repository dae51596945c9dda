//! Storage backends behind the WIT `scimlet:provider/storage` interface.
//!
//! The component owns every rule; a backend only has to honour the small
//! contract written in `wit/scimlet.wit`: byte-ordered keys, versions that
//! strictly increase across commits, atomic conditional commits. The types
//! here mirror the WIT records but stay independent of the generated
//! bindings (they are the core's own), so a backend can be tested without wasmtime and a second backend
//! (PostgreSQL for several replicas) can be added beside [`sqlite`] without
//! touching the runtime.

pub mod backup;
#[cfg(test)]
pub(crate) mod contract;
pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

pub use sqlite::SqliteStore;

/// The storage contract's records (WIT `entry`, `scan-page`,
/// `precondition`, `write`, `error`) are the core's: one definition for the
/// component, its native build and every backend, with no conversion
/// between them.
pub use scim_core::{Entry, Precondition, ScanPage, StoreError, Write};

/// Most entries one `scan` returns, whatever the caller asks; the WIT contract
/// allows a cap as long as at least one entry comes back when more exist.
pub const MAX_SCAN_LIMIT: u32 = 1000;

/// Most keys one `get-many` or `commit` accepts: bounds the work a single
/// guest call can make the host do while it holds a connection. The WIT
/// contract promises at least this much; the component never asks more.
pub const MAX_BATCH: usize = 10_000;

/// Refuses, before any work, a commit no transaction may carry: more than
/// [`MAX_BATCH`] writes, or a key named twice.
pub(crate) fn check_commit(writes: &[Write]) -> Result<(), StoreError> {
    if writes.len() > MAX_BATCH {
        return Err(StoreError::Unavailable(format!(
            "commit of {} writes exceeds the limit of {MAX_BATCH}",
            writes.len()
        )));
    }
    let mut seen = std::collections::HashSet::with_capacity(writes.len());
    if let Some(dup) = writes.iter().find(|w| !seen.insert(w.key.as_str())) {
        return Err(StoreError::Unavailable(format!("commit names key {:?} more than once", dup.key)));
    }
    Ok(())
}

/// An ordered, versioned key-value store: the contract of WIT `storage`.
///
/// Methods are blocking; the runtime calls them from tokio's blocking pool.
/// Implementations must be safe to share between threads and, for file or
/// server databases, between processes (the server and the CLI may open the
/// same database at once).
pub trait Backend: Send + Sync + 'static {
    /// Reads one record.
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;

    /// Reads several records from one consistent snapshot, in the order of `keys`.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError>;

    /// Lists records whose key starts with `prefix`, in ascending byte order,
    /// strictly after `after` when given, at most `limit` (capped at
    /// [`MAX_SCAN_LIMIT`]), and whether more follow.
    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError>;

    /// Applies all writes or none; returns the version given to every record
    /// written. A key named twice is refused as `Unavailable`.
    fn commit(&self, writes: &[Write]) -> Result<u64, StoreError>;

    /// Hands a commit to the backend without blocking the caller, for a
    /// backend whose commits are carried out by a thread of its own: the
    /// answer arrives on the returned receiver. The writes come back (the
    /// default) when the caller must run [`Backend::commit`] where blocking
    /// is allowed instead.
    fn submit(&self, writes: Vec<Write>) -> Result<Submitted, Vec<Write>> {
        Err(writes)
    }

    /// Opens a [`Snapshot`] for a request's reads, when the backend has
    /// one to offer (the default: none, and every read stands alone).
    fn snapshot(&self) -> Result<Option<Box<dyn Snapshot>>, StoreError> {
        Ok(None)
    }

    /// Whether a read waits on more than memory (a network round trip):
    /// the runtime then reads on tokio's blocking pool, as it commits,
    /// instead of on the async worker that runs the request.
    fn reads_block(&self) -> bool {
        false
    }
}

/// Reads that all see one state of the store, from the first read until
/// the snapshot is dropped. A request reads through one until it commits:
/// beginning and ending a read transaction (SQLite's WAL read locks) cost
/// more than a read from the page cache, and a lookup makes four reads.
pub trait Snapshot: Send {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError>;
    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError>;
    fn scan(&mut self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError>;
}

/// One request's reads: through a [`Snapshot`] while the backend offers
/// one, else straight from the backend. [`Reads::end`] lets go of the
/// snapshot; the request must call it before it commits, so that what it
/// reads next includes its own writes and whatever a commit that beat it
/// wrote (a retry after a conflict must see the state that won).
pub struct Reads {
    backend: Arc<dyn Backend>,
    snapshot: Option<Box<dyn Snapshot>>,
}

impl Reads {
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Reads { backend, snapshot: None }
    }

    pub fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.read(|s| s.get(key), |b| b.get(key))
    }

    pub fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        self.read(|s| s.get_many(keys), |b| b.get_many(keys))
    }

    pub fn scan(&mut self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        self.read(|s| s.scan(prefix, after, limit), |b| b.scan(prefix, after, limit))
    }

    /// Lets go of the snapshot: the next read starts a new one.
    pub fn end(&mut self) {
        self.snapshot = None;
    }

    fn read<R>(
        &mut self,
        in_snapshot: impl FnOnce(&mut dyn Snapshot) -> Result<R, StoreError>,
        alone: impl FnOnce(&dyn Backend) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if self.snapshot.is_none() {
            self.snapshot = self.backend.snapshot()?;
        }
        let Some(snapshot) = self.snapshot.as_mut() else { return alone(self.backend.as_ref()) };
        let result = in_snapshot(snapshot.as_mut());
        if result.is_err() {
            // A snapshot whose read failed is not trusted with the next one.
            self.snapshot = None;
        }
        result
    }
}

/// A commit handed to a backend, and where its answer will arrive.
pub type Submitted = tokio::sync::oneshot::Receiver<Result<u64, StoreError>>;

/// The smallest byte string greater than every string that starts with
/// `prefix`, or `None` when no such bound exists (empty prefix, or a prefix of
/// only 0xFF bytes): the exclusive upper end of a prefix range.
pub fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut upper = prefix.to_vec();
    while let Some(last) = upper.pop() {
        if last < 0xFF {
            upper.push(last + 1);
            return Some(upper);
        }
    }
    None
}

/// The smallest byte string strictly greater than `key`: `key` followed by
/// 0x00. Turns "strictly after" into an inclusive lower bound.
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_increments_last_byte() {
        assert_eq!(prefix_upper_bound(b"abc"), Some(b"abd".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\x7f"), Some(b"a\x80".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xfe"), Some(b"a\xff".to_vec()));
    }

    #[test]
    fn upper_bound_drops_trailing_ff() {
        assert_eq!(prefix_upper_bound(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xff\xff"), None);
        assert_eq!(prefix_upper_bound(b""), None);
    }

    #[test]
    fn successor_is_next_string() {
        assert_eq!(successor(b"ab"), b"ab\0".to_vec());
        assert!(successor(b"ab").as_slice() > b"ab".as_slice());
        assert!(successor(b"ab").as_slice() < b"ab\x01".as_slice());
    }
}

/// Helpers shared by the backends' unit tests.
#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A directory under the system temp dir, removed on drop. Kept here
    /// rather than pulling in a crate for a dozen lines.
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            let name = format!("scimlet-test-{}-{}-{nanos}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            let path = std::env::temp_dir().join(name);
            std::fs::create_dir_all(&path).expect("create temp dir");
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
