//! The default backend: one SQLite file.
//!
//! Layout (version 2, `scimlet_sql_store::SCHEMA`: the tables the Spin build
//! and the Node.js and axum examples keep too, so one file serves any of
//! them):
//! - `scimlet_kv(key TEXT PRIMARY KEY, value BLOB NOT NULL, version INTEGER
//!   NOT NULL) WITHOUT ROWID`: keys are always bound as TEXT, which SQLite's
//!   BINARY collation compares with `memcmp` on UTF-8, the code-point order
//!   the WIT contract promises.
//! - `scimlet_seq(id = 1, last)`: the last commit sequence number. Each
//!   commit takes the next one and gives it as version to every record it
//!   writes, so versions strictly increase across the whole store and a
//!   deleted key that is re-created never sees an old version again.
//! - `PRAGMA user_version` records the layout version. Version 1 (tables
//!   `kv` and `seq`, keys as BLOBs) is upgraded in place when a file is
//!   opened: one transaction copies the records with their keys as TEXT and
//!   the counter, then drops the old tables.
//!
//! Durability and concurrency: `journal_mode=WAL` so readers never block the
//! writer nor each other; `synchronous=FULL` so a commit acknowledged to the
//! component is on disk; `busy_timeout` so that another process (the server
//! and the CLI may share a file) holding the write lock delays rather than
//! fails a call; `BEGIN IMMEDIATE` for commits so the preconditions are checked
//! under the write lock, never against a snapshot another writer already
//! moved past.
//!
//! Connections: one write connection, owned by a committer thread that
//! runs every commit waiting for it in one transaction (a savepoint each),
//! so concurrent writers share an `fsync` (group commit) while each commit
//! keeps its own preconditions, version and outcome; and a small pool of
//! read-only connections. The pool is worth
//! its few lines because under WAL a reader works from its own snapshot while a
//! commit waits on `fsync`: with one shared connection every SCIM read would
//! queue behind every durable write. A read needing several statements
//! (`get_many`) runs in one read transaction on one pooled connection, so it
//! sees one consistent snapshot.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::{
    Backend, Entry, MAX_BATCH, MAX_SCAN_LIMIT, Precondition, ScanPage, Snapshot, StoreError, Submitted, Write,
    check_commit,
};

/// How long a call waits for another connection's lock before giving up with
/// `unavailable`. Long enough to ride out a concurrent commit's `fsync` or a
/// CLI command in another process; short enough to stay well inside the
/// runtime's per-request deadline.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Read connections kept open for reuse. More may be opened under a burst;
/// extra ones are closed when returned. Opening one costs far more than a
/// read (file, WAL index and schema), so the pool covers the concurrency
/// the server sees: with 4 and 8 clients, half of all reads opened one.
const READER_POOL: usize = 16;

/// Page cache of each read connection, in KiB (SQLite's default is 2,000).
/// At 100,000 users a list page's records no longer fit the default, and
/// each missed page is a `pread`: a page of 100 cost 1.6x what it costs at
/// 1,000 users. With 4 MiB it costs 1.1x, for 22 MiB more resident memory
/// at 100,000 users (8 MiB: flat costs, but 2.4x the memory).
const READER_CACHE_KIB: i64 = 4096;

/// WAL frames (pages) after which a commit folds the WAL into the database
/// file (SQLite's `wal_autocheckpoint`, 1,000 by default). A checkpoint
/// copies every page the WAL holds and flushes the database file, and it runs
/// on the committer, so every commit queued behind it waits; a create writes
/// about a dozen frames, most of them the same few index and log pages again
/// and again. Every 40,000 frames instead of every 1,000, each hot page is
/// copied once instead of forty times. Durable creates with 8 clients for
/// 15 s from 1,000 users, in runs alternating over an hour: 3,690-4,170/s
/// at 1,000 frames (6 runs), 4,060-4,840/s at 40,000 (8 runs); the spread
/// is the shared machine's. Tried and slower: a checkpointer thread of its
/// own, every 250 ms (3,180-3,270/s): it copied more often, on the same two
/// cores. The WAL is then up to ~160 MiB on disk; lookups did not change.
const CHECKPOINT_FRAMES: i64 = 40_000;

