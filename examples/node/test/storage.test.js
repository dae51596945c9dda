// The storage contract of wit/scimlet.wit, on both JavaScript stores:
// `node --test test/` (npm test).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MAX_BATCH,
  MemoryStore,
  SqliteStore,
  StorageConflict,
  compareKeys,
  prefixUpperBound,
  storageImport,
} from '../storage.js';

const bytes = (s) => new TextEncoder().encode(s);
const text = (b) => new TextDecoder().decode(b);
const put = (key, value, precondition = { tag: 'none' }) => ({ key, value: bytes(value), precondition });
const del = (key, precondition = { tag: 'none' }) => ({ key, value: undefined, precondition });
const absent = { tag: 'absent' };
const version = (v) => ({ tag: 'version', val: v });

/** Every page of a scan, as the component reads it. */
function scanAll(store, prefix, limit = 1000) {
  const keys = [];
  let after;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 10_000, 'scan never ends');
    const page = store.scan(prefix, after, limit);
    keys.push(...page.entries.map((e) => e.key));
    if (!page.more) return keys;
    assert.ok(page.entries.length > 0, 'a page with `more` holds at least one entry');
    after = page.entries.at(-1).key;
  }
}

const dirs = [];
process.on('exit', () => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function sqlitePath() {
  const dir = mkdtempSync(join(tmpdir(), 'scimlet-node-'));
  dirs.push(dir);
  return join(dir, 'scimlet.db');
}

const stores = {
  memory: () => new MemoryStore(),
  'memory, pages of 2': () => new MemoryStore({ scanCap: 2 }),
  sqlite: () => new SqliteStore(sqlitePath()),
  'sqlite, pages of 3': () => new SqliteStore(sqlitePath(), { scanCap: 3 }),
};

// Astral characters (surrogate pairs in JavaScript) sort after every BMP
// character as code points, but before U+E000..U+FFFF as UTF-16 units.
const ORDERED = [
  '',
  'a',
  'a/',
  'a/b',
  'a/b/c',
  'a/z',
  'a/~',
  'a/\u00e9',
  'a/\u0800',
  'a/\ud7ff',
  'a/\ud7ff\u{10ffff}',
  'a/\ue000',
  'a/\uffff',
  'a/\u{10000}',
  'a/\u{1f600}',
  'a/\u{10ffff}',
  'a0',
  'b',
];

test('compareKeys is UTF-8 byte order', () => {
  const utf8 = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  for (const a of ORDERED) {
    for (const b of ORDERED) assert.equal(Math.sign(compareKeys(a, b)), utf8(a, b), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
  assert.deepEqual([...ORDERED].reverse().sort(compareKeys), ORDERED);
  // Plain code-unit order gets the astral keys wrong: what this guards.
  assert.notDeepEqual([...ORDERED].reverse().sort(), ORDERED);
});

test('prefixUpperBound is the next code point, valid UTF-8', () => {
  assert.equal(prefixUpperBound('a/'), 'a0');
  assert.equal(prefixUpperBound('a\ud7ff'), 'a\ue000');
  assert.equal(prefixUpperBound('a\uffff'), 'a\u{10000}');
  assert.equal(prefixUpperBound('a\u{10ffff}'), 'b');
  assert.equal(prefixUpperBound('\u{10ffff}\u{10ffff}'), undefined);
  assert.equal(prefixUpperBound(''), undefined);
});

for (const [name, make] of Object.entries(stores)) {
  test(`${name}: scans in code-point order, under a prefix, after a key, in pages`, () => {
    const store = make();
    const shuffled = [...ORDERED].sort(() => Math.random() - 0.5);
    store.commit(shuffled.map((k) => put(k, `v:${k}`)));
    assert.deepEqual(scanAll(store, ''), ORDERED);
    assert.deepEqual(scanAll(store, '', 1), ORDERED);
    assert.deepEqual(scanAll(store, 'a/'), ORDERED.filter((k) => k.startsWith('a/')));
    assert.deepEqual(scanAll(store, 'a/\ud7ff'), ['a/\ud7ff', 'a/\ud7ff\u{10ffff}']);
    assert.deepEqual(scanAll(store, 'a/\u{10ffff}'), ['a/\u{10ffff}']);
    assert.deepEqual(scanAll(store, 'nothing'), []);

    const page = store.scan('a/', 'a/\ue000', 2);
    assert.deepEqual(page.entries.map((e) => e.key), ['a/\uffff', 'a/\u{10000}']);
    assert.equal(page.more, true);
    const last = store.scan('a/', 'a/\u{1f600}', 5);
    assert.deepEqual(last.entries.map((e) => e.key), ['a/\u{10ffff}']);
    assert.equal(last.more, false);
    // `after` outside the prefix: from the prefix's start, or nothing.
    assert.deepEqual(store.scan('a/', 'a', 1).entries.map((e) => e.key), ['a/']);
    assert.deepEqual(store.scan('a/', 'a/\u{10ffff}', 10), { entries: [], more: false });
    assert.deepEqual(store.scan('a/', undefined, 0), { entries: [], more: false });

    const e = store.scan('a/b', undefined, 1).entries[0];
    assert.equal(e.key, 'a/b');
    assert.equal(text(e.value), 'v:a/b');
    assert.equal(typeof e.version, 'bigint');
  });

  test(`${name}: a page is capped, and \`more\` says what follows`, () => {
    const store = make();
    store.commit(Array.from({ length: 1500 }, (_, i) => put(`k/${String(i).padStart(4, '0')}`, 'x')));
    const page = store.scan('k/', undefined, 5000);
    assert.ok(page.entries.length >= 1 && page.entries.length <= 1000, `${page.entries.length} entries`);
    assert.equal(page.more, true);
    assert.equal(scanAll(store, 'k/', 5000).length, 1500);
  });

  test(`${name}: get-many answers in the order asked`, () => {
    const store = make();
    store.commit([put('x/1', 'one'), put('x/2', 'two')]);
    const got = store.getMany(['x/2', 'missing', 'x/1', 'x/2']);
    assert.deepEqual(got.map((e) => e && text(e.value)), ['two', undefined, 'one', 'two']);
    assert.deepEqual(store.getMany([]), []);
    assert.equal(store.get('missing'), undefined);
    assert.throws(() => store.getMany(Array.from({ length: MAX_BATCH + 1 }, (_, i) => `k${i}`)), /exceeds/);
  });

  test(`${name}: versions strictly increase, are never 0, and a re-created key gets a new one`, () => {
    const store = make();
    const v1 = store.commit([put('u/1', 'a', absent), put('u/2', 'b', absent)]);
    assert.ok(v1 > 0n);
    assert.equal(store.get('u/1').version, v1);
    assert.equal(store.get('u/2').version, v1);
    const v2 = store.commit([put('u/1', 'a2', version(v1))]);
    assert.ok(v2 > v1);
    assert.equal(store.get('u/1').version, v2);
    assert.equal(store.get('u/2').version, v1, 'a record not written keeps its version');
    const v3 = store.commit([del('u/1', version(v2))]);
    assert.ok(v3 > v2);
    assert.equal(store.get('u/1'), undefined);
    const v4 = store.commit([put('u/1', 'again', absent)]);
    assert.ok(v4 > v3);
    assert.equal(store.get('u/1').version, v4);
    // Deleting an absent key is no error unless a precondition says so.
    assert.ok(store.commit([del('never', { tag: 'none' })]) > v4);
    assert.ok(store.commit([del('never', absent)]) > v4);
  });

  test(`${name}: the first failing precondition is the conflict, and nothing is applied`, () => {
    const store = make();
    const v1 = store.commit([put('c/a', 'a'), put('c/b', 'b')]);
    const before = scanAll(store, '').map((k) => [k, text(store.get(k).value), store.get(k).version]);
    const attempts = [
      [[put('c/new', 'n', absent), put('c/a', 'x', version(v1 + 1n)), put('c/b', 'x', absent)], 1],
      [[put('c/new', 'n'), del('c/a', version(v1)), put('c/b', 'x', absent)], 2],
      [[put('c/a', 'x', absent)], 0],
      [[put('c/new', 'n'), put('c/missing', 'x', version(v1))], 1],
    ];
    for (const [writes, index] of attempts) {
      assert.throws(() => store.commit(writes), (e) => e instanceof StorageConflict && e.index === index);
      const after = scanAll(store, '').map((k) => [k, text(store.get(k).value), store.get(k).version]);
      assert.deepEqual(after, before, 'a refused commit changed the store');
    }
    const v2 = store.commit([put('c/a', 'y', version(v1)), del('c/b', version(v1)), put('c/c', 'z', absent)]);
    assert.ok(v2 > v1);
    assert.deepEqual(scanAll(store, 'c/'), ['c/a', 'c/c']);
  });

  test(`${name}: commits within bounds pass, beyond them are refused whole`, () => {
    const store = make();
    const many = Array.from({ length: MAX_BATCH }, (_, i) => put(`m/${i}`, 'x', absent));
    store.commit(many);
    assert.equal(scanAll(store, 'm/').length, MAX_BATCH);
    const tooMany = Array.from({ length: MAX_BATCH + 1 }, (_, i) => put(`n/${i}`, 'x'));
    assert.throws(() => store.commit(tooMany), (e) => !(e instanceof StorageConflict) && /exceeds/.test(e.message));
    assert.throws(() => store.commit([put('d', '1'), put('d', '2')]), /more than once/);
    assert.deepEqual(scanAll(store, 'n/'), []);
    assert.equal(store.get('d'), undefined);
    // Deleting many at once keeps the order of what stays.
    store.commit(Array.from({ length: 5000 }, (_, i) => del(`m/${2 * i}`)));
    const left = scanAll(store, 'm/');
    assert.equal(left.length, MAX_BATCH - 5000);
    assert.deepEqual(left, [...left].sort(compareKeys));
  });
}

test('memory store: 100,000 keys, ordered, paged', () => {
  const store = new MemoryStore();
  for (let c = 0; c < 10; c++) {
    store.commit(Array.from({ length: 10_000 }, (_, i) => put(`big/${(i * 10 + c) * 7919 % 100_000}`, 'x')));
  }
  store.commit([put('big/\u{1f600}', 'x'), put('big/\uffff', 'x')]);
  const keys = scanAll(store, 'big/');
  assert.equal(keys.length, 100_002);
  assert.deepEqual(keys.slice(-2), ['big/\uffff', 'big/\u{1f600}']);
  for (let i = 1; i < keys.length; i++) assert.ok(compareKeys(keys[i - 1], keys[i]) < 0);
});

test('sqlite store: commits survive a reopen, and versions go on from there', () => {
  const path = sqlitePath();
  const first = new SqliteStore(path);
  const v1 = first.commit([put('p/1', 'kept', absent)]);
  first.commit([put('p/2', 'gone')]);
  const v3 = first.commit([del('p/2')]);
  first.close();
  const again = new SqliteStore(path);
  assert.equal(text(again.get('p/1').value), 'kept');
  assert.equal(again.get('p/1').version, v1);
  assert.equal(again.get('p/2'), undefined);
  assert.ok(again.commit([put('p/2', 'back', absent)]) > v3);
  again.close();
});

test('storageImport: results and errors as jco expects them', () => {
  const logged = [];
  const store = new SqliteStore(sqlitePath());
  const imp = storageImport(store, (m) => logged.push(m));
  const ok = imp.commit([put('i/1', 'x', absent)]);
  assert.equal(ok.tag, 'ok');
  assert.equal(typeof ok.val, 'bigint');
  assert.deepEqual(imp.get('nothing'), { tag: 'ok', val: undefined });
  assert.deepEqual(imp.commit([put('i/2', 'x'), put('i/1', 'y', absent)]), { tag: 'err', val: { tag: 'conflict', val: 1 } });
  assert.equal(imp.scan('i/', undefined, 10).val.entries.length, 1);
  assert.equal(logged.length, 0, 'a conflict is no failure to log');
  store.close();
  for (const result of [imp.get('i/1'), imp.getMany(['i/1']), imp.scan('', undefined, 1), imp.commit([put('i/3', 'x')])]) {
    assert.equal(result.tag, 'err');
    assert.equal(result.val.tag, 'unavailable');
    assert.match(result.val.val, /not open/);
  }
  assert.equal(logged.length, 4);
});
