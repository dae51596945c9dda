//! Builds the scimlet component, the file store's storage component and the
//! storage probe for `wasm32-wasip2`, and composes them with `wac`'s graph
//! library (the same composition `wac plug` makes, without a tool to install):
//!
//! - `scimlet-standalone.wasm`: scimlet with its `storage` import answered
//!   by the file store; it imports only WASI;
//! - `file-store-probe.wasm`: the storage probe on the same storage
//!   component, which the tests run to prove it through its WIT export.

use std::path::{Path, PathBuf};

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

fn main() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    scimlet_guest_build::build_scimlet_and_probe(&workspace);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let read = |name: &str| std::fs::read(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let storage = read("scimlet_file_store.wasm");
    for (socket, composed) in
        [("scim_component.wasm", "scimlet-standalone.wasm"), ("scimlet_storage_probe.wasm", "file-store-probe.wasm")]
    {
        let bytes = plug(&read(socket), &storage).unwrap_or_else(|e| panic!("composing {socket}: {e:?}"));
        if std::fs::read(out.join(composed)).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(out.join(composed), bytes).unwrap_or_else(|e| panic!("{composed}: {e}"));
        }
    }
}

/// `socket` with every import that `plug` exports satisfied by an instance
/// of `plug`.
fn plug(socket: &[u8], plug: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut graph = CompositionGraph::new();
    let socket = Package::from_bytes("scimlet:socket", None, socket.to_vec(), graph.types_mut())?;
    let socket = graph.register_package(socket)?;
    let plug = Package::from_bytes("scimlet:file-storage", None, plug.to_vec(), graph.types_mut())?;
    let plug = graph.register_package(plug)?;
    wac_graph::plug(&mut graph, vec![plug], socket)?;
    Ok(graph.encode(EncodeOptions::default())?)
}
