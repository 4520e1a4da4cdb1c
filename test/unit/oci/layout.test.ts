import { describe, it, expect, beforeAll } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { OciLayout, DockerArchive, refNameMatches } from '../../../pkg/oci/layout.js';
import { readSmall } from '../../../pkg/oci/source.js';

const images = resolve(__dirname, '../../data/conformance/images');
const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };

describe('OciLayout on the conformance images', () => {
  const l = new OciLayout(images);
  it('finds an image by full ref.name and resolves manifest, config, layers', async () => {
    const h = await l.resolve('127.0.0.1:5000/fixtures/busybox:1', amd64);
    expect(h.canonical).toBe('127.0.0.1:5000/fixtures/busybox:1');
    expect(h.config.config?.Entrypoint).toEqual(['/bin/sh', '-c']);
    expect(h.config.config?.User).toBe('1000:1000');
    expect(h.layers.length).toBeGreaterThan(0);
    const idx = JSON.parse(await readFile(join(images, 'index.json'), 'utf8'));
    const entry = idx.manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === '127.0.0.1:5000/fixtures/busybox:1');
    expect(h.digest).toBe(entry.digest);
    expect(h.manifestDigest).toBe(entry.digest);
  });
  it('the multiarch index yields a different manifest per arch', async () => {
    const a = await l.resolve('127.0.0.1:5000/fixtures/multiarch:1', amd64);
    const b = await l.resolve('127.0.0.1:5000/fixtures/multiarch:1', arm64);
    expect(a.digest).toBe(b.digest);
    expect(a.manifestDigest).not.toBe(b.manifestDigest);
    expect(a.platform.architecture).toBe('amd64');
    expect(b.platform.architecture).toBe('arm64');
  });
  it('streams a layer verified against its digest', async () => {
    const h = await l.resolve('127.0.0.1:5000/fixtures/layered:1', amd64);
    expect(h.layers).toHaveLength(2);
    const bytes = await readSmall(await l.fetchBlob('x', h.layers[0]), 'layer');
    expect('sha256:' + createHash('sha256').update(bytes).digest('hex')).toBe(h.layers[0].digest);
  });
  it('unknown names are E_IMAGE_NOT_FOUND; several images need a name', async () => {
    await expect(l.resolve('127.0.0.1:5000/fixtures/nope:1', amd64)).rejects.toMatchObject({ code: 'E_IMAGE_NOT_FOUND' });
    await expect(l.resolve('oci-layout:' + images, amd64)).rejects.toMatchObject({ code: 'E_IMAGE_REF' });
  });
  it('oci-layout:PATH:NAME selects through the transport', async () => {
    const h = await l.resolve(`oci-layout:${images}:127.0.0.1:5000/fixtures/init:1`, amd64);
    expect(h.layers.length).toBeGreaterThan(0);
  });
});

describe('ref name matching', () => {
  it('full refs compare canonically; a bare tag matches a full ref with that tag', () => {
    expect(refNameMatches('docker.io/library/alpine:3', 'alpine:3')).toBe(true);
    expect(refNameMatches('127.0.0.1:5000/fixtures/init:1', '1')).toBe(true);
    expect(refNameMatches('127.0.0.1:5000/fixtures/init:1', '2')).toBe(false);
    expect(refNameMatches('latest', 'latest')).toBe(true);
  });
});

describe('archives', () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'dy-layout-'));
  });
  it('oci-archive: a tar of the layout reads the same as the directory', async () => {
    const tarFile = join(work, 'images.tar');
    await execa('tar', ['-C', images, '-cf', tarFile, 'oci-layout', 'index.json', 'blobs']);
    const t = await OciLayout.open(tarFile, work);
    try {
      const a = await t.resolve('127.0.0.1:5000/fixtures/init:1', amd64);
      const b = await new OciLayout(images).resolve('127.0.0.1:5000/fixtures/init:1', amd64);
      expect(a).toEqual(b);
    } finally {
      await t.close();
    }
  });
  it('docker-archive: manifest.json + RepoTags, layers described by their sha256', async () => {
    // A docker-save style archive made from a fixture image's own files.
    const l = new OciLayout(images);
    const h = await l.resolve('127.0.0.1:5000/fixtures/layered:1', amd64);
    const dir = join(work, 'save');
    await mkdir(dir, { recursive: true });
    const hex = (d: string) => d.slice(7);
    await copyFile(join(images, 'blobs/sha256', hex(h.manifest.config.digest)), join(dir, `${hex(h.manifest.config.digest)}.json`));
    const layers: string[] = [];
    for (const [i, ly] of h.layers.entries()) {
      await mkdir(join(dir, `l${i}`));
      // docker save stores layers uncompressed
      const raw = await execa('sh', ['-c', `gzip -dc < ${join(images, 'blobs/sha256', hex(ly.digest))} > ${join(dir, `l${i}`, 'layer.tar')}`]);
      expect(raw.exitCode).toBe(0);
      layers.push(`l${i}/layer.tar`);
    }
    await writeFile(join(dir, 'manifest.json'), JSON.stringify([{ Config: `${hex(h.manifest.config.digest)}.json`, RepoTags: ['example.org/x/layered:7'], Layers: layers }]));
    const tarFile = join(work, 'save.tar');
    await execa('tar', ['-C', dir, '-cf', tarFile, '.']);
    const a = await DockerArchive.open(tarFile, work);
    try {
      expect(a.repoTags()).toEqual(['example.org/x/layered:7']);
      const d = await a.resolve('docker-archive:' + tarFile + ':example.org/x/layered:7', amd64);
      expect(d.manifest.config.digest).toBe(h.manifest.config.digest);
      expect(d.layers.map((x) => x.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar']);
      const first = await readSmall(await a.fetchBlob('x', d.layers[0]), 'layer', 1 << 24);
      expect(first.length).toBe(d.layers[0].size);
      await expect(a.resolve('docker-archive:' + tarFile + ':other:1', amd64)).rejects.toMatchObject({ code: 'E_IMAGE_NOT_FOUND' });
    } finally {
      await a.close();
    }
  });

  it('an archive entry escaping the extraction dir is refused (E_LAYER_UNSAFE)', async () => {
    const tarStream = (await import('tar-stream')).default;
    const pack = tarStream.pack();
    pack.entry({ name: 'oci-layout' }, '{"imageLayoutVersion":"1.0.0"}');
    pack.entry({ name: '../escape' }, 'x');
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    const f = join(work, 'evil.tar');
    await writeFile(f, Buffer.concat(chunks));
    await expect(OciLayout.open(f, work)).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
    await expect(readFile(join(work, '..', 'escape'))).rejects.toThrow();
  });
});