/// Size the WAL file is cut back to when SQLite starts it over after a
/// checkpoint. Above the ~160 MiB that [`CHECKPOINT_FRAMES`] lets it reach,
/// so only a WAL that grew past it (a reader pinning old frames through a
/// burst) is cut: a WAL cut to a smaller size grows again through the next
/// burst, and each `fdatasync` of a growing file also writes its inode,
/// while a WAL reused in place only writes its pages.
const WAL_KEEP_BYTES: i64 = 192 << 20;

/// After this long without a commit, the committer checkpoints what the WAL
/// holds, so that an idle database is one file (as a backup or a copy by
/// hand expects) and the next burst starts with a short WAL.
const IDLE_CHECKPOINT: Duration = Duration::from_secs(2);

/// The layout version this code writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// Upgrades a version 1 file (after `SCHEMA` has created the new tables).
const FROM_VERSION_1: &str = "
    INSERT INTO scimlet_kv (key, value, version) SELECT CAST(key AS TEXT), value, version FROM kv;
    UPDATE scimlet_seq SET last = (SELECT last FROM seq WHERE id = 1) WHERE id = 1;
    DROP TABLE kv;
    DROP TABLE seq;
";

/// One page of keys from a lower bound, below an upper one or to the end.
const SCAN_RANGE: &str =
    "SELECT key, value, version FROM scimlet_kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3";
const SCAN_FROM: &str = "SELECT key, value, version FROM scimlet_kv WHERE key >= ?1 ORDER BY key LIMIT ?2";

/// A [`Backend`] over one SQLite database file.
pub struct SqliteStore {
    path: PathBuf,
    /// Where commits go: the committer thread that owns the write
    /// connection (see [`run_committer`]).
    /// `None` once the store is closing.
    committer: Mutex<Option<mpsc::Sender<CommitRequest>>>,
    /// Joined when the store is dropped, so the write connection is closed
    /// (and the WAL folded into the database) before the process exits.
    committer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// A shared lock on `<db>.lock` while the store is open, so that a
    /// restore cannot replace the file under it (see `backup.rs`).
    _in_use: std::fs::File,
}

fn unavailable(err: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {err}"))
}

/// Locks a mutex even if a previous holder panicked: the guarded connection
/// is still usable (an open transaction is rolled back when its guard drops).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps each cached statement's query plan whatever is bound to it.
/// Without this SQLite re-prepares a statement whenever a parameter that
/// the planner looked at gets a new value, and it looks at `LIMIT ?`: every
/// scan with a different page size than the last was parsed and planned
/// again, a tenth of a lookup's CPU in a profile.
fn stable_plans(conn: &Connection) -> Result<(), StoreError> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(drop).map_err(unavailable)
}

fn version_from_sql(v: i64) -> u64 {
    // Versions are written from the sequence, which starts at 1; a negative
    // value can only come from a foreign writer and is mapped to 0, which no
    // precondition can name (versions are never 0).
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and ensures its layout.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let in_use = super::backup::hold_shared(&path).map_err(StoreError::Unavailable)?;
        let writer = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        writer.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
        stable_plans(&writer)?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0)).map_err(unavailable)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!(
                "{}: cannot enable WAL (journal_mode is {mode})",
                path.display()
            )));
        }
        writer.pragma_update(None, "synchronous", "FULL").map_err(unavailable)?;
        // Each commit of a group runs in a savepoint; with temporary files on
        // disk SQLite opens, writes and unlinks a statement journal for
        // each, which showed in a profile of creates.
        writer.pragma_update(None, "temp_store", "MEMORY").map_err(unavailable)?;
        writer.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_FRAMES).map_err(unavailable)?;
        writer.pragma_update(None, "journal_size_limit", WAL_KEEP_BYTES).map_err(unavailable)?;
        let mut writer = writer;
        migrate(&mut writer, &path)?;
        let (committer, requests) = mpsc::channel();
        // Fault injection for tests of slow disks: every transaction waits
        // this long before it starts.
        let delay = std::env::var("SCIMLET_FAULT_COMMIT_DELAY_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis);
        let thread = std::thread::Builder::new()
            .name("sqlite-commit".into())
            .spawn(move || run_committer(writer, requests, delay))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the committer: {e}")))?;
        Ok(SqliteStore {
            path,
            committer: Mutex::new(Some(committer)),
            committer_thread: Mutex::new(Some(thread)),
            readers: Arc::new(Mutex::new(Vec::new())),
            _in_use: in_use,
        })
    }
}

