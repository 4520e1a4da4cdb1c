/**
 * Google Compute Engine image archive: the raw disk as `disk.raw` in a tar in
 * GNU ("oldgnu") format, gzip-compressed (what `tar --format=oldgnu -czf`
 * makes, and what GCE's image import asks for).
 *
 * GNU tar header (GNU tar manual, "Basic Tar Format", struct posix_header
 * with the oldgnu magic): sizes of 8 GiB and more use GNU's base-256 size
 * field. The archive ends with two zero blocks and is padded to GNU tar's
 * 10240-byte record.
 *
 * The gzip stream is a series of members (RFC 1952 section 2.2), cut where
 * the disk's content decides, never where the writes happened to fall: the
 * tar header alone; then each non-zero 64 KiB chunk of the disk (spooled,
 * pkg/vdisk/spool.ts) as one member, whose deflate data is the VMDK's for
 * the same chunk (pkg/vdisk/grains.ts: compressed once per build); each run
 * of zero chunks as members of at most 4 MiB; the last partial chunk with
 * the tar trailer. Members are compressed a few at a time on the thread
 * pool and written in order.
 */
import type { ByteSink } from '../archive/sink.js';
import { CHUNK, checkRawSize, nonzeroChunks, spoolRaw, type ConvertOptions, type RawDisk, type Spooled } from './spool.js';
import { ChunkDeflater, gzipMember } from './grains.js';

const BLOCK = 512;
const RECORD = 20 * BLOCK;
/** Zero chunks in one member at most (4 MiB). */
const ZERO_RUN = 64;
const PARALLEL = 8;

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

/** The archive from the spooled disk: see the file comment for the member layout. */
export async function writeGcpFrom(sp: Spooled, sink: ByteSink, opts: { epoch: number; signal?: AbortSignal; deflater?: ChunkDeflater }): Promise<void> {
  const deflater = opts.deflater ?? new ChunkDeflater();
  const member = (b: Buffer): Promise<Buffer> => deflater.deflate(b).then((d) => gzipMember(d, deflater.level));
  const zeroRuns = new Map<number, Promise<Buffer>>();
  const zeroRun = (chunks: number): Promise<Buffer> => {
    let p = zeroRuns.get(chunks);
    if (!p) zeroRuns.set(chunks, (p = member(Buffer.alloc(chunks * CHUNK))));
    return p;
  };
  const pending: Promise<Buffer>[] = [];
  const push = async (p: Promise<Buffer>): Promise<void> => {
    p.catch(() => {}); // awaited in order below
    pending.push(p);
    while (pending.length > PARALLEL) await sink.write(await pending.shift()!);
  };

  await push(member(gnuTarHeader({ name: 'disk.raw', size: sp.size, mtime: opts.epoch })));
  const trailerLen = 2 * BLOCK + ((RECORD - ((BLOCK + sp.size + 2 * BLOCK) % RECORD)) % RECORD); // raw size is a multiple of 512: no body padding
  const full = Math.floor(sp.size / CHUNK);
  const zeros = async (chunks: number): Promise<void> => {
    for (; chunks >= ZERO_RUN; chunks -= ZERO_RUN) await push(zeroRun(ZERO_RUN));
    if (chunks > 0) await push(zeroRun(chunks));
  };
  let at = 0; // next chunk index to emit
  for await (const [g, bytes] of nonzeroChunks({ nonzero: sp.nonzero.subarray(0, full), read: (p, l) => sp.read(p, l) }, opts.signal)) {
    await zeros(g - at);
    await push(member(bytes));
    at = g + 1;
  }
  await zeros(full - at);
  const tail = sp.size - full * CHUNK;
  await push(member(Buffer.concat([tail > 0 ? await sp.read(full * CHUNK, tail) : Buffer.alloc(0), Buffer.alloc(trailerLen)])));
  while (pending.length > 0) await sink.write(await pending.shift()!);
}

/** `disk.raw` in a GNU tar, gzip-compressed, into `sink`. */
export async function writeGcpTarGz(raw: RawDisk, sink: ByteSink, opts: ConvertOptions & { deflater?: ChunkDeflater }): Promise<void> {
  checkRawSize(raw.size, 'gcp');
  const sp = await spoolRaw(raw, opts.scratchDir, opts.signal);
  try {
    await writeGcpFrom(sp, sink, opts);
  } finally {
    await sp.close();
  }
}
