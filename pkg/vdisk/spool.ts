/**
 * What every virtual-disk container starts from: a planned raw disk
 * (`{ size, write(sink) }`) and, for the sparse containers, a map of which
 * 64 KiB chunks hold anything but zeros.
 *
 * `spoolRaw` streams the raw disk once into a sparse scratch file (zero
 * chunks are never written, so the file takes only the space of the data),
 * marks the non-zero chunks and derives a content id; the containers then
 * lay out their metadata up front and copy the chunks back in order.
 * `ChunkScanner` does the same marking and id without the file, for
 * containers that stream the raw bytes straight through (fixed VHD).
 *
 * 64 KiB is the qcow2 cluster and the VMDK grain; a dynamic VHD block is 32
 * of them.
 */
import { open, mkdtemp, rm, type FileHandle } from 'node:fs/promises';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';

export const CHUNK = 64 * 1024;
export const SECTOR = 512;
const ZERO_CHUNK = Buffer.alloc(CHUNK);

/** A raw disk image, planned: exactly `size` bytes are written by `write`. */
export interface RawDisk {
  size: number;
  write(sink: ByteSink): Promise<void>;
  /** A spooled copy shared with other converters (its close() is then the owner's business). */
  spool?(scratchDir: string, signal?: AbortSignal): Promise<Spooled>;
}

export interface ConvertOptions {
  /** Seconds since 1970 (SOURCE_DATE_EPOCH): the only time that goes into a container. */
  epoch: number;
  /** Where the scratch copy of the raw disk goes (removed before returning). */
  scratchDir: string;
  signal?: AbortSignal;
}

export function isZero(b: Buffer): boolean {
  if (b.length === CHUNK) return b.equals(ZERO_CHUNK);
  return b.equals(ZERO_CHUNK.subarray(0, b.length));
}

export function checkRawSize(size: number, what: string): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size % SECTOR !== 0) {
    throw new DockyardError('E_INTERNAL', `${what}: raw disk size ${size} is not a positive multiple of ${SECTOR} bytes`);
  }
}

/**
 * A sink that cuts the raw stream into 64 KiB chunks, marks the non-zero
 * ones, hashes (size, index, bytes) of each non-zero chunk into a content id
 * and hands non-zero chunks to `onData` (for the scratch file).
 */
export class ChunkScanner implements ByteSink {
  pos = 0;
  readonly nonzero: Uint8Array;
  private readonly hash: Hash = createHash('sha256');
  private cur = Buffer.alloc(CHUNK);
  private fill = 0;
  private index = 0;

  constructor(
    readonly size: number,
    private readonly onData?: (chunk: Buffer, offset: number) => Promise<void>,
    private readonly signal?: AbortSignal,
  ) {
    this.nonzero = new Uint8Array(Math.ceil(size / CHUNK));
    const s = Buffer.alloc(8);
    s.writeBigUInt64BE(BigInt(size));
    this.hash.update('dockyard-vdisk\0');
    this.hash.update(s);
  }

  async write(b: Buffer): Promise<void> {
    this.signal?.throwIfAborted();
    if (this.pos + b.length > this.size) throw new DockyardError('E_INTERNAL', `raw disk wrote more than its planned ${this.size} bytes`);
    this.pos += b.length;
    let off = 0;
    while (off < b.length) {
      if (this.fill === 0 && b.length - off >= CHUNK) {
        await this.chunk(b.subarray(off, off + CHUNK));
        off += CHUNK;
        continue;
      }
      const n = Math.min(CHUNK - this.fill, b.length - off);
      b.copy(this.cur, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === CHUNK) {
        await this.chunk(this.cur);
        this.fill = 0;
      }
    }
  }

  /** `n` zero bytes: whole zero chunks are only counted (nothing to compare, hash or write). */
  async zeros(n: number): Promise<void> {
    this.signal?.throwIfAborted();
    if (this.pos + n > this.size) throw new DockyardError('E_INTERNAL', `raw disk wrote more than its planned ${this.size} bytes`);
    this.pos += n;
    if (this.fill > 0) {
      const k = Math.min(n, CHUNK - this.fill);
      this.cur.fill(0, this.fill, this.fill + k);
      this.fill += k;
      n -= k;
      if (this.fill < CHUNK) return;
      await this.chunk(this.cur);
      this.fill = 0;
    }
    this.index += Math.floor(n / CHUNK);
    this.fill = n % CHUNK;
    if (this.fill > 0) this.cur.fill(0, 0, this.fill);
  }

  private async chunk(c: Buffer): Promise<void> {
    const i = this.index++;
    if (isZero(c)) return;
    this.nonzero[i] = 1;
    const h = Buffer.alloc(8);
    h.writeBigUInt64BE(BigInt(i));
    this.hash.update(h);
    this.hash.update(c);
    if (this.onData) await this.onData(c, i * CHUNK);
  }

  /** Flush the last partial chunk; check the size; the content id (sha256). */
  async finish(): Promise<Buffer> {
    if (this.pos !== this.size) throw new DockyardError('E_INTERNAL', `raw disk wrote ${this.pos} bytes, planned ${this.size}`);
    if (this.fill > 0) {
      this.cur.fill(0, this.fill);
      await this.chunk(this.cur);
      this.fill = 0;
    }
    return this.hash.digest();
  }
}

