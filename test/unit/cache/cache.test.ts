import { describe, it, expect, beforeAll } from 'vitest';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, writeFile, utimes, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { basename, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { Cache, resolveAll } from '../../../pkg/cache/index.js';
import { withLock } from '../../../pkg/cache/lock.js';

const images = resolve(__dirname, '../../data/conformance/images');
const amd64 = { os: 'linux', architecture: 'amd64' };
const R = (n: string) => `127.0.0.1:5000/fixtures/${n}:1`;
const hasSkopeo = execa('skopeo', ['--version']).then(
  () => true,
  () => false,
);

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dy-cache-'));
});

describe('Cache', () => {
  it('import of a layout records every ref; resolve works with no source', async () => {
    const c = new Cache(join(work, 'a'));
    const refs = await c.import(images);
    expect(refs).toContain(R('multiarch'));
    expect(refs).toHaveLength(10);
    expect((await c.list()).map((e) => e.ref)).toEqual(refs);
    const h = await c.resolve(R('busybox'), amd64);
    expect(h.config.config?.WorkingDir).toBe('/home/user');
    const arm = await c.resolve(R('multiarch'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    expect(arm.platform.architecture).toBe('arm64');
    expect(await c.has(h.layers[0].digest)).toBe(true);
    expect((await stat(c.pathOf(h.layers[0].digest))).size).toBe(h.layers[0].size);
    const idx = JSON.parse(await readFile(join(c.dir, 'index.json'), 'utf8'));
    for (const m of idx.manifests) expect(m.annotations['io.containerd.image.name']).toBe(m.annotations['org.opencontainers.image.ref.name']);
  });

  it('is an OCI layout skopeo reads (independent tool)', async (ctx) => {
    if (!(await hasSkopeo)) ctx.skip();
    const c = new Cache(join(work, 'a'));
    const r = await execa('skopeo', ['inspect', '--raw', `oci:${c.dir}:${R('init')}`]);
    const h = await c.resolve(R('init'), amd64);
    expect(JSON.parse(r.stdout).config.digest).toBe(h.manifest.config.digest);
  });

  it('uncached refs are E_IMAGE_NOT_FOUND for resolve and E_OFFLINE for an offline pull', async () => {
    const c = new Cache(join(work, 'a'));
    await expect(c.resolve('alpine:3', amd64)).rejects.toMatchObject({ code: 'E_IMAGE_NOT_FOUND' });
    await expect(c.pull('alpine:3', amd64, { offline: true })).rejects.toMatchObject({ code: 'E_OFFLINE' });
    // cached + offline + pull: the cache answers
    expect((await c.pull(R('init'), amd64, { offline: true, pull: true })).canonical).toBe(R('init'));
  });

  it('pulls from an oci-layout source and records the transport ref', async () => {
    const c = new Cache(join(work, 'b'));
    const ref = `oci-layout:${images}:${R('layered')}`;
    const events: string[] = [];
    const h = await c.pull(ref, amd64, { onProgress: (e) => events.push(e.kind) });
    expect(events[0]).toBe('pull-start');
    expect(events.at(-1)).toBe('pull-done');
    expect((await c.list()).map((e) => e.ref)).toEqual([ref]);
    expect(await c.resolve(ref, amd64)).toEqual(h);
  });

  it('export → import round trip into a fresh cache, and skopeo reads the export as oci-archive', async (ctx) => {
    const c = new Cache(join(work, 'a'));
    const out = join(work, 'multi.tar');
    await c.export(R('multiarch'), out);
    const d = new Cache(join(work, 'c'));
    expect(await d.import(out)).toEqual([R('multiarch')]);
    expect((await d.resolve(R('multiarch'), amd64)).manifestDigest).toBe((await c.resolve(R('multiarch'), amd64)).manifestDigest);
    if (!(await hasSkopeo)) ctx.skip();
    const r = await execa('skopeo', ['inspect', '--raw', `oci-archive:${out}:${R('multiarch')}`]);
    expect(JSON.parse(r.stdout).manifests).toHaveLength(2);
  });

  it('remove drops the ref and (aged) blobs nothing else uses; clean empties it', async () => {
    const c = new Cache(join(work, 'd'));
    await c.import(images);
    const h = await c.resolve(R('layered'), amd64);
    const old = new Date(Date.now() - 3600_000);
    for (const f of await readdir(join(c.dir, 'blobs/sha256'))) await utimes(join(c.dir, 'blobs/sha256', f), old, old);
    await c.remove(R('layered'));
    expect((await c.list()).map((e) => e.ref)).not.toContain(R('layered'));
    expect(await c.has(h.manifestDigest)).toBe(false);
    expect(await c.has((await c.resolve(R('init'), amd64)).manifestDigest)).toBe(true);
    await expect(c.remove(R('layered'))).rejects.toMatchObject({ code: 'E_IMAGE_NOT_FOUND' });
    await c.clean();
    expect(await c.list()).toEqual([]);
    expect(await readdir(join(c.dir, 'blobs/sha256'))).toEqual([]);
  });

  it('a blob that does not match its digest is never committed', async () => {
    const c = new Cache(join(work, 'e'));
    await c.init();
    const digest = 'sha256:' + '0'.repeat(64);
    await expect(c.writeBlob({ digest, size: 3 }, Readable.from([Buffer.from('abc')]))).rejects.toMatchObject({ code: 'E_DIGEST_MISMATCH' });
    expect(await c.has(digest)).toBe(false);
    // tmp/ holds only this run's scratch directory, and nothing is left in it.
    const scratch = (await c.scratch()).dir;
    expect(await readdir(join(c.dir, 'tmp'))).toEqual([basename(scratch)]);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('adoptBlob moves a file the caller hashed into blobs/ (the file is gone after, stored or not); a wrong size is refused', async () => {
    const c = new Cache(join(work, 'adopt'));
    const scratch = (await c.scratch()).dir;
    const bytes = Buffer.from('a layer this process wrote');
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const f = join(scratch, 'layer-1');
    await writeFile(f, bytes);
    await c.adoptBlob({ digest, size: bytes.length }, f);
    expect(await readFile(c.pathOf(digest))).toEqual(bytes);
    await c.verify(digest);
    await expect(stat(f)).rejects.toMatchObject({ code: 'ENOENT' });
    // Already stored: the file is only removed.
    await writeFile(f, bytes);
    await c.adoptBlob({ digest, size: bytes.length }, f);
    await expect(stat(f)).rejects.toMatchObject({ code: 'ENOENT' });
    const other = Buffer.from('another');
    const d2 = `sha256:${createHash('sha256').update(other).digest('hex')}`;
    await writeFile(f, other);
    await expect(c.adoptBlob({ digest: d2, size: other.length + 1 }, f)).rejects.toMatchObject({ code: 'E_INTERNAL' });
    expect(await c.has(d2)).toBe(false);
    await expect(stat(f)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a blob removed as corrupt is reported as corrupt to every later reader in the process, not as missing (formats read side by side)', async () => {
    const c = new Cache(join(work, 'corrupt-race'));
    const bytes = Buffer.from('the blob\n');
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await c.writeBlobBytes(digest, bytes);
    await writeFile(c.pathOf(digest), 'changed!\n');
    const drain = async (r: Readable) => {
      for await (const _ of r) void _;
    };
    const first = await drain(await c.open(digest, 'reader one')).then(() => undefined, (e: unknown) => e);
    expect(first).toMatchObject({ code: 'E_CACHE_CORRUPT' });
    expect(await c.has(digest)).toBe(false);
    // The second reader comes after the removal: the same error, whichever way it reads.
    await expect(c.open(digest, 'reader two')).rejects.toBe(first);
    await expect(c.verify(digest)).rejects.toBe(first);
    // Stored again: readable again.
    await c.writeBlobBytes(digest, bytes);
    await drain(await c.open(digest));
  });

  it('a corrupt index.json is E_CACHE, not a crash', async () => {
    const c = new Cache(join(work, 'f'));
    await c.init();
    await writeFile(join(c.dir, 'index.json'), '{"manifests": [');
    await expect(c.list()).rejects.toMatchObject({ code: 'E_CACHE' });
  });

  it('concurrent pulls through separate Cache objects on one dir lose no ref', async () => {
    const dir = join(work, 'g');
    const names = ['init', 'init2', 'busybox', 'labelled', 'svc', 'ro', 'layered', 'multiarch'];
    await Promise.all(names.map((n) => new Cache(dir).pull(`oci-layout:${images}:${R(n)}`, amd64)));
    expect((await new Cache(dir).list()).map((e) => e.ref).sort()).toEqual(names.map((n) => `oci-layout:${images}:${R(n)}`).sort());
  });

  it('resolveAll resolves each distinct ref once, keyed as given', async () => {
    const c = new Cache(join(work, 'a'));
    const m = await resolveAll([R('init'), R('svc'), R('init')], { cache: c, arch: 'amd64', offline: true });
    expect([...m.keys()]).toEqual([R('init'), R('svc')]);
    await expect(resolveAll([R('init'), 'nope.example/x:1'], { cache: c, arch: 'amd64', offline: true })).rejects.toMatchObject({ code: 'E_OFFLINE' });
  });
});

describe('withLock', () => {
  it('serialises critical sections and takes over a lock left by a dead process', async () => {
    const lock = join(work, 'l.lock');
    let inside = 0;
    let max = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        withLock(lock, async () => {
          max = Math.max(max, ++inside);
          await new Promise((r) => setTimeout(r, 5));
          inside--;
        }),
      ),
    );
    expect(max).toBe(1);
    // pid 2^22+1 is above Linux's pid_max default range: never alive.
    await writeFile(lock, `4194305 ${(await import('node:os')).hostname()} 0`);
    expect(await withLock(lock, async () => 'took it', { timeoutMs: 2000 })).toBe('took it');
  });
});
