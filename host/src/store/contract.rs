//! The storage contract's one suite (`crates/storage-conformance`, which
//! every store of the project runs) on the runner's backends: a backend is
//! a core [`scim_core::Store`] through [`AsStore`], and each backend's tests
//! name a subject with `conformance_tests!`.

use std::sync::Arc;

use super::{Backend, Entry, ScanPage, StoreError, Write};

/// A backend handle seen as the core's store, call for call.
pub(crate) struct AsStore(pub(crate) Arc<dyn Backend>);

impl AsStore {
    pub(crate) fn handle(backend: impl Backend) -> scimlet_storage_conformance::Handle {
        Arc::new(AsStore(Arc::new(backend)))
    }
}

impl scim_core::Store for AsStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.0.get(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        self.0.get_many(keys)
    }
    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        self.0.scan(prefix, after, limit)
    }
    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
        self.0.commit(&writes)
    }
}
