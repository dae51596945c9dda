// The `scimlet:provider/storage` import in JavaScript: an in-memory store and
// a SQLite one, both with the contract of wit/scimlet.wit (see wit/README.md),
// and the adapter that turns either into the object jco's bindings call.
//
// Stores speak plain JavaScript: `get` returns an entry or `undefined`,
// `commit` returns the new version (a bigint) or throws a `StorageConflict`
// naming the failing write; anything else they throw is "unavailable".

import Database from 'better-sqlite3';

/** Most entries one `scan` returns, whatever the caller asks for. */
export const MAX_SCAN_LIMIT = 1000;
/** The contract's floor for one `commit` and one `get-many`, used as the
 * ceiling too, so that what passes here passes on every host. */
export const MAX_BATCH = 10_000;

/** The precondition of the write at `index` did not hold; nothing was applied. */
export class StorageConflict extends Error {
  constructor(index) {
    super(`precondition of write ${index} does not hold`);
    this.index = index;
  }
}

// JavaScript compares strings by UTF-16 code unit, the contract by code point
// (UTF-8 bytes). The two orders differ only between a surrogate (an astral
// character) and a BMP unit at or above U+E000: the surrogate sorts first as a
// code unit but last as a code point. Shifting surrogates above U+FFFF-0x800
// and the units above them down by 0x800 makes code-unit order code-point order.
function unitRank(u) {
  if (u >= 0xd800 && u <= 0xdfff) return u + 0x2000;
  if (u >= 0xe000) return u - 0x800;
  return u;
}

/** Orders keys as UTF-8 bytes (code points): negative, zero or positive. */
export function compareKeys(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return unitRank(x) - unitRank(y);
  }
  return a.length - b.length;
}