/** The raw disk in a sparse scratch file, with its chunk map and content id. */
export interface Spooled {
  size: number;
  /** One byte per 64 KiB chunk: 1 if it holds anything but zeros. */
  nonzero: Uint8Array;
  /** sha256 over the size and the non-zero chunks (index + bytes). */
  id: Buffer;
  /** `len` bytes at `pos` (zeros past the end of the disk). */
  read(pos: number, len: number): Promise<Buffer>;
  /** The scratch file itself (exactly the raw disk's bytes; holes where it is zero). */
  path: string;
  /** sha256 (hex) of the raw disk's bytes followed by `tail`; the file is read once, on first call. */
  sha256(tail?: Buffer): Promise<string>;
  close(): Promise<void>;
}

export async function spoolRaw(raw: RawDisk, scratchDir: string, signal?: AbortSignal): Promise<Spooled> {
  if (raw.spool) return raw.spool(scratchDir, signal);
  return spoolRawOnce(raw, scratchDir, signal);
}

export async function spoolRawOnce(raw: RawDisk, scratchDir: string, signal?: AbortSignal): Promise<Spooled> {
  const dir = await mkdtemp(join(scratchDir, '.vdisk-'));
  let fh: FileHandle | undefined;
  const close = async (): Promise<void> => {
    await fh?.close().catch(() => {});
    fh = undefined;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const path = join(dir, 'raw');
    fh = await open(path, 'w+');
    const f = fh;
    const scan = new ChunkScanner(
      raw.size,
      async (c, off) => {
        await f.write(c, 0, c.length, off);
      },
      signal,
    );
    await raw.write(scan);
    const id = await scan.finish();
    await f.truncate(raw.size);
    let whole: Promise<Hash> | undefined;
    const sp: Spooled = {
      size: raw.size,
      nonzero: scan.nonzero,
      id,
      path,
      async sha256(tail?: Buffer): Promise<string> {
        const h = (await (whole ??= hashWhole(sp, signal))).copy();
        if (tail) h.update(tail);
        return h.digest('hex');
      },
      async read(pos: number, len: number): Promise<Buffer> {
        const b = Buffer.allocUnsafe(len);
        let done = 0;
        while (done < len && pos + done < raw.size) {
          const { bytesRead } = await f.read(b, done, Math.min(len - done, raw.size - pos - done), pos + done);
          if (bytesRead === 0) break;
          done += bytesRead;
        }
        b.fill(0, done);
        return b;
      },
      close,
    };
    return sp;
  } catch (e) {
    await close();
    throw e;
  }
}

/** sha256 of a spooled disk's bytes: the data chunks read, the zero chunks hashed from memory. */
async function hashWhole(sp: Spooled, signal?: AbortSignal): Promise<Hash> {
  const h = createHash('sha256');
  let at = 0;
  const zeros = (upTo: number): void => {
    for (; at < upTo; at += CHUNK) h.update(upTo - at >= CHUNK ? ZERO_CHUNK : ZERO_CHUNK.subarray(0, upTo - at));
  };
  for await (const [g, c] of nonzeroChunks(sp, signal)) {
    zeros(g * CHUNK);
    const n = Math.min(CHUNK, sp.size - g * CHUNK);
    h.update(n === CHUNK ? c : c.subarray(0, n));
    at = g * CHUNK + n;
  }
  zeros(sp.size);
  return h;
}

/**
 * Copy a spooled disk into the file `dest` (created): the data chunks are
 * written where they belong and the zero runs are left as holes, so a big
 * disk that is mostly empty takes only its data's room (a raw image, as
 * `qemu-img convert` writes one). The bytes read back are the disk's.
 */
export async function writeSparseCopy(sp: Spooled, dest: string, signal?: AbortSignal): Promise<void> {
  const out = await open(dest, 'w', 0o644);
  try {
    for await (const [g, c] of nonzeroChunks(sp, signal, 16)) {
      const n = Math.min(CHUNK, sp.size - g * CHUNK);
      await out.write(c, 0, n, g * CHUNK);
    }
    await out.truncate(sp.size);
  } finally {
    await out.close();
  }
}

/** A GUID-shaped 16 bytes from a content id and a purpose (RFC 4122 version 5 style bits). */
export function derivedUuid(id: Buffer, purpose: string): Buffer {
  const u = createHash('sha256').update(purpose).update('\0').update(id).digest().subarray(0, 16);
  u[6] = (u[6] & 0x0f) | 0x50;
  u[8] = (u[8] & 0x3f) | 0x80;
  return Buffer.from(u);
}

/**
 * The non-zero chunks of a spooled disk in order, as [index, 64 KiB bytes];
 * runs of consecutive ones are read together (up to `max` chunks a read).
 * The buffers are the caller's to keep.
 */
export async function* nonzeroChunks(sp: Pick<Spooled, 'nonzero' | 'read'>, signal?: AbortSignal, max = 16): AsyncGenerator<[number, Buffer]> {
  const n = sp.nonzero.length;
  for (let g = 0; g < n; ) {
    if (!sp.nonzero[g]) {
      g++;
      continue;
    }
    let e = g + 1;
    while (e < n && e - g < max && sp.nonzero[e]) e++;
    signal?.throwIfAborted();
    const b = await sp.read(g * CHUNK, (e - g) * CHUNK);
    for (let i = g; i < e; i++) yield [i, b.subarray((i - g) * CHUNK, (i - g + 1) * CHUNK)];
    g = e;
  }
}
