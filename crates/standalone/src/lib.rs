//! scimlet as one component that plain `wasmtime serve` runs: the scimlet
//! component with its `storage` import answered by the file store's storage
//! component (`crates/file-store`), composed by this crate's build script.
//! The result imports only WASI (the CLI world `wasmtime serve -Scli`
//! gives: environment, clocks, random, the filesystem) and exports
//! `wasi:http/incoming-handler`, so any wasi-http host serves it with a
//! directory for its data.

/// The composed component.
pub const COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scimlet-standalone.wasm"));

/// The storage probe composed with the same storage component: what the
/// tests run to prove the file store through its WIT export.
pub const FILE_STORE_PROBE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/file-store-probe.wasm"));
