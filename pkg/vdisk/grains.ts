/**
 * Deflated 64 KiB chunks, shared by the compressed containers of one build.
 *
 * The streamOptimized VMDK (a zlib stream per grain) and the GCE archive (a
 * gzip member per chunk, pkg/vdisk/gcp.ts) both compress the same raw disk
 * chunk by chunk, and both framings wrap the same raw deflate data (RFC 1950
 * section 2.2 and RFC 1952 section 2.3: header, raw deflate, checksum). So a
 * chunk is deflated once (on the thread pool), keyed by its content, and each
 * container adds its own header and checksum.
 *
 * Memory stays bounded: finished results are kept up to a byte budget and the
 * oldest are dropped first (the containers walk the disk in the same order,
 * side by side, so what one has just compressed is what the other asks for
 * next). A dropped chunk is only compressed again. The bytes never depend on
 * what was cached.
 */
import { createHash } from 'node:crypto';
import { deflateRaw, crc32 } from 'node:zlib';
import { deflateBound } from '../archive/pgzip.js';
import { promisify } from 'node:util';

const deflateRawAsync = promisify(deflateRaw);

/** Default compression level of every compressed container (zlib's default, what qemu-img and gzip use). */
export const DEFLATE_LEVEL = 6;

export interface Deflated {
  /** Raw deflate data (RFC 1951). */
  raw: Buffer;
  /** Uncompressed length. */
  size: number;
  /** CRC-32 of the uncompressed bytes (gzip's trailer). */
  crc: number;
  /** Adler-32 of the uncompressed bytes (zlib's trailer). */
  adler: number;
}

export class ChunkDeflater {
  private readonly done = new Map<string, Deflated>();
  private readonly pending = new Map<string, Promise<Deflated>>();
  private held = 0;

  constructor(
    readonly level = DEFLATE_LEVEL,
    private readonly budget = 64 * 1024 * 1024,
  ) {}

  /** `bytes` deflated (the caller must not change them until this settles). */
  deflate(bytes: Buffer): Promise<Deflated> {
    const key = createHash('sha256').update(bytes).digest('base64');
    const hit = this.done.get(key);
    if (hit) return Promise.resolve(hit);
    const p = this.pending.get(key);
    if (p) return p;
    // One output buffer for the whole chunk (deflate's bound): one pool job, not one per 16 KiB of output (the same bytes).
    const made = deflateRawAsync(bytes, { level: this.level, chunkSize: deflateBound(bytes.length) }).then((raw) => {
      const d: Deflated = { raw, size: bytes.length, crc: crc32(bytes), adler: adler32(bytes) };
      this.pending.delete(key);
      this.keep(key, d);
      return d;
    });
    made.catch(() => this.pending.delete(key));
    this.pending.set(key, made);
    return made;
  }

  private keep(key: string, d: Deflated): void {
    if (d.raw.length > this.budget) return;
    this.done.set(key, d);
    this.held += d.raw.length;
    for (const [k, v] of this.done) {
      if (this.held <= this.budget) break;
      this.done.delete(k); // Map iterates oldest first
      this.held -= v.raw.length;
    }
  }
}

/** Adler-32 (RFC 1950 section 8.2). */
export function adler32(b: Uint8Array, start = 1): number {
  let a = start & 0xffff;
  let s = start >>> 16;
  const NMAX = 5552; // the most bytes before the sums can overflow 2^32
  let i = 0;
  while (i < b.length) {
    const end = Math.min(i + NMAX, b.length);
    for (; i < end; i++) {
      a += b[i];
      s += a;
    }
    a %= 65521;
    s %= 65521;
  }
  return ((s << 16) | a) >>> 0;
}

/** A zlib stream (RFC 1950): CMF/FLG for deflate, 32 KiB window, then the data and its Adler-32. */
export function zlibFrame(d: Deflated, level: number): Buffer {
  const lv = level < 0 ? 6 : level;
  const flevel = lv < 2 ? 0 : lv < 6 ? 1 : lv === 6 ? 2 : 3; // as zlib's deflate.c sets it
  const cmf = 0x78; //                           CM 8 (deflate), CINFO 7 (32 KiB window)
  let flg = flevel << 6; //                       FLEVEL, FDICT 0
  flg += 31 - ((cmf * 256 + flg) % 31); //       FCHECK: CMF*256+FLG a multiple of 31
  const out = Buffer.allocUnsafe(2 + d.raw.length + 4);
  out[0] = cmf;
  out[1] = flg;
  d.raw.copy(out, 2);
  out.writeUInt32BE(d.adler, 2 + d.raw.length);
  return out;
}

/** A gzip member (RFC 1952 section 2.3): no name, no mtime, OS "Unix" as zlib writes it. */
export function gzipMember(d: Deflated, level: number): Buffer {
  const out = Buffer.allocUnsafe(10 + d.raw.length + 8);
  out.writeUInt32BE(0x1f8b0800, 0); //           0  ID1 ID2, CM 8 (deflate), FLG 0
  out.writeUInt32LE(0, 4); //                    4  MTIME 0
  out[8] = level === 9 ? 2 : level >= 0 && level < 2 ? 4 : 0; // 8  XFL as zlib sets it (2 slowest, 4 fastest)
  out[9] = 3; //                                 9  OS 3 (Unix)
  d.raw.copy(out, 10);
  out.writeUInt32LE(d.crc, 10 + d.raw.length); //   CRC32
  out.writeUInt32LE(d.size % 2 ** 32, 14 + d.raw.length); // ISIZE (mod 2^32)
  return out;
}
