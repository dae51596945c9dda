//! The storage contract's suite on the file store: every handle a
//! `FileStore` of its own on one directory, as every instance of the
//! storage component under `wasmtime serve` is, and the concurrent cases
//! from several threads, as instances run at once.

use std::path::Path;
use std::sync::Arc;

use scimlet_file_store::FileStore;
use scimlet_storage_conformance::{Handle, Subject, conformance_tests};
use scimlet_vectors::process::TempDir;

/// A directory of its own; every handle a `FileStore` on it.
struct Dir(TempDir);

impl Subject for Dir {
    fn open(&self) -> Handle {
        Arc::new(FileStore::open(&self.0.0).expect("open the store"))
    }
}

conformance_tests!(Some(Dir(TempDir::new(Path::new(env!("CARGO_TARGET_TMPDIR")), "conformance"))));
