/**
 * `kernel+initrd` (NAME-kernel, NAME-initrd.img, NAME-cmdline) and
 * `tar-kernel-initrd` (NAME-initrd.tar holding kernel, initrd.img, cmdline),
 * as LinuxKit writes them (moby/build output.go, initrd/initrd.go):
 * boot/kernel, boot/cmdline and boot/ucode.cpio are split out of the
 * system, every other `boot/…` entry is dropped, and the rest becomes a
 * gzip-compressed newc cpio with the microcode cpio (uncompressed) first.
 *
 * The cpio is compressed per segment (the kernel unpacks concatenated gzip
 * members and archives), each segment's members cached by key, then a
 * member holding the trailer: a warm build is a concatenation of cached
 * pieces. Large segments are cut into 4 MiB members compressed in parallel.
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import type { Entry, Segment } from '../../rootfs/entry.js';
import { CpioWriter, cpioTrailer } from '../../archive/cpio.js';
import { bodyChunks, collectBody, Counter, type ByteSink } from '../../archive/sink.js';
import { defaultLimits, formatSize } from '../../limits.js';
import { ParallelGzip } from '../../archive/pgzip.js';
import { tarHeader, writeTarEntry, END_OF_ARCHIVE } from '../../archive/tarwrite.js';
import { prepareBootParts } from '../bootparts.js';
import { copyFile, Outputs } from '../output.js';
import { cachedEncode, prepend, segmentCacheOptions } from '../segcache.js';
import { DockyardError } from '../../errors.js';
import { join } from 'node:path';

export const GZIP_LEVEL = 6;

/** gzip(produce's bytes) into dest: streaming, members compressed in parallel. */
export async function gzipInto(dest: ByteSink, produce: (s: ParallelGzip) => Promise<void>, level = GZIP_LEVEL): Promise<void> {
  const gz = new ParallelGzip(dest, level);
  await produce(gz);
  await gz.end();
}

const isBoot = (p: string) => p.startsWith('boot/');

/** newc cpio's c_filesize is 32 bits. */
const CPIO_MAX_FILE = 0xffffffff;

function tooBig(what: string, limit: number): DockyardError {
  return new DockyardError('E_LIMIT', `${what}, more than an initramfs holds (--max-initrd ${formatSize(limit)}): build kernel+squashfs or kernel+erofs, whose root filesystem is read from a disk`);
}

/** One segment as gzip'd cpio into `dest`; returns its uncompressed size. `before`: bytes of the initramfs so far. */
async function cpioSegment(ctx: FormatContext, seg: { key: string; name: string }, entries: AsyncIterable<Entry>, dest: ByteSink, before: number): Promise<number> {
  const limit = ctx.maxInitrdBytes ?? defaultLimits.initrdBytes;
  const n = await cachedEncode(seg, { ...segmentCacheOptions(ctx, 'cpio.gz'), measured: true }, dest, async (s) => {
    let size = 0;
    await gzipInto(s, async (g) => {
      const counted = new Counter(g);
      const w = new CpioWriter(counted, ctx.epoch);
      for await (const e of entries) {
        ctx.signal?.throwIfAborted();
        if (isBoot(e.path)) continue; // LinuxKit drops other boot/ files from the initrd
        if (e.type === 'file' && e.size > CPIO_MAX_FILE) throw tooBig(`${e.path} (${seg.name}) is ${formatSize(e.size)}`, limit);
        await w.add(e);
        await g.boundary();
        if (before + counted.bytes > limit) throw tooBig(`the root filesystem is over ${formatSize(limit)} uncompressed (at ${e.path}, ${seg.name})`, limit);
      }
      size = counted.bytes;
    });
    return size;
  });
  const total = before + (n ?? 0);
  if (total > limit) throw tooBig(`the root filesystem is ${formatSize(total)} uncompressed (through ${seg.name})`, limit);
  return n ?? 0;
}

export interface SplitResult {
  kernel: boolean;
  cmdline: Buffer;
}

/**
 * Write the kernel to `kernelSink` and the initrd to `initrdSink`; returns
 * the cmdline. The kernel segment must be first (FormatContext contract).
 */
