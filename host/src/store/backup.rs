//! Online backup and offline restore of the SQLite store.
//!
//! Backup runs while the server serves: `VACUUM INTO` from a read-only
//! connection is one read transaction, so the copy is the database as of
//! one commit, and under WAL the server's commits go on meanwhile. The copy
//! is written beside its destination as `<dest>.partial`, flushed to disk,
//! then renamed: a crash never leaves a file that looks like a finished
//! backup.
//!
//! Restore must not happen under a process that has the database open (its
//! pages and WAL index would describe another file). Every process that
//! opens a store holds a shared lock on `<db>.lock` for as long as it runs
//! ([`hold_shared`]); restore takes that lock exclusively or refuses. It
//! checks the backup (scimlet's layout, a layout version this build reads,
//! SQLite's `integrity_check`), folds the current database's WAL into it and
//! keeps it as `<db>.pre-restore`, then moves a copy of the backup in place.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::sqlite::{BUSY_TIMEOUT, SCHEMA_VERSION};

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn lock_file(db: &Path) -> Result<File, String> {
    let path = with_suffix(db, ".lock");
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))
}

/// Marks `db` as in use by this process until the returned file is dropped.
/// Fails only while a restore replaces the database.
pub(crate) fn hold_shared(db: &Path) -> Result<File, String> {
    let file = lock_file(db)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => {
            Err(format!("{} is being restored from a backup; start again when the restore has finished", db.display()))
        }
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", with_suffix(db, ".lock").display())),
    }
}

/// Opens `path` read-only and checks that it holds scimlet's layout in a
/// version this build reads.
fn open_checked(path: &Path) -> Result<Connection, String> {
    if !path.is_file() {
        return Err(format!("no database at {}", path.display()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    let not_scimlet = |detail: String| format!("{} is not a scimlet database ({detail})", path.display());
    let version: i64 =
        conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| not_scimlet(e.to_string()))?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "{}: storage layout version {version} is newer than this scimlet understands ({SCHEMA_VERSION})",
            path.display()
        ));
    }
    // Version 1 named its tables `kv` and `seq`; opening the file upgrades it.
    let (records, counter) = if version == 1 { ("kv", "seq") } else { ("scimlet_kv", "scimlet_seq") };
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN (?1, ?2)",
            [records, counter],
            |r| r.get(0),
        )
        .map_err(|e| not_scimlet(e.to_string()))?;
    if tables != 2 {
        return Err(not_scimlet(format!("no {records} and {counter} tables")));
    }
    Ok(conn)
}

/// Flushes a file's data and its directory entry to disk.
fn sync(path: &Path) -> Result<(), String> {
    File::open(path).and_then(|f| f.sync_all()).map_err(|e| format!("cannot flush {}: {e}", path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Directories cannot be opened for fsync everywhere; the data is.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Writes a consistent copy of `db` to `out` (which must not exist) while
/// other processes keep using `db`. Returns the copy's size in bytes.
pub fn backup(db: &Path, out: &Path) -> Result<u64, String> {
    if out.exists() {
        return Err(format!("{} exists; a backup never overwrites a file", out.display()));
    }
    let conn = open_checked(db)?;
    let partial = with_suffix(out, ".partial");
    let _ = fs::remove_file(&partial);
    let target = partial.to_str().ok_or_else(|| format!("{} is not a UTF-8 path", out.display()))?;
    if let Err(e) = conn.execute("VACUUM INTO ?1", [target]) {
        let _ = fs::remove_file(&partial);
        return Err(format!("backup of {} failed: {e}", db.display()));
    }
    drop(conn);
    sync(&partial)?;
    fs::rename(&partial, out).map_err(|e| format!("cannot move the backup to {}: {e}", out.display()))?;
    sync(out)?;
    fs::metadata(out).map(|m| m.len()).map_err(|e| e.to_string())
}

/// What a restore did with the database it replaced.
pub struct Restored {
    /// Where the replaced database is kept, if there was one.
    pub previous: Option<PathBuf>,
}

/// Replaces `db` with a copy of the backup `from`, refusing while any
/// process has `db` open.
pub fn restore(from: &Path, db: &Path) -> Result<Restored, String> {
    let check = open_checked(from)?;
    let verdict: String = check
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("cannot check {}: {e}", from.display()))?;
    if verdict != "ok" {
        return Err(format!("{} is damaged ({verdict}); nothing was restored", from.display()));
    }
    drop(check);

    let lock = lock_file(db)?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            return Err(format!(
                "{} is in use by a running scimlet (serve or another command); stop it, then restore",
                db.display()
            ));
        }
        Err(TryLockError::Error(e)) => return Err(format!("cannot lock {}: {e}", with_suffix(db, ".lock").display())),
    }

    let staging = with_suffix(db, ".restoring");
    fs::copy(from, &staging).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), staging.display()))?;
    sync(&staging)?;

    let mut previous = None;
    if db.exists() {
        // Fold its WAL in, so the kept file is the whole database.
        let conn = Connection::open(db).map_err(|e| format!("cannot open {}: {e}", db.display()))?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| format!("cannot checkpoint {}: {e}", db.display()))?;
        drop(conn);
        let kept = with_suffix(db, ".pre-restore");
        fs::rename(db, &kept).map_err(|e| format!("cannot move {} aside: {e}", db.display()))?;
        previous = Some(kept);
    }
    // A WAL or WAL index left beside the old file would be read as the new
    // file's: nothing of them may survive.
    for stale in ["-wal", "-shm"] {
        let path = with_suffix(db, stale);
        if path.exists() {
            fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        }
    }
    fs::rename(&staging, db).map_err(|e| format!("cannot move the restored copy to {}: {e}", db.display()))?;
    sync(db)?;
    drop(lock);
    Ok(Restored { previous })
}
