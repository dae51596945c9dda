//! The storage conformance suite as a component: it imports
//! `scimlet:provider/storage` exactly as the scimlet component does, and
//! exports one function per question a host asks while proving its
//! implementation of that import (a JavaScript host through jco, a Rust
//! host through wasmtime, anything else that runs components).
//!
//! World (`wit/probe.wit`): `cases` lists the suite's cases that run without
//! threads; `run(name)` runs one on an empty store. A failing case panics,
//! which traps the call: the host reports the trap, and the guest's panic
//! message is on its stderr. Concurrency is the host's to prove natively
//! (a component has one thread), so the concurrent cases are not offered.

use std::sync::Arc;

use scim_core::{Entry, Precondition, ScanPage, Store, StoreError, Write};
use scimlet_storage_conformance::{CASES, Handle, Subject};

#[doc(hidden)]
mod wit {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "scimlet:storage-probe/probe",
        with: { "scimlet:provider/storage@0.2.0": generate },
    });
}

use wit::scimlet::provider::storage;

/// The imported storage as the core's store; every "handle" is the one
/// import, which is the host's to make durable and shared.
struct Imported;

fn entry(e: storage::Entry) -> Entry {
    Entry { key: e.key, value: e.value, version: e.version }
}

fn error(e: storage::Error) -> StoreError {
    match e {
        storage::Error::Conflict(i) => StoreError::Conflict(i),
        storage::Error::Unavailable(s) => StoreError::Unavailable(s),
    }
}

impl Store for Imported {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        storage::get(key).map(|e| e.map(entry)).map_err(error)
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
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

struct Probe;

impl Subject for Probe {
    fn open(&self) -> Handle {
        Arc::new(Imported)
    }

    fn threads(&self) -> bool {
        false
    }
}

struct Component;

impl wit::Guest for Component {
    fn cases() -> Vec<String> {
        CASES.iter().filter(|c| !c.concurrent).map(|c| c.name.to_owned()).collect()
    }

    fn run(name: String) -> Result<(), String> {
        match CASES.iter().find(|c| c.name == name && !c.concurrent) {
            Some(case) => {
                (case.run)(&Probe);
                Ok(())
            }
            None => Err(format!("no case {name:?} in this probe")),
        }
    }
}

wit::export!(Component with_types_in wit);