/** Index of the first key in sorted `keys` that is >= `key` (or > with `strict`). */
function lowerBound(keys, key, strict) {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = compareKeys(keys[mid], key);
    if (c < 0 || (strict && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The smallest string above every string that starts with `prefix`, or
 * `undefined` when there is none: the next code point after the last one
 * that has a successor (U+D7FF is followed by U+E000, surrogates are no
 * characters). Keeps the bound valid UTF-8 for SQLite's TEXT comparison.
 */
export function prefixUpperBound(prefix) {
  const points = Array.from(prefix, (c) => c.codePointAt(0));
  while (points.length > 0) {
    const last = points.pop();
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    if (next <= 0x10ffff) {
      points.push(next);
      return String.fromCodePoint(...points);
    }
  }
  return undefined;
}

/** Refuses what no store accepts: too many writes or a key named twice. */
function checkWrites(writes) {
  if (writes.length > MAX_BATCH) {
    throw new Error(`commit of ${writes.length} writes exceeds the limit of ${MAX_BATCH}`);
  }
  const seen = new Set();
  for (const w of writes) {
    if (seen.has(w.key)) throw new Error(`commit names key ${JSON.stringify(w.key)} more than once`);
    seen.add(w.key);
  }
}

function checkKeys(keys) {
  if (keys.length > MAX_BATCH) {
    throw new Error(`get-many of ${keys.length} keys exceeds the limit of ${MAX_BATCH}`);
  }
}

function holds(precondition, found) {
  switch (precondition.tag) {
    case 'none':
      return true;
    case 'absent':
      return found === undefined;
    case 'version':
      return found !== undefined && found === BigInt(precondition.val);
    default:
      throw new Error(`unknown precondition ${JSON.stringify(precondition.tag)}`);
  }
}

/**
 * Everything in one process's memory, gone when it exits: for tests and
 * trials. Keys live in a sorted array (binary search for reads and scans)
 * beside a map of records, so a scan costs the size of its page, not of the
 * store; a commit that adds or removes many keys merges them in one pass
 * instead of moving the array once per key.
 */
export class MemoryStore {
  /** `scanCap` bounds every scan page, to let tests exercise paging. */
  constructor({ scanCap = MAX_SCAN_LIMIT } = {}) {
    this.scanCap = Math.max(1, scanCap);
    this.keys = [];
    this.records = new Map();
    this.last = 0n;
  }

  get(key) {
    const r = this.records.get(key);
    return r && { key, value: r.value, version: r.version };
  }

  getMany(keys) {
    checkKeys(keys);
    return keys.map((k) => this.get(k));
  }

  scan(prefix, after, limit) {
    const cap = Math.min(limit, this.scanCap);
    if (cap <= 0) return { entries: [], more: false };
    let i = lowerBound(this.keys, prefix, false);
    if (after !== undefined) i = Math.max(i, lowerBound(this.keys, after, true));
    const entries = [];
    for (; i < this.keys.length && this.keys[i].startsWith(prefix); i++) {
      if (entries.length === cap) return { entries, more: true };
      entries.push(this.get(this.keys[i]));
    }
    return { entries, more: false };
  }

  commit(writes) {
    checkWrites(writes);
    writes.forEach((w, i) => {
      if (!holds(w.precondition, this.records.get(w.key)?.version)) throw new StorageConflict(i);
    });
    const version = this.last + 1n;
    const added = [];
    const removed = new Set();
    for (const w of writes) {
      const existed = this.records.has(w.key);
      if (w.value === undefined || w.value === null) {
        if (existed) {
          this.records.delete(w.key);
          removed.add(w.key);
        }
      } else {
        this.records.set(w.key, { value: Uint8Array.from(w.value), version });
        if (!existed) added.push(w.key);
      }
    }
    this.reindex(added, removed);
    this.last = version;
    return version;
  }

  reindex(added, removed) {
    if (added.length + removed.size <= 16) {
      for (const key of removed) this.keys.splice(lowerBound(this.keys, key, false), 1);
      for (const key of added) this.keys.splice(lowerBound(this.keys, key, false), 0, key);
      return;
    }
    added.sort(compareKeys);
    const merged = [];
    let j = 0;
    for (const key of this.keys) {
      if (removed.has(key)) continue;
      while (j < added.length && compareKeys(added[j], key) < 0) merged.push(added[j++]);
      merged.push(key);
    }
    while (j < added.length) merged.push(added[j++]);
    this.keys = merged;
  }

  close() {}
}

/**
 * A SQLite file through better-sqlite3. The layout is the one of the Spin
 * build's store (crates/sql-store): `scimlet_kv` with TEXT keys, whose
 * BINARY collation compares UTF-8 bytes, and one global commit counter in
 * `scimlet_seq`, so versions keep increasing across restarts. WAL with
 * `synchronous = FULL`: a commit is on disk before it is acknowledged.
 */
export class SqliteStore {
  constructor(path, { scanCap = MAX_SCAN_LIMIT } = {}) {
    this.scanCap = Math.max(1, Math.min(scanCap, MAX_SCAN_LIMIT));
    this.db = new Database(path);
    this.db.defaultSafeIntegers(true);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS scimlet_kv (
        key TEXT PRIMARY KEY,
        value BLOB NOT NULL,
        version INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS scimlet_seq (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        last INTEGER NOT NULL
      );
      INSERT OR IGNORE INTO scimlet_seq (id, last) VALUES (1, 0);
    `);
    const s = (sql) => this.db.prepare(sql);
    this.shapes = new Map();
    this.stmt = {
      get: s('SELECT key, value, version FROM scimlet_kv WHERE key = ?'),
      version: s('SELECT version FROM scimlet_kv WHERE key = ?').pluck(),
      next: s('UPDATE scimlet_seq SET last = last + 1 WHERE id = 1 RETURNING last').pluck(),
      put: s(`INSERT INTO scimlet_kv (key, value, version) VALUES (?, ?, ?)
              ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version`),
      del: s('DELETE FROM scimlet_kv WHERE key = ?'),
    };
    // Several reads see one snapshot only inside a transaction.
    this.readMany = this.db.transaction((keys) => keys.map((k) => this.row(this.stmt.get.get(k))));
    this.apply = this.db.transaction((writes) => {
      const version = this.stmt.next.get();
      if (typeof version !== 'bigint' || version <= 0n) throw new Error('sqlite: commit counter missing');
      writes.forEach((w, i) => {
        const found = w.precondition.tag === 'none' ? undefined : this.stmt.version.get(w.key);
        if (!holds(w.precondition, found)) throw new StorageConflict(i);
      });
      for (const w of writes) {
        if (w.value === undefined || w.value === null) this.stmt.del.run(w.key);
        else this.stmt.put.run(w.key, Buffer.from(w.value.buffer, w.value.byteOffset, w.value.byteLength), version);
      }
      return version;
    });
  }

  row(r) {
    return r && { key: r.key, value: new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.byteLength), version: r.version };
  }

  get(key) {
    return this.row(this.stmt.get.get(key));
  }

  getMany(keys) {
    checkKeys(keys);
    return keys.length === 0 ? [] : this.readMany(keys);
  }

  scan(prefix, after, limit) {
    const cap = Math.min(limit, this.scanCap);
    if (cap <= 0) return { entries: [], more: false };
    const upper = prefixUpperBound(prefix);
    let sql = 'SELECT key, value, version FROM scimlet_kv WHERE key >= ?';
    const params = [prefix];
    if (after !== undefined) {
      sql += ' AND key > ?';
      params.push(after);
    }
    if (upper !== undefined) {
      sql += ' AND key < ?';
      params.push(upper);
    }
    // One row past the page says whether the prefix goes on.
    sql += ' ORDER BY key LIMIT ?';
    params.push(BigInt(cap + 1));
    const rows = this.prepared(sql).all(...params);
    return { entries: rows.slice(0, cap).map((r) => this.row(r)), more: rows.length > cap };
  }

  /** A statement per query shape, prepared once. */
  prepared(sql) {
    let stmt = this.shapes.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.shapes.set(sql, stmt);
    }
    return stmt;
  }

  commit(writes) {
    checkWrites(writes);
    // BEGIN IMMEDIATE: the write lock is taken before the preconditions are
    // read, so a second process on the file cannot slip in between.
    return this.apply.immediate(writes);
  }

  close() {
    this.db.close();
  }
}

/**
 * The import object jco's bindings call for `scimlet:provider/storage`:
 * each function answers `{tag: 'ok', val}` or `{tag: 'err', val: error}`,
 * where error is the WIT variant (`conflict(index)` or
 * `unavailable(text)`). Whatever a store throws besides a conflict is
 * `unavailable`, and logged through `log`, since its text is for operators.
 */
export function storageImport(store, log = (msg) => console.error(msg)) {
  const call = (name, fn) => (...args) => {
    try {
      return { tag: 'ok', val: fn(...args) };
    } catch (e) {
      if (e instanceof StorageConflict) return { tag: 'err', val: { tag: 'conflict', val: e.index } };
      const text = `storage ${name}: ${e?.message ?? String(e)}`;
      log(`ERROR ${text}`);
      return { tag: 'err', val: { tag: 'unavailable', val: text } };
    }
  };
  return {
    get: call('get', (key) => store.get(key)),
    getMany: call('get-many', (keys) => store.getMany(keys)),
    scan: call('scan', (prefix, after, limit) => store.scan(prefix, after, limit)),
    commit: call('commit', (writes) => store.commit(writes)),
  };
}
