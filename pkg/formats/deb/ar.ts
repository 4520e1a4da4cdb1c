/**
 * The ar archive a .deb is (deb(5): "the file is an ar archive with a magic
 * value of !<arch>"), written as dpkg-deb writes it: member names without
 * GNU's trailing slash, mtime SOURCE_DATE_EPOCH, uid/gid 0, mode 100644.
 *
 * Global header: "!<arch>\n" (8 bytes). Each member (ar(5), 60-byte header):
 *   0 name[16]  16 mtime[12]  28 uid[6]  34 gid[6]  40 mode[8]  48 size[10]
 *   58 fmag "`\n"
 * then the body, padded with "\n" to an even length.
 */
import { DockyardError } from '../../errors.js';

export const AR_MAGIC = Buffer.from('!<arch>\n', 'ascii');

function field(s: string, len: number, what: string): string {
  if (s.length > len) throw new DockyardError('E_INTERNAL', `ar: ${what} "${s}" does not fit ${len} bytes`);
  return s.padEnd(len, ' ');
}

export function arMemberHeader(name: string, size: number, mtime: number): Buffer {
  const h =
    field(name, 16, 'name') +
    field(String(mtime), 12, 'mtime') +
    field('0', 6, 'uid') +
    field('0', 6, 'gid') +
    field('100644', 8, 'mode') +
    field(String(size), 10, 'size') +
    '`\n';
  return Buffer.from(h, 'ascii');
}

/** Padding after a member body of `size` bytes. */
export function arPad(size: number): Buffer {
  return size % 2 === 1 ? Buffer.from('\n') : Buffer.alloc(0);
}

/** Decodes member headers (for tests): name, size, offset of the body. */
export function arMembers(b: Buffer): { name: string; size: number; offset: number; mtime: number }[] {
  if (!b.subarray(0, 8).equals(AR_MAGIC)) throw new Error('not an ar archive');
  const out: { name: string; size: number; offset: number; mtime: number }[] = [];
  let off = 8;
  while (off + 60 <= b.length) {
    const h = b.subarray(off, off + 60).toString('ascii');
    const size = Number(h.slice(48, 58).trim());
    out.push({ name: h.slice(0, 16).trim(), mtime: Number(h.slice(16, 28).trim()), size, offset: off + 60 });
    off += 60 + size + (size % 2);
  }
  return out;
}
