#!/usr/bin/env node
// Transpiles the scimlet component into ./component with jco, in the
// "instantiation" form: server.js then supplies every import itself (its own
// storage, a sandboxed WASI environment) instead of module-level shims.
//
//   npm run build [-- path/to/scim_component.wasm]
//
// Without a path: $SCIMLET_COMPONENT, else the component the workspace's
// build leaves (cargo build/test of the runner puts it under
// <target>/guest; `cargo build -p scim-component --target wasm32-wasip2
// --release` under <target>/wasm32-wasip2/release).

import { existsSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const target = resolve(here, '../..', process.env.CARGO_TARGET_DIR ?? 'target');
const candidates = [
  join(target, 'guest/wasm32-wasip2/release/scim_component.wasm'),
  join(target, 'wasm32-wasip2/release/scim_component.wasm'),
];
const given = process.argv[2] ?? process.env.SCIMLET_COMPONENT;
const wasm = given ? resolve(given) : candidates.find((p) => existsSync(p));
if (!wasm || !existsSync(wasm)) {
  console.error(`error: no component at ${given ?? candidates.join(' or ')}`);
  console.error('build it: cargo build -p scim-component --target wasm32-wasip2 --release');
  process.exit(1);
}

const out = join(here, 'component');
rmSync(out, { recursive: true, force: true });
// The package exports no path to its command line; npm puts it here.
const jco = join(here, 'node_modules/@bytecodealliance/jco/dist/jco.js');
const run = spawnSync(
  process.execPath,
  [jco, 'transpile', wasm, '--out-dir', out, '--name', 'scimlet', '--instantiation', 'sync', '--quiet'],
  { stdio: 'inherit' },
);
if (run.status !== 0) process.exit(run.status ?? 1);
console.log(`transpiled ${wasm} into ${out}`);
