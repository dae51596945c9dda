#!/usr/bin/env node
// Transpiles the scimlet component into ./component with jco, in the
// "instantiation" form: server.js then supplies every import itself (its own
// storage, a sandboxed WASI environment) instead of module-level shims. The
// storage probe (crates/storage-probe: the storage conformance suite as a
// component) goes into ./probe the same way, for test/probe.test.js.
//
//   npm run build [-- path/to/scim_component.wasm]
//
// Without a path: $SCIMLET_COMPONENT, else the component the workspace's
// build leaves (cargo build/test of the runner puts it and the probe under
// <target>/guest; `cargo build -p scim-component -p scimlet-storage-probe
// --target wasm32-wasip2 --release` under <target>/wasm32-wasip2/release).

import { existsSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const target = resolve(here, '../..', process.env.CARGO_TARGET_DIR ?? 'target');
const built = (file) =>
  [join(target, 'guest/wasm32-wasip2/release', file), join(target, 'wasm32-wasip2/release', file)];

/** The first of `candidates` that exists, or a message and exit. */
function find(candidates) {
  const wasm = candidates.find((p) => existsSync(p));
  if (!wasm) {
    console.error(`error: no component at ${candidates.join(' or ')}`);
    console.error('build it: cargo build -p scim-component -p scimlet-storage-probe --target wasm32-wasip2 --release');
    process.exit(1);
  }
  return wasm;
}

function transpile(wasm, outDir, name) {
  const out = join(here, outDir);
  rmSync(out, { recursive: true, force: true });
  // The package exports no path to its command line; npm puts it here.
  const jco = join(here, 'node_modules/@bytecodealliance/jco/dist/jco.js');
  const run = spawnSync(
    process.execPath,
    [jco, 'transpile', wasm, '--out-dir', out, '--name', name, '--instantiation', 'sync', '--quiet'],
    { stdio: 'inherit' },
  );
  if (run.status !== 0) process.exit(run.status ?? 1);
  console.log(`transpiled ${wasm} into ${out}`);
}

const given = process.argv[2] ?? process.env.SCIMLET_COMPONENT;
transpile(given ? find([resolve(given)]) : find(built('scim_component.wasm')), 'component', 'scimlet');
transpile(find(built('scimlet_storage_probe.wasm')), 'probe', 'probe');
