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
}

let seq = 0;

export async function cachedEncode(
  seg: { key: string; name?: string },
  o: SegmentCacheOptions,
  dest: ByteSink,
  encode: (sink: ByteSink) => Promise<void>,
): Promise<'hit' | 'miss' | 'uncached'> {
  if (!o.dir) {
    await encode(dest);
    return 'uncached';
  }
  const file = join(o.dir, `${sha256hex(ENCODING_VERSION, o.kind, seg.key, String(o.epoch))}.${o.kind}`);
  const hit = await openSealed(file, (why) =>
    o.warn?.(`the cached ${o.kind} of ${seg.name ?? 'a segment'} was corrupt (${why}); removed it and encoded it again`),
  );
  if (hit) {
    for await (const c of hit.stream()) {
      o.signal?.throwIfAborted();
      await dest.write(c as Buffer);
    }
    return 'hit';
  }
  const w = new SealedWriter(join(o.tmpDir ?? o.dir, `seg-${process.pid}-${++seq}.tmp`));
  try {
    await encode(new Tee([dest, w]));
    await w.commit(file);
  } catch (e) {
    await w.abort();
    throw e;
  }
  return 'miss';
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
