//! The core's [`Store`] contract over a SQL connection with SQLite semantics
//! (Spin's `fermyon:spin/sqlite` database: local SQLite or libSQL/Turso).
//!
//! The connection is reached through the one-method [`Sql`] trait, so that the
//! same code runs inside the Spin component (over Spin's SQLite import) and in
//! the native tests of `tests/spin-host` (over rusqlite, the engine Spin uses
//! for local databases); both depend on this crate.
//!
//! Layout (created on the first commit, so reads on a fresh database cost no
//! DDL; a read of a database without the tables sees an empty store):
//! - `scimlet_kv(key TEXT PRIMARY KEY, value BLOB, version INTEGER)`: keys are
//!   always bound as TEXT, and SQLite's BINARY collation compares TEXT with
//!   `memcmp` on UTF-8, which is the code-point order the contract promises.
//! - `scimlet_seq(id = 1, last)`: the global commit counter. Each commit takes
//!   the next number and gives it to every record it writes, so versions
//!   strictly increase across the store and a re-created key never sees an old
//!   version again.
//!
//! Commit: one transaction (`BEGIN IMMEDIATE` … `COMMIT`, `ROLLBACK` on any
//! failure). Preconditions are read in one statement under the write lock and
//! checked in order; the first failing one is reported as its index.

#[cfg(feature = "rusqlite")]
pub mod rusqlite_conn;

use std::collections::{HashMap, HashSet};

use scim_core::{Entry, Limits, Precondition, ScanPage, Store, StoreError, Write};

/// A value bound to or read from a statement (Spin's `value` variant).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

/// One SQL connection: runs one statement with positional (`?`) parameters
/// and returns its rows. Errors are texts for operators' logs.
pub trait Sql {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, String>;
}

/// Most entries one scan returns, whatever the caller asks for.
pub const MAX_SCAN_LIMIT: u32 = 1000;

/// Keys per `IN (…)` list or rows per multi-row `INSERT`: far below SQLite's
/// bound-parameter limit.
const CHUNK: usize = 250;

/// The layout, statement by statement: the tables every SQLite store of the
/// project keeps (the runner's, layout version 2, the Spin build's, the
/// Node.js and the axum examples'), so that one database file serves any of
/// them.
pub const SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS scimlet_kv (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        version INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS scimlet_seq (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
    )",
    "INSERT OR IGNORE INTO scimlet_seq (id, last) VALUES (1, 0)",
];

/// The [`Store`] over an [`Sql`] connection.
pub struct SqlStore<C> {
    conn: C,
}

impl<C: Sql> SqlStore<C> {
    pub fn new(conn: C) -> Self {
        SqlStore { conn }
    }

    fn run(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        self.conn.execute(statement, params).map_err(|e| StoreError::Unavailable(format!("sqlite: {e}")))
    }

    /// Runs a read; a database where nothing was ever committed has no table
    /// yet and reads as empty.
    fn read(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        match self.conn.execute(statement, params) {
            Ok(rows) => Ok(rows),
            Err(e) if no_table(&e) => Ok(Vec::new()),
            Err(e) => Err(StoreError::Unavailable(format!("sqlite: {e}"))),
        }
    }

    /// Everything of a commit between `BEGIN IMMEDIATE` and `COMMIT`.
    fn apply(&self, writes: &[Write]) -> Result<u64, StoreError> {
        const NEXT: &str = "UPDATE scimlet_seq SET last = last + 1 WHERE id = 1 RETURNING last";
        let rows = match self.conn.execute(NEXT, &[]) {
            Err(e) if no_table(&e) => {
                for statement in SCHEMA {
                    self.run(statement, &[])?;
                }
                self.run(NEXT, &[])?
            }
            other => other.map_err(|e| StoreError::Unavailable(format!("sqlite: {e}")))?,
        };
        let version = match rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Integer(v)) if *v > 0 => *v,
            _ => {
                return Err(StoreError::Unavailable("sqlite: commit counter missing".into()));
            }
        };

        // Preconditions, all read in one go under the write lock.
        let checked: Vec<&str> =
            writes.iter().filter(|w| w.precondition != Precondition::None).map(|w| w.key.as_str()).collect();
        let mut current: HashMap<String, u64> = HashMap::with_capacity(checked.len());
        for chunk in checked.chunks(CHUNK) {
            let sql = format!("SELECT key, version FROM scimlet_kv WHERE key IN ({})", placeholders(chunk.len()));
            let params: Vec<SqlValue> = chunk.iter().map(|k| SqlValue::Text((*k).to_owned())).collect();
            for row in self.run(&sql, &params)? {
                if let [SqlValue::Text(key), SqlValue::Integer(v)] = row.as_slice() {
                    current.insert(key.clone(), u64::try_from(*v).unwrap_or(0));
                }
            }
        }
        for (index, write) in writes.iter().enumerate() {
            if !write.precondition.holds(current.get(&write.key).copied()) {
                return Err(StoreError::Conflict(u32::try_from(index).unwrap_or(u32::MAX)));
            }
        }

        let puts: Vec<(&str, &[u8])> =
            writes.iter().filter_map(|w| w.value.as_deref().map(|v| (w.key.as_str(), v))).collect();
        for chunk in puts.chunks(CHUNK) {
            let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "INSERT INTO scimlet_kv (key, value, version) VALUES {rows}
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version"
            );
            let mut params = Vec::with_capacity(chunk.len() * 3);
            for (key, value) in chunk {
                params.push(SqlValue::Text((*key).to_owned()));
                params.push(SqlValue::Blob(value.to_vec()));
                params.push(SqlValue::Integer(version));
            }
            self.run(&sql, &params)?;
        }
        let deletes: Vec<&str> = writes.iter().filter(|w| w.value.is_none()).map(|w| w.key.as_str()).collect();
        for chunk in deletes.chunks(CHUNK) {
            let sql = format!("DELETE FROM scimlet_kv WHERE key IN ({})", placeholders(chunk.len()));
            let params: Vec<SqlValue> = chunk.iter().map(|k| SqlValue::Text((*k).to_owned())).collect();
            self.run(&sql, &params)?;
        }
        Ok(version as u64)
    }
}

