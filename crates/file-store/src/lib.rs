//! scimlet's storage contract (`wit/scimlet.wit`, interface `storage`) on a
//! directory, for hosts that give a component a filesystem and nothing
//! else: plain `wasmtime serve`, where every request is a new instance of
//! the component and several run at once.
//!
//! Why a log: a component instance lives for one request (or, with
//! `--max-instance-reuse-count`, a few in a row) and shares no memory with
//! the others, so the only shared state is the directory, and
//! WASI 0.2 offers no file locks and no memory maps there. The store keeps
//! one append-only log of commits (`scimlet.log`, see [`format`]) that each
//! instance replays into a map when it first needs it, and catches up from
//! its end on every later call. Writers take turns through an exclusively
//! created lock file ([`lock`]); under it a writer reads the log's new tail,
//! checks the preconditions against the state it now has, appends one
//! record and syncs it before answering. Readers need no lock: a record
//! still being appended is incomplete, and they stop before it.
//!
//! What that costs: every instance reads the whole log once, so a request's
//! cost grows with the data. When the log is more than twice what it holds
//! (and over [`COMPACT_MIN`]), the writer that notices rewrites it as a
//! snapshot into a new file of a new generation and renames it over the
//! old; readers holding the old file see a generation change at their next
//! call and read the new one from the start. This suits an evaluation, a
//! demonstration or a small tenant (see the README's "Plain `wasmtime
//! serve`" for figures); the runner's SQLite or PostgreSQL is the store
//! for large ones.
//!
//! Durability: a commit is acknowledged after `sync_data` of the log (and,
//! when it created the file, a sync of the directory). A crash during an
//! append leaves an incomplete or unreadable record at the end, which no
//! reader applies and the next writer cuts off before appending. A record
//! that fails its checksum with records after it is damage: reads stop
//! there and every commit is refused (`unavailable`, naming the byte), so
//! no writer cuts good records off; the checksum detects damage, it does
//! not repair it.
//!
//! The same code runs natively (its tests run the storage conformance
//! suite, several handles on one directory from several threads) and as the
//! storage component for `wasm32-wasip2` (`component`).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write as _};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use scim_core::{Entry, Limits, ScanPage, Store, StoreError, Write};

mod format;
mod lock;

#[cfg(target_arch = "wasm32")]
mod component;

use format::{HEADER_LEN, Next, Slot};
pub use lock::{MAX_WAIT, STALE};

/// The log's file name in the store's directory.
pub const LOG_FILE: &str = "scimlet.log";
/// The writers' lock file's name.
pub const LOCK_FILE: &str = "scimlet.lock";
/// Below this size a log is never compacted.
pub const COMPACT_MIN: u64 = 4 << 20;
/// Most entries one `scan` returns; the component pages past it.
pub const SCAN_CAP: u32 = 1_000;
/// Payload size of one snapshot record.
const SNAPSHOT_CHUNK: usize = 1 << 20;

/// A store in one directory. Any number of `FileStore`s, in one process or
/// many, may share a directory.
pub struct FileStore {
    dir: PathBuf,
    state: Mutex<State>,
}

/// What this handle has read of the log.
#[derive(Default)]
struct State {
    records: format::Records,
    /// The generation of the file `offset` refers to; 0 before any.
    generation: u64,
    /// Where the next unread record starts.
    offset: u64,
}

