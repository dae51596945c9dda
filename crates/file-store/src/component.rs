//! The storage component: `scimlet:provider/storage` exported from a
//! [`FileStore`] on the directory `SCIMLET_DATA_DIR` (default `/data`),
//! which the host must give the component (`wasmtime serve --dir
//! <host dir>::/data`).
//!
//! One instance of the component answers the calls of one instance of the
//! scimlet component, which under `wasmtime serve` is one request (or up to
//! `--max-instance-reuse-count` requests in a row): the store is opened at
//! the first call and kept for the instance's life, so an instance replays
//! the log once and afterwards reads only what was appended.

use std::sync::OnceLock;

use scim_core::{Precondition, Store, StoreError};

use crate::FileStore;

mod wit {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "scimlet:file-storage/file-storage",
    });
}

use wit::exports::scimlet::provider::storage::{self, Guest};

/// Where the store lives when `SCIMLET_DATA_DIR` does not say.
const DEFAULT_DIR: &str = "/data";

fn store() -> Result<&'static FileStore, storage::Error> {
    static STORE: OnceLock<Result<FileStore, String>> = OnceLock::new();
    STORE
        .get_or_init(|| {
            let dir = std::env::var("SCIMLET_DATA_DIR").unwrap_or_else(|_| DEFAULT_DIR.to_owned());
            FileStore::open(&dir).map_err(|e| {
                format!("{e}; give the component a directory, e.g. `wasmtime serve --dir ./scimlet-data::{dir}`")
            })
        })
        .as_ref()
        .map_err(|e| error(StoreError::Unavailable(e.clone())))
}

/// The scimlet component answers `unavailable` with a 503 that does not
/// say why (that is for operators, not clients): the reason goes to the
/// host's log here, on stderr.
fn error(e: StoreError) -> storage::Error {
    match e {
        StoreError::Conflict(i) => storage::Error::Conflict(i),
        StoreError::Unavailable(text) => {
            eprintln!("scimlet file store: unavailable: {text}");
            storage::Error::Unavailable(text)
        }
    }
}

fn entry(e: scim_core::Entry) -> storage::Entry {
    storage::Entry { key: e.key, value: e.value, version: e.version }
}

struct Component;

impl Guest for Component {
    fn get(key: String) -> Result<Option<storage::Entry>, storage::Error> {
        store()?.get(&key).map(|e| e.map(entry)).map_err(error)
    }

    fn get_many(keys: Vec<String>) -> Result<Vec<Option<storage::Entry>>, storage::Error> {
        store()?.get_many(&keys).map(|v| v.into_iter().map(|e| e.map(entry)).collect()).map_err(error)
    }

    fn scan(prefix: String, after: Option<String>, limit: u32) -> Result<storage::ScanPage, storage::Error> {
        store()?
            .scan(&prefix, after.as_deref(), limit)
            .map(|page| storage::ScanPage { entries: page.entries.into_iter().map(entry).collect(), more: page.more })
            .map_err(error)
    }

    fn commit(writes: Vec<storage::Write>) -> Result<u64, storage::Error> {
        let writes = writes
            .into_iter()
            .map(|w| scim_core::Write {
                key: w.key,
                value: w.value,
                precondition: match w.precondition {
                    storage::Precondition::None => Precondition::None,
                    storage::Precondition::Absent => Precondition::Absent,
                    storage::Precondition::Version(v) => Precondition::Version(v),
                },
            })
            .collect();
        store()?.commit(writes).map_err(error)
    }
}

wit::export!(Component with_types_in wit);
