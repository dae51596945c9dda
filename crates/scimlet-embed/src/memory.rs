//! A complete [`Storage`] in memory, for tests, demos and a first start
//! before a real database is wired in.

use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::storage::{Entry, Precondition, ScanPage, Storage, StorageError, Write};

/// The most writes a commit and keys a `get-many` may carry: the contract's
/// floor, which the component never exceeds. Anything larger is a bug worth
/// refusing rather than serving.
const MAX_BATCH: usize = 10_000;

/// Scan pages are capped here unless [`MemStorage::with_scan_cap`] says
/// otherwise, as the runner's SQL stores cap them.
const DEFAULT_SCAN_CAP: u32 = 1_000;

#[derive(Debug, Default)]
struct Records {
    map: BTreeMap<String, (Vec<u8>, u64)>,
    /// The version of the last commit; one counter for the whole store, so
    /// that a key deleted and created again never sees an old version.
    version: u64,
}

/// Records in a sorted map behind a mutex; nothing survives the process.
///
/// Clones share the records: a clone handed to a second [`Scimlet`]
/// (crate::Scimlet) models a restart on the same storage.
#[derive(Debug, Clone)]
pub struct MemStorage {
    records: Arc<Mutex<Records>>,
    scan_cap: u32,
}

impl Default for MemStorage {
    fn default() -> Self {
        MemStorage { records: Arc::default(), scan_cap: DEFAULT_SCAN_CAP }
    }
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store whose scans return at most `cap` entries (at least
    /// one) whatever they ask: a small cap makes the component page through
    /// prefixes as it does against a large database.
    pub fn with_scan_cap(cap: u32) -> Self {
        MemStorage { records: Arc::default(), scan_cap: cap.max(1) }
    }

    /// How many records the store holds.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // Commits check everything before they change anything, so a panic
        // under the lock cannot leave half a commit behind.
        self.records.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_one(records: &Records, key: &str) -> Option<Entry> {
        records.map.get(key).map(|(value, version)| Entry {
            key: key.to_owned(),
            value: value.clone(),
            version: *version,
        })
    }
}

impl Storage for MemStorage {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StorageError> {
        Ok(Self::read_one(&self.lock(), key))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StorageError> {
        if keys.len() > MAX_BATCH {
            return Err(StorageError::Unavailable(format!(
                "get-many of {} keys exceeds the limit of {MAX_BATCH}",
                keys.len()
            )));
        }
        let records = self.lock();
        Ok(keys.iter().map(|key| Self::read_one(&records, key)).collect())
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StorageError> {
        let records = self.lock();
        // `String`'s order is byte order, which for UTF-8 is code-point order.
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let mut under =
            records.map.range::<str, _>((start, Bound::Unbounded)).take_while(|(key, _)| key.starts_with(prefix));
        let take = limit.min(self.scan_cap) as usize;
        let entries: Vec<Entry> = under
            .by_ref()
            .take(take)
            .map(|(key, (value, version))| Entry { key: key.clone(), value: value.clone(), version: *version })
            .collect();
        let more = under.next().is_some();
        Ok(ScanPage { entries, more })
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<u64, StorageError> {
        if writes.len() > MAX_BATCH {
            return Err(StorageError::Unavailable(format!(
                "commit of {} writes exceeds the limit of {MAX_BATCH}",
                writes.len()
            )));
        }
        let mut seen = HashSet::with_capacity(writes.len());
        if let Some(twice) = writes.iter().find(|w| !seen.insert(w.key.as_str())) {
            return Err(StorageError::Unavailable(format!("commit names key {:?} more than once", twice.key)));
        }
        let mut records = self.lock();
        for (index, write) in writes.iter().enumerate() {
            let current = records.map.get(&write.key).map(|(_, version)| *version);
            let holds = match write.precondition {
                Precondition::None => true,
                Precondition::Absent => current.is_none(),
                Precondition::Version(v) => current == Some(v),
            };
            if !holds {
                return Err(StorageError::Conflict(index as u32));
            }
        }
        records.version += 1;
        let version = records.version;
        for write in writes {
            match write.value {
                Some(value) => {
                    records.map.insert(write.key, (value, version));
                }
                None => {
                    records.map.remove(&write.key);
                }
            }
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &[u8]) -> Write {
        Write { key: key.to_owned(), value: Some(value.to_vec()), precondition: Precondition::None }
    }

    fn with(precondition: Precondition, write: Write) -> Write {
        Write { precondition, ..write }
    }

    fn delete(key: &str, precondition: Precondition) -> Write {
        Write { key: key.to_owned(), value: None, precondition }
    }

    fn keys(page: &ScanPage) -> Vec<&str> {
        page.entries.iter().map(|e| e.key.as_str()).collect()
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(future)
    }

    #[test]
    fn scans_follow_code_point_order_within_the_prefix() {
        block_on(async {
            let store = MemStorage::new();
            // 'é' (U+00E9) and '😀' (U+1F600) sort after every ASCII letter;
            // UTF-16 order would put the emoji's surrogates before U+E000.
            let written = ["p/z", "p/é", "p/\u{1F600}", "p/\u{E000}", "p/A", "p0", "o/x"];
            store.commit(written.iter().map(|k| put(k, b"")).collect()).await.unwrap();
            let page = store.scan("p/", None, 100).await.unwrap();
            assert_eq!(keys(&page), ["p/A", "p/z", "p/é", "p/\u{E000}", "p/\u{1F600}"]);
            assert!(!page.more);
            let page = store.scan("p/", Some("p/z"), 100).await.unwrap();
            assert_eq!(keys(&page), ["p/é", "p/\u{E000}", "p/\u{1F600}"]);
            // An `after` before the prefix starts at the prefix.
            let page = store.scan("p/", Some("a"), 1).await.unwrap();
            assert_eq!(keys(&page), ["p/A"]);
            assert!(page.more);
        });
    }

    #[test]
    fn a_capped_scan_says_more_until_the_prefix_is_exhausted() {
        block_on(async {
            let store = MemStorage::with_scan_cap(2);
            store.commit((0..5).map(|i| put(&format!("k/{i}"), b"")).collect()).await.unwrap();
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store.scan("k/", after.as_deref(), 1000).await.unwrap();
                assert!(page.entries.len() <= 2, "the cap holds whatever is asked");
                assert!(!page.entries.is_empty(), "a page holds at least one entry while more exist");
                seen.extend(page.entries.iter().map(|e| e.key.clone()));
                after = seen.last().cloned();
                if !page.more {
                    break;
                }
            }
            assert_eq!(seen, ["k/0", "k/1", "k/2", "k/3", "k/4"]);
            assert_eq!(store.scan("k/", Some("k/4"), 10).await.unwrap(), ScanPage { entries: vec![], more: false });
        });
    }

    #[test]
    fn a_commit_applies_all_or_nothing_and_names_the_first_failing_write() {
        block_on(async {
            let store = MemStorage::new();
            let v1 = store.commit(vec![put("a", b"1"), put("b", b"1")]).await.unwrap();
            let before = store.get_many(&["a".into(), "b".into(), "c".into()]).await.unwrap();

            let refused = store
                .commit(vec![
                    with(Precondition::Version(v1), put("a", b"2")),
                    put("c", b"2"),
                    with(Precondition::Absent, put("b", b"2")),
                    with(Precondition::Version(v1 + 7), put("d", b"2")),
                ])
                .await;
            assert_eq!(refused, Err(StorageError::Conflict(2)), "index 2 is the first that fails");
            assert_eq!(store.get_many(&["a".into(), "b".into(), "c".into()]).await.unwrap(), before);

            let v2 = store
                .commit(vec![
                    with(Precondition::Version(v1), put("a", b"2")),
                    with(Precondition::Absent, put("c", b"2")),
                    delete("b", Precondition::Version(v1)),
                    delete("never-there", Precondition::None),
                ])
                .await
                .unwrap();
            assert!(v2 > v1);
            let a = store.get("a").await.unwrap().unwrap();
            assert_eq!((a.value.as_slice(), a.version), (&b"2"[..], v2));
            assert_eq!(store.get("b").await.unwrap(), None);
            assert_eq!(store.get("c").await.unwrap().unwrap().version, v2);
            assert_eq!(
                store.commit(vec![delete("b", Precondition::Version(v1))]).await,
                Err(StorageError::Conflict(0)),
                "a version precondition needs the key to exist"
            );
        });
    }

    #[test]
    fn versions_are_store_wide_and_never_come_back() {
        block_on(async {
            let store = MemStorage::new();
            let v1 = store.commit(vec![put("k", b"")]).await.unwrap();
            let v2 = store.commit(vec![put("other", b"")]).await.unwrap();
            let v3 = store.commit(vec![delete("k", Precondition::Version(v1))]).await.unwrap();
            let v4 = store.commit(vec![with(Precondition::Absent, put("k", b""))]).await.unwrap();
            assert!(0 < v1 && v1 < v2 && v2 < v3 && v3 < v4, "{v1} {v2} {v3} {v4}");
            assert_eq!(store.get("k").await.unwrap().unwrap().version, v4);
            assert_eq!(
                store.commit(vec![with(Precondition::Version(v1), put("k", b""))]).await,
                Err(StorageError::Conflict(0))
            );
            // A refused commit takes no version.
            assert_eq!(store.commit(vec![put("x", b"")]).await.unwrap(), v4 + 1);
        });
    }

    #[test]
    fn oversized_or_repeating_calls_are_refused_whole() {
        block_on(async {
            let store = MemStorage::new();
            let twice = store.commit(vec![put("k", b"1"), put("j", b""), put("k", b"2")]).await;
            assert!(
                matches!(twice, Err(StorageError::Unavailable(ref why)) if why.contains("more than once")),
                "{twice:?}"
            );
            let many: Vec<Write> = (0..=MAX_BATCH).map(|i| put(&format!("k/{i}"), b"")).collect();
            assert!(matches!(store.commit(many).await, Err(StorageError::Unavailable(_))));
            let keys: Vec<String> = (0..=MAX_BATCH).map(|i| format!("k/{i}")).collect();
            assert!(matches!(store.get_many(&keys).await, Err(StorageError::Unavailable(_))));
            assert!(store.is_empty(), "nothing of a refused commit was applied");
            let at_limit: Vec<Write> = (0..MAX_BATCH).map(|i| put(&format!("k/{i}"), b"")).collect();
            store.commit(at_limit).await.unwrap();
            assert_eq!(store.get_many(&keys[..MAX_BATCH]).await.unwrap().iter().flatten().count(), MAX_BATCH);
        });
    }

    #[test]
    fn clones_share_records() {
        block_on(async {
            let store = MemStorage::new();
            let again = store.clone();
            store.commit(vec![put("k", b"v")]).await.unwrap();
            assert_eq!(again.get("k").await.unwrap().unwrap().value, b"v");
            assert_eq!(again.len(), 1);
        });
    }
}
