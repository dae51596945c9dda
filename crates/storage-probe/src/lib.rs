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

use scimlet_storage_conformance::{CASES, Handle, Subject};
use scimlet_wasi_glue::storage::WitStore;

#[doc(hidden)]
mod wit {
    wit_bindgen::generate!({
        path: ["../../wit", "wit"],
        world: "scimlet:storage-probe/probe",
        with: { "scimlet:provider/storage@0.2.0": scimlet_wasi_glue::storage },
    });
}

struct Probe;

impl Subject for Probe {
    fn open(&self) -> Handle {
        // Every handle is the one import, which is the host's to make
        // durable and shared.
        Arc::new(WitStore)
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
