//! The application's storage for scimlet: one SQLite file, the contract of
//! `wit/scimlet.wit` in one table and one counter.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use scimlet_embed::{Entry, Precondition, ScanPage, Storage, StorageError, Write};

/// Most entries one scan returns, whatever it asks: the component pages on.
const SCAN_CAP: u32 = 1_000;

/// Most writes one commit takes: the contract's floor, which the component
/// never exceeds; a bound on the work one call can make.
const MAX_WRITES: usize = 10_000;

/// A SQLite database file holding scimlet's records.
///
/// One connection behind a mutex, used on tokio's blocking pool: SQLite
/// calls block, and the contract asks commits to behave as if run one
/// after another, which one connection gives for free.
#[derive(Clone)]
pub struct SqliteStorage {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // A commit answered `ok` must survive a crash of the machine.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // The layout of `crates/sql-store` (the Spin build's, and the Node.js
        // example's): one file serves any of them. Keys are TEXT, which
        // SQLite's BINARY collation compares with memcmp on UTF-8: the
        // code-point order the contract asks for.
        for statement in scimlet_sql_store::SCHEMA {
            conn.execute(statement, [])?;
        }
        Ok(SqliteStorage { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn blocking<R: Send + 'static>(
        &self,
        call: impl FnOnce(&mut Connection) -> rusqlite::Result<Result<R, StorageError>> + Send + 'static,
    ) -> Result<R, StorageError> {
        let conn = Arc::clone(&self.conn);
        let answer = tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            call(&mut conn)
        })
        .await;
        match answer {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => Err(StorageError::Unavailable(format!("sqlite: {err}"))),
            Err(join) => Err(StorageError::Unavailable(format!("storage task failed: {join}"))),
        }
    }
}

fn read(conn: &Connection, key: &str) -> rusqlite::Result<Option<Entry>> {
    conn.prepare_cached("SELECT value, version FROM scimlet_kv WHERE key = ?1")?
        .query_row([key], |row| {
            Ok(Entry { key: key.to_owned(), value: row.get(0)?, version: row.get::<_, i64>(1)? as u64 })
        })
        .optional()
}

impl Storage for SqliteStorage {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StorageError> {
        let key = key.to_owned();
        self.blocking(move |conn| read(conn, &key).map(Ok)).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StorageError> {
        let keys = keys.to_vec();
        self.blocking(move |conn| {
            // One read transaction: every key from the same state.
            let tx = conn.transaction()?;
            let found = keys.iter().map(|key| read(&tx, key)).collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            Ok(Ok(found))
        })
        .await
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StorageError> {
        let prefix = prefix.to_owned();
        // Strictly after `after`, or from the prefix itself.
        let (from, statement) = match after {
            Some(after) if after >= prefix.as_str() => {
                (after.to_owned(), "SELECT key, value, version FROM scimlet_kv WHERE key > ?1 ORDER BY key LIMIT ?2")
            }
            _ => (prefix.clone(), "SELECT key, value, version FROM scimlet_kv WHERE key >= ?1 ORDER BY key LIMIT ?2"),
        };
        let take = limit.min(SCAN_CAP) as usize;
        self.blocking(move |conn| {
            let mut query = conn.prepare_cached(statement)?;
            let mut rows = query.query(params![from, take as i64 + 1])?;
            let mut entries = Vec::new();
            let mut more = false;
            while let Some(row) = rows.next()? {
                let key: String = row.get(0)?;
                if !key.starts_with(&prefix) {
                    break;
                }
                if entries.len() == take {
                    more = true;
                    break;
                }
                entries.push(Entry { key, value: row.get(1)?, version: row.get::<_, i64>(2)? as u64 });
            }
            Ok(Ok(ScanPage { entries, more }))
        })
        .await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<u64, StorageError> {
        if writes.len() > MAX_WRITES {
            return Err(StorageError::Unavailable(format!(
                "a commit of {} writes; at most {MAX_WRITES}",
                writes.len()
            )));
        }
        self.blocking(move |conn| {
            // IMMEDIATE takes the write lock before the preconditions are
            // read, so nothing can change between the check and the writes.
            let mut seen = HashSet::with_capacity(writes.len());
            if let Some(twice) = writes.iter().find(|w| !seen.insert(w.key.as_str())) {
                return Ok(Err(StorageError::Unavailable(format!("key {:?} written twice", twice.key))));
            }
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (index, write) in writes.iter().enumerate() {
                let current = read(&tx, &write.key)?.map(|e| e.version);
                let holds = match write.precondition {
                    Precondition::None => true,
                    Precondition::Absent => current.is_none(),
                    Precondition::Version(v) => current == Some(v),
                };
                if !holds {
                    // Dropping the transaction rolls it back: nothing applied.
                    return Ok(Err(StorageError::Conflict(index as u32)));
                }
            }
            let version: i64 =
                tx.query_row("UPDATE scimlet_seq SET last = last + 1 WHERE id = 1 RETURNING last", [], |row| {
                    row.get(0)
                })?;
            for write in &writes {
                match &write.value {
                    Some(value) => tx
                        .prepare_cached("INSERT OR REPLACE INTO scimlet_kv (key, value, version) VALUES (?1, ?2, ?3)")?
                        .execute(params![write.key, value, version])?,
                    None => tx.prepare_cached("DELETE FROM scimlet_kv WHERE key = ?1")?.execute([&write.key])?,
                };
            }
            tx.commit()?;
            Ok(Ok(version as u64))
        })
        .await
    }
}
