//! Typed bindings to the component, and the host side of its `storage` import.
//!
//! Only the `scimlet-core` world is bound here (storage, handler, admin): the
//! runner serves HTTP through the typed `handler` export. The component's
//! `wasi:http/incoming-handler` export is for hosts such as Spin; the runner
//! still links wasi:http's types, which the component imports for it.
//!
//! Storage functions are synchronous in WIT but bound as `async` on the host.
//! A commit is handed to the backend's committer thread when it has one
//! ([`Backend::submit`]: the SQLite store does), and the guest's task waits
//! for the durable answer without holding a thread; a backend without one
//! commits on tokio's blocking pool (`spawn_blocking`), so a commit waiting
//! on `fsync` or on another process's lock never blocks a tokio worker that
//! other requests need. Reads run right on the calling worker: they take
//! microseconds against SQLite's cache, while a hop to the blocking pool and
//! back costs two thread switches, which were the largest part of a lookup's
//! CPU time (a lookup makes half a dozen reads). A backend whose reads are
//! network round trips (PostgreSQL, [`Backend::reads_block`]) reads on the
//! blocking pool too. To the guest every call blocks, as WIT promises.

use std::sync::Arc;

use crate::runtime::RequestState;
use crate::store::{self, Backend, StoreError};

wasmtime::component::bindgen!({
    path: "../wit",
    world: "scimlet-core",
    imports: { default: async },
    exports: { default: async },
});

pub use exports::scimlet::provider::admin::{Account, AdminError, NewToken, TokenInfo};
use scimlet::provider::storage;
pub use scimlet::provider::types::{Request, Response};

impl From<StoreError> for storage::Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(index) => storage::Error::Conflict(index),
            StoreError::Unavailable(why) => storage::Error::Unavailable(why),
        }
    }
}

impl From<store::Entry> for storage::Entry {
    fn from(e: store::Entry) -> Self {
        storage::Entry { key: e.key, value: e.value, version: e.version }
    }
}

impl From<storage::Write> for store::Write {
    fn from(w: storage::Write) -> Self {
        store::Write {
            key: w.key,
            value: w.value,
            precondition: match w.precondition {
                storage::Precondition::None => store::Precondition::None,
                storage::Precondition::Absent => store::Precondition::Absent,
                storage::Precondition::Version(v) => store::Precondition::Version(v),
            },
        }
    }
}

/// Runs one blocking backend call off the async workers. A panic inside the
/// backend becomes `unavailable` for this call instead of a trap or a crash.
async fn blocking<R: Send + 'static>(
    backend: &Arc<dyn Backend>,
    call: impl FnOnce(&dyn Backend) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, storage::Error> {
    let backend = Arc::clone(backend);
    match tokio::task::spawn_blocking(move || call(backend.as_ref())).await {
        Ok(result) => result.map_err(Into::into),
        Err(join) => Err(storage::Error::Unavailable(format!("storage task failed: {join}"))),
    }
}

/// Runs one backend read on the calling thread. A panic inside the backend
/// becomes `unavailable` for this call, as on the blocking pool.
fn inline<R>(call: impl FnOnce() -> Result<R, StoreError>) -> Result<R, storage::Error> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)) {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(storage::Error::Unavailable("storage read panicked".into())),
    }
}

impl storage::Host for RequestState {
    async fn get(&mut self, key: String) -> Result<Option<storage::Entry>, storage::Error> {
        let found = if self.backend.reads_block() {
            blocking(&self.backend, move |b| b.get(&key)).await
        } else {
            inline(|| self.reads.get(&key))
        };
        found.map(|found| found.map(Into::into))
    }

    async fn get_many(&mut self, keys: Vec<String>) -> Result<Vec<Option<storage::Entry>>, storage::Error> {
        let found = if self.backend.reads_block() {
            blocking(&self.backend, move |b| b.get_many(&keys)).await
        } else {
            inline(|| self.reads.get_many(&keys))
        };
        found.map(|found| found.into_iter().map(|e| e.map(Into::into)).collect())
    }

