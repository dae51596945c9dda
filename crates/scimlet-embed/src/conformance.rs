//! Proving a [`Storage`]: the project's storage conformance suite
//! (`crates/storage-conformance`), compiled into a component of its own
//! (`crates/storage-probe`), run against a storage through the very import
//! the scimlet component reaches it by.
//!
//! ```no_run
//! # async fn run() -> Result<(), String> {
//! let engine = wasmtime::Engine::new(&scimlet_embed::engine_config()).map_err(|e| e.to_string())?;
//! // Every case gets a store of its own, empty.
//! let report = scimlet_embed::conformance::check(&engine, || scimlet_embed::MemStorage::new()).await;
//! assert!(report.failed.is_empty(), "{:?}", report.failed);
//! # Ok(()) }
//! ```
//!
//! The concurrent cases (several threads committing at once) are not in
//! the probe, which has one thread: prove those with a test of your own,
//! or in Rust with `scimlet-storage-conformance` directly.

use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::storage::{DynStorage, Entry, ScanPage, Storage, StorageError, Write};

/// The probe component, built from this workspace.
pub static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scimlet_storage_probe.wasm"));

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: ["../../wit", "../storage-probe/wit"],
        world: "scimlet:storage-probe/probe",
        imports: { default: async },
        exports: { default: async },
        with: { "scimlet:provider/storage": crate::bindings::scimlet::provider::storage },
    });
}

/// What [`check`] found.
#[derive(Debug, Default)]
pub struct Report {
    /// The cases that held.
    pub passed: Vec<String>,
    /// The cases that did not, with why (the guest's panic message is on
    /// this process's stderr).
    pub failed: Vec<(String, String)>,
}

/// Runs every case of the probe, each on a store `fresh` makes (empty, and
/// used by nothing else meanwhile).
pub async fn check<S: Storage>(engine: &Engine, mut fresh: impl FnMut() -> S) -> Report {
    let mut report = Report::default();
    let pre = match prepare(engine) {
        Ok(pre) => pre,
        Err(err) => {
            report.failed.push(("(probe)".into(), format!("{err:#}")));
            return report;
        }
    };
    let cases = match instance(&pre, engine, Arc::new(fresh())).await {
        Ok((mut store, probe)) => probe.call_cases(&mut store).await,
        Err(err) => Err(err),
    };
    let cases = match cases {
        Ok(cases) => cases,
        Err(err) => {
            report.failed.push(("(probe)".into(), format!("{err:#}")));
            return report;
        }
    };
    for case in cases {
        let outcome = match instance(&pre, engine, Arc::new(fresh())).await {
            Ok((mut store, probe)) => probe.call_run(&mut store, &case).await,
            Err(err) => Err(err),
        };
        match outcome {
            Ok(Ok(())) => report.passed.push(case),
            Ok(Err(why)) => report.failed.push((case, why)),
            Err(trap) => report.failed.push((case, format!("{trap:#}"))),
        }
    }
    report
}

fn prepare(engine: &Engine) -> wasmtime::Result<bindings::ProbePre<ProbeState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    bindings::Probe::add_to_linker::<_, HasSelf<ProbeState>>(&mut linker, |state| state)?;
    let component = Component::new(engine, PROBE)?;
    bindings::ProbePre::new(linker.instantiate_pre(&component)?)
}

/// A fresh instance of the probe over `storage`, in a store of its own.
async fn instance(
    pre: &bindings::ProbePre<ProbeState>,
    engine: &Engine,
    storage: Arc<dyn DynStorage>,
) -> wasmtime::Result<(Store<ProbeState>, bindings::Probe)> {
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stderr();
    let mut store = Store::new(engine, ProbeState { wasi: wasi.build(), table: ResourceTable::new(), storage });
    // No deadline: a case is as long as the storage makes it.
    store.set_epoch_deadline(u64::MAX / 2);
    let probe = pre.instantiate_async(&mut store).await?;
    Ok((store, probe))
}

struct ProbeState {
    wasi: WasiCtx,
    table: ResourceTable,
    storage: Arc<dyn DynStorage>,
}

impl WasiView for ProbeState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl crate::bindings::scimlet::provider::storage::Host for ProbeState {
    async fn get(&mut self, key: String) -> Result<Option<Entry>, StorageError> {
        self.storage.get(&key).await
    }

    async fn get_many(&mut self, keys: Vec<String>) -> Result<Vec<Option<Entry>>, StorageError> {
        self.storage.get_many(&keys).await
    }

    async fn scan(&mut self, prefix: String, after: Option<String>, limit: u32) -> Result<ScanPage, StorageError> {
        self.storage.scan(&prefix, after.as_deref(), limit).await
    }

    async fn commit(&mut self, writes: Vec<Write>) -> Result<u64, StorageError> {
        self.storage.commit(writes).await
    }
}
