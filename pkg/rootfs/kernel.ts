/**
 * The kernel segment (moby/build build.go, kernelFilter): from a LinuxKit
 * kernel image, `boot/kernel` (the image's `kernel`, or `binary:`),
 * `boot/cmdline`, `boot/ucode.cpio` (with `ucode:`), then the entries of
 * `kernel.tar` (or `tar:`; `none` for no modules) at the root as they are.
 * Other files of the image are not copied.
 *
 * The kernel and ucode files are spooled once per image into the cache's
 * scratch directory, so the boot files can be emitted first (formats split
 * them off) and a warm build does not read the image to find them.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DockyardError } from '../errors.js';
import type { BlobStore, ImageHandle } from '../oci/types.js';
import type { KernelSpec } from '../spec/types.js';
import type { Entry, Segment } from './entry.js';
import { assertNotBelowSymlink, flattenLayers, tarEntries } from './layers.js';
import { ROOTFS_VERSION } from './image.js';
import { sha256hex } from '../hash.js';
import { decompressKernel } from './decompress.js';

export interface KernelSegmentOptions {
  image: ImageHandle;
  store: BlobStore;
  kernel: KernelSpec;
  /** Scratch directory for the spooled kernel/ucode. */
  tmpDir: string;
  /** `--decompress-kernel`: write the uncompressed kernel (gzip Image, gzip bzImage payload). */
  decompress?: boolean;
}

interface Spooled {
  kernel: { mode: number; size: number };
  ucode?: { mode: number; size: number };
  hasTar: boolean;
}

function names(k: KernelSpec): { binary: string; tar: string; ucode: string } {
  const tar = k.tar === undefined ? 'kernel.tar' : k.tar === 'none' ? '' : k.tar;
  return { binary: k.binary || 'kernel', tar, ucode: k.ucode ?? '' };
}

let seq = 0;

async function spool(o: KernelSegmentOptions, dir: string): Promise<Spooled> {
  const metaPath = join(dir, 'meta.json');
  try {
    return JSON.parse(await readFile(metaPath, 'utf8')) as Spooled;
  } catch {
    /* not spooled yet */
  }
  const n = names(o.kernel);
  await mkdir(dir, { recursive: true });
  const tag = `.tmp-${process.pid}-${++seq}`;
  let kernel: Spooled['kernel'] | undefined;
  let ucode: Spooled['ucode'];
  let hasTar = false;
  const written: string[] = [];
  try {
    for await (const e of flattenLayers(o.store, o.image.layers, `kernel image ${o.image.ref}`)) {
      const p = e.path;
      if (p === n.binary || (n.ucode && p === n.ucode)) {
        if (e.type !== 'file') throw new DockyardError('E_KERNEL', `kernel image ${o.image.ref}: /${p} is not a regular file`);
        const which = p === n.binary ? 'kernel' : 'ucode';
        if (which === 'kernel' && kernel) throw new DockyardError('E_KERNEL', `kernel image ${o.image.ref}: more than one kernel`);
        const tmp = join(dir, which + tag);
        written.push(tmp);
        await pipeline(Readable.from(e.body instanceof Buffer ? [e.body] : (e.body ?? [])), createWriteStream(tmp));
        await rename(tmp, join(dir, which));
        let size = e.size;
        if (which === 'kernel' && o.decompress) {
          const plain = decompressKernel(await readFile(join(dir, which)), `kernel image ${o.image.ref}: /${p}`);
          await writeFile(join(dir, which) + tag, plain);
          await rename(join(dir, which) + tag, join(dir, which));
          size = plain.length;
        }
        const info = { mode: e.mode, size };
        if (which === 'kernel') kernel = info;
        else ucode = info;
      } else if (n.tar && p === n.tar) {
        hasTar = true;
      }
      // One layer: nothing above can replace what was found, so stop reading
      // (the modules tar, usually the bulk of the image, is not needed here).
      if (o.image.layers.length === 1 && kernel && (!n.ucode || ucode) && (!n.tar || hasTar)) break;
    }
  } catch (err) {
    await Promise.all(written.map((w) => rm(w, { force: true })));
    throw err;
  }
  if (!kernel) throw new DockyardError('E_KERNEL', `kernel image ${o.image.ref} has no /${n.binary} (set kernel.binary if it is named otherwise)`);
  const meta: Spooled = { kernel, ucode, hasTar };
  await writeFile(metaPath + tag, JSON.stringify(meta));
  await rename(metaPath + tag, metaPath);
  return meta;
}

