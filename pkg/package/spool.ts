/**
 * File bodies of a package, written once into one scratch file while their
 * digests are taken, then read back by range by every format: a package's
 * headers (rpm's file digests, pacman's .MTREE, deb's md5sums and
 * Installed-Size) need every digest before the first body, and images are
 * read once whatever the number of formats. Memory stays at one chunk.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError, isErrno } from '../fsutil.js';
import { trackTemp, untrackTemp } from '../tempfiles.js';

export interface Spooled {
  offset: number;
  size: number;
  sha256: string;
  md5: string;
}

export class Spool {
  private fh: FileHandle | undefined;
  private length = 0;
  private constructor(readonly path: string) {}

  static async create(dir: string, tag: string): Promise<Spool> {
    const path = join(dir, `package-${tag}-${process.pid}-${Math.floor(performance.now() * 1000)}.spool`);
    const s = new Spool(path);
    try {
      s.fh = await open(path, 'wx+', 0o600);
    } catch (e) {
      throw fsError('E_CACHE', `cannot write ${path}`, e);
    }
    trackTemp(path);
    return s;
  }

  /** Appends a body, hashing it as it goes. */
  async add(body: Buffer | AsyncIterable<Buffer>, signal?: AbortSignal): Promise<Spooled> {
    const sha = createHash('sha256');
    const md5 = createHash('md5');
    const offset = this.length;
    const put = async (b: Buffer) => {
      signal?.throwIfAborted();
      sha.update(b);
      md5.update(b);
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
      if (isErrno(e) && e.syscall === 'write') throw fsError('E_CACHE', `cannot write ${this.path}`, e);
      throw e;
    }
    return { offset, size: this.length - offset, sha256: sha.digest('hex'), md5: md5.digest('hex') };
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
