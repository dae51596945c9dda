//! The storage conformance suite through the file store's WIT export: the
//! storage probe composed with the storage component, run by wasmtime with
//! a directory as `/data`, as `wasmtime serve --dir …::/data` gives one.
//! (The concurrent cases run natively in `crates/file-store`.)

use std::path::Path;

use scimlet_vectors::process::TempDir;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

fn store(engine: &Engine, dir: Option<&TempDir>) -> Store<Host> {
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stderr();
    if let Some(dir) = dir {
        wasi.preopened_dir(&dir.0, "/data", FsPerms::ReadWrite).unwrap();
    }
    Store::new(engine, Host { wasi: wasi.build(), table: ResourceTable::new() })
}

#[test]
fn the_file_store_passes_the_probe_through_its_wit_export() {
    let engine = Engine::default();
    let component = Component::new(&engine, scimlet_standalone::FILE_STORE_PROBE).unwrap();
    let imports: Vec<String> = component.component_type().imports(&engine).map(|(name, _)| name.to_owned()).collect();
    assert!(imports.iter().all(|name| name.starts_with("wasi:")), "the composition left {imports:?}");
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).unwrap();
    let pre = linker.instantiate_pre(&component).unwrap();

    let mut s = store(&engine, None);
    let instance = pre.instantiate(&mut s).unwrap();
    let cases = instance.get_typed_func::<(), (Vec<String>,)>(&mut s, "cases").unwrap();
    let (cases,) = cases.call(&mut s, ()).unwrap();
    assert!(cases.len() >= 12, "{cases:?}");

    for case in &cases {
        // A fresh directory and a fresh instance for every case.
        let dir = TempDir::new(Path::new(env!("CARGO_TARGET_TMPDIR")), "probe");
        let mut s = store(&engine, Some(&dir));
        let instance = pre.instantiate(&mut s).unwrap();
        let run = instance.get_typed_func::<(&str,), (Result<(), String>,)>(&mut s, "run").unwrap();
        match run.call(&mut s, (case.as_str(),)) {
            Ok((Ok(()),)) => {}
            Ok((Err(e),)) => panic!("{case}: {e}"),
            Err(trap) => panic!("{case} failed (the guest's message is above): {trap:?}"),
        }
    }
}
