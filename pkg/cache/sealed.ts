/**
 * Sealed files: what dockyard derives and keeps for later builds (encoded
 * segments, spooled kernels) carries its own length and digest, so a later
 * build checks it before using it. A file that fails the check (truncated,
 * changed, half written) is removed and treated as absent: the caller
 * derives it again.
 *
 * Layout: the content, then a 48-byte trailer:
 *   0 magic "DYSEAL01" (8 bytes)   8 content length (uint64 BE)
 *   16 sha256 of the content (32 bytes)
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { Sink, type ByteSink } from '../archive/sink.js';
import { fsError } from '../fsutil.js';
import { trackTemp, untrackTemp } from '../tempfiles.js';

const MAGIC = Buffer.from('DYSEAL01', 'ascii');
export const TRAILER_BYTES = 48;

/** Writes content to a temp file; commit() appends the trailer and renames it into place. */
export class SealedWriter implements ByteSink {
  private readonly hash: Hash = createHash('sha256');
  private readonly stream: WriteStream;
  private readonly sink: Sink;
  private bytes = 0;

  constructor(private readonly tmp: string) {
    trackTemp(tmp);
    this.stream = createWriteStream(tmp, { flags: 'wx' });
    this.sink = new Sink([this.stream], { hash: false, onError: (e) => fsError('E_CACHE', `cannot write to the cache (${tmp})`, e) });
  }

  async write(b: Buffer): Promise<void> {
    this.hash.update(b);
    this.bytes += b.length;
    await this.sink.write(b);
  }

  async commit(path: string): Promise<void> {
    const t = Buffer.alloc(TRAILER_BYTES);
    MAGIC.copy(t, 0);
    t.writeBigUInt64BE(BigInt(this.bytes), 8);
    this.hash.digest().copy(t, 16);
    await this.sink.write(t);
    try {
      await this.sink.end();
      await rename(this.tmp, path);
    } catch (e) {
      await this.abort();
      throw fsError('E_CACHE', `cannot store ${path}`, e);
    }
    untrackTemp(this.tmp);
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    await rm(this.tmp, { force: true });
    untrackTemp(this.tmp);
  }
}

export interface SealedFile {
  /** Content bytes (without the trailer). */
  size: number;
  sha256: string;
  /** The content, streamed afresh each call. */
  stream(): Readable;
}

/**
 * A sealed file, checked in full (its content hashed) before it is handed
 * out. Absent: undefined. Corrupt: removed, `onCorrupt` told why, undefined.
 */
export async function openSealed(path: string, onCorrupt: (why: string) => void): Promise<SealedFile | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fsError('E_CACHE', `cannot read ${path}`, e);
  }
  let why: string | undefined;
  let size = 0;
  let sha256 = '';
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size < TRAILER_BYTES) why = `${st.size} bytes, shorter than its trailer`;
    else {
      const t = Buffer.alloc(TRAILER_BYTES);
      await fh.read(t, 0, TRAILER_BYTES, st.size - TRAILER_BYTES);
      size = st.size - TRAILER_BYTES;
      if (!t.subarray(0, 8).equals(MAGIC)) why = 'no trailer (truncated or not written by dockyard)';
      else if (t.readBigUInt64BE(8) !== BigInt(size)) why = `${size} bytes where its trailer says ${t.readBigUInt64BE(8)}`;
      else {
        sha256 = t.subarray(16, 48).toString('hex');
        const h = createHash('sha256');
        if (size > 0) for await (const c of fh.createReadStream({ start: 0, end: size - 1, autoClose: false, highWaterMark: 1 << 20 })) h.update(c as Buffer);
        const got = h.digest('hex');
        if (got !== sha256) why = `its content hashes to sha256:${got}, its trailer says sha256:${sha256}`;
      }
    }
  } finally {
    await fh.close();
  }
  if (why !== undefined) {
    await rm(path, { force: true });
    onCorrupt(why);
    return undefined;
  }
  return {
    size,
    sha256,
    stream: () => (size === 0 ? Readable.from([]) : createReadStream(path, { start: 0, end: size - 1, highWaterMark: 1 << 20 })),
  };
}
