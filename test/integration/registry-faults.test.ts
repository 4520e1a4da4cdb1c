/**
 * Faults against a real registry: corrupted blobs, a registry killed in the
 * middle of a layer, and several dockyard processes pulling into one cache.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, readdir, writeFile, stat, mkdir, rm } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { startRegistry, type TestRegistry } from '../harness/registry.js';
import { Cache } from '../../pkg/cache/index.js';
import { OciLayout } from '../../pkg/oci/layout.js';
import { RegistryClient } from '../../pkg/oci/registry/client.js';
import { pushImage } from '../../pkg/oci/registry/push.js';
import { MediaType, type Descriptor } from '../../pkg/oci/types.js';

const repoRoot = resolve(__dirname, '../..');
const images = resolve(repoRoot, 'test/data/conformance/images');
const names = ['kernel', 'init', 'init2', 'busybox', 'labelled', 'svc', 'ro', 'layered', 'multiarch', 'badlabel'];
const amd64 = { os: 'linux', architecture: 'amd64' };

/** A file of `size` random bytes, with its descriptor (hashed as written). */
async function randomLayer(path: string, size: number): Promise<Descriptor> {
  const h = createHash('sha256');
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const b = randomBytes(Math.min(left, 1 << 20));
    h.update(b);
    left -= b.length;
    if (!out.write(b)) await new Promise((r) => out.once('drain', r));
  }
  await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
  return { mediaType: MediaType.OciLayer, digest: 'sha256:' + h.digest('hex'), size };
}

/** Push a one-layer image whose layer is the file `layerPath`. */
async function pushSynthetic(client: RegistryClient, ref: string, layerPath: string, layer: Descriptor): Promise<void> {
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const config = { mediaType: MediaType.OciConfig, digest: 'sha256:' + createHash('sha256').update(cfg).digest('hex'), size: cfg.length };
  await client.pushBlob(ref, config, () => Readable.from([cfg]));
  await client.pushBlob(ref, layer, () => createReadStream(layerPath));
  const man = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] }));
  await client.pushManifest(ref, ref.slice(ref.lastIndexOf(':') + 1), man, MediaType.OciManifest);
}

async function assertCacheSane(cache: Cache): Promise<void> {
  const idx = JSON.parse(await readFile(join(cache.dir, 'index.json'), 'utf8'));
  expect(Array.isArray(idx.manifests)).toBe(true);
  // tmp/ holds at most this run's scratch directory, and nothing is left in it.
  const scratch = (await cache.scratch()).dir;
  for (const f of await readdir(join(cache.dir, 'tmp'))) expect(join(cache.dir, 'tmp', f)).toBe(scratch);
  expect(await readdir(scratch)).toEqual([]);
  // Every blob in the cache hashes to its name.
  for (const f of await readdir(join(cache.dir, 'blobs/sha256'))) {
    const h = createHash('sha256');
    for await (const c of createReadStream(join(cache.dir, 'blobs/sha256', f))) h.update(c as Buffer);
    expect(h.digest('hex')).toBe(f);
  }
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dy-reg-faults-'));
});

