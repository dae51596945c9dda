//! The storage contract's suite on the file store: every handle a
//! `FileStore` of its own on one directory, as every instance of the
//! storage component under `wasmtime serve` is, and the concurrent cases
//! from several threads, as instances run at once.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use scimlet_file_store::FileStore;
use scimlet_storage_conformance::{Handle, Subject, conformance_tests};

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "scimlet-file-store-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Subject for Dir {
    fn open(&self) -> Handle {
        Arc::new(FileStore::open(&self.0).expect("open the store"))
    }
}

conformance_tests!(Some(Dir::new()));