/// Creates the tables under the write lock, so two processes opening a
/// fresh file at once do not race, and refuses a file written by a newer
/// layout rather than misreading it.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(unavailable)?;
        let found: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(unavailable)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::Unavailable(format!(
                "{}: storage layout version {found} is newer than this scimlet understands ({SCHEMA_VERSION})",
                path.display()
            )));
        }
        for statement in scimlet_sql_store::SCHEMA {
            tx.execute(statement, []).map_err(unavailable)?;
        }
        if found == 1 {
            let records: i64 = tx.query_row("SELECT count(*) FROM kv", [], |row| row.get(0)).map_err(unavailable)?;
            tx.execute_batch(FROM_VERSION_1).map_err(unavailable)?;
            tracing::info!(
                "{}: storage layout upgraded from version 1 to {SCHEMA_VERSION} ({records} records)",
                path.display()
            );
        }
        if found < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)
    }
}

impl SqliteStore {
    fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn =
            Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(unavailable)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
        stable_plans(&conn)?;
        conn.pragma_update(None, "cache_size", -READER_CACHE_KIB).map_err(unavailable)?;
        Ok(conn)
    }

    /// A read-only connection from the pool, or a new one when all are out.
    fn take_reader(&self) -> Result<Connection, StoreError> {
        let pooled = lock(&self.readers).pop();
        match pooled {
            Some(conn) => Ok(conn),
            None => self.open_reader(),
        }
    }

    /// Runs `f` on a pooled read-only connection. A connection whose use
    /// failed is closed rather than returned, in case it is left in a bad state.
    fn with_reader<R>(&self, f: impl FnOnce(&mut Connection) -> Result<R, rusqlite::Error>) -> Result<R, StoreError> {
        let mut conn = self.take_reader()?;
        let result = f(&mut conn).map_err(unavailable)?;
        give_back(&self.readers, conn);
        Ok(result)
    }
}

/// Returns a read connection to the pool; one past the pool's size is closed.
fn give_back(pool: &Mutex<Vec<Connection>>, conn: Connection) {
    let mut pool = lock(pool);
    if pool.len() < READER_POOL {
        pool.push(conn);
    }
}

fn entry_from_row(key: String, row: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry { key, value: row.get(0)?, version: version_from_sql(row.get(1)?) })
}

fn get_on(conn: &Connection, key: &str) -> rusqlite::Result<Option<Entry>> {
    conn.prepare_cached("SELECT value, version FROM scimlet_kv WHERE key = ?1")?
        .query_row([key], |row| entry_from_row(key.to_owned(), row))
        .optional()
}

fn get_many_on(conn: &Connection, keys: &[String]) -> rusqlite::Result<Vec<Option<Entry>>> {
    keys.iter().map(|key| get_on(conn, key)).collect()
}

fn check_get_many(keys: &[String]) -> Result<(), StoreError> {
    if keys.len() > MAX_BATCH {
        return Err(StoreError::Unavailable(format!(
            "get-many of {} keys exceeds the limit of {MAX_BATCH}",
            keys.len()
        )));
    }
    Ok(())
}

