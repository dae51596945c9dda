//! Building guest components from a build script: the build-dependency of
//! `host/build.rs` and `tests/spin-host/build.rs`.
//!
//! Why a nested cargo: the components need another target than the host,
//! and cargo has no artifact dependencies on stable. The inner build runs in
//! an environment scrubbed of everything the outer build meant for the host
//! (flags, wrappers, target selection), always with the release profile (a
//! debug guest is several times larger and slower, and nobody steps through
//! it from the host; the root `Cargo.toml` tunes the guest crates for size).
//!
//! Its target directory is `<outer target dir>/guest`: inside the outer one,
//! so `cargo clean` removes it, but not under a package's `OUT_DIR`, so every
//! build script that builds guests shares one compiled copy of `scim-core`
//! for wasm. Cargo's own lock serialises two build scripts that run at once.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const GUEST_TARGET: &str = "wasm32-wasip2";

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

/// Every workspace path the guest components are built from.
const SCIMLET_SOURCES: &[&str] = &[
    "crates/scim-core",
    "crates/scim-component",
    "crates/wasi-glue",
    "crates/storage-conformance",
    "crates/storage-probe",
    "crates/file-store",
    "wit",
    "Cargo.lock",
    "Cargo.toml",
];

/// What a host that embeds scimlet builds: the scimlet component
/// (`scim_component.wasm`), the storage probe that proves the host's
/// storage import (`scimlet_storage_probe.wasm`) and the file store's
/// storage component (`scimlet_file_store.wasm`, which `crates/standalone`
/// composes), all into `OUT_DIR`. Every host builds the same three in one
/// cargo call: cargo unifies features over the packages of one call, so a
/// different set would rebuild the shared crates each time another host
/// builds.
pub fn build_scimlet_and_probe(workspace: &Path) {
    build_guests(
        workspace,
        &["scim-component", "scimlet-storage-probe", "scimlet-file-store"],
        &["scim_component.wasm", "scimlet_storage_probe.wasm", "scimlet_file_store.wasm"],
        SCIMLET_SOURCES,
    );
}

/// Builds `packages` (with their `.wasm` artifacts named in `artifacts`) in
/// the workspace at `workspace`, and copies each artifact into `OUT_DIR`.
/// `watched` lists the workspace paths whose change reruns the build.
pub fn build_guests(workspace: &Path, packages: &[&str], artifacts: &[&str], watched: &[&str]) {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    for path in watched {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    for var in SCRUBBED_ENV {
        println!("cargo:rerun-if-env-changed={var}");
    }

    ensure_target();

    // OUT_DIR is <target dir>/<profile>/build/<package>-<hash>/out.
    let guest_target_dir =
        out_dir.ancestors().nth(4).map(|target| target.join("guest")).unwrap_or_else(|| out_dir.join("guest-target"));
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace).args(["build", "--release", "--target", GUEST_TARGET]);
    for package in packages {
        command.args(["--package", package]);
    }
    command.arg("--target-dir").arg(&guest_target_dir);
    for var in SCRUBBED_ENV {
        command.env_remove(var);
    }
    // `CARGO_MAKEFLAGS` stays: the inner cargo joins the outer jobserver
    // instead of starting as many jobs again on top of it.

    let status =
        command.status().unwrap_or_else(|e| panic!("cannot run cargo to build the {packages:?} components: {e}"));
    assert!(
        status.success(),
        "building the {packages:?} components for {GUEST_TARGET} failed ({status}); \
         is the target installed? `rustup target add {GUEST_TARGET}`"
    );
    for artifact in artifacts {
        let built = guest_target_dir.join(GUEST_TARGET).join("release").join(artifact);
        copy_if_changed(&built, &out_dir.join(artifact));
    }
}

/// Makes sure the toolchain building us can build for [`GUEST_TARGET`].
///
/// `rust-toolchain.toml` lists the target, but rustup adds it only when it
/// installs the toolchain: a machine that already had the pinned version
/// lacks it, and the inner build would fail deep inside with "can't find
/// crate for `core`". So: add it with rustup when rustup is there, or stop
/// at once with the one command that fixes it.
fn ensure_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed =
        |root: &Option<PathBuf>| root.as_ref().is_some_and(|r| r.join("lib/rustlib").join(GUEST_TARGET).is_dir());
    if sysroot.is_none() || installed(&sysroot) {
        return;
    }
    // Under rustup, cargo runs with RUSTUP_TOOLCHAIN naming the toolchain.
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    let mut add = Command::new("rustup");
    add.args(["target", "add", GUEST_TARGET]);
    if let Some(toolchain) = &toolchain {
        add.args(["--toolchain", toolchain]);
    }
    let fix = match &toolchain {
        Some(t) => format!("rustup target add {GUEST_TARGET} --toolchain {t}"),
        None => format!("rustup target add {GUEST_TARGET}"),
    };
    println!("cargo:warning=installing the {GUEST_TARGET} target: {fix}");
    let added = add.status().is_ok_and(|s| s.success());
    assert!(
        added && installed(&sysroot),
        "the Rust target {GUEST_TARGET} is not installed for {} and could not be added; run:\n    {fix}",
        sysroot.as_ref().map_or_else(String::new, |s| s.display().to_string())
    );
}

/// Copies an artifact, leaving the destination untouched when the bytes are
/// the same so that an unchanged guest does not recompile the host.
fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap_or_else(|e| panic!("cannot read built component {}: {e}", from.display()));
    if std::fs::read(to).ok().as_deref() == Some(bytes.as_slice()) {
        return;
    }
    std::fs::write(to, &bytes).unwrap_or_else(|e| panic!("cannot write component to {}: {e}", to.display()));
}
