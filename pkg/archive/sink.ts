/**
 * A byte sink over one or more Node writables with backpressure, small-write
 * batching, a running sha256 and a byte count. Format writers push headers and
 * bodies into it; it never holds more than its batch buffer.
 */
import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

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

  constructor(
    private readonly outs: Writable[],
    opts: { hash?: boolean } = {},
  ) {
    this.hash = opts.hash === false ? undefined : createHash('sha256');
  }

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
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
      if (!o.write(b)) waits.push(once(o, 'drain'));
    }
    if (waits.length) await Promise.all(waits);
  }

  /** Flush and end every writable, waiting until each has finished. */
  async end(): Promise<void> {
    await this.flush();
    await Promise.all(
      this.outs.map(
        (o) =>
          new Promise<void>((res, rej) => {
            o.once('error', rej);
            o.end(() => res());
          }),
      ),
    );
  }

  sha256(): string {
    if (!this.hash) throw new Error('sink was created without hashing');
    return this.hash.digest('hex');
  }
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

/** An entry body's bytes, gathered (only for small, known-small bodies). */
export async function collectBody(body: Buffer | AsyncIterable<Buffer> | undefined): Promise<Buffer> {
  if (body === undefined) return Buffer.alloc(0);
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c);
  return Buffer.concat(chunks);
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