fn no_table(error: &str) -> bool {
    error.contains("no such table")
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

fn entry_from_row(row: Vec<SqlValue>) -> Result<Entry, StoreError> {
    let mut row = row.into_iter();
    match (row.next(), row.next(), row.next()) {
        (Some(SqlValue::Text(key)), Some(value), Some(SqlValue::Integer(version))) => {
            let value = match value {
                SqlValue::Blob(b) => b,
                SqlValue::Text(t) => t.into_bytes(),
                _ => {
                    return Err(StoreError::Unavailable(format!("sqlite: value of {key:?} is not a blob")));
                }
            };
            Ok(Entry { key, value, version: u64::try_from(version).unwrap_or(0) })
        }
        _ => Err(StoreError::Unavailable("sqlite: unexpected row shape".into())),
    }
}

/// The smallest string greater than every string that starts with `prefix`,
/// or `None` when there is none (empty prefix, or only U+10FFFF). Computed on
/// code points rather than bytes so that the bound stays valid UTF-8 and can
/// be bound as TEXT: UTF-8 byte order is code-point order, so "next code
/// point after the last one that has a successor" is the exact bound.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl<C: Sql> Store for SqlStore<C> {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let rows =
            self.read("SELECT key, value, version FROM scimlet_kv WHERE key = ?", &[SqlValue::Text(key.to_owned())])?;
        rows.into_iter().next().map(entry_from_row).transpose()
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let chunked = keys.len() > CHUNK;
        // Several statements read one snapshot only inside a transaction.
        if chunked {
            self.run("BEGIN", &[])?;
        }
        let mut found: HashMap<String, Entry> = HashMap::with_capacity(keys.len());
        let mut result = Ok(());
        for chunk in keys.chunks(CHUNK) {
            let sql =
                format!("SELECT key, value, version FROM scimlet_kv WHERE key IN ({})", placeholders(chunk.len()));
            let params: Vec<SqlValue> = chunk.iter().map(|k| SqlValue::Text(k.clone())).collect();
            match self
                .read(&sql, &params)
                .and_then(|rows| rows.into_iter().map(entry_from_row).collect::<Result<Vec<_>, _>>())
            {
                Ok(entries) => found.extend(entries.into_iter().map(|e| (e.key.clone(), e))),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if chunked {
            let _ = self.conn.execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }, &[]);
        }
        result?;
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        let limit = limit.min(MAX_SCAN_LIMIT);
        if limit == 0 {
            return Ok(ScanPage::default());
        }
        let mut sql = String::from("SELECT key, value, version FROM scimlet_kv WHERE key >= ?");
        let mut params = vec![SqlValue::Text(prefix.to_owned())];
        if let Some(after) = after {
            sql.push_str(" AND key > ?");
            params.push(SqlValue::Text(after.to_owned()));
        }
        if let Some(upper) = prefix_upper_bound(prefix) {
            sql.push_str(" AND key < ?");
            params.push(SqlValue::Text(upper));
        }
        // One row past the page says whether the prefix goes on.
        sql.push_str(" ORDER BY key LIMIT ?");
        params.push(SqlValue::Integer(i64::from(limit) + 1));
        let mut entries = self.read(&sql, &params)?.into_iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        Ok(ScanPage { entries, more })
    }

    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
        // The contract's floor is also this store's ceiling, so that what
        // passes here passes on every host.
        let most = Limits::CONTRACT.commit_writes;
        if writes.len() > most {
            return Err(StoreError::Unavailable(format!(
                "commit of {} writes exceeds the limit of {most}",
                writes.len()
            )));
        }
        let mut seen = HashSet::with_capacity(writes.len());
        if let Some(dup) = writes.iter().find(|w| !seen.insert(w.key.as_str())) {
            return Err(StoreError::Unavailable(format!("commit names key {:?} more than once", dup.key)));
        }
        self.run("BEGIN IMMEDIATE", &[])?;
        let result = self.apply(&writes).and_then(|version| self.run("COMMIT", &[]).map(|_| version));
        if result.is_err() {
            // Undoes everything, the counter included; harmless if COMMIT
            // already ended the transaction.
            let _ = self.conn.execute("ROLLBACK", &[]);
        }
        result
    }
}
