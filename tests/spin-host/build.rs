//! Builds the Spin component `crates/scim-spin` (and, for the side-by-side
//! benchmark, the generic `crates/scim-component`) for `wasm32-wasip2` in one
//! cargo run, and leaves `scim_spin.wasm` and `scim_component.wasm` in
//! `OUT_DIR`, where `src/lib.rs` embeds them. Same approach as `host/build.rs`.
//!
//! Why a nested cargo: the component needs another target than the host, and
//! cargo has no artifact dependencies on stable. The inner build gets its own
//! `--target-dir` under `OUT_DIR`, so it never waits on the outer build's lock
//! and `cargo clean` removes it, and an environment scrubbed of everything the
//! outer build meant for the host (flags, wrappers, target selection).
//!
//! The guest always uses the release profile (a debug guest is several times
//! larger and slower, and nobody steps through it from the host); the root
//! `Cargo.toml` tunes the guest crates' release code for size.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_PACKAGES: [&str; 2] = ["scim-spin", "scim-component"];
const GUEST_TARGET: &str = "wasm32-wasip2";
const GUEST_ARTIFACTS: [&str; 2] = ["scim_spin.wasm", "scim_component.wasm"];

/// Variables of the outer build that must not leak into the inner one: they
/// carry host-only flags (sanitizers, `-C target-cpu=native`, coverage), a
/// wrapper such as clippy-driver (`cargo clippy` would lint the guest as a
/// side effect), or redirect the target or its directory. `RUSTC` stays: it
/// names the toolchain the outer build uses, which has the wasm target.
const SCRUBBED_ENV: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .and_then(Path::parent)
        .expect("tests/spin-host lives inside the workspace")
        .to_path_buf();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));

    for watched in [
        "crates/scim-core",
        "crates/scim-component",
        "crates/scim-spin",
        "wit",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    for var in SCRUBBED_ENV {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let guest_target_dir = out_dir.join("guest-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args([
            "build",
            "--release",
            "--package",
            GUEST_PACKAGES[0],
            "--package",
            GUEST_PACKAGES[1],
            "--target",
            GUEST_TARGET,
        ])
        .arg("--target-dir")
        .arg(&guest_target_dir);
    for var in SCRUBBED_ENV {
        command.env_remove(var);
    }
    // `CARGO_MAKEFLAGS` stays: the inner cargo joins the outer jobserver
    // instead of starting as many jobs again on top of it.

    let status = command.status().unwrap_or_else(|e| {
        panic!("cannot run cargo to build the {GUEST_PACKAGES:?} components: {e}")
    });
    assert!(
        status.success(),
        "building the {GUEST_PACKAGES:?} components for {GUEST_TARGET} failed ({status}); \
         is the target installed? `rustup target add {GUEST_TARGET}`"
    );

    for artifact in GUEST_ARTIFACTS {
        let built = guest_target_dir
            .join(GUEST_TARGET)
            .join("release")
            .join(artifact);
        copy_if_changed(&built, &out_dir.join(artifact));
    }
}

/// Copies the artifact, leaving the destination untouched when the bytes are
/// the same so that an unchanged guest does not recompile the host.
fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = std::fs::read(from)
        .unwrap_or_else(|e| panic!("cannot read built component {}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() == Some(bytes.as_slice()) {
        return;
    }
    std::fs::write(to, &bytes)
        .unwrap_or_else(|e| panic!("cannot write component to {}: {e}", to.display()));
}