/** Yields the entries of the kernel tar found in the image. */
async function* modules(o: KernelSegmentOptions, tarName: string): AsyncGenerator<Entry> {
  const label = `kernel image ${o.image.ref}: /${tarName}`;
  for await (const e of flattenLayers(o.store, o.image.layers, `kernel image ${o.image.ref}`)) {
    if (e.path !== tarName) continue;
    if (e.type !== 'file' || e.body === undefined) throw new DockyardError('E_KERNEL', `${label} is not a regular file`);
    const body = e.body;
    const src = sniffGzip(Buffer.isBuffer(body) ? (async function* () { yield body; })() : body);
    const symlinks = new Set<string>();
    for await (const { entry } of tarEntries(src, label)) {
      assertNotBelowSymlink(symlinks, entry.path, label);
      if (entry.type === 'symlink') symlinks.add(entry.path);
      else symlinks.delete(entry.path);
      yield entry;
    }
    return;
  }
  throw new DockyardError('E_KERNEL', `kernel image ${o.image.ref} has no /${tarName} (set kernel.tar, or "none" for no modules)`);
}

/** A kernel tar may be gzip-compressed; look at the first bytes. */
async function* sniffGzip(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) return;
  const rest = (async function* () {
    yield first.value;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  })();
  if (first.value.length >= 2 && first.value[0] === 0x1f && first.value[1] === 0x8b) {
    const gz = createGunzip();
    const piped = Readable.from(rest).pipe(gz);
    for await (const c of piped) yield c as Buffer;
  } else {
    yield* rest;
  }
}

export function kernelSegment(o: KernelSegmentOptions): Segment {
  const n = names(o.kernel);
  const cmdline = Buffer.from(o.kernel.cmdline ?? '');
  const spoolDir = join(o.tmpDir, 'kernel-' + sha256hex(ROOTFS_VERSION, o.image.manifestDigest, n.binary, n.ucode, o.decompress ? 'plain' : '').slice(0, 32));
  async function* boot(): AsyncGenerator<Entry> {
    const s = await spool(o, spoolDir);
    if (n.tar && !s.hasTar) throw new DockyardError('E_KERNEL', `kernel image ${o.image.ref} has no /${n.tar} (set kernel.tar, or "none" for no modules)`);
    yield { path: 'boot', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 };
    yield { path: 'boot/kernel', type: 'file', mode: s.kernel.mode, uid: 0, gid: 0, size: s.kernel.size, body: createReadStream(join(spoolDir, 'kernel'), { highWaterMark: 1024 * 1024 }) };
    yield { path: 'boot/cmdline', type: 'file', mode: 0o644, uid: 0, gid: 0, size: cmdline.length, body: cmdline };
    if (s.ucode) yield { path: 'boot/ucode.cpio', type: 'file', mode: s.ucode.mode, uid: 0, gid: 0, size: s.ucode.size, body: createReadStream(join(spoolDir, 'ucode')) };
  }
  async function* rest(): AsyncGenerator<Entry> {
    if (n.tar) yield* modules(o, n.tar);
  }
  return {
    name: 'kernel',
    key: sha256hex(ROOTFS_VERSION, 'kernel', o.image.manifestDigest, n.binary, n.tar, n.ucode, cmdline.toString('hex'), o.decompress ? 'plain' : ''),
    async *entries() {
      yield* boot();
      yield* rest();
    },
    split: { boot, rest },
  };
}
