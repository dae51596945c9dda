#!/usr/bin/env node
// scimlet in Node.js: the component transpiled by jco (`npm run build`), its
// storage import implemented in JavaScript (storage.js), HTTP from node:http.
//
//   node server.js [--listen 127.0.0.1:8080] [--db scimlet.db | --memory]
//                  [--public-url https://scim.example.com]
//
// Environment: SCIMLET_LISTEN, SCIMLET_DB and SCIMLET_PUBLIC_URL stand for
// the options; the
// component itself reads SCIMLET_ADMIN_TOKEN, SCIMLET_POLICY and
// SCIMLET_BASE_PATHS, and is given those three and nothing else of ours.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
import { MemoryStore, SqliteStore, storageImport } from './storage.js';

/** Largest request body, as the core's `MAX_BODY` (crates/scim-core/src/router.rs). */
const MAX_BODY = 1024 * 1024;
const COMPONENT_ENV = ['SCIMLET_ADMIN_TOKEN', 'SCIMLET_POLICY', 'SCIMLET_BASE_PATHS'];
const here = dirname(fileURLToPath(import.meta.url));

const log = (level, msg) => process.stderr.write(`${new Date().toISOString()} ${level} ${msg}\n`);

function options() {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string', default: process.env.SCIMLET_LISTEN ?? '127.0.0.1:8080' },
      db: { type: 'string', default: process.env.SCIMLET_DB },
      memory: { type: 'boolean', default: false },
      'public-url': { type: 'string', default: process.env.SCIMLET_PUBLIC_URL },
      component: { type: 'string', default: join(here, 'component') },
    },
  });
  const at = values.listen.lastIndexOf(':');
  const host = values.listen.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  const port = Number(values.listen.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--listen ${values.listen}: expected HOST:PORT`);
  }
  if (values.memory && values.db) throw new Error('--memory and --db exclude each other');
  let publicUrl;
  if (values['public-url'] !== undefined) {
    publicUrl = new URL(values['public-url']);
    if (!['http:', 'https:'].includes(publicUrl.protocol) || publicUrl.pathname !== '/') {
      throw new Error(`--public-url ${values['public-url']}: expected http(s)://host[:port]`);
    }
  }
  const db = values.memory ? undefined : (values.db ?? 'scimlet.db');
  return { host, port, db, publicUrl, component: values.component };
}

/**
 * Instantiates the transpiled component over `store`. The core modules are
 * compiled once; an instance is cheap to make again, which a trap requires
 * (a trapped instance refuses every later call).
 */
async function loader(componentDir, store) {
  const dir = resolve(componentDir);
  let instantiate;
  try {
    ({ instantiate } = await import(pathToFileURL(join(dir, 'scimlet.js')).href));
  } catch (e) {
    throw new Error(`no transpiled component in ${dir} (run \`npm run build\` first): ${e.message}`);
  }
  const modules = new Map();
  const getCoreModule = (name) => {
    if (!modules.has(name)) modules.set(name, new WebAssembly.Module(readFileSync(join(dir, name))));
    return modules.get(name);
  };
  const env = Object.fromEntries(COMPONENT_ENV.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
  // No files, no network, no environment beyond the component's own.
  const wasi = new WASIShim({ sandbox: { env, args: ['scimlet'], preopens: {}, enableNetwork: false } });
  // jco's generated code looks imports up by unversioned name, its
  // TypeScript declarations by versioned name: both are given.
  const ours = {
    'scimlet:provider/storage': storageImport(store, (msg) => log('ERROR', msg)),
    'scimlet:provider/types': {},
  };
  const versioned = (o, v) => Object.fromEntries(Object.entries(o).map(([k, x]) => [`${k}@${v}`, x]));
  const imports = {
    ...wasi.getImportObject(),
    ...versioned(wasi.getImportObject(), '0.2.12'),
    ...ours,
    ...versioned(ours, '0.2.0'),
  };
  return () => instantiate(getCoreModule, imports);
}

/** A SCIM error document (RFC 7644 §3.12) for answers the host gives itself. */
function scimError(res, status, detail, headers = {}) {
  const body = JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: String(status), detail });
  res.writeHead(status, { 'content-type': 'application/scim+json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** Reads the whole body, or `undefined` (after answering 413) past MAX_BODY. */
function readBody(req, res) {
  return new Promise((done, fail) => {
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_BODY) {
      scimError(res, 413, 'request body too large', { connection: 'close' });
      req.resume();
      return done(undefined);
    }
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        if (!res.headersSent) scimError(res, 413, 'request body too large', { connection: 'close' });
        req.destroy();
        return done(undefined);
      }
      chunks.push(chunk);
    });
    req.on('end', () => done(new Uint8Array(Buffer.concat(chunks))));
    req.on('error', fail);
  });
}

async function main() {
  const opts = options();
  const store = opts.db === undefined ? new MemoryStore() : new SqliteStore(opts.db);
  const fresh = await loader(opts.component, store);
  let component = fresh();

  // On an empty store, a first account and token; a configuration the core
  // refuses stops the start here, before anything listens.
  let first;
  try {
    first = component.admin.bootstrap('default');
  } catch (e) {
    const why = e?.payload ? `${e.payload.tag}: ${e.payload.val}` : e.message;
    throw new Error(`bootstrap failed: ${why}`);
  }

  const server = http.createServer(async (req, res) => {
    const started = performance.now();
    // Method and status only: paths and queries carry ids and filter values.
    res.on('finish', () => {
      const ms = (performance.now() - started).toFixed(1);
      log('INFO', `request ${req.method} ${res.statusCode} ${ms}ms`);
    });
    let body;
    try {
      body = await readBody(req, res);
    } catch {
      if (!res.headersSent) scimError(res, 400, 'could not read request body');
      return;
    }
    if (body === undefined) return;
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    const request = {
      method: req.method,
      pathWithQuery: req.url,
      // Behind a TLS-terminating proxy, what the client reached: it makes
      // `meta.location`.
      scheme: opts.publicUrl ? opts.publicUrl.protocol.slice(0, -1) : 'http',
      authority: opts.publicUrl ? opts.publicUrl.host : req.headers.host,
      headers,
      body,
    };
    let response;
    try {
      response = component.handler.handle(request);
    } catch (e) {
      // A trap: the instance is unusable, the next request gets a new one.
      log('ERROR', `the component trapped: ${e?.message ?? e}`);
      component = fresh();
      scimError(res, 500, 'internal error');
      return;
    }
    const bodiless = response.status === 204 || response.status === 304;
    const out = [];
    for (const [name, value] of response.headers) out.push(name, value);
    if (!bodiless) out.push('content-length', String(response.body.length));
    res.writeHead(response.status, out);
    res.end(bodiless ? undefined : response.body);
  });

  const stop = () => {
    server.close();
    store.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  server.listen(opts.port, opts.host, () => {
    const { address, port } = server.address();
    const listening = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
    const origin = opts.publicUrl ? opts.publicUrl.origin : listening;
    const lines = [`scimlet listening on ${listening}`];
    if (first) {
      const [account, token] = first;
      lines.push(
        `Created account ${JSON.stringify(account.name)} (${account.id})`,
        `Tenant URL: ${origin}${account.scimPath}`,
        `Token: ${token.token}`,
        '(the token is shown only this once; store it in your identity provider)',
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  });
  server.on('error', (e) => {
    log('ERROR', `cannot listen on ${opts.host}:${opts.port}: ${e.message}`);
    process.exit(1);
  });
}

main().catch((e) => {
  log('ERROR', e.message);
  process.exit(1);
});
