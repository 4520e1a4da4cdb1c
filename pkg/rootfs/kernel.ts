/**
 * The kernel segment (moby/build build.go, kernelFilter): from a LinuxKit
 * kernel image, `boot/kernel` (the image's `kernel`, or `binary:`),
 * `boot/cmdline`, `boot/ucode.cpio` (with `ucode:`), then the entries of
 * `kernel.tar` (or `tar:`; `none` for no modules) at the root as they are.
 * Other files of the image are not copied.
 *
 * The kernel and ucode files are spooled once per image into the cache's
 * derived directory as sealed files (pkg/cache/sealed.ts: checked before
 * each use, spooled again when they fail the check), so the boot files can
 * be emitted first (formats split them off) and a warm build does not read
 * the image to find them.
 */
import { join } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DockyardError } from '../errors.js';
import type { BlobStore, ImageHandle } from '../oci/types.js';
import type { KernelSpec } from '../spec/types.js';
import type { Entry, Segment } from './entry.js';
import { flattenLayers, layerTooLarge, LinkGuard, tarEntries, verifyLayers } from './layers.js';
import { ROOTFS_VERSION } from './image.js';
import { sha256hex } from '../hash.js';
import { decompressKernel, MaxKernelBytes } from './decompress.js';
import { openSealed, SealedWriter, type SealedFile } from '../cache/sealed.js';
import { bodyChunks, collectBody } from '../archive/sink.js';
import { defaultLimits } from '../limits.js';

export interface KernelSegmentOptions {
  image: ImageHandle;
  store: BlobStore;
  kernel: KernelSpec;
  /** Where derived files are kept between builds (the cache's segments directory, or scratch). */
  derivedDir: string;
  /** Scratch directory of this run (temp files, renamed into derivedDir). */
  tmpDir: string;
  /** `--decompress-kernel`: write the uncompressed kernel (gzip Image, gzip bzImage payload). */
  decompress?: boolean;
  /** Decompressed bytes of one layer, and of the modules tar. */
  maxLayerBytes?: number;
  /** Told when a spooled file failed its check and was made again. */
  warn?: (message: string) => void;
}

interface SpoolMeta {
  kernel: { mode: number };
  ucode?: { mode: number };
  hasTar: boolean;
}

interface Spooled {
  meta: SpoolMeta;
  kernel: SealedFile;
  ucode?: SealedFile;
}

function names(k: KernelSpec): { binary: string; tar: string; ucode: string } {
  const tar = k.tar === undefined ? 'kernel.tar' : k.tar === 'none' ? '' : k.tar;
  return { binary: k.binary || 'kernel', tar, ucode: k.ucode ?? '' };
}

let seq = 0;

/** The spooled files, if all three are there and intact. */
async function readSpool(base: string, o: KernelSegmentOptions): Promise<Spooled | undefined> {
  const onCorrupt = (what: string) => (why: string) => o.warn?.(`kernel image ${o.image.ref}: the spooled ${what} in the cache was corrupt (${why}); removed it, spooling again`);
  const metaFile = await openSealed(`${base}.meta`, onCorrupt('description'));
  if (!metaFile) return undefined;
  const meta = JSON.parse((await collectBody(metaFile.stream(), 1 << 16)).toString('utf8')) as SpoolMeta;
  const kernel = await openSealed(`${base}.kernel`, onCorrupt('kernel'));
  const ucode = meta.ucode ? await openSealed(`${base}.ucode`, onCorrupt('microcode')) : undefined;
  if (!kernel || (meta.ucode && !ucode)) return undefined;
  return { meta, kernel, ucode };
}

