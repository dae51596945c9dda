//! SQLite as Spin's local databases run it: one rusqlite connection per
//! `open`; statements go through `scimlet-sql-store`'s rusqlite connection,
//! which the test host's `fermyon:spin/sqlite` implementation and the
//! storage contract's tests share, so both see the same engine and the same
//! value conversions.

use std::path::Path;

pub use crate::sql_store::rusqlite_conn::{Rows, Rusqlite, query};

/// Opens (creating if needed) the database file.
pub fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    rusqlite::Connection::open(path)
}
