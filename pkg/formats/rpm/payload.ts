/**
 * The payload: a cpio archive of the package's files, gzip-compressed, as
 * rpmbuild writes it (rpm 4.18 lib/cpio.c, lib/rpmfi.c
 * rpmfiArchiveWriteHeader()/iterWriteArchiveNext(); "RPM File Format",
 * "Payload").
 *
 * Records are SVR4 "newc" (magic 070701; the layout is in
 * pkg/archive/cpio.ts), in the order of the header's file list, with the
 * values rpm itself puts there:
 *
 *   name      `.` + the absolute path (`./usr/bin/x`): rpmlib(PayloadFilesHavePrefix)
 *   ino       the file's index in the header + 1, as FILEINODES says
 *   mode      S_IF* type bits | permissions (FILEMODES)
 *   uid, gid  numeric owner (rpm installs by FILEUSERNAME/FILEGROUPNAME; these are informative)
 *   nlink     1 (no hard links: the plan has none)
 *   mtime     FILEMTIMES
 *   filesize  bytes of a file, of a symlink's target; 0 for a directory
 *   dev, rdev 0; check 00000000
 *
 * A symlink's record carries its target as data. %ghost files are in the
 * header only, never here (rpm skips them when unpacking and refuses none,
 * but rpmbuild leaves them out). Data and names are padded to 4 bytes; the
 * archive ends with the TRAILER!!! record.
 *
 * A file of 4 GiB − 1 or more does not fit newc's 8 hex digits. rpm then
 * writes every record in its "stripped" form instead (lib/cpio.c
 * rpmcpioStrippedHeaderWrite(), docs/manual/large_files.md): magic 07070X,
 * then the file's index in the header as 8 hex digits, padded to 4 bytes, then
 * the data; every other fact comes from the header (LONGFILESIZES), and the
 * package requires rpmlib(LargeFiles).
 *
 * Compression: gzip level 9 (rpmbuild's default `w9.gzdio`, so PAYLOADFLAGS
 * says "9"), made by ParallelGzip (pkg/archive/pgzip.ts) on every core as a
 * series of gzip members (RFC 1952 §2.2), one per 4 MiB of cpio. rpm reads
 * the payload through zlib's gzread(), which continues across members, as
 * do gzip -d, rpm2cpio and Go's and Python's gzip readers; the tests check
 * rpm2cpio and an install of a multi-member payload. Members are cut at fixed
 * 4 MiB offsets of the cpio stream (not where a write happened to end), so
 * the bytes depend only on the input.
 */
import { createHash } from 'node:crypto';
import type { PackageContents, PackageFile } from '../../package/types.js';
import type { ByteSink } from '../../archive/sink.js';
import { ParallelGzip, PGZIP_CHUNK } from '../../archive/pgzip.js';
import { cpioTrailer } from '../../archive/cpio.js';
import { DockyardError } from '../../errors.js';
import { S_IFDIR, S_IFLNK, S_IFREG } from './tags.js';

/** rpmbuild's default payload level (`%_binary_payload w9.gzdio`); PAYLOADFLAGS carries it. */
export const GZIP_LEVEL = 9;
/** lib/cpio.c: a newc name (with its NUL) longer than this is refused on reading. */
const MAX_NAME = 4096;
/** lib/cpio.h CPIO_FILESIZE_MAX (UINT32_MAX): a file this large needs the stripped format. */
export const LARGE_FILE = 0xffffffff;

export interface PayloadFile {
  /** Index in the header's file list (ghosts included): ino − 1, and the stripped format's file index. */
  fx: number;
  file: PackageFile;
}

export interface PayloadResult {
  /** Uncompressed cpio: bytes (the signature's PAYLOADSIZE) and SHA-256 (PAYLOADDIGESTALT). */
  archiveSize: number;
  archiveSha256: string;
  /** Compressed payload: bytes and SHA-256 (PAYLOADDIGEST). */
  size: number;
  sha256: string;
  /** SHA-256 (hex) of each regular file's bytes as written, by fx: FILEDIGESTS. */
  fileDigests: Map<number, string>;
}

const hex8 = (v: number) => {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DockyardError('E_INTERNAL', `rpm payload: ${v} does not fit a cpio field`);
  return v.toString(16).padStart(8, '0');
};
const pad4 = (n: number) => (4 - (n % 4)) % 4;

export function fileMode(f: PackageFile): number {
  return (f.type === 'dir' ? S_IFDIR : f.type === 'symlink' ? S_IFLNK : S_IFREG) | (f.mode & 0o7777);
}

/** Counts and hashes what passes through to `inner`. */
class Measured implements ByteSink {
  bytes = 0;
  private readonly hash = createHash('sha256');
  constructor(private readonly inner: ByteSink) {}
  async write(b: Buffer): Promise<void> {
    this.bytes += b.length;
    this.hash.update(b);
    await this.inner.write(b);
  }
  sha256(): string {
    return this.hash.digest('hex');
  }
}