fn scan_on(conn: &Connection, prefix: &str, after: Option<&str>, limit: u32) -> rusqlite::Result<ScanPage> {
    let limit = limit.min(MAX_SCAN_LIMIT);
    if limit == 0 {
        return Ok(ScanPage::default());
    }
    // One row past the page says whether the prefix goes on.
    let fetch = limit + 1;
    // "key > after" is "key >= after + U+0000" on strings in code-point
    // order, so the lower end of the range is one inclusive bound and the
    // query one index range.
    let mut lower = prefix.to_owned();
    if let Some(after) = after {
        lower = lower.max(format!("{after}\0"));
    }
    let map = |row: &rusqlite::Row<'_>| {
        Ok(Entry { key: row.get(0)?, value: row.get(1)?, version: version_from_sql(row.get(2)?) })
    };
    let mut entries = match scimlet_sql_store::prefix_upper_bound(prefix) {
        Some(upper) => conn
            .prepare_cached(SCAN_RANGE)?
            .query_map(params![lower, upper, fetch], map)?
            .collect::<rusqlite::Result<Vec<Entry>>>(),
        None => conn.prepare_cached(SCAN_FROM)?.query_map(params![lower, fetch], map)?.collect(),
    }?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    Ok(ScanPage { entries, more })
}

/// A read transaction on a pooled connection, begun when the request's
/// first read opens it (SQLite takes the snapshot at that first read) and
/// ended, the connection back in the pool, when dropped. In WAL mode it
/// holds no lock that a commit waits for; it only keeps a checkpoint from
/// moving past the state it reads, for the length of one request.
struct SqliteSnapshot {
    conn: Option<Connection>,
    pool: Arc<Mutex<Vec<Connection>>>,
}

impl SqliteSnapshot {
    fn read<R>(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R, StoreError> {
        let conn = self.conn.as_ref().ok_or_else(|| StoreError::Unavailable("sqlite: snapshot closed".into()))?;
        f(conn).map_err(|e| {
            // Not to be pooled again: the read left it in an unknown state.
            self.conn = None;
            unavailable(e)
        })
    }
}

impl Snapshot for SqliteSnapshot {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.read(|conn| get_on(conn, key))
    }

    fn get_many(&mut self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        check_get_many(keys)?;
        self.read(|conn| get_many_on(conn, keys))
    }

    fn scan(&mut self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        self.read(|conn| scan_on(conn, prefix, after, limit))
    }
}

impl Drop for SqliteSnapshot {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if conn.prepare_cached("COMMIT").and_then(|mut end| end.execute([])).is_err() {
            return;
        }
        give_back(&self.pool, conn);
    }
}

/// Turns a stored key back into the `string` the WIT contract promises. Only
/// a foreign writer could have stored non-UTF-8 bytes; that is reported as
/// unavailable rather than handed to the component mangled.
/// `commit` checks every precondition, in order, under the write lock before
/// writing anything, then takes the next sequence number. An empty commit
/// still takes one (and returns it); a key named twice is refused as
/// `unavailable` before the database is touched.
impl Backend for SqliteStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.with_reader(|conn| get_on(conn, key))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        check_get_many(keys)?;
        self.with_reader(|conn| {
            // BEGIN and COMMIT as cached statements: rusqlite's
            // `transaction()` parses both again on every call, which was a
            // visible share of a lookup's CPU time. A failed read leaves
            // the transaction open; `with_reader` then drops the connection.
            conn.prepare_cached("BEGIN")?.execute([])?;
            let entries = get_many_on(conn, keys)?;
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok(entries)
        })
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        self.with_reader(|conn| scan_on(conn, prefix, after, limit))
    }

    fn commit(&self, writes: &[Write]) -> Result<u64, StoreError> {
        check_commit(writes)?;
        let (reply, answer) = mpsc::sync_channel(1);
        self.enqueue(writes.to_vec(), Reply::Blocking(reply));
        answer.recv().unwrap_or_else(|_| Err(StoreError::Unavailable(COMMITTER_GONE.into())))
    }

    fn snapshot(&self) -> Result<Option<Box<dyn Snapshot>>, StoreError> {
        let conn = self.take_reader()?;
        // A connection whose BEGIN failed is closed, not pooled.
        conn.prepare_cached("BEGIN").and_then(|mut begin| begin.execute([])).map_err(unavailable)?;
        Ok(Some(Box::new(SqliteSnapshot { conn: Some(conn), pool: Arc::clone(&self.readers) })))
    }

    fn submit(&self, writes: Vec<Write>) -> Result<Submitted, Vec<Write>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        match check_commit(&writes) {
            Ok(()) => self.enqueue(writes, Reply::Async(reply)),
            Err(refused) => Reply::Async(reply).send(Err(refused)),
        }
        Ok(answer)
    }
}

