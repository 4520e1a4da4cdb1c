/**
 * Flattening layers: replaced files, whiteouts, opaque directories, a
 * directory replaced by a file, parents before children, and refusals.
 * Layers are written with our tar writer (which GNU tar reads in the
 * integration tests) into an in-memory blob store.
 */
import { describe, it, expect } from 'vitest';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { tarHeader, END_OF_ARCHIVE } from '../../../pkg/archive/tarwrite.js';
import { flattenLayers } from '../../../pkg/rootfs/layers.js';
import type { BlobStore, Descriptor } from '../../../pkg/oci/types.js';
import type { Entry } from '../../../pkg/rootfs/entry.js';

type E = [string, 'file' | 'dir' | 'symlink', string?];

function layer(entries: E[]): Buffer {
  const parts: Buffer[] = [];
  for (const [path, type, data = ''] of entries) {
    const body = Buffer.from(type === 'file' ? data : '');
    const e: Entry = { path, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size: body.length, linkname: type === 'symlink' ? data : undefined };
    parts.push(tarHeader(e, 0), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(END_OF_ARCHIVE);
  return gzipSync(Buffer.concat(parts));
}

function store(layers: Buffer[]): { store: BlobStore; descs: Descriptor[] } {
  const blobs = new Map<string, Buffer>();
  const descs = layers.map((b) => {
    const digest = 'sha256:' + createHash('sha256').update(b).digest('hex');
    blobs.set(digest, b);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: b.length };
  });
  return {
    descs,
    store: {
      has: async (d) => blobs.has(d),
      open: async (d) => Readable.from([blobs.get(d)!]),
      size: async (d) => blobs.get(d)!.length,
    },
  };
}

async function flat(layers: E[][]): Promise<Map<string, string>> {
  const { store: s, descs } = store(layers.map(layer));
  const out = new Map<string, string>();
  const order: string[] = [];
  for await (const e of flattenLayers(s, descs, 'test')) {
    let data = '';
    if (e.type === 'file' && e.body) for await (const c of e.body as AsyncIterable<Buffer>) data += c.toString();
    out.set(e.path, e.type === 'file' ? `file:${data}` : e.type === 'symlink' ? `link:${e.linkname}` : e.type);
    order.push(e.path);
  }
  // parents come before children
  for (const p of order) {
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (parent && out.has(parent)) expect(order.indexOf(parent), `${parent} before ${p}`).toBeLessThan(order.indexOf(p));
  }
  return out;
}

describe('flattenLayers', () => {
  it('applies replacements, whiteouts and opaque directories', async () => {
    const got = await flat([
      [['etc', 'dir'], ['etc/a', 'file', 'old'], ['etc/b', 'file', 'b'], ['opt', 'dir'], ['opt/x', 'file', 'x'], ['opt/y', 'file', 'y'], ['lib', 'dir'], ['lib/m', 'file', 'm']],
      [['etc', 'dir'], ['etc/a', 'file', 'new'], ['etc/.wh.b', 'file'], ['opt', 'dir'], ['opt/.wh..wh..opq', 'file'], ['opt/z', 'file', 'z'], ['lib', 'symlink', 'usr/lib']],
    ]);
    expect(Object.fromEntries(got)).toEqual({
      etc: 'dir',
      'etc/a': 'file:new',
      opt: 'dir',
      'opt/z': 'file:z',
      lib: 'link:usr/lib',
    });
  });

  it('a whiteout of a directory removes everything under it', async () => {
    const got = await flat([[['d', 'dir'], ['d/e', 'dir'], ['d/e/f', 'file', 'f'], ['k', 'file', 'k']], [['.wh.d', 'file']]]);
    expect([...got.keys()]).toEqual(['k']);
  });

  it('refuses ".." and entries below a symlink of the same image', async () => {
    await expect(flat([[['a/../../x', 'file', 'x']]])).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
    await expect(flat([[['l', 'symlink', '/etc'], ['l/passwd', 'file', 'x']]])).rejects.toMatchObject({ code: 'E_LAYER_UNSAFE' });
  });

  it('a symlink replaced by a directory in a later layer is no obstacle', async () => {
    const got = await flat([[['l', 'symlink', '/etc']], [['l', 'dir'], ['l/f', 'file', 'ok']]]);
    expect(Object.fromEntries(got)).toEqual({ l: 'dir', 'l/f': 'file:ok' });
  });
});