    async fn scan(
        &mut self,
        prefix: String,
        after: Option<String>,
        limit: u32,
    ) -> Result<storage::ScanPage, storage::Error> {
        let page = if self.backend.reads_block() {
            blocking(&self.backend, move |b| b.scan(&prefix, after.as_deref(), limit)).await
        } else {
            inline(|| self.reads.scan(&prefix, after.as_deref(), limit))
        };
        page.map(|page| storage::ScanPage {
            entries: page.entries.into_iter().map(Into::into).collect(),
            more: page.more,
        })
    }

    async fn commit(&mut self, writes: Vec<storage::Write>) -> Result<u64, storage::Error> {
        let writes: Vec<store::Write> = writes.into_iter().map(Into::into).collect();
        // Reads after a commit, landed or refused, must see what it met.
        self.reads.end();
        // A backend with its own committer thread answers it directly; the
        // blocking pool is for backends whose commit blocks the caller.
        self.commits.begin();
        let result = match self.backend.submit(writes) {
            Ok(answer) => match answer.await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(storage::Error::Unavailable("the committer dropped a commit".into())),
            },
            Err(writes) => blocking(&self.backend, move |b| b.commit(&writes)).await,
        };
        self.commits.end(result.is_ok());
        self.metrics.commit(match &result {
            Ok(_) => "ok",
            Err(storage::Error::Conflict(_)) => "conflict",
            Err(storage::Error::Unavailable(_)) => "unavailable",
        });
        if result.is_ok() {
            self.extend_deadline_after_commit();
        }
        result
    }
}

/// `types` holds only records; its host trait has nothing to implement.
impl scimlet::provider::types::Host for RequestState {}

/// The storage conformance suite run inside a component
/// (`crates/storage-probe`) against this storage import, over the SQLite
/// backend: what the component sees through the runner's bindings (reads
/// through the request's snapshot, commits through the committer) is the
/// contract, case for case.
#[cfg(test)]
mod probe {
    use std::sync::Arc;

    use wasmtime::component::{Component, HasSelf, Linker};

    use crate::runtime::{RequestState, Runtime};
    use crate::store::SqliteStore;
    use crate::store::testutil::TempDir;

    wasmtime::component::bindgen!({
        path: ["../wit", "../crates/storage-probe/wit"],
        world: "scimlet:storage-probe/probe",
        imports: { default: async },
        exports: { default: async },
        with: { "scimlet:provider/storage": super::scimlet::provider::storage },
    });

    static PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scimlet_storage_probe.wasm"));

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_storage_import_passes_the_conformance_suite() {
        // A runtime on an empty database of its own, and the probe
        // instantiated in a store of that runtime.
        async fn fresh() -> (TempDir, Runtime, ProbePre<RequestState>) {
            let dir = TempDir::new();
            let backend = Arc::new(SqliteStore::open(dir.path().join("probe.db")).unwrap());
            let runtime = Runtime::new(None, backend).unwrap();
            let mut linker = Linker::new(runtime.engine());
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
            Probe::add_to_linker::<_, HasSelf<RequestState>>(&mut linker, |state| state).unwrap();
            let probe = Component::new(runtime.engine(), PROBE).unwrap();
            let pre = ProbePre::new(linker.instantiate_pre(&probe).unwrap()).unwrap();
            (dir, runtime, pre)
        }

        let cases = {
            let (_dir, runtime, pre) = fresh().await;
            let mut store = runtime.new_store().await.unwrap();
            pre.instantiate_async(&mut store).await.unwrap().call_cases(&mut store).await.unwrap()
        };
        let suite = scimlet_storage_conformance::CASES.iter().filter(|c| !c.concurrent).map(|c| c.name);
        assert_eq!(cases, suite.collect::<Vec<_>>());
        for case in cases {
            let (_dir, runtime, pre) = fresh().await;
            let mut store = runtime.new_store().await.unwrap();
            let probe = pre.instantiate_async(&mut store).await.unwrap();
            match probe.call_run(&mut store, &case).await {
                Ok(Ok(())) => {}
                Ok(Err(why)) => panic!("{case}: {why}"),
                Err(trap) => panic!("{case} failed (the guest's reason is on stderr above): {trap:?}"),
            }
        }
    }
}
