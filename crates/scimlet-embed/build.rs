//! Builds the guest component `crates/scim-component` for `wasm32-wasip2`
//! and leaves `scim_component.wasm` in `OUT_DIR`, where `lib.rs` embeds it
//! (and the storage probe, `crates/storage-probe`, for `conformance`),
//! so that an application needs nothing besides this crate (how and why:
//! `crates/guest-build`).

use std::path::PathBuf;

use scimlet_guest_build as guest_build;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.ancestors().nth(2).expect("crates/scimlet-embed lives inside the workspace");
    guest_build::build_scimlet_and_probe(workspace);
}
