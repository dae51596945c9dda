//! The WIT `scimlet:provider/storage` import as the core's [`Store`], for
//! every guest that reaches storage through it: the scimlet component and
//! the storage probe. Their bindings name this module's generated interface
//! (`with:` in their `generate!`), so both call the one import through one
//! adapter.

use scim_core::{Entry, Precondition, ScanPage, Store, StoreError, Write};

#[doc(hidden)]
pub mod wit {
    wit_bindgen::generate!({
        path: "../../wit",
        inline: "
            package scimlet:guest-glue@0.1.0;
            world storage-import {
                import scimlet:provider/storage@0.2.0;
            }
        ",
        world: "scimlet:guest-glue/storage-import",
        generate_all,
    });
}

pub use wit::scimlet::provider::storage;

/// The imported storage. Every call crosses to the host once: `get-many`
/// batches reads, and a commit is the whole atomic write.
pub struct WitStore;

fn entry(e: storage::Entry) -> Entry {
    Entry { key: e.key, value: e.value, version: e.version }
}

fn error(e: storage::Error) -> StoreError {
    match e {
        storage::Error::Conflict(i) => StoreError::Conflict(i),
        storage::Error::Unavailable(s) => StoreError::Unavailable(s),
    }
}

impl Store for WitStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        storage::get(key).map(|e| e.map(entry)).map_err(error)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        storage::get_many(keys).map(|v| v.into_iter().map(|e| e.map(entry)).collect()).map_err(error)
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        storage::scan(prefix, after, limit)
            .map(|page| ScanPage { entries: page.entries.into_iter().map(entry).collect(), more: page.more })
            .map_err(error)
    }

    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
        let writes: Vec<storage::Write> = writes
            .into_iter()
            .map(|w| storage::Write {
                key: w.key,
                value: w.value,
                precondition: match w.precondition {
                    Precondition::None => storage::Precondition::None,
                    Precondition::Absent => storage::Precondition::Absent,
                    Precondition::Version(v) => storage::Precondition::Version(v),
                },
            })
            .collect();
        storage::commit(&writes).map_err(error)
    }
}