async function spool(o: KernelSegmentOptions, base: string): Promise<Spooled> {
  const have = await readSpool(base, o);
  if (have) return have;
  const n = names(o.kernel);
  const label = `kernel image ${o.image.ref}`;
  const tag = `kernel-${process.pid}-${++seq}`;
  const writers: SealedWriter[] = [];
  const open = (what: string) => {
    const w = new SealedWriter(join(o.tmpDir, `${tag}.${what}`));
    writers.push(w);
    return w;
  };
  let kernel: { mode: number; w: SealedWriter } | undefined;
  let ucode: { mode: number; w: SealedWriter } | undefined;
  let hasTar = false;
  const onePass = o.image.layers.length === 1;
  try {
    for await (const e of flattenLayers(o.store, o.image.layers, label, { maxLayerBytes: o.maxLayerBytes })) {
      const p = e.path;
      if (p === n.binary || (n.ucode && p === n.ucode)) {
        if (e.type !== 'file') throw new DockyardError('E_KERNEL', `${label}: /${p} is not a regular file`);
        const which = p === n.binary ? 'kernel' : 'ucode';
        if (which === 'kernel' && kernel) throw new DockyardError('E_KERNEL', `${label}: more than one kernel`);
        const w = open(which);
        if (which === 'kernel' && o.decompress) {
          // The whole kernel in memory (a few tens of MiB; the bzImage header is read by offset), capped like its decompressed form.
          const raw = await collectBody(e.body, MaxKernelBytes, `${label}: /${p}`);
          await w.write(decompressKernel(raw, `${label}: /${p}`));
        } else {
          for await (const c of bodyChunks(e.body)) await w.write(c);
        }
        if (which === 'kernel') kernel = { mode: e.mode, w };
        else ucode = { mode: e.mode, w };
      } else if (n.tar && p === n.tar) {
        hasTar = true;
      }
      // One layer: nothing above can replace what was found, so stop reading
      // (the modules tar, usually the bulk of the image, is not needed here).
      if (onePass && kernel && (!n.ucode || ucode) && (!n.tar || hasTar)) break;
    }
    if (!kernel) throw new DockyardError('E_KERNEL', `${label} has no /${n.binary} (set kernel.binary if it is named otherwise)`);
    // Stopped early: the blob was not hashed to its end. Nothing is kept before it is.
    await verifyLayers(o.store, o.image.layers, label);
    await kernel.w.commit(`${base}.kernel`);
    if (ucode) await ucode.w.commit(`${base}.ucode`);
    const meta: SpoolMeta = { kernel: { mode: kernel.mode }, ...(ucode ? { ucode: { mode: ucode.mode } } : {}), hasTar };
    const m = open('meta');
    await m.write(Buffer.from(JSON.stringify(meta)));
    await m.commit(`${base}.meta`);
  } catch (err) {
    await Promise.all(writers.map((w) => w.abort()));
    throw err;
  }
  const got = await readSpool(base, o);
  if (!got) throw new DockyardError('E_CACHE', `${label}: the kernel spooled into ${base}.* cannot be read back`);
  return got;
}

/** Yields the entries of the kernel tar found in the image. */
async function* modules(o: KernelSegmentOptions, tarName: string): AsyncGenerator<Entry> {
  const label = `kernel image ${o.image.ref}: /${tarName}`;
  const max = o.maxLayerBytes ?? defaultLimits.layerBytes;
  for await (const e of flattenLayers(o.store, o.image.layers, `kernel image ${o.image.ref}`, { maxLayerBytes: max })) {
    if (e.path !== tarName) continue;
    if (e.type !== 'file' || e.body === undefined) throw new DockyardError('E_KERNEL', `${label} is not a regular file`);
    const body = e.body;
    const src = sniffGzip(Buffer.isBuffer(body) ? (async function* () { yield body; })() : body, label, max);
    const guard = new LinkGuard(label);
    for await (const { entry } of tarEntries(src, label, max)) {
      guard.check(entry);
      yield entry;
    }
    // The layers after the tar were not read: hash them before the segment counts as written.
    await verifyLayers(o.store, o.image.layers, `kernel image ${o.image.ref}`);
    return;
  }
  throw new DockyardError('E_KERNEL', `kernel image ${o.image.ref} has no /${tarName} (set kernel.tar, or "none" for no modules)`);
}

/** A kernel tar may be gzip-compressed; look at the first bytes. At most `max` bytes come out. */
async function* sniffGzip(src: AsyncIterable<Buffer>, label: string, max: number): AsyncGenerator<Buffer> {
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
    const gz = createGunzip({ chunkSize: 512 * 1024 });
    // pipeline: an error of the source (a corrupt blob) ends gz too, and reaches this loop.
    pipeline(Readable.from(rest), gz, () => {});
    let n = 0;
    try {
      for await (const c of gz) {
        n += (c as Buffer).length;
        if (n > max) throw layerTooLarge(label, 'the modules tar', max);
        yield c as Buffer;
      }
    } catch (e) {
      if (e instanceof DockyardError) throw e;
      throw new DockyardError('E_KERNEL', `${label}: not a valid gzip stream (${(e as Error).message})`, { cause: e });
    } finally {
      gz.destroy();
    }
  } else {
    yield* rest;
  }
}

export function kernelSegment(o: KernelSegmentOptions): Segment {
  const n = names(o.kernel);
  const cmdline = Buffer.from(o.kernel.cmdline ?? '');
  const base = join(o.derivedDir, 'kernel-' + sha256hex(ROOTFS_VERSION, 'spool-2', o.image.manifestDigest, n.binary, n.ucode, n.tar, o.decompress ? 'plain' : '').slice(0, 32));
  async function* boot(): AsyncGenerator<Entry> {
    const s = await spool(o, base);
    if (n.tar && !s.meta.hasTar) throw new DockyardError('E_KERNEL', `kernel image ${o.image.ref} has no /${n.tar} (set kernel.tar, or "none" for no modules)`);
    yield { path: 'boot', type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 };
    yield { path: 'boot/kernel', type: 'file', mode: s.meta.kernel.mode, uid: 0, gid: 0, size: s.kernel.size, body: s.kernel.stream() };
    yield { path: 'boot/cmdline', type: 'file', mode: 0o644, uid: 0, gid: 0, size: cmdline.length, body: cmdline };
    if (s.ucode && s.meta.ucode) yield { path: 'boot/ucode.cpio', type: 'file', mode: s.meta.ucode.mode, uid: 0, gid: 0, size: s.ucode.size, body: s.ucode.stream() };
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
