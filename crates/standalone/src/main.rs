//! Writes the standalone component to a file:
//! `cargo run -p scimlet-standalone -- [PATH]` (default `scimlet-standalone.wasm`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let path = args.next().unwrap_or_else(|| "scimlet-standalone.wasm".into());
    if args.next().is_some() || path == "--help" || path == "-h" {
        eprintln!("usage: scimlet-standalone [PATH]   (writes the component, default scimlet-standalone.wasm)");
        return ExitCode::from(2);
    }
    if let Err(e) = std::fs::write(&path, scimlet_standalone::COMPONENT) {
        eprintln!("error: cannot write {}: {e}", path.to_string_lossy());
        return ExitCode::FAILURE;
    }
    let path = path.to_string_lossy();
    println!("wrote {path} ({} bytes); serve it with:", scimlet_standalone::COMPONENT.len());
    println!("  mkdir -p scimlet-data");
    println!(
        "  wasmtime serve -Scli --dir scimlet-data::/data --env SCIMLET_ADMIN_TOKEN=\"$(openssl rand -hex 24)\" {path}"
    );
    ExitCode::SUCCESS
}
