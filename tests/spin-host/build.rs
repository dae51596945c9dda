//! Builds the Spin component `crates/scim-spin` (and, for the side-by-side
//! benchmark, the generic `crates/scim-component`) for `wasm32-wasip2`, and
//! leaves `scim_spin.wasm` and `scim_component.wasm` in `OUT_DIR`, where
//! `src/lib.rs` embeds them (how and why: `crates/guest-build`).

use std::path::{Path, PathBuf};

use scimlet_guest_build as guest_build;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().and_then(Path::parent).expect("tests/spin-host lives inside the workspace");
    guest_build::build_guests(
        workspace,
        &["scim-spin", "scim-component"],
        &["scim_spin.wasm", "scim_component.wasm"],
        &[
            "crates/scim-core",
            "crates/scim-component",
            "crates/scim-spin",
            "crates/wasi-glue",
            "crates/sql-store",
            "wit",
            "Cargo.lock",
            "Cargo.toml",
        ],
    );
}
