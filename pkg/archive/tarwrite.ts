/**
 * Deterministic tar encoding (POSIX.1-1988 ustar headers, POSIX.1-2001 pax
 * extended headers only when a value does not fit). User/group names only
 * where an entry carries them (packages), no atime/ctime, names and modes exactly as given: same entries, same bytes.
 *
 * Header layout (POSIX.1-1988 §10.1.1):
 *   0 name[100]  100 mode[8]  108 uid[8]  116 gid[8]  124 size[12]
 *   136 mtime[12]  148 chksum[8]  156 typeflag  157 linkname[100]
 *   257 magic "ustar\0"  263 version "00"  265 uname[32]  297 gname[32]
 *   329 devmajor[8]  337 devminor[8]  345 prefix[155]  500 pad[12]
 */
import type { Entry, EntryType } from '../rootfs/entry.js';
import { bodyChunks, type ByteSink } from './sink.js';
import { DockyardError } from '../errors.js';

const FLAG: Record<EntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

export const BLOCK = 512;
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

function fitsOctal(v: number, len: number): boolean {
  return Number.isInteger(v) && v >= 0 && v < 8 ** (len - 1);
}

function putOctal(h: Buffer, off: number, len: number, v: number): void {
  h.write(v.toString(8).padStart(len - 1, '0') + '\0', off, len, 'ascii');
}

function putStr(h: Buffer, off: number, len: number, s: string): void {
  Buffer.from(s, 'utf8').copy(h, off, 0, len);
}

function checksum(h: Buffer): void {
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
}

function rawHeader(f: {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
  uname?: string;
  gname?: string;
}): Buffer {
  const h = Buffer.alloc(BLOCK);
  putStr(h, 0, 100, f.name);
  putOctal(h, 100, 8, f.mode);
  putOctal(h, 108, 8, f.uid);
  putOctal(h, 116, 8, f.gid);
  putOctal(h, 124, 12, f.size);
  putOctal(h, 136, 12, f.mtime);
  h.write(f.flag, 156, 1, 'ascii');
  putStr(h, 157, 100, f.linkname);
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  if (f.uname) putStr(h, 265, 31, f.uname);
  if (f.gname) putStr(h, 297, 31, f.gname);
  putOctal(h, 329, 8, f.devmajor);
  putOctal(h, 337, 8, f.devminor);
  putStr(h, 345, 155, f.prefix);
  checksum(h);
  return h;
}

/** Split a long name into ustar prefix/name at a `/`, if possible. */
function splitName(name: string): { prefix: string; name: string } | undefined {
  const b = Buffer.byteLength(name);
  if (b <= 100) return { prefix: '', name };
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const p = name.slice(0, i);
    const n = name.slice(i + 1);
    if (Buffer.byteLength(p) <= 155 && Buffer.byteLength(n) <= 100 && n.length > 0) return { prefix: p, name: n };
  }
  return undefined;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  let total = len + String(len).length;
  if (String(total).length !== String(len).length) total = len + String(total).length;
  return `${total}${body}`;
}

function padTo(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/** The tar bytes preceding an entry's body (pax header if needed, ustar header). */
export function tarHeader(e: Entry, epoch: number): Buffer {
  // Inputs are range-checked where they enter; a value out of range here is a bug, never wrapped.
  for (const [k, v] of [['uid', e.uid], ['gid', e.gid], ['devmajor', e.devmajor ?? 0], ['devminor', e.devminor ?? 0]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DockyardError('E_INTERNAL', `tar: ${e.path}: ${k} ${v} is out of range`);
  }
  let name = e.type === 'dir' ? `${e.path}/` : e.path;
  const mtime = Math.max(0, Math.floor(e.mtime ?? epoch));
  const size = e.type === 'file' ? e.size : 0;
  const linkname = e.linkname ?? '';
  const records: string[] = [];
  let split = splitName(name);
  if (!split) {
    records.push(paxRecord('path', name));
    split = { prefix: '', name: name.slice(0, 99) };
  }
  let link = linkname;
  if (Buffer.byteLength(linkname) > 100) {
    records.push(paxRecord('linkpath', linkname));
    link = linkname.slice(0, 99);
  }
  const big = (v: number, len: number, key: string): number => {
    if (fitsOctal(v, len)) return v;
    records.push(paxRecord(key, String(v)));
    return 0;
  };
  const fields = {
    ...split,
    mode: e.mode & 0o7777,
    uid: big(e.uid, 8, 'uid'),
    gid: big(e.gid, 8, 'gid'),
    size: big(size, 12, 'size'),
    mtime: big(mtime, 12, 'mtime'),
    flag: FLAG[e.type],
    linkname: link,
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
    uname: e.uname,
    gname: e.gname,
  };
  const ustar = rawHeader(fields);
  if (records.length === 0) return ustar;
  const data = Buffer.from(records.join(''), 'utf8');
  const base = e.path.split('/').pop() ?? 'x';
  const paxName = `PaxHeaders/${base}`.slice(0, 100);
  const ph = rawHeader({ name: paxName, prefix: '', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime, flag: 'x', linkname: '', devmajor: 0, devminor: 0 });
  return Buffer.concat([ph, data, Buffer.alloc(padTo(data.length)), ustar]);
}

/** Write one entry (header, body, padding) as tar into `sink`. */
export async function writeTarEntry(sink: ByteSink, e: Entry, epoch: number): Promise<void> {
  await sink.write(tarHeader(e, epoch));
  if (e.type !== 'file') return;
  let n = 0;
  for await (const c of bodyChunks(e.body)) {
    n += c.length;
    if (n > e.size) throw new DockyardError('E_INTERNAL', `${e.path}: body longer than its size ${e.size}`);
    await sink.write(c);
  }
  if (n !== e.size) throw new DockyardError('E_INTERNAL', `${e.path}: body is ${n} bytes, header says ${e.size}`);
  await sink.write(Buffer.alloc(padTo(e.size)));
}
