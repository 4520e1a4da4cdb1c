/**
 * A byte sink over one or more Node writables with backpressure, small-write
 * batching, a running sha256 and a byte count. Format writers push headers and
 * bodies into it; it never holds more than its batch buffer.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { DockyardError } from '../errors.js';
import { formatSize } from '../limits.js';

const BATCH = 256 * 1024;

/** Anything bytes can be pushed into, waiting for room. */
export interface ByteSink {
  write(b: Buffer): Promise<void>;
  /**
   * `n` zero bytes, for a sink that can take them without buffers (a disk
   * scanner skips whole zero chunks). Optional: writeZeros (pkg/disk/io.ts)
   * falls back to write() with a shared zero buffer.
   */
  zeros?(n: number): Promise<void>;
}

export class Sink implements ByteSink {
  bytes = 0;
  private readonly hash: Hash | undefined;
  private pending: Buffer[] = [];
  private pendingLen = 0;

  private readonly limit?: { max: number; error: () => Error };

  /**
   * `onError` turns a write error of the writables (ENOSPC) into the error
   * thrown, e.g. one naming the file.
   */
  constructor(
    private readonly outs: Writable[],
    opts: { hash?: boolean; limit?: { max: number; error: () => Error }; onError?: (e: Error) => Error } = {},
  ) {
    this.hash = opts.hash === false ? undefined : createHash('sha256');
    this.limit = opts.limit;
    const wrap = opts.onError ?? ((e: Error) => e);
    // A write error is kept and thrown by the next write: never an unhandled 'error' event, never a wait for a 'drain' that will not come.
    for (const o of outs) o.on('error', (e: Error) => (this.failure ??= wrap(e)));
    this.wrap = wrap;
  }

  private readonly wrap: (e: Error) => Error;

  private failure: Error | undefined;

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    if (this.limit && this.bytes + b.length > this.limit.max) throw this.limit.error();
    this.bytes += b.length;
    this.hash?.update(b);
    if (b.length >= BATCH) {
      await this.flush();
      await this.push(b);
      return;
    }
    this.pending.push(b);
    this.pendingLen += b.length;
    if (this.pendingLen >= BATCH) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pendingLen === 0) return;
    const b = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLen);
    this.pending = [];
    this.pendingLen = 0;
    await this.push(b);
  }

  private async push(b: Buffer): Promise<void> {
    const waits: Promise<unknown>[] = [];
    for (const o of this.outs) {
      this.check(o);
      if (!o.write(b)) waits.push(drained(o));
    }
    if (waits.length) await Promise.all(waits).catch((e: Error) => Promise.reject(this.failure ?? this.wrap(e)));
    for (const o of this.outs) this.check(o);
  }

  private check(o: Writable): void {
    if (this.failure) throw this.failure;
    if (o.destroyed) throw new Error('the output was closed');
  }

  /** Flush and end every writable, waiting until each has finished. */
  async end(): Promise<void> {
    await this.flush();
    await Promise.all(
      this.outs.map(
        (o) =>
          new Promise<void>((res, rej) => {
            if (this.failure) return rej(this.failure);
            const fail = (e: Error) => rej(this.failure ?? this.wrap(e));
            o.once('error', fail);
            o.end((e?: Error | null) => (e ? fail(e) : res()));
          }),
      ),
    );
  }

  sha256(): string {
    if (!this.hash) throw new Error('sink was created without hashing');
    return this.hash.digest('hex');
  }
}

/** 'drain', or the error (or close) that means it will never come. */
function drained(o: Writable): Promise<void> {
  return new Promise<void>((res, rej) => {
    const done = (e?: Error) => {
      o.off('drain', onDrain);
      o.off('error', onError);
      o.off('close', onClose);
      if (e) rej(e);
      else res();
    };
    const onDrain = () => done();
    const onError = (e: Error) => done(e);
    const onClose = () => done(new Error('the output was closed'));
    o.on('drain', onDrain);
    o.on('error', onError);
    o.on('close', onClose);
  });
}

/** Writes every chunk to several sinks. */
export class Tee implements ByteSink {
  constructor(private readonly sinks: ByteSink[]) {}
  async write(b: Buffer): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.write(b)));
  }
}

/** Counts bytes passing to another sink. */
export class Counter implements ByteSink {
  bytes = 0;
  constructor(private readonly inner: ByteSink) {}
  async write(b: Buffer): Promise<void> {
    this.bytes += b.length;
    await this.inner.write(b);
  }
  async zeros(n: number): Promise<void> {
    this.bytes += n;
    await forwardZeros(this.inner, n);
  }
}

const ZERO = Buffer.alloc(1024 * 1024);

/** `n` zero bytes into `sink`: its zeros() if it has one, else writes of one shared zero buffer. */
export async function forwardZeros(sink: ByteSink, n: number): Promise<void> {
  if (sink.zeros) return sink.zeros(n);
  while (n > 0) {
    const k = Math.min(n, ZERO.length);
    await sink.write(ZERO.subarray(0, k));
    n -= k;
  }
}

/** Largest body collectBody gathers unless told otherwise. */
export const MaxCollectedBytes = 64 * 1024 * 1024;

/**
 * A body's bytes gathered in memory, counted as they arrive: more than
 * `limit` is an E_LIMIT error (a stream is destroyed then, not read on).
 */
export async function collectBody(body: Buffer | AsyncIterable<Buffer> | undefined, limit = MaxCollectedBytes, what = 'a file'): Promise<Buffer> {
  const tooLarge = () => new DockyardError('E_LIMIT', `${what} is larger than ${formatSize(limit)}; refused`);
  if (body === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) {
    if (body.length > limit) throw tooLarge();
    return body;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) {
      (body as { destroy?: () => void }).destroy?.();
      throw tooLarge();
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks, n);
}

/** Iterate an entry body (bytes or chunks) as buffers. */
export async function* bodyChunks(body: Buffer | AsyncIterable<Buffer> | undefined): AsyncGenerator<Buffer> {
  if (body === undefined) return;
  if (Buffer.isBuffer(body)) {
    yield body;
    return;
  }
  for await (const c of body) yield Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
}
