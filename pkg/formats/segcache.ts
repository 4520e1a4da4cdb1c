/**
 * Encoded segments cached by key. A segment's bytes in an output depend
 * only on its key, the encoding and the epoch, and both tar and the kernel's
 * cpio reader accept archives concatenated piece by piece, so a warm build
 * copies cached pieces instead of reading images again.
 *
 * A miss encodes once, teeing into the output and a temp file renamed into
 * the cache when complete (atomic; concurrent builds write identical bytes).
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Sink, Tee, type ByteSink } from '../archive/sink.js';
import type { Entry, Segment } from '../rootfs/entry.js';
import { copyFile, exists } from './output.js';
import { sha256hex } from '../hash.js';

/** Bumped whenever an encoder's bytes change. */
const ENCODING_VERSION = 'enc-2';

export interface SegmentCacheOptions {
  dir?: string;
  /** e.g. `tar`, `cpio.gz` */
  kind: string;
  epoch: number;
  signal?: AbortSignal;
}

export async function cachedEncode(
  seg: { key: string },
  o: SegmentCacheOptions,
  dest: ByteSink,
  encode: (sink: ByteSink) => Promise<void>,
): Promise<'hit' | 'miss' | 'uncached'> {
  if (!o.dir) {
    await encode(dest);
    return 'uncached';
  }
  const file = join(o.dir, `${sha256hex(ENCODING_VERSION, o.kind, seg.key, String(o.epoch))}.${o.kind}`);
  if (await exists(file)) {
    await copyFile(file, dest, o.signal);
    return 'hit';
  }
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const stream = createWriteStream(tmp);
  const fileSink = new Sink([stream], { hash: false });
  try {
    await encode(new Tee([dest, fileSink]));
    await fileSink.end();
    await rename(tmp, file);
  } catch (e) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw e;
  }
  return 'miss';
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
