//! The core's in-memory store, the reference the others are held to.

use std::sync::Arc;

use scim_core::MemStore;
use scimlet_storage_conformance::{Handle, Subject, conformance_tests};

/// Every handle is a clone: clones share the records, as a restart of a
/// host on the same storage does.
struct Mem(MemStore);

impl Subject for Mem {
    fn open(&self) -> Handle {
        Arc::new(self.0.clone())
    }
}

conformance_tests!(Some(Mem(MemStore::new())));
