/**
 * File bodies written once into one scratch file, then read back by range:
 * for outputs that need every body's digest or the whole tree before the
 * first body (a package's headers: rpm's file digests, pacman's .MTREE,
 * deb's md5sums; an ISO 9660 layout), with images read once whatever the
 * number of formats. Memory stays at one chunk.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DockyardError, type ErrorCode } from '../errors.js';
import { fsError, isErrno } from '../fsutil.js';
import { trackTemp, untrackTemp } from '../tempfiles.js';

export interface Spooled {
  offset: number;
  size: number;
  /** With `digests` (lowercase hex). */
  sha256: string;
  md5: string;
}

export interface SpoolOptions {
  /** Take each body's sha256 and md5 as it is written (packages need them); default true. */
  digests?: boolean;
  /** The code of a write error (ENOSPC): E_CACHE for a spool in the cache, E_OUTPUT beside an output. */
  code?: ErrorCode;
}

export class Spool {
  private fh: FileHandle | undefined;
  private length = 0;
  private constructor(
    readonly path: string,
    private readonly o: SpoolOptions,
  ) {}

  static async create(dir: string, tag: string, o: SpoolOptions = {}): Promise<Spool> {
    const path = join(dir, `${tag}-${process.pid}-${Math.floor(performance.now() * 1000)}.spool`);
    const s = new Spool(path, o);
    try {
      s.fh = await open(path, 'wx+', 0o600);
    } catch (e) {
      throw fsError(o.code ?? 'E_CACHE', `cannot write ${path}`, e);
    }
    trackTemp(path);
    return s;
  }

  /**
   * Appends a body, hashing it as it goes when asked; `expect` is the size
   * its header gave (a body of another length is an internal error, named).
   */
  async add(body: Buffer | AsyncIterable<Buffer>, signal?: AbortSignal, expect?: { size: number; what: string }): Promise<Spooled> {
    const digests = this.o.digests !== false;
    const sha = digests ? createHash('sha256') : undefined;
    const md5 = digests ? createHash('md5') : undefined;
    const offset = this.length;
    const put = async (b: Buffer) => {
      signal?.throwIfAborted();
      if (expect && this.length + b.length - offset > expect.size) throw new DockyardError('E_INTERNAL', `${expect.what}: body is longer than the ${expect.size} bytes its header says`);
      sha?.update(b);
      md5?.update(b);
      let done = 0;
      while (done < b.length) {
        const { bytesWritten } = await this.fh!.write(b, done, b.length - done, this.length);
        done += bytesWritten;
        this.length += bytesWritten;
      }
    };
    try {
      if (Buffer.isBuffer(body)) await put(body);
      else for await (const c of body) await put(c);
    } catch (e) {
      // A write error (ENOSPC) names the spool; errors of the body's source pass as they are.
      if (isErrno(e) && e.syscall === 'write') throw fsError(this.o.code ?? 'E_CACHE', `cannot write ${this.path}`, e);
      throw e;
    }
    const size = this.length - offset;
    if (expect && size !== expect.size) throw new DockyardError('E_INTERNAL', `${expect.what}: body is ${size} bytes, header says ${expect.size}`);
    return { offset, size, sha256: sha?.digest('hex') ?? '', md5: md5?.digest('hex') ?? '' };
  }

  /** The bytes of a spooled body, read fresh each call. */
  async *read(s: Spooled): AsyncIterable<Buffer> {
    if (s.size === 0) return;
    yield* createReadStream(this.path, { start: s.offset, end: s.offset + s.size - 1, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  }

  async close(): Promise<void> {
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
    await rm(this.path, { force: true });
    untrackTemp(this.path);
  }
}
