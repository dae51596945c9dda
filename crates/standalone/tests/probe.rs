//! The storage conformance suite through the file store's WIT export: the
//! storage probe composed with the storage component, run by wasmtime with
//! a directory as `/data`, as `wasmtime serve --dir …::/data` gives one.
//! (The concurrent cases run natively in `crates/file-store`.)

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

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

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "probe-{}-{}",
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

fn store(engine: &Engine, dir: Option<&Dir>) -> Store<Host> {
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
        let dir = Dir::new();
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
