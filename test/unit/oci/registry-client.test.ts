/**
 * The registry client against a small in-process HTTP server that serves the
 * conformance layout over the distribution API and misbehaves on purpose:
 * 503s, a connection reset in the middle of a blob, a redirect for blobs.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { OciLayout, blobPath } from '../../../pkg/oci/layout.js';
import { RegistryClient } from '../../../pkg/oci/registry/client.js';
import { Cache } from '../../../pkg/cache/index.js';

const images = resolve(__dirname, '../../data/conformance/images');
const layout = new OciLayout(images);
const amd64 = { os: 'linux', architecture: 'amd64' };

let server: Server;
let host: string;
const faults = { manifest503: 0, blobReset: 0, hits: [] as string[] };

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const url = req.url ?? '';
    faults.hits.push(`${req.method} ${url}`);
    const m = /^\/v2\/fixtures\/([a-z0-9]+)\/(manifests|blobs)\/(.+)$/.exec(url);
    const r = /^\/redirected\/(sha256:[a-f0-9]{64})$/.exec(url);
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    if (r) return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(await readFile(blobPath(images, r[1])));
    if (!m) return void res.writeHead(404).end();
    const [, name, kind, ref] = m;
    if (kind === 'manifests') {
      if (faults.manifest503 > 0) {
        faults.manifest503--;
        return void res.writeHead(503).end('busy');
      }
      try {
        const raw = ref.startsWith('sha256:') ? await layout.getManifest(`127.0.0.1:5000/fixtures/${name}:1`, ref) : await layout.getManifest(`127.0.0.1:5000/fixtures/${name}:${ref}`);
        const mt = JSON.parse(raw.bytes.toString()).mediaType;
        return void res.writeHead(200, { 'content-type': mt, 'docker-content-digest': raw.digest }).end(raw.bytes);
      } catch {
        return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
      }
    }
    const bytes = await readFile(blobPath(images, ref)).catch(() => undefined);
    if (!bytes) return void res.writeHead(404).end();
    if (faults.blobReset > 0 && bytes.length > 1000) {
      faults.blobReset--;
      res.writeHead(200, { 'content-length': String(bytes.length) });
      res.write(bytes.subarray(0, 500));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    // Blobs live elsewhere, as on registries backed by object storage.
    res.writeHead(307, { location: `http://${host}/redirected/${ref}` }).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  host = `127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('RegistryClient', () => {
  it('retries 5xx with backoff, follows blob redirects', async () => {
    faults.manifest503 = 2;
    faults.hits = [];
    const c = new RegistryClient({ backoffMs: 10, credentials: async () => undefined });
    const h = await c.resolve(`${host}/fixtures/init:1`, amd64);
    const want = await layout.resolve('127.0.0.1:5000/fixtures/init:1', amd64);
    expect(h.manifest).toEqual(want.manifest);
    expect(faults.hits.filter((x) => x.includes('/manifests/1'))).toHaveLength(3);
    expect(faults.hits.some((x) => x.startsWith('GET /redirected/'))).toBe(true);
  });

  it('gives up after the bounded attempts with E_REGISTRY for a persistent 5xx', async () => {
    faults.manifest503 = 10;
    const c = new RegistryClient({ backoffMs: 5, attempts: 3, credentials: async () => undefined });
    await expect(c.getManifest(`${host}/fixtures/init:1`)).rejects.toMatchObject({ code: 'E_REGISTRY' });
    faults.manifest503 = 0;
  });

  it('a connection reset mid-blob is retried by the cache and the pull completes', async () => {
    faults.blobReset = 1;
    const cache = new Cache(join(await mkdtemp(join(tmpdir(), 'dy-rc-')), 'c'));
    const h = await cache.pull(`${host}/fixtures/kernel:1`, amd64, { credentials: async () => undefined });
    expect(faults.blobReset).toBe(0);
    for (const l of h.layers) expect(await cache.has(l.digest)).toBe(true);
  });

  it('connection refused is E_NETWORK naming the registry', async () => {
    const c = new RegistryClient({ backoffMs: 5, attempts: 2, credentials: async () => undefined });
    await expect(c.getManifest('127.0.0.1:1/x/y:1')).rejects.toMatchObject({ code: 'E_NETWORK', message: expect.stringContaining('127.0.0.1:1') });
  });

  it('an aborted signal is E_INTERRUPTED, not a retried network error', async () => {
    const ac = new AbortController();
    ac.abort();
    const c = new RegistryClient({ signal: ac.signal, credentials: async () => undefined });
    await expect(c.getManifest(`${host}/fixtures/init:1`)).rejects.toMatchObject({ code: 'E_INTERRUPTED' });
  });
});
