// The storage conformance suite (crates/storage-conformance) run inside a
// component, the probe, against this host's storage import: what the scimlet
// component sees through jco's bindings, case by case, on both JavaScript
// stores. `npm run build` transpiles the probe into ./probe.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
import { MemoryStore, SqliteStore, storageImport } from '../storage.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'probe');
const { instantiate } = await import(pathToFileURL(join(dir, 'probe.js')).href);
const modules = new Map();
const getCoreModule = (name) => {
  if (!modules.has(name)) modules.set(name, new WebAssembly.Module(readFileSync(join(dir, name))));
  return modules.get(name);
};

/** The probe instantiated over `store`, imported under both names jco uses. */
function probe(store) {
  const wasi = new WASIShim({ sandbox: { env: {}, args: ['probe'], preopens: {}, enableNetwork: false } });
  const storage = storageImport(store, () => {});
  return instantiate(getCoreModule, {
    ...wasi.getImportObject(),
    'scimlet:provider/storage': storage,
    'scimlet:provider/storage@0.2.0': storage,
  });
}

const stores = {
  memory: () => ({ store: new MemoryStore(), done: () => {} }),
  sqlite: () => {
    const tmp = mkdtempSync(join(tmpdir(), 'scimlet-probe-'));
    const store = new SqliteStore(join(tmp, 'probe.db'));
    return { store, done: () => { store.close(); rmSync(tmp, { recursive: true, force: true }); } };
  },
};

const cases = probe(new MemoryStore()).cases();
test('the probe offers every case of the suite that runs without threads', () => {
  assert.ok(cases.length >= 14, `${cases}`);
  assert.ok(cases.includes('scan_orders_bytewise_and_respects_prefix_bounds'));
});

for (const [kind, make] of Object.entries(stores)) {
  for (const name of cases) {
    test(`${kind}: ${name}`, () => {
      const { store, done } = make();
      try {
        // A failing case traps: the call throws, the reason is on stderr.
        probe(store).run(name);
      } finally {
        done();
      }
    });
  }
}