/** Feeds ParallelGzip and ends a gzip member at every PGZIP_CHUNK bytes of input, wherever the writes fall. */
class FixedMembers implements ByteSink {
  private fill = 0;
  constructor(private readonly gz: ParallelGzip) {}
  async write(b: Buffer): Promise<void> {
    while (b.length > 0) {
      const part = b.subarray(0, PGZIP_CHUNK - this.fill);
      // ParallelGzip keeps the buffers it is given until it compresses them; a body's reader may reuse its buffer.
      await this.gz.write(Buffer.from(part));
      this.fill += part.length;
      b = b.subarray(part.length);
      if (this.fill === PGZIP_CHUNK) {
        await this.gz.boundary();
        this.fill = 0;
      }
    }
  }
}

function newcHeader(f: PackageFile, fx: number, size: number): Buffer {
  const name = Buffer.from(`.${f.path}\0`, 'utf8');
  if (name.length > MAX_NAME) throw new DockyardError('E_PACKAGE', `rpm: path ${f.path.slice(0, 80)}… is longer than rpm reads (${MAX_NAME - 2} bytes)`);
  const head =
    '070701' +
    hex8(fx + 1) + // c_ino
    hex8(fileMode(f)) + // c_mode
    hex8(f.uid) + // c_uid
    hex8(f.gid) + // c_gid
    hex8(1) + // c_nlink
    hex8(Math.max(0, Math.floor(f.mtime))) + // c_mtime
    hex8(size) + // c_filesize
    hex8(0) + // c_devmajor
    hex8(0) + // c_devminor
    hex8(0) + // c_rdevmajor
    hex8(0) + // c_rdevminor
    hex8(name.length) + // c_namesize
    hex8(0); // c_check
  return Buffer.concat([Buffer.from(head, 'ascii'), name, Buffer.alloc(pad4(110 + name.length))]);
}

/** 07070X + the file's index: 14 bytes, padded to 16. */
function strippedHeader(fx: number): Buffer {
  return Buffer.concat([Buffer.from('07070X' + hex8(fx), 'ascii'), Buffer.alloc(2)]);
}

/**
 * Writes the compressed payload of `files` (ghosts already left out) into
 * `out`; `stripped` selects rpm's large-file record form for every record.
 */
export async function writePayload(o: { contents: PackageContents; files: PayloadFile[]; stripped: boolean; out: ByteSink; signal?: AbortSignal }): Promise<PayloadResult> {
  const compressed = new Measured(o.out);
  const gz = new ParallelGzip(compressed, GZIP_LEVEL);
  const cpio = new Measured(new FixedMembers(gz));
  const fileDigests = new Map<number, string>();

  for (const { fx, file: f } of o.files) {
    o.signal?.throwIfAborted();
    if (f.ghost) throw new DockyardError('E_INTERNAL', `rpm payload: ghost ${f.path} given`);
    const link = f.type === 'symlink' ? Buffer.from(f.linkname ?? '', 'utf8') : undefined;
    if (link && link.length === 0) throw new DockyardError('E_PACKAGE', `rpm: symlink ${f.path} has no target`);
    const size = f.type === 'file' ? f.size : link ? link.length : 0;
    await cpio.write(o.stripped ? strippedHeader(fx) : newcHeader(f, fx, size));
    if (link) {
      await cpio.write(link);
    } else if (f.type === 'file') {
      const h = createHash('sha256');
      let n = 0;
      for await (const chunk of o.contents.body(f)) {
        o.signal?.throwIfAborted();
        n += chunk.length;
        if (n > f.size) break;
        h.update(chunk);
        await cpio.write(chunk);
      }
      if (n !== f.size) throw new DockyardError('E_PACKAGE', `rpm: ${f.path}: read ${n > f.size ? `more than ${f.size}` : n} bytes, the plan says ${f.size} (did it change while packaging?)`);
      const digest = h.digest('hex');
      if (f.sha256 !== undefined && f.sha256 !== digest) throw new DockyardError('E_PACKAGE', `rpm: ${f.path}: its bytes do not hash to the plan's sha256 (did it change while packaging?)`);
      fileDigests.set(fx, digest);
    }
    const padding = pad4(size);
    if (padding) await cpio.write(Buffer.alloc(padding));
  }
  // rpm's trailer (lib/cpio.c rpmcpioTrailerWrite): newc, every field 0 but nlink 1 and namesize 11, in both record forms.
  await cpio.write(cpioTrailer());
  await gz.end();
  return { archiveSize: cpio.bytes, archiveSha256: cpio.sha256(), size: compressed.bytes, sha256: compressed.sha256(), fileDigests };
}
