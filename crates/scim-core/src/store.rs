//! The storage contract the core runs on, and an in-memory implementation.
//!
//! This mirrors the WIT `storage` interface one to one, so the component's
//! adapter is a few lines and every host (SQLite, Spin, a test map) offers the
//! same semantics. SCIM structures (indexes, membership edges, reservations)
//! are built by the core out of these primitives; no backend knows SCIM.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The record's key.
    pub key: String,
    /// The bytes last written.
    pub value: Vec<u8>,
    /// Version given by the commit that last wrote the record; never 0.
    pub version: u64,
}

/// What a write requires of its key at commit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No requirement.
    None,
    /// The key must not exist.
    Absent,
    /// The key must exist with exactly this version.
    Version(u64),
}

impl Precondition {
    /// Whether the requirement holds for a key whose record is at
    /// `current` (`None`: absent). Every store checks with this, so that
    /// "absent" and "at this version" mean one thing everywhere.
    pub fn holds(self, current: Option<u64>) -> bool {
        match self {
            Precondition::None => true,
            Precondition::Absent => current.is_none(),
            Precondition::Version(v) => current == Some(v),
        }
    }
}

/// One write of an atomic commit; `value: None` deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Key written or deleted.
    pub key: String,
    /// New bytes, or `None` to delete.
    pub value: Option<Vec<u8>>,
    /// Checked before anything is applied.
    pub precondition: Precondition,
}

impl Write {
    /// An unconditional put.
    pub fn put(key: impl Into<String>, value: Vec<u8>) -> Self {
        Write { key: key.into(), value: Some(value), precondition: Precondition::None }
    }
    /// A put that requires the key to be absent (a reservation).
    pub fn create(key: impl Into<String>, value: Vec<u8>) -> Self {
        Write { key: key.into(), value: Some(value), precondition: Precondition::Absent }
    }
    /// A put that requires the key to be at `version` (optimistic concurrency).
    pub fn replace(key: impl Into<String>, value: Vec<u8>, version: u64) -> Self {
        Write { key: key.into(), value: Some(value), precondition: Precondition::Version(version) }
    }
    /// An unconditional delete.
    pub fn delete(key: impl Into<String>) -> Self {
        Write { key: key.into(), value: None, precondition: Precondition::None }
    }
    /// A delete that requires the key to be at `version`.
    pub fn delete_at(key: impl Into<String>, version: u64) -> Self {
        Write { key: key.into(), value: None, precondition: Precondition::Version(version) }
    }
}

/// One page of an ordered scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Entries in ascending key order.
    pub entries: Vec<Entry>,
    /// Whether the prefix holds entries after the last one returned. A store
    /// may return fewer entries than asked (it caps pages at its own limit),
    /// so a short page alone says nothing; this flag does.
    pub more: bool,
}

/// What every store accepts in one call: the floors of the storage
/// contract. The core plans its work so that no request produces a commit
/// or a read larger than these; a store may accept more but never less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most writes in one commit.
    pub commit_writes: usize,
    /// Most keys in one `get_many`.
    pub get_many_keys: usize,
}

impl Limits {
    /// The floors written in `wit/scimlet.wit`.
    pub const CONTRACT: Limits = Limits { commit_writes: 10_000, get_many_keys: 10_000 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::CONTRACT
    }
}

/// Why a storage call failed. Either way nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The precondition of the write at this index did not hold.
    #[error("precondition of write {0} did not hold")]
    Conflict(u32),
    /// The backend could not serve the call; the text is for operators.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// The storage contract (see `wit/scimlet.wit`, interface `storage`).
pub trait Store {
    /// Reads one record.
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError>;
    /// Reads many records, answering in the order of `keys`.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError>;
    /// Ordered scan of `prefix`, strictly after `after`, at most `limit`
    /// entries (a store may return fewer: see [`ScanPage::more`]).
    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError>;
    /// Applies all writes or none; returns the version given to written records.
    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError>;
    /// What this store accepts in one call; the contract's floors unless a
    /// store says otherwise (the test store says less, so that the core's
    /// paths for large work run in tests).
    fn limits(&self) -> Limits {
        Limits::CONTRACT
    }
}

/// Every entry under `prefix`, read page by page until the store says the
/// prefix is exhausted. `max` bounds the work: the flag is `true` when the
/// prefix holds more than `max` entries and only the first `max` came back.
pub(crate) fn scan_all<S: Store + ?Sized>(
    store: &S,
    prefix: &str,
    max: usize,
) -> Result<(Vec<Entry>, bool), StoreError> {
    let mut out: Vec<Entry> = Vec::new();
    loop {
        let want = (max + 1 - out.len()).min(SCAN_PAGE as usize) as u32;
        let page = store.scan(prefix, out.last().map(|e| e.key.as_str()), want)?;
        let more = page.more;
        out.extend(page.entries);
        if out.len() > max {
            out.truncate(max);
            return Ok((out, true));
        }
        if !more {
            return Ok((out, false));
        }
    }
}

/// Reads any number of keys, in calls the store accepts.
pub(crate) fn get_all<S: Store + ?Sized>(store: &S, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(store.limits().get_many_keys.max(1)) {
        out.extend(store.get_many(chunk)?);
    }
    Ok(out)
}

/// Page size the core asks for when it reads a whole prefix.
pub(crate) const SCAN_PAGE: u32 = 1000;

impl<S: Store + ?Sized> Store for &S {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        (**self).get(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        (**self).get_many(keys)
    }
    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        (**self).scan(prefix, after, limit)
    }
    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
        (**self).commit(writes)
    }
    fn limits(&self) -> Limits {
        (**self).limits()
    }
}

