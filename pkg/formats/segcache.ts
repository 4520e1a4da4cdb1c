/**
 * Encoded segments cached by key. A segment's bytes in an output depend
 * only on its key, the encoding and the epoch, and both tar and the kernel's
 * cpio reader accept archives concatenated piece by piece, so a warm build
 * copies cached pieces instead of reading images again.
 *
 * A cached piece is a sealed file (pkg/cache/sealed.ts), checked in full
 * before a byte of it is copied: one that fails is removed, reported as a
 * warning and encoded again, as on a miss. A miss encodes once, teeing into
 * the output and a sealed temp file (in the run's scratch directory) renamed
 * into the cache when complete (atomic; concurrent builds write identical bytes).
 */
import { join } from 'node:path';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { Tee, type ByteSink } from '../archive/sink.js';
import type { Entry, Segment } from '../rootfs/entry.js';
import { openSealed, SealedWriter } from '../cache/sealed.js';
import { sha256hex } from '../hash.js';
import type { FormatContext } from './format.js';

/** Bumped whenever an encoder's bytes (or the file around them) change. */
const ENCODING_VERSION = 'enc-3';

export interface SegmentCacheOptions {
  dir?: string;
  /** Where the temp file of a miss is written (same file system as `dir`). */
  tmpDir?: string;
  /** e.g. `tar`, `cpio.gz` */
  kind: string;
  epoch: number;
  signal?: AbortSignal;
  /** Told when a cached piece failed its check. */
  warn?: (message: string) => void;
  /** The encoder returns a measure, kept beside each piece (see cachedEncode). */
  measured?: boolean;
}

let seq = 0;

/**
 * Writes a segment's encoding into `dest`, from the cache or by `encode`.
 * An encoder may return a measure of what it encoded (the uncompressed size
 * of a cpio.gz): it is kept beside the cached piece (`.size`) and returned
 * on a hit too; a piece cached without it is encoded again.
 */
export async function cachedEncode(
  seg: { key: string; name?: string },
  o: SegmentCacheOptions,
  dest: ByteSink,
  encode: (sink: ByteSink) => Promise<void | number>,
): Promise<number | undefined> {
  if (!o.dir) return (await encode(dest)) ?? undefined;
  const file = join(o.dir, `${sha256hex(ENCODING_VERSION, o.kind, seg.key, String(o.epoch))}.${o.kind}`);
  const measured = o.measured ? await readMeasure(file) : undefined;
  const hit =
    measured === null
      ? undefined
      : await openSealed(file, (why) => o.warn?.(`the cached ${o.kind} of ${seg.name ?? 'a segment'} was corrupt (${why}); removed it and encoded it again`));
  if (hit) {
    for await (const c of hit.stream()) {
      o.signal?.throwIfAborted();
      await dest.write(c as Buffer);
    }
    return measured ?? undefined;
  }
  const w = new SealedWriter(join(o.tmpDir ?? o.dir, `seg-${process.pid}-${++seq}.tmp`));
  let n: number | undefined;
  try {
    n = (await encode(new Tee([dest, w]))) ?? undefined;
    if (n !== undefined) {
      // The measure first: a piece is only ever found with its own measure beside it.
      const tmp = join(o.tmpDir ?? o.dir, `seg-${process.pid}-${++seq}.size.tmp`);
      await writeFile(tmp, String(n));
      await rename(tmp, `${file}.size`).catch(async (e: unknown) => {
        await rm(tmp, { force: true });
        throw e;
      });
    }
    await w.commit(file);
  } catch (e) {
    await w.abort();
    throw e;
  }
  return n;
}

/** The measure kept beside a cached piece, or null if it is missing or bad. */
async function readMeasure(file: string): Promise<number | null> {
  // At most 24 bytes of it (a decimal number): a cache file is checked, never trusted to be small.
  let text: string;
  try {
    const fh = await open(`${file}.size`, 'r');
    try {
      const b = Buffer.alloc(24);
      const { bytesRead } = await fh.read(b, 0, b.length, 0);
      if (bytesRead === b.length) return null;
      text = b.subarray(0, bytesRead).toString('latin1');
    } finally {
      await fh.close();
    }
  } catch {
    return null;
  }
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** The segment cache as a format's context has it. */
export function segmentCacheOptions(ctx: FormatContext, kind: string): SegmentCacheOptions {
  return { dir: ctx.segmentCacheDir, tmpDir: ctx.tmpDir, kind, epoch: ctx.epoch, signal: ctx.signal, warn: (message) => ctx.emit({ kind: 'warning', message }) };
}

/** An iterable over `first` entries then the rest of an iterator. */
export async function* prepend(first: Entry[], rest: AsyncIterator<Entry>): AsyncGenerator<Entry> {
  yield* first;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield r.value;
  }
}

export type { Segment };