const COMMITTER_GONE: &str = "sqlite: the committer has stopped";

impl SqliteStore {
    /// Queues a commit for the committer; if it has stopped, answers at once.
    fn enqueue(&self, writes: Vec<Write>, reply: Reply) {
        let request = CommitRequest { writes, reply };
        let refused = match lock(&self.committer).as_ref() {
            Some(committer) => committer.send(request).err().map(|mpsc::SendError(request)| request),
            None => Some(request),
        };
        if let Some(request) = refused {
            request.reply.send(Err(StoreError::Unavailable(COMMITTER_GONE.into())));
        }
    }
}

/// Closes the database in order: the read connections first, then the
/// committer finishes the commits queued before the close and closes the
/// write connection last, which folds the WAL into the database file.
impl Drop for SqliteStore {
    fn drop(&mut self) {
        lock(&self.readers).clear();
        drop(lock(&self.committer).take());
        if let Some(thread) = lock(&self.committer_thread).take() {
            let _ = thread.join();
        }
    }
}

/// Where the committer answers: a thread blocked in [`Backend::commit`], or a
/// task awaiting [`Backend::submit`] (no thread waits for it: the committer's
/// answer wakes the task directly).
enum Reply {
    Blocking(mpsc::SyncSender<Result<u64, StoreError>>),
    Async(tokio::sync::oneshot::Sender<Result<u64, StoreError>>),
}

impl Reply {
    fn send(self, result: Result<u64, StoreError>) {
        // A caller that stopped waiting has nothing to be told.
        match self {
            Reply::Blocking(tx) => drop(tx.send(result)),
            Reply::Async(tx) => drop(tx.send(result)),
        }
    }
}

/// A commit waiting for the committer thread, and where its answer goes.
struct CommitRequest {
    writes: Vec<Write>,
    reply: Reply,
}

/// Most commits one transaction carries.
const MAX_GROUP: usize = 64;