#[derive(Debug, Default, Clone)]
struct MemState {
    records: BTreeMap<String, (Vec<u8>, u64)>,
    seq: u64,
}

/// The reference implementation of the contract: a sorted map behind a mutex.
///
/// Clones share the same data, which is how tests model "restart the host on
/// the same storage". Every other backend must behave exactly like this one,
/// caps included: a scan returns at most `scan_cap` entries whatever it is
/// asked, and a commit or read over [`Limits`] is refused as the real stores
/// refuse it.
#[derive(Debug, Clone)]
pub struct MemStore {
    state: Arc<Mutex<MemState>>,
    scan_cap: u32,
    limits: Limits,
}

impl Default for MemStore {
    fn default() -> Self {
        MemStore { state: Arc::default(), scan_cap: 1000, limits: Limits::CONTRACT }
    }
}

impl MemStore {
    /// An empty store with the real stores' caps (1,000 entries a scan, the
    /// contract's floors per call).
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store with small caps, so that tests of a few dozen records
    /// run the paths that production reaches at a hundred thousand.
    pub fn with_caps(scan_cap: u32, limits: Limits) -> Self {
        MemStore { state: Arc::default(), scan_cap: scan_cap.max(1), limits }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        // A panic while holding the lock cannot leave a half-applied commit
        // (commits validate before mutating), so the data is still coherent.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of records, for tests that assert nothing was left behind.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every key, in order; for tests.
    pub fn keys(&self) -> Vec<String> {
        self.lock().records.keys().cloned().collect()
    }

    /// A separate store holding a copy of every record, with the same caps:
    /// one seeded state that many independent runs start from.
    pub fn fork(&self) -> MemStore {
        let state = self.lock().clone();
        MemStore { state: Arc::new(Mutex::new(state)), scan_cap: self.scan_cap, limits: self.limits }
    }

    /// Every record (key, value, version), in key order: for tests that
    /// compare the whole state before and after a request.
    pub fn dump(&self) -> Vec<(String, Vec<u8>, u64)> {
        self.lock().records.iter().map(|(key, (value, version))| (key.clone(), value.clone(), *version)).collect()
    }
}

impl Store for MemStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let state = self.lock();
        Ok(state.records.get(key).map(|(value, version)| Entry {
            key: key.to_owned(),
            value: value.clone(),
            version: *version,
        }))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        if keys.len() > self.limits.get_many_keys {
            return Err(StoreError::Unavailable(format!(
                "get-many of {} keys exceeds the limit of {}",
                keys.len(),
                self.limits.get_many_keys
            )));
        }
        let state = self.lock();
        Ok(keys
            .iter()
            .map(|key| {
                state.records.get(key).map(|(value, version)| Entry {
                    key: key.clone(),
                    value: value.clone(),
                    version: *version,
                })
            })
            .collect())
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        use std::ops::Bound;
        let state = self.lock();
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after.to_owned()),
            _ => Bound::Included(prefix.to_owned()),
        };
        let limit = limit.min(self.scan_cap) as usize;
        let mut range = state.records.range((start, Bound::Unbounded)).take_while(|(key, _)| key.starts_with(prefix));
        let entries: Vec<Entry> = range
            .by_ref()
            .take(limit)
            .map(|(key, (value, version))| Entry { key: key.clone(), value: value.clone(), version: *version })
            .collect();
        let more = range.next().is_some();
        Ok(ScanPage { entries, more })
    }

    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
        if writes.len() > self.limits.commit_writes {
            return Err(StoreError::Unavailable(format!(
                "commit of {} writes exceeds the limit of {}",
                writes.len(),
                self.limits.commit_writes
            )));
        }
        let mut state = self.lock();
        for (index, write) in writes.iter().enumerate() {
            let current = state.records.get(&write.key).map(|(_, version)| *version);
            if !write.precondition.holds(current) {
                return Err(StoreError::Conflict(index as u32));
            }
            if writes[..index].iter().any(|w| w.key == write.key) {
                return Err(StoreError::Unavailable(format!("key {:?} written twice in one commit", write.key)));
            }
        }
        state.seq += 1;
        let version = state.seq;
        for write in writes {
            match write.value {
                Some(value) => {
                    state.records.insert(write.key, (value, version));
                }
                None => {
                    state.records.remove(&write.key);
                }
            }
        }
        Ok(version)
    }

    fn limits(&self) -> Limits {
        self.limits
    }
}

/// The contract's cases run on this store in `crates/storage-conformance`;
/// here only what is the core's own: small caps and `scan_all`.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_scans_say_more_and_scan_all_pages_through() {
        let store = MemStore::with_caps(2, Limits { commit_writes: 100, get_many_keys: 100 });
        let writes: Vec<Write> = (0..7).map(|i| Write::put(format!("p/{i}"), vec![])).collect();
        store.commit(writes).unwrap();
        let page = store.scan("p/", None, 1000).unwrap();
        assert_eq!(page.entries.len(), 2);
        assert!(page.more, "a capped page is not the end of the prefix");
        let (all, truncated) = scan_all(&store, "p/", 100).unwrap();
        assert_eq!(all.len(), 7);
        assert!(!truncated);
        let (some, truncated) = scan_all(&store, "p/", 5).unwrap();
        assert_eq!(some.len(), 5);
        assert!(truncated);
        let too_big: Vec<Write> = (0..101).map(|i| Write::put(format!("q/{i}"), vec![])).collect();
        assert!(matches!(store.commit(too_big), Err(StoreError::Unavailable(_))));
    }
}
