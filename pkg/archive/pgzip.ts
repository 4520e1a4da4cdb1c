/**
 * gzip on every core, for initramfs archives: the input is cut into gzip
 * members (RFC 1952 §2.2: a gzip file is a series of members) of about
 * 4 MiB, compressed on libuv's thread pool and written out in order.
 *
 * The kernel's initramfs unpacker requires each compressed member to end
 * between two cpio records (init/initramfs.c: "junk at the end of compressed
 * archive" otherwise), so members end only where the writer says a record
 * ended (`boundary()`). A record larger than 16 MiB is not buffered: that
 * member is compressed as a stream instead, so memory stays bounded whatever
 * the file sizes. Cuts depend only on the bytes and record boundaries, so
 * the output is the same whatever the parallelism.
 */
import { createGzip, gzip, type Gzip } from 'node:zlib';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { availableParallelism } from 'node:os';
import type { ByteSink } from './sink.js';

const gzipAsync = promisify(gzip);

export const PGZIP_CHUNK = 4 * 1024 * 1024;
/** Output buffer of a streamed member: fewer round trips between this thread and the pool than zlib's 16 KiB. */
const STREAM_CHUNK = 1024 * 1024;

/** The most a gzip member of `n` bytes can take: zlib's deflateBound (deflate.c) for the default window and memLevel, plus the 10-byte header and 8-byte trailer (RFC 1952 §2.3). */
export function deflateBound(n: number): number {
  return n + (n >> 12) + (n >> 14) + (n >> 25) + 13 + 18;
}

export class ParallelGzip implements ByteSink {
  private parts: Buffer[] = [];
  private len = 0;
  private members = 0;
  private readonly inflight: Promise<Buffer>[] = [];
  private readonly parallel: number;
  private readonly chunk: number;
  private stream: { gz: Gzip; done: Promise<void> } | undefined;

  constructor(
    private readonly dest: ByteSink,
    private readonly level = 6,
    opts: { chunk?: number; parallel?: number } = {},
  ) {
    this.chunk = opts.chunk ?? PGZIP_CHUNK;
    this.parallel = Math.max(1, opts.parallel ?? availableParallelism());
  }

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    if (this.stream) {
      await this.toStream(b);
      return;
    }
    this.parts.push(b);
    this.len += b.length;
    if (this.len >= this.chunk * 4) await this.startStream();
  }

  /** A record ended here: a member may end too. */
  async boundary(): Promise<void> {
    if (this.stream) await this.endStream();
    else if (this.len >= this.chunk) await this.cut();
  }

  private async cut(): Promise<void> {
    const data = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.len);
    this.parts = [];
    this.len = 0;
    this.members++;
    // One output buffer big enough for the whole member (deflate's bound, zlib.h deflateBound, plus gzip's 18 bytes): the pool
    // thread compresses it in one go. With the default 16 KiB, every 16 KiB of output waits for this thread to hand the
    // next piece back to the pool, so compression stalls whenever this thread is busy. The bytes are the same either way.
    const p = gzipAsync(data, { level: this.level, memLevel: 9, chunkSize: deflateBound(data.length) });
    p.catch(() => {}); // awaited in order below; no unhandled rejection meanwhile
    this.inflight.push(p);
    // Keep every core compressing while this thread gathers the next member.
    while (this.inflight.length > this.parallel) await this.dest.write(await this.inflight.shift()!);
  }

  private async flushInflight(): Promise<void> {
    while (this.inflight.length > 0) await this.dest.write(await this.inflight.shift()!);
  }

  private async startStream(): Promise<void> {
    await this.flushInflight();
    const gz = createGzip({ level: this.level, memLevel: 9, chunkSize: STREAM_CHUNK });
    const done = (async () => {
      for await (const c of gz) await this.dest.write(c as Buffer);
    })();
    done.catch(() => {});
    this.stream = { gz, done };
    this.members++;
    const parts = this.parts;
    this.parts = [];
    this.len = 0;
    for (const p of parts) await this.toStream(p);
  }

  private async toStream(b: Buffer): Promise<void> {
    const gz = this.stream!.gz;
    if (!gz.write(b)) await Promise.race([once(gz, 'drain'), this.stream!.done]);
  }

  private async endStream(): Promise<void> {
    const { gz, done } = this.stream!;
    this.stream = undefined;
    gz.end();
    await done;
  }

  /** Compress what is left and write every member out. */
  async end(): Promise<void> {
    if (this.stream) await this.endStream();
    else if (this.len > 0 || this.members === 0) await this.cut();
    await this.flushInflight();
  }
}