export async function writeKernelInitrd(ctx: FormatContext, kernelSink: ByteSink | undefined, initrdSink: ByteSink, format: string, file: string): Promise<SplitResult> {
  let cmdline: Buffer = Buffer.alloc(0);
  let kernel = false;
  let total = 0;
  const segs: Segment[] = ctx.segments;
  for (let i = 0; i < segs.length; i++) {
    ctx.signal?.throwIfAborted();
    const seg = segs[i];
    if (i === 0 && seg.name === 'kernel') {
      // The boot entries alone, then the rest, whose encoding is usually cached (the image is then not read).
      if (!seg.split) throw new DockyardError('E_INTERNAL', 'the kernel segment does not split its boot entries from the rest');
      const held: Entry[] = [];
      let ucode: Buffer | undefined;
      for await (const e of seg.split.boot()) {
        if (e.path === 'boot/kernel') {
          kernel = true;
          if (kernelSink) for await (const c of bodyChunks(e.body)) await kernelSink.write(c);
          else for await (const _ of bodyChunks(e.body)) void _;
        } else if (e.path === 'boot/cmdline') cmdline = await collectBody(e.body);
        else if (e.path === 'boot/ucode.cpio') ucode = await collectBody(e.body);
        else if (isBoot(e.path)) continue;
        else held.push(e); // the `boot` directory itself stays in the initrd
      }
      if (ucode) await initrdSink.write(ucode);
      total += await cpioSegment(ctx, { key: `${seg.key}:after-boot`, name: seg.name }, prepend(held, seg.split.rest()[Symbol.asyncIterator]()), initrdSink, total);
    } else {
      total += await cpioSegment(ctx, seg, seg.entries(), initrdSink, total);
    }
    ctx.emit({ kind: 'output-progress', format, file, bytes: (initrdSink as { bytes?: number }).bytes ?? 0 });
  }
  await gzipInto(initrdSink, (g) => g.write(cpioTrailer()));
  return { kernel, cmdline };
}

export const kernelInitrdFormat: Format = {
  name: 'kernel+initrd',
  files: (name) => [`${name}-kernel`, `${name}-initrd.img`, `${name}-cmdline`],
  sameBytes: (name) => [`${name}-kernel`, `${name}-cmdline`],
  async write(ctx: FormatContext): Promise<OutputFile[]> {
    if (ctx.outFile) throw new DockyardError('E_USAGE', 'kernel+initrd writes three files: use --dir and --name, not -o');
    if (ctx.segments[0]?.name === 'kernel') return writeFromBootParts(ctx);
    // No kernel in the spec: the initrd alone, as LinuxKit writes it.
    const outs = new Outputs(ctx);
    try {
      const initrd = await outs.create(`${ctx.name}-initrd.img`);
      ctx.emit({ kind: 'output-start', format: 'kernel+initrd', file: initrd.path });
      await writeKernelInitrd(ctx, undefined, initrd.sink, 'kernel+initrd', initrd.path);
      return await outs.commit('kernel+initrd');
    } catch (e) {
      await outs.abort();
      throw e;
    }
  },
};

export const tarKernelInitrdFormat: Format = {
  name: 'tar-kernel-initrd',
  files: (name) => [`${name}-initrd.tar`],
  async write(ctx: FormatContext): Promise<OutputFile[]> {
    // The tar needs each member's size up front: the parts are written aside first.
    const parts = await prepareBootParts(ctx, 'tar-kernel-initrd');
    const outs = new Outputs(ctx);
    try {
      const o = await outs.create(`${ctx.name}-initrd.tar`, true);
      ctx.emit({ kind: 'output-start', format: 'tar-kernel-initrd', file: o.path });
      const cmdline = Buffer.from(parts.cmdline);
      for (const [name, path, size] of [['kernel', parts.kernel, parts.kernelSize], ['initrd.img', parts.initrd, parts.initrdSize]] as const) {
        await o.sink.write(tarHeader({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, size }, ctx.epoch));
        await copyFile(path, o.sink, ctx.signal);
        await o.sink.write(Buffer.alloc((512 - (size % 512)) % 512));
      }
      await writeTarEntry(o.sink, { path: 'cmdline', type: 'file', mode: 0o644, uid: 0, gid: 0, size: cmdline.length, body: cmdline }, ctx.epoch);
      await o.sink.write(END_OF_ARCHIVE);
      return await outs.commit('tar-kernel-initrd');
    } catch (e) {
      await outs.abort();
      throw e;
    } finally {
      await parts.cleanup();
    }
  },
};

/**
 * kernel+initrd with a kernel: the build's boot parts (pkg/formats/bootparts.ts,
 * written once per build with this format's own writer, and read by every
 * bootable format) copied into place, their digests already known.
 */
async function writeFromBootParts(ctx: FormatContext): Promise<OutputFile[]> {
  const parts = await prepareBootParts(ctx, 'kernel+initrd');
  const outs = new Outputs(ctx);
  try {
    const initrdPath = join(ctx.dir, `${ctx.name}-initrd.img`);
    ctx.emit({ kind: 'output-start', format: 'kernel+initrd', file: initrdPath });
    await outs.createCopy(`${ctx.name}-kernel`, parts.kernel, { size: parts.kernelSize, sha256: parts.kernelSha256, signal: ctx.signal });
    await outs.createCopy(`${ctx.name}-initrd.img`, parts.initrd, { size: parts.initrdSize, sha256: parts.initrdSha256, signal: ctx.signal });
    const c = await outs.create(`${ctx.name}-cmdline`);
    await c.sink.write(Buffer.from(parts.cmdline, 'utf8'));
    return await outs.commit('kernel+initrd');
  } catch (e) {
    await outs.abort();
    throw e;
  } finally {
    await parts.cleanup();
  }
}