/// The committer: owns the write connection and turns every commit waiting
/// when it starts a transaction into one durable transaction, each commit in
/// a savepoint of its own. The commits keep their meaning (each checks its
/// preconditions against the state the earlier ones left, takes its own
/// version, and fails alone), but share one `fsync`: under concurrent
/// writers the disk's flush rate no longer bounds the commit rate. No commit
/// is answered before the transaction holding it is durable.
fn run_committer(mut conn: Connection, requests: mpsc::Receiver<CommitRequest>, delay: Option<Duration>) {
    // Whether commits landed since the last checkpoint.
    let mut unfolded = false;
    loop {
        let next = if unfolded {
            requests.recv_timeout(IDLE_CHECKPOINT)
        } else {
            requests.recv().map_err(mpsc::RecvTimeoutError::from)
        };
        let first = match next {
            Ok(first) => first,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // PASSIVE: never waits for a reader; whatever a reader
                // still pins is folded by the next checkpoint.
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("sqlite: idle checkpoint failed: {e}");
                }
                unfolded = false;
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
        let mut writes = first.writes.len();
        let mut group = vec![first];
        while group.len() < MAX_GROUP && writes < MAX_BATCH {
            match requests.try_recv() {
                Ok(next) => {
                    writes += next.writes.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let results = commit_group(&mut conn, &group);
        unfolded = true;
        for (request, result) in group.into_iter().zip(results) {
            request.reply.send(result);
        }
    }
}

fn commit_group(conn: &mut Connection, group: &[CommitRequest]) -> Vec<Result<u64, StoreError>> {
    let fail_all = |err: StoreError| group.iter().map(|_| Err(err.clone())).collect();
    // The transaction and savepoint statements are cached: rusqlite's
    // `transaction()` and `savepoint()` parse theirs on every call.
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut statement| statement.execute([])).map(drop);
    if let Err(e) = run("BEGIN IMMEDIATE") {
        return fail_all(unavailable(e));
    }
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        let result = match run("SAVEPOINT one_commit") {
            Ok(()) => {
                let applied = apply(conn, &request.writes);
                if applied.is_ok() {
                    run("RELEASE one_commit").map_err(unavailable).and(applied)
                } else {
                    // Undo this commit alone; the others in the group stay.
                    let _ = run("ROLLBACK TO one_commit").and_then(|()| run("RELEASE one_commit"));
                    applied
                }
            }
            Err(e) => Err(unavailable(e)),
        };
        results.push(result);
    }
    match run("COMMIT") {
        Ok(()) => results,
        // SQLite rolls back a COMMIT that fails, but after an I/O error
        // (a failed write or fsync of the WAL) nobody can say what reached
        // the disk until the database is read again: say so in the log,
        // and answer every commit of the group as unavailable (a 503 the
        // client retries; the retry finds whatever landed).
        Err(e) => {
            if !conn.is_autocommit() {
                // Still open (a COMMIT that failed without an I/O error):
                // end it, so the next group starts clean.
                let _ = run("ROLLBACK");
            }
            let detail = format!(
                "sqlite: COMMIT of {} commit(s) failed ({e}); their outcome is unknown until the database is read again",
                group.len()
            );
            tracing::error!("{detail}");
            fail_all(StoreError::Unavailable(detail))
        }
    }
}

/// Checks every precondition, in order, then applies the writes with the
/// next sequence number, inside the caller's transaction.
fn apply(tx: &Connection, writes: &[Write]) -> Result<u64, StoreError> {
    {
        let mut current = tx.prepare_cached("SELECT version FROM scimlet_kv WHERE key = ?1").map_err(unavailable)?;
        for (index, write) in writes.iter().enumerate() {
            // No read for a write that requires nothing.
            let holds = write.precondition == Precondition::None || {
                let found: Option<i64> =
                    current.query_row([&write.key], |row| row.get(0)).optional().map_err(unavailable)?;
                write.precondition.holds(found.map(version_from_sql))
            };
            if !holds {
                // `writes.len()` is at most MAX_BATCH, so the index fits.
                return Err(StoreError::Conflict(index as u32));
            }
        }
    }
    let version: i64 = tx
        .prepare_cached("UPDATE scimlet_seq SET last = last + 1 WHERE id = 1 RETURNING last")
        .and_then(|mut next| next.query_row([], |row| row.get(0)))
        .map_err(unavailable)?;
    let mut upsert = tx
        .prepare_cached(
            "INSERT INTO scimlet_kv (key, value, version) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version",
        )
        .map_err(unavailable)?;
    let mut delete = tx.prepare_cached("DELETE FROM scimlet_kv WHERE key = ?1").map_err(unavailable)?;
    for write in writes {
        match &write.value {
            Some(value) => upsert.execute(params![write.key, value, version]),
            None => delete.execute([&write.key]),
        }
        .map_err(unavailable)?;
    }
    Ok(version_from_sql(version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contract::AsStore;
    use crate::store::testutil::TempDir;
    use std::sync::Arc;

    fn put(key: &str, value: &str) -> Write {
        Write { key: key.into(), value: Some(value.as_bytes().to_vec()), precondition: Precondition::None }
    }

    fn open(dir: &TempDir) -> SqliteStore {
        SqliteStore::open(dir.path().join("test.db")).expect("open store")
    }

    /// A database file of its own; every handle opens that file.
    struct File(TempDir);

    impl scimlet_storage_conformance::Subject for File {
        fn open(&self) -> scimlet_storage_conformance::Handle {
            AsStore::handle(open(&self.0))
        }
    }

    scimlet_storage_conformance::conformance_tests!(Some(File(TempDir::new())));

    #[test]
    fn a_snapshot_reads_one_state_until_it_is_let_go() {
        let dir = TempDir::new();
        let store: Arc<dyn Backend> = Arc::new(open(&dir));
        store.commit(&[put("k/1", "old"), put("k/2", "old")]).unwrap();
        let mut reads = super::super::Reads::new(Arc::clone(&store));
        assert_eq!(reads.get("k/1").unwrap().unwrap().value, b"old");
        // Another writer commits between two reads of one request.
        store.commit(&[put("k/1", "new"), put("k/2", "new"), put("k/3", "new")]).unwrap();
        assert_eq!(reads.get("k/2").unwrap().unwrap().value, b"old");
        assert_eq!(
            reads.get_many(&["k/1".into(), "k/3".into()]).unwrap(),
            vec![Some(Entry { key: "k/1".into(), value: b"old".to_vec(), version: 1 }), None]
        );
        assert_eq!(reads.scan("k/", None, 10).unwrap().entries.len(), 2);
        // What a request does before it commits: the next read is fresh.
        reads.end();
        assert_eq!(reads.get("k/2").unwrap().unwrap().value, b"new");
        assert_eq!(reads.scan("k/", None, 10).unwrap().entries.len(), 3);
        drop(reads);
        // Its connection went back to the pool, with no transaction open:
        // a commit after it is seen by the next read.
        store.commit(&[put("k/1", "newer")]).unwrap();
        assert_eq!(store.get("k/1").unwrap().unwrap().value, b"newer");
    }

    #[test]
    fn an_open_snapshot_does_not_hold_up_commits() {
        let dir = TempDir::new();
        let store = Arc::new(open(&dir));
        store.commit(&[put("k", "0")]).unwrap();
        let mut snapshot = store.snapshot().unwrap().unwrap();
        assert_eq!(snapshot.get("k").unwrap().unwrap().value, b"0");
        for i in 1..=3 {
            store.commit(&[put("k", &i.to_string())]).unwrap();
        }
        assert_eq!(snapshot.get("k").unwrap().unwrap().value, b"0");
        assert_eq!(store.get("k").unwrap().unwrap().value, b"3");
        drop(snapshot);
        // The snapshot's connection and the one the last get opened.
        assert_eq!(lock(&store.readers).len(), 2, "the snapshot's connection is pooled again");
    }

    /// The database file alone, copied without its WAL, read by a fresh
    /// connection: what a checkpoint has folded into it.
    fn folded(dir: &TempDir, key: &str) -> bool {
        let copy = dir.path().join("copy.db");
        std::fs::copy(dir.path().join("test.db"), &copy).unwrap();
        let conn = Connection::open(&copy).unwrap();
        let found = conn.query_row("SELECT count(*) FROM scimlet_kv WHERE key = ?1", [key], |row| row.get::<_, i64>(0));
        std::fs::remove_file(&copy).unwrap();
        // Before the first checkpoint even the table is only in the WAL.
        found.is_ok_and(|n| n == 1)
    }

    /// A file of layout version 1 (tables `kv` and `seq`, BLOB keys), as
    /// earlier releases wrote it.
    fn version_1_file(path: &Path, records: &[(&str, &str, i64)], last: i64) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE seq (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
             PRAGMA user_version = 1;",
        )
        .unwrap();
        conn.execute("INSERT INTO seq (id, last) VALUES (1, ?1)", [last]).unwrap();
        for (key, value, version) in records {
            conn.execute("INSERT INTO kv VALUES (?1, ?2, ?3)", params![key.as_bytes(), value.as_bytes(), version])
                .unwrap();
        }
    }

    #[test]
    fn a_version_1_file_is_upgraded_in_place() {
        let dir = TempDir::new();
        let path = dir.path().join("test.db");
        let records = [("a/z", "1", 3), ("a/\u{e9}", "2", 7), ("a/\u{10FFFF}", "3", 9), ("a/", "4", 2), ("b", "5", 40)];
        version_1_file(&path, &records, 41);

        let store = AsStore::handle(SqliteStore::open(&path).unwrap());
        let page = store.scan("a/", None, 10).unwrap();
        let got: Vec<(&str, &[u8], u64)> =
            page.entries.iter().map(|e| (e.key.as_str(), e.value.as_slice(), e.version)).collect();
        assert_eq!(
            got,
            [("a/", &b"4"[..], 2), ("a/z", &b"1"[..], 3), ("a/\u{e9}", &b"2"[..], 7), ("a/\u{10FFFF}", &b"3"[..], 9)],
            "code-point order, values and versions kept"
        );
        assert_eq!(store.scan("a/", Some("a/z"), 10).unwrap().entries.len(), 2);
        assert_eq!(store.commit(vec![Write::replace("b", b"6".to_vec(), 40)]).unwrap(), 42, "the counter goes on");
        drop(store);

        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(tables, ["scimlet_kv", "scimlet_seq"]);
        let text_keys: i64 =
            conn.query_row("SELECT count(*) FROM scimlet_kv WHERE typeof(key) = 'text'", [], |r| r.get(0)).unwrap();
        assert_eq!(text_keys, 5);
    }

    /// The runner's file is the Spin build's (and the examples'): the SQL
    /// store of `crates/sql-store` reads what the runner wrote and the
    /// other way round, versions included.
    #[test]
    fn the_spin_builds_store_reads_and_writes_the_runners_file() {
        use scim_core::Store as _;
        use scimlet_sql_store::{SqlStore, rusqlite_conn::Rusqlite};
        let dir = TempDir::new();
        let path = dir.path().join("test.db");
        let runner = AsStore::handle(SqliteStore::open(&path).unwrap());
        let v1 = runner.commit(vec![put("k/\u{e9}", "runner"), put("k/a", "runner")]).unwrap();
        drop(runner);

        let spin = SqlStore::new(Rusqlite(Connection::open(&path).unwrap()));
        let page = spin.scan("k/", None, 10).unwrap();
        assert_eq!(
            page.entries.iter().map(|e| (e.key.as_str(), e.version)).collect::<Vec<_>>(),
            [("k/a", v1), ("k/\u{e9}", v1)]
        );
        let v2 = spin.commit(vec![Write::replace("k/a", b"spin".to_vec(), v1), put("k/b", "spin")]).unwrap();
        assert!(v2 > v1);
        drop(spin);

        let runner = AsStore::handle(SqliteStore::open(&path).unwrap());
        assert_eq!(
            runner.get("k/a").unwrap().unwrap(),
            Entry { key: "k/a".into(), value: b"spin".to_vec(), version: v2 }
        );
        assert_eq!(runner.scan("k/", Some("k/a"), 10).unwrap().entries.len(), 2);
        assert!(runner.commit(vec![put("k/c", "runner")]).unwrap() > v2);
    }

    #[test]
    fn commits_stay_in_the_wal_until_the_committer_is_idle() {
        let dir = TempDir::new();
        let store = open(&dir);
        store.commit(&[put("k/1", "a")]).unwrap();
        for i in 2..=50 {
            store.commit(&[put(&format!("k/{i}"), "b")]).unwrap();
        }
        assert!(!folded(&dir, "k/50"), "a busy committer does not checkpoint every few commits");
        let started = std::time::Instant::now();
        while !folded(&dir, "k/50") {
            assert!(started.elapsed() < IDLE_CHECKPOINT * 5, "no checkpoint after {:?} idle", started.elapsed());
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(started.elapsed() >= IDLE_CHECKPOINT / 2, "checkpointed while commits were still arriving");
        // The store goes on as before.
        store.commit(&[put("k/51", "c")]).unwrap();
        assert_eq!(store.get("k/51").unwrap().unwrap().value, b"c");
    }

    #[test]
    fn scans_of_any_page_size_reuse_one_plan() {
        let dir = TempDir::new();
        let store = open(&dir);
        store.commit(&[put("a/1", "x"), put("a/2", "y"), put("b/1", "z")]).unwrap();
        for limit in [1, 1000, 2, 1, 7] {
            assert!(!store.scan("a/", None, limit).unwrap().entries.is_empty());
        }
        let reprepared = store
            .with_reader(|conn| Ok(conn.prepare_cached(SCAN_RANGE)?.get_status(rusqlite::StatementStatus::RePrepare)))
            .unwrap();
        assert_eq!(reprepared, 0, "a new LIMIT must not parse and plan the scan again");
    }
}