/// What a catch-up found after the last good record.
enum Tail {
    /// Nothing: the log ends at `offset`.
    Clean,
    /// Bytes that are no whole record yet, as an append under way or one a
    /// crash cut short leaves; the file is this long.
    Unfinished(u64, &'static str),
    /// A record that is not good, with records after it: damage, which
    /// stops writes (a writer would have to cut good records to go on).
    Damaged(&'static str),
}

impl FileStore {
    /// A store in `dir`, which must exist. Nothing is read until the first call.
    pub fn open(dir: impl Into<PathBuf>) -> Result<FileStore, StoreError> {
        let dir = dir.into();
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(FileStore { dir, state: Mutex::new(State::default()) }),
            Ok(_) => Err(StoreError::Unavailable(format!("{} is not a directory", dir.display()))),
            Err(e) => Err(unavailable(&format!("the store's directory {}", dir.display()), e)),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads what was appended since this handle last looked (all of it
    /// after a compaction).
    fn catch_up(&self, st: &mut State) -> Result<Tail, StoreError> {
        let path = self.log_path();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                *st = State::default();
                return Ok(Tail::Clean);
            }
            Err(e) => return Err(unavailable(&format!("opening {}", path.display()), e)),
        };
        let mut head = [0u8; HEADER_LEN as usize];
        let len = file.metadata().map_err(|e| unavailable("reading the log's size", e))?.len();
        if len < HEADER_LEN {
            // Only a crash while creating the file leaves less than a header.
            *st = State::default();
            return Ok(Tail::Unfinished(len, "a log shorter than its header"));
        }
        file.read_exact(&mut head).map_err(|e| unavailable("reading the log's header", e))?;
        let generation = format::read_header(&head)
            .ok_or_else(|| StoreError::Unavailable(format!("{} is not a scimlet log", path.display())))?;
        if generation != st.generation {
            *st = State { generation, offset: HEADER_LEN, ..State::default() };
        }
        if len <= st.offset {
            return Ok(Tail::Clean);
        }
        let mut bytes = Vec::with_capacity((len - st.offset) as usize);
        file.seek(SeekFrom::Start(st.offset)).map_err(|e| unavailable("seeking in the log", e))?;
        file.take(len - st.offset).read_to_end(&mut bytes).map_err(|e| unavailable("reading the log", e))?;
        let mut at = 0;
        let tail = loop {
            if at == bytes.len() {
                break Tail::Clean;
            }
            match format::apply_next(&bytes[at..], &mut st.records) {
                Next::Record(n) => at += n,
                Next::Incomplete => break Tail::Unfinished(len, "an incomplete record"),
                Next::Bad(why) if format::is_unfinished_append(&bytes[at..]) => break Tail::Unfinished(len, why),
                Next::Bad(why) => break Tail::Damaged(why),
            }
        };
        st.offset += at as u64;
        Ok(tail)
    }

    /// Catches up for a read.
    fn read(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        let mut st = self.state();
        // An unfinished tail is an append under way: read what is whole.
        self.catch_up(&mut st)?;
        Ok(st)
    }

    fn commit_locked(&self, st: &mut State, writes: &[Write], lock: &lock::Lock) -> Result<u64, StoreError> {
        let path = self.log_path();
        match self.catch_up(st)? {
            Tail::Clean => {}
            Tail::Damaged(why) => {
                return Err(StoreError::Unavailable(format!(
                    "{} is damaged at byte {} ({why}) and records follow; nothing is written until it is \
                     restored from a copy",
                    path.display(),
                    st.offset
                )));
            }
            Tail::Unfinished(len, why) => {
                // Under the lock no append is under way: this is what a
                // crash left. Nothing in it was acknowledged.
                eprintln!(
                    "scimlet file store: cutting {} bytes off the end of {} ({why}), left by an append that did not finish",
                    len.saturating_sub(st.offset),
                    path.display()
                );
                if st.generation == 0 {
                    let _ = fs::remove_file(&path);
                } else {
                    let file =
                        OpenOptions::new().write(true).open(&path).map_err(|e| unavailable("opening the log", e))?;
                    file.set_len(st.offset).map_err(|e| unavailable("cutting the log's unfinished end", e))?;
                    file.sync_data().map_err(|e| unavailable("syncing the log", e))?;
                }
            }
        }
        for (i, w) in writes.iter().enumerate() {
            if !w.precondition.holds(st.records.map.get(&w.key).map(|(_, v)| *v)) {
                return Err(StoreError::Conflict(i as u32));
            }
        }
        let version = st.records.version + 1;
        let record = format::commit_record(version, writes.iter().map(|w| (w.key.as_str(), w.value.as_deref())));
        if !lock.still_held() {
            return Err(StoreError::Unavailable("the store's lock was taken over while this commit waited".into()));
        }
        if st.generation == 0 {
            self.create_log(st)?;
        }
        let mut file = OpenOptions::new().write(true).open(&path).map_err(|e| unavailable("opening the log", e))?;
        file.seek(SeekFrom::Start(st.offset)).map_err(|e| unavailable("seeking in the log", e))?;
        if let Err(e) = file.write_all(&record).and_then(|()| file.sync_data()) {
            // What was written of it is an unfinished tail the next writer cuts.
            return Err(unavailable("appending to the log", e));
        }
        st.offset += record.len() as u64;
        st.records.version = version;
        for w in writes {
            st.records.set(w.key.clone(), w.value.clone().map(|value| (value, version)));
        }
        if st.offset > COMPACT_MIN && st.offset > 2 * st.records.live {
            // The commit is durable already; a failed compaction only
            // leaves the log as long as it was.
            if let Err(e) = self.compact(st) {
                eprintln!("scimlet file store: compaction failed, the log stays as it is: {e}");
            }
        }
        Ok(version)
    }

    /// Writes a whole file (a header and `records`) under a temporary name,
    /// syncs it and renames it to the log, then syncs the directory.
    fn replace_log(&self, generation: u64, records: &[Vec<u8>]) -> Result<u64, StoreError> {
        let fresh = self.dir.join(format!("{LOG_FILE}.new"));
        let mut file = File::create(&fresh).map_err(|e| unavailable("creating a new log", e))?;
        let mut len = HEADER_LEN;
        file.write_all(&format::header(generation)).map_err(|e| unavailable("writing a new log", e))?;
        for record in records {
            file.write_all(record).map_err(|e| unavailable("writing a new log", e))?;
            len += record.len() as u64;
        }
        file.sync_all().map_err(|e| unavailable("syncing a new log", e))?;
        fs::rename(&fresh, self.log_path()).map_err(|e| unavailable("renaming the new log into place", e))?;
        sync_dir(&self.dir)?;
        Ok(len)
    }

    fn create_log(&self, st: &mut State) -> Result<(), StoreError> {
        let generation = new_generation()?;
        st.offset = self.replace_log(generation, &[])?;
        st.generation = generation;
        Ok(())
    }

    fn compact(&self, st: &mut State) -> Result<(), StoreError> {
        let generation = new_generation()?;
        let records = format::snapshot_records(st.records.version, &st.records.map, SNAPSHOT_CHUNK);
        st.offset = self.replace_log(generation, &records)?;
        st.generation = generation;
        Ok(())
    }
}

fn new_generation() -> Result<u64, StoreError> {
    // Never 0, which stands for "no file yet".
    getrandom::u64().map(|g| g.max(1)).map_err(|e| unavailable("random source", e))
}

/// Makes a rename or a new file in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| unavailable(&format!("syncing {}", dir.display()), e))
}

pub(crate) fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

fn entry(key: &str, (value, version): &Slot) -> Entry {
    Entry { key: key.to_owned(), value: value.clone(), version: *version }
}

impl Store for FileStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let st = self.read()?;
        Ok(st.records.map.get(key).map(|slot| entry(key, slot)))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        if keys.len() > self.limits().get_many_keys {
            return Err(StoreError::Unavailable(format!("{} keys in one get-many, over the limit", keys.len())));
        }
        let st = self.read()?;
        Ok(keys.iter().map(|k| st.records.map.get(k).map(|slot| entry(k, slot))).collect())
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        let st = self.read()?;
        let start = match after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let limit = limit.min(SCAN_CAP) as usize;
        let mut range =
            st.records.map.range::<str, _>((start, Bound::Unbounded)).take_while(|(k, _)| k.starts_with(prefix));
        let entries: Vec<Entry> = range.by_ref().take(limit).map(|(k, slot)| entry(k, slot)).collect();
        Ok(ScanPage { entries, more: range.next().is_some() })
    }

    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
        if writes.len() > self.limits().commit_writes {
            return Err(StoreError::Unavailable(format!("{} writes in one commit, over the limit", writes.len())));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(w) = writes.iter().find(|w| !seen.insert(w.key.as_str())) {
            return Err(StoreError::Unavailable(format!("the key {:?} twice in one commit", w.key)));
        }
        let mut st = self.state();
        let lock = lock::Lock::acquire(&self.dir.join(LOCK_FILE))?;
        let result = self.commit_locked(&mut st, &writes, &lock);
        drop(lock);
        result
    }

    fn limits(&self) -> Limits {
        Limits::CONTRACT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!("scimlet-file-store-unit-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }
        fn store(&self) -> FileStore {
            FileStore::open(&self.0).unwrap()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn log_len(dir: &Dir) -> u64 {
        fs::metadata(dir.0.join(LOG_FILE)).unwrap().len()
    }

    #[test]
    fn an_append_a_crash_cut_short_is_cut_off_by_the_next_writer() {
        let dir = Dir::new("torn");
        let v1 = dir.store().commit(vec![Write::put("a", b"1".to_vec())]).unwrap();
        let whole = log_len(&dir);
        // What a crash in the middle of an append leaves.
        let record = format::commit_record(v1 + 1, [("b", Some(&b"lost"[..]))].into_iter());
        let mut file = OpenOptions::new().append(true).open(dir.0.join(LOG_FILE)).unwrap();
        file.write_all(&record[..record.len() - 3]).unwrap();

        let reader = dir.store();
        assert_eq!(reader.get("b").unwrap(), None, "a reader applies no unfinished record");
        assert_eq!(reader.get("a").unwrap().unwrap().version, v1);
        let v2 = dir.store().commit(vec![Write::create("c", b"3".to_vec())]).unwrap();
        assert_eq!(v2, v1 + 1);
        assert_eq!(log_len(&dir), whole + format::commit_record(v2, [("c", Some(&b"3"[..]))].into_iter()).len() as u64);
        // The reader that stopped before the unfinished bytes reads on from there.
        assert_eq!(reader.get("c").unwrap().unwrap().version, v2);
        assert_eq!(reader.get("b").unwrap(), None);
    }

    #[test]
    fn damage_inside_the_log_stops_writes_and_cuts_nothing() {
        let dir = Dir::new("damaged");
        let store = dir.store();
        let v1 = store.commit(vec![Write::put("a", b"1".to_vec())]).unwrap();
        store.commit(vec![Write::put("b", b"2".to_vec())]).unwrap();
        store.commit(vec![Write::put("c", b"3".to_vec())]).unwrap();
        // Flip a byte of the second record's payload.
        let path = dir.0.join(LOG_FILE);
        let mut bytes = fs::read(&path).unwrap();
        let first = format::commit_record(v1, [("a", Some(&b"1"[..]))].into_iter()).len();
        bytes[HEADER_LEN as usize + first + format::FRAME_LEN + 3] ^= 0x10;
        fs::write(&path, &bytes).unwrap();

        let fresh = dir.store();
        assert_eq!(fresh.get("a").unwrap().unwrap().version, v1, "what precedes the damage is read");
        assert_eq!(fresh.get("c").unwrap(), None);
        let err = fresh.commit(vec![Write::put("d", b"4".to_vec())]).unwrap_err();
        assert!(matches!(&err, StoreError::Unavailable(t) if t.contains("is damaged at byte")), "{err:?}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "nothing cut, nothing appended");
    }

    #[test]
    fn compaction_keeps_records_versions_and_the_counter() {
        let dir = Dir::new("compact");
        let store = dir.store();
        let reader = dir.store();
        let big = vec![7u8; 1 << 20];
        let kept = store.commit(vec![Write::put("kept", b"k".to_vec())]).unwrap();
        assert_eq!(reader.get("kept").unwrap().unwrap().version, kept);
        let mut last = 0;
        for _ in 0..6 {
            last = store.commit(vec![Write::put("big", big.clone()), Write::put("gone", vec![1])]).unwrap();
        }
        let counter = store.commit(vec![Write::delete("gone")]).unwrap();
        assert!(log_len(&dir) < COMPACT_MIN, "the log was rewritten: {} bytes", log_len(&dir));

        // A handle that read the old file reads the new one from its start.
        assert_eq!(reader.get("big").unwrap().unwrap(), Entry { key: "big".into(), value: big, version: last });
        assert_eq!(reader.get("kept").unwrap().unwrap().version, kept);
        assert_eq!(reader.get("gone").unwrap(), None);
        // The deleted record's version is not given again.
        let next = dir.store().commit(vec![Write::create("gone", vec![2])]).unwrap();
        assert_eq!(next, counter + 1);
    }

    #[test]
    fn an_abandoned_lock_is_taken_over_and_a_live_one_waited_for() {
        let dir = Dir::new("lock");
        let store = dir.store();
        let lock = dir.0.join(LOCK_FILE);

        // Held by a live writer: the commit waits until it is released.
        let held = lock::Lock::acquire(&lock).unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(held);
        });
        let started = std::time::Instant::now();
        store.commit(vec![Write::put("a", vec![1])]).unwrap();
        assert!(started.elapsed() >= std::time::Duration::from_millis(250), "the commit did not wait");
        release.join().unwrap();
        assert!(!lock.exists(), "released");

        // Left by a writer that died: older than STALE, taken over.
        fs::write(&lock, "0123456789abcdef").unwrap();
        let old = std::time::SystemTime::now() - STALE - std::time::Duration::from_secs(5);
        File::options().write(true).open(&lock).unwrap().set_modified(old).unwrap();
        store.commit(vec![Write::put("b", vec![2])]).unwrap();
        assert!(!lock.exists());
        assert_eq!(dir.store().get("b").unwrap().unwrap().value, vec![2]);
    }

    #[test]
    fn a_file_that_is_no_log_is_refused_and_left_alone() {
        let dir = Dir::new("foreign");
        fs::write(dir.0.join(LOG_FILE), b"not a scimlet log at all").unwrap();
        let err = dir.store().commit(vec![Write::put("a", vec![1])]).unwrap_err();
        assert!(matches!(&err, StoreError::Unavailable(t) if t.contains("is not a scimlet log")), "{err:?}");
        assert_eq!(fs::read(dir.0.join(LOG_FILE)).unwrap(), b"not a scimlet log at all");
        assert!(FileStore::open(dir.0.join(LOG_FILE)).is_err(), "a file is no store directory");
    }
}
