/**
 * Google Compute Engine image archive: the raw disk as `disk.raw` in a tar in
 * GNU ("oldgnu") format, gzip-compressed (what `tar --format=oldgnu -czf`
 * makes, and what GCE's image import asks for).
 *
 * GNU tar header (GNU tar manual, "Basic Tar Format", struct posix_header
 * with the oldgnu magic): sizes of 8 GiB and more use GNU's base-256 size
 * field. The archive ends with two zero blocks and is padded to GNU tar's
 * 10240-byte record. The raw bytes stream through; gzip members are cut every
 * 4 MiB of input (fixed, so the bytes do not depend on how the raw disk
 * chunks its writes or on the parallelism) and compressed in parallel.
 */
import type { ByteSink } from '../archive/sink.js';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { availableParallelism } from 'node:os';
import { DockyardError } from '../errors.js';
import { checkRawSize, type RawDisk } from './spool.js';

const BLOCK = 512;
const RECORD = 20 * BLOCK;
const MEMBER = 4 * 1024 * 1024;
const ZERO_MEMBER = Buffer.alloc(MEMBER);
const gzipAsync = promisify(gzip);

function octal(b: Buffer, at: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0') + '\0', at, len, 'latin1');
}

/** One oldgnu header block for a regular file. */
export function gnuTarHeader(o: { name: string; size: number; mtime: number; mode?: number }): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(o.name, 0, 100, 'utf8'); //                          0  name
  octal(h, 100, 8, o.mode ?? 0o644); //                      100  mode
  octal(h, 108, 8, 0); //                                    108  uid
  octal(h, 116, 8, 0); //                                    116  gid
  if (o.size < 8 ** 11) octal(h, 124, 12, o.size); //         124  size (octal)
  else {
    h[124] = 0x80; //                                              (base-256, big-endian in the last 8 bytes)
    h.writeBigUInt64BE(BigInt(o.size), 128);
  }
  octal(h, 136, 12, Math.max(0, Math.floor(o.mtime))); //    136  mtime
  h.write('        ', 148, 8, 'latin1'); //                  148  chksum (spaces while summing)
  h.write('0', 156, 1, 'latin1'); //                         156  typeflag: regular file
  h.write('ustar  \0', 257, 8, 'latin1'); //                 257  magic "ustar " + version " \0" (oldgnu)
  h.write('root', 265, 32, 'latin1'); //                     265  uname
  h.write('root', 297, 32, 'latin1'); //                     297  gname
  let sum = 0;
  for (const x of h) sum += x;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

/**
 * gzip in members of exactly MEMBER input bytes (RFC 1952 2.2: a gzip file
 * is a series of members), compressed a few at a time on the thread pool
 * and written in order. A member of zeros (most of a sparse disk) is
 * compressed once and reused.
 */
class FixedMemberGzip implements ByteSink {
  private cur = Buffer.allocUnsafe(MEMBER);
  private len = 0;
  private readonly inflight: Promise<Buffer>[] = [];
  private zeroMember: Promise<Buffer> | undefined;
  constructor(
    private readonly dest: ByteSink,
    private readonly level: number,
    private readonly parallel = Math.max(2, availableParallelism()),
  ) {}
  async write(b: Buffer): Promise<void> {
    let off = 0;
    while (off < b.length) {
      const n = Math.min(MEMBER - this.len, b.length - off);
      b.copy(this.cur, this.len, off, off + n);
      this.len += n;
      off += n;
      if (this.len === MEMBER) await this.cut();
    }
  }
  private async cut(): Promise<void> {
    const data = this.cur.subarray(0, this.len);
    let p: Promise<Buffer>;
    if (data.length === MEMBER && data.equals(ZERO_MEMBER)) {
      p = this.zeroMember ??= gzipAsync(ZERO_MEMBER, { level: this.level });
    } else {
      p = gzipAsync(data, { level: this.level });
      this.cur = Buffer.allocUnsafe(MEMBER); // `data` belongs to the compressor now
    }
    this.len = 0;
    p.catch(() => {}); // awaited in order below
    this.inflight.push(p);
    while (this.inflight.length > this.parallel) await this.dest.write(await this.inflight.shift()!);
  }
  async end(): Promise<void> {
    if (this.len > 0) await this.cut();
    while (this.inflight.length > 0) await this.dest.write(await this.inflight.shift()!);
  }
}

/** `disk.raw` in a GNU tar, gzip-compressed, into `sink`. */
export async function writeGcpTarGz(raw: RawDisk, sink: ByteSink, opts: { epoch: number; signal?: AbortSignal; level?: number }): Promise<void> {
  checkRawSize(raw.size, 'gcp');
  const m = new FixedMemberGzip(sink, opts.level ?? 6);
  await m.write(gnuTarHeader({ name: 'disk.raw', size: raw.size, mtime: opts.epoch }));
  let n = 0;
  await raw.write({
    async write(b: Buffer): Promise<void> {
      opts.signal?.throwIfAborted();
      n += b.length;
      await m.write(b);
    },
  });
  if (n !== raw.size) throw new DockyardError('E_INTERNAL', `gcp: raw disk wrote ${n} bytes, planned ${raw.size}`);
  const used = BLOCK + raw.size; // raw.size is a multiple of 512: no body padding
  const end = used + 2 * BLOCK;
  await m.write(Buffer.alloc(2 * BLOCK + ((RECORD - (end % RECORD)) % RECORD)));
  await m.end();
}
