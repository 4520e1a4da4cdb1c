/**
 * The "newc" cpio format the Linux kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst):
 *
 *   0 c_magic "070701"   6 c_ino   14 c_mode   22 c_uid   30 c_gid
 *   38 c_nlink   46 c_mtime   54 c_filesize   62 c_maj   70 c_min
 *   78 c_rmaj   86 c_rmin   94 c_namesize   102 c_chksum   110 name
 *
 * every field 8 ASCII hex digits; the name (NUL-terminated) is padded so the
 * body starts on a 4-byte boundary, and the body is padded to 4 bytes too.
 * Archives may be concatenated: the kernel reads them one after another, so
 * a segment can be encoded once and reused; one TRAILER!!! ends the whole.
 *
 * Hard links are written as relative symlinks, as LinuxKit's initrd writer
 * does, so every file stands alone (nlink 1) and segments stay independent.
 */
import { posix } from 'node:path';
import type { Entry, EntryType } from '../rootfs/entry.js';
import { bodyChunks, type ByteSink } from './sink.js';
import { DockyardError } from '../errors.js';

const S_IF: Record<EntryType, number> = {
  file: 0o100000,
  dir: 0o040000,
  symlink: 0o120000,
  hardlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  fifo: 0o010000,
};

/** An 8-digit hex field; a value that does not fit is a bug upstream (inputs are range-checked where they enter), never wrapped. */
const hex = (v: number) => {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DockyardError('E_INTERNAL', `cpio: ${v} does not fit a 32-bit header field`);
  return v.toString(16).padStart(8, '0');
};
const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(f: { ino: number; mode: number; uid: number; gid: number; nlink: number; mtime: number; size: number; rmaj: number; rmin: number; name: string }): Buffer {
  const name = Buffer.from(f.name + '\0', 'utf8');
  const head =
    '070701' +
    hex(f.ino) +
    hex(f.mode) +
    hex(f.uid) +
    hex(f.gid) +
    hex(f.nlink) +
    hex(f.mtime) +
    hex(f.size) +
    hex(0) +
    hex(0) +
    hex(f.rmaj) +
    hex(f.rmin) +
    hex(name.length) +
    hex(0);
  return Buffer.concat([Buffer.from(head, 'ascii'), name, Buffer.alloc(pad4(110 + name.length))]);
}

/** Encodes entries as newc records; `ino` counts within one writer. */
export class CpioWriter {
  private ino = 0;
  constructor(
    private readonly sink: ByteSink,
    private readonly epoch: number,
  ) {}

  async add(e: Entry): Promise<void> {
    const mtime = Math.max(0, Math.floor(e.mtime ?? this.epoch));
    let type = e.type;
    let link = e.linkname ?? '';
    if (type === 'hardlink') {
      // LinuxKit: a hard link becomes a symlink relative to its directory.
      link = posix.relative(posix.dirname(`/${e.path}`), `/${link}`);
      type = 'symlink';
    }
    const body = type === 'symlink' ? Buffer.from(link, 'utf8') : undefined;
    const size = type === 'file' ? e.size : body ? body.length : 0;
    const dev = type === 'char' || type === 'block';
    await this.sink.write(
      header({
        ino: ++this.ino,
        mode: S_IF[type] | (e.mode & 0o7777),
        uid: e.uid,
        gid: e.gid,
        nlink: type === 'dir' ? 2 : 1,
        mtime,
        size,
        rmaj: dev ? (e.devmajor ?? 0) : 0,
        rmin: dev ? (e.devminor ?? 0) : 0,
        name: e.path,
      }),
    );
    if (body) {
      await this.sink.write(body);
    } else if (type === 'file') {
      let n = 0;
      for await (const c of bodyChunks(e.body)) {
        n += c.length;
        await this.sink.write(c);
      }
      if (n !== e.size) throw new DockyardError('E_INTERNAL', `${e.path}: body is ${n} bytes, header says ${e.size}`);
    }
    await this.sink.write(Buffer.alloc(pad4(size)));
  }
}

/** The record that ends a cpio archive. */
export function cpioTrailer(): Buffer {
  return header({ ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0, rmaj: 0, rmin: 0, name: 'TRAILER!!!' });
}
