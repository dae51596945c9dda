//! Builds the guest component `crates/scim-component` for `wasm32-wasip2` and
//! leaves `scim_component.wasm` in `OUT_DIR`, where `runtime.rs` embeds it
//! (how and why: `crates/guest-build`); and the storage probe
//! (`crates/storage-probe`), which the tests run against the runner's
//! storage import.

use std::path::PathBuf;

use scimlet_guest_build as guest_build;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().expect("host/ lives inside the workspace");
    guest_build::build_scimlet_and_probe(workspace);
}