describe('corrupt blob in the registry', () => {
  let reg: TestRegistry;
  afterAll(async () => reg?.stop());

  it('E_DIGEST_MISMATCH, nothing committed, the cache stays valid', async () => {
    reg = await startRegistry();
    const client = new RegistryClient();
    await pushImage(new OciLayout(images), '127.0.0.1:5000/fixtures/init:1', client, `${reg.host}/fixtures/init:1`);
    const layer = await randomLayer(join(work, 'small.bin'), 300_000);
    const ref = `${reg.host}/synthetic/corrupt:1`;
    await pushSynthetic(client, ref, join(work, 'small.bin'), layer);
    const cache = new Cache(join(work, 'corrupt-cache'));
    await cache.pull(`${reg.host}/fixtures/init:1`, amd64);
    // distribution's filesystem driver: blobs/sha256/<2 hex>/<hex>/data
    const hex = layer.digest.slice(7);
    const data = join(reg.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = await readFile(data);
    bytes[1000] ^= 0xff;
    await writeFile(data, bytes);
    await expect(cache.pull(ref, amd64)).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    expect(await cache.has(layer.digest)).toBe(false);
    expect((await cache.list()).map((e) => e.ref)).toEqual([`${reg.host}/fixtures/init:1`]);
    await assertCacheSane(cache);
    expect((await cache.resolve(`${reg.host}/fixtures/init:1`, amd64)).layers.length).toBeGreaterThan(0);
  });
});

describe('registry killed in the middle of a 50 MB layer', () => {
  let reg: TestRegistry;
  afterAll(async () => reg?.stop());

  it('fails cleanly; after a restart the same cache pulls it', async () => {
    reg = await startRegistry();
    const client = new RegistryClient();
    const layerPath = join(work, 'big.bin');
    const layer = await randomLayer(layerPath, 50 << 20);
    const ref = `${reg.host}/synthetic/big:1`;
    await pushSynthetic(client, ref, layerPath, layer);
    await rm(layerPath);
    const cache = new Cache(join(work, 'kill-cache'));
    let killedAt = -1;
    const err = await cache
      .pull(ref, amd64, {
        onProgress: (e) => {
          if (e.kind === 'pull-progress' && killedAt < 0) {
            killedAt = e.done;
            process.kill(reg.pid, 'SIGKILL');
          }
        },
      })
      .catch((e) => e);
    expect(killedAt).toBeGreaterThan(0);
    expect(killedAt).toBeLessThan(layer.size);
    expect(err).toMatchObject({ code: 'E_NETWORK' });
    expect(String(err.message)).toContain(reg.host);
    expect(await cache.has(layer.digest)).toBe(false);
    expect(await cache.list()).toEqual([]);
    await assertCacheSane(cache);

    const storage = reg.storage;
    const port = reg.port;
    await reg.stop();
    reg = await startRegistry({ storage, port });
    const h = await cache.pull(ref, amd64);
    expect(h.layers[0].digest).toBe(layer.digest);
    expect((await stat(cache.pathOf(layer.digest))).size).toBe(50 << 20);
    await assertCacheSane(cache);
    const r = await execa('skopeo', ['inspect', `oci:${cache.dir}:${ref}`]);
    expect(JSON.parse(r.stdout).Layers).toEqual([layer.digest]);
  });
});

describe('four dockyard processes pulling into one cache', () => {
  let reg: TestRegistry;
  let built: string;
  beforeAll(async () => {
    reg = await startRegistry();
    const client = new RegistryClient();
    const layout = new OciLayout(images);
    for (const n of names) await pushImage(layout, `127.0.0.1:5000/fixtures/${n}:1`, client, `${reg.host}/fixtures/${n}:1`);
    // Compile just the cache and its imports; node_modules/.cache keeps package resolution working.
    await mkdir(join(repoRoot, 'node_modules/.cache'), { recursive: true });
    built = await mkdtemp(join(repoRoot, 'node_modules/.cache/dy-cache-build-'));
    await execa('npx', ['tsc', '--ignoreConfig', 'pkg/cache/index.ts', '--outDir', built, '--rootDir', '.', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--lib', 'ES2023', '--skipLibCheck', '--types', 'node', '--strict'], { cwd: repoRoot });
    await writeFile(join(built, 'package.json'), '{"type":"module"}');
  });
  afterAll(async () => {
    await reg?.stop();
    if (built) await rm(built, { recursive: true, force: true });
  });

  it('all succeed, index.json lists every ref once, every blob intact', async () => {
    const dir = join(work, 'shared-cache');
    const script = `
      const { Cache } = await import(${JSON.stringify(join(built, 'pkg/cache/index.js'))});
      const [dir, ...refs] = process.argv.slice(1);
      const c = new Cache(dir);
      await Promise.all(refs.map((r) => c.pull(r, { os: 'linux', architecture: 'amd64' }, { pull: true })));
    `;
    const refs = names.map((n) => `${reg.host}/fixtures/${n}:1`);
    // Each process pulls its own share plus two refs every process pulls.
    const shares = [0, 1, 2, 3].map((i) => [...refs.filter((_, j) => j % 4 === i), refs[8], refs[1]]);
    const results = await Promise.all(shares.map((s) => execa('node', ['--input-type=module', '-e', script, dir, ...s], { reject: false })));
    for (const r of results) expect(r.stderr).toBe('');
    for (const r of results) expect(r.exitCode).toBe(0);
    const idx = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    const listed = idx.manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name']);
    expect(listed).toEqual([...refs].sort());
    const cache = new Cache(dir);
    await assertCacheSane(cache);
    for (const ref of refs) await cache.resolve(ref, amd64);
    await execa('skopeo', ['inspect', `oci:${dir}:${refs[8]}`]);
  });
});
