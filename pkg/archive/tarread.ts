/**
 * Streaming tar reader (POSIX.1-1988 ustar, POSIX.1-2001 pax extended
 * headers, GNU long names and base-256 numbers), pulling from a ByteReader.
 * Bodies are yielded as windows on the input: never gathered in memory.
 *
 * Header layout (POSIX.1-1988 §10.1.1, "ustar Interchange Format"):
 *   0 name[100]  100 mode[8]  108 uid[8]  116 gid[8]  124 size[12]
 *   136 mtime[12]  148 chksum[8]  156 typeflag  157 linkname[100]
 *   257 magic[6]  263 version[2]  265 uname[32]  297 gname[32]
 *   329 devmajor[8]  337 devminor[8]  345 prefix[155]
 */
import { DockyardError } from '../errors.js';
import { ByteReader } from './reader.js';

export type TarType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'other';

export interface TarHeader {
  /** As written in the archive (may have `./`, `/` or a trailing `/`). */
  name: string;
  type: TarType;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

export interface TarItem {
  header: TarHeader;
  /** The body (size bytes); abandoned bodies are skipped by the reader. */
  body: AsyncIterable<Buffer>;
}

function str(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const nul = s.indexOf(0);
  return (nul === -1 ? s : s.subarray(0, nul)).toString('utf8');
}

/** A numeric header field: octal digits, or GNU base-256 (high bit of the first byte set). NaN when neither. */
function num(b: Buffer, off: number, len: number): number {
  if (b[off] & 0x80) {
    let v = b[off] & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return b[off] & 0x40 ? -v : v;
  }
  const s = str(b, off, len).trim();
  if (s === '') return 0;
  return /^[0-7]+$/.test(s) ? parseInt(s, 8) : NaN;
}

/** A PAX decimal value (`uid`, `size`; `mtime` may have a fraction and a sign). NaN when it is not one. */
function paxNumber(v: string, fraction = false): number {
  const re = fraction ? /^-?\d+(\.\d*)?$/ : /^\d+$/;
  return re.test(v) ? Math.floor(Number(v)) : NaN;
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === num(h, 148, 8);
}

function typeOf(flag: string): TarType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
    case '':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'dir';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}

/** PAX records: "%d %s=%s\n" (POSIX.1-2001 pax "Extended Header" format). */
export function parsePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < buf.length) {
    const sp = buf.indexOf(0x20, off);
    if (sp === -1) break;
    const len = parseInt(buf.subarray(off, sp).toString('ascii'), 10);
    if (!(len > 0)) break;
    const rec = buf.subarray(sp + 1, off + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

async function readAll(r: ByteReader, n: number, what: string, label: string): Promise<Buffer> {
  if (!(n >= 0) || n > 1024 * 1024) throw new DockyardError('E_LAYER_FORMAT', `${label}: tar ${what} of ${n} bytes is too large`);
  const b = await r.read(n);
  if (!b) throw new DockyardError('E_LAYER_FORMAT', `${label}: truncated tar archive`);
  return Buffer.from(b);
}

const pad = (n: number) => (512 - (n % 512)) % 512;

/**
 * Iterate the entries of a tar stream. `label` names the archive in errors.
 * The caller must not keep a body past the next iteration.
 */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array | string>, label: string): AsyncGenerator<TarItem> {
  const r = new ByteReader(source);
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  try {
    for (;;) {
      const h = await r.read(512);
      if (!h) break; // tolerate archives without the two zero blocks
      if (h.every((x) => x === 0)) {
        // End of archive; consume the rest so digest checks see every byte.
        await r.drain();
        break;
      }
      if (!checksumOk(h)) throw new DockyardError('E_LAYER_FORMAT', `${label}: not a tar archive (bad header checksum)`);
      const typeflag = String.fromCharCode(h[156]);
      let size = num(h, 124, 12);
      if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
        const data = await readAll(r, size, 'extended header', label);
        await r.skip(pad(size));
        if (typeflag === 'x') pax = { ...pax, ...parsePax(data) };
        else if (typeflag === 'L') longName = str(data, 0, data.length);
        else if (typeflag === 'K') longLink = str(data, 0, data.length);
        continue; // 'g' global headers carry nothing we use
      }
      const magic = str(h, 257, 6);
      const prefix = magic.startsWith('ustar') ? str(h, 345, 155) : '';
      let name = prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100);
      if (longName !== undefined) name = longName;
      if (pax.path !== undefined) name = pax.path;
      let linkname = longLink ?? str(h, 157, 100);
      if (pax.linkpath !== undefined) linkname = pax.linkpath;
      if (pax.size !== undefined) size = paxNumber(pax.size);
      const header: TarHeader = {
        name,
        type: typeOf(typeflag),
        typeflag,
        mode: num(h, 100, 8),
        uid: pax.uid !== undefined ? paxNumber(pax.uid) : num(h, 108, 8),
        gid: pax.gid !== undefined ? paxNumber(pax.gid) : num(h, 116, 8),
        size: typeflag === '1' || typeflag === '2' || typeflag === '5' ? 0 : size,
        mtime: pax.mtime !== undefined ? paxNumber(pax.mtime, true) : num(h, 136, 12),
        linkname,
        devmajor: num(h, 329, 8),
        devminor: num(h, 337, 8),
      };
      for (const k of ['mode', 'uid', 'gid', 'size', 'mtime', 'devmajor', 'devminor'] as const) {
        if (!Number.isFinite(header[k]) || (k === 'size' && (size < 0 || !Number.isSafeInteger(size)))) {
          throw new DockyardError('E_LAYER_FORMAT', `${label}: entry "${name}" has an invalid ${k} field`);
        }
      }
      header.mode &= 0o7777;
      // A directory with a trailing slash and an old-style regular file flag.
      if (header.type === 'file' && name.endsWith('/')) header.type = 'dir';
      pax = {};
      longName = longLink = undefined;

      const dataLen = size; // hard links etc. may still carry bytes; skip them
      let consumed = 0;
      const body = header.type === 'file' ? windowed(r, header.size, (n) => (consumed += n), label, name) : empty();
      yield { header, body };
      if (consumed < dataLen) await r.skip(dataLen - consumed);
      await r.skip(pad(dataLen));
    }
  } catch (e) {
    if (e instanceof DockyardError) throw e;
    if (e instanceof RangeError) throw new DockyardError('E_LAYER_FORMAT', `${label}: truncated tar archive`, { cause: e });
    throw e;
  } finally {
    await r.close();
  }
}

/** A body's bytes; an archive ending inside it is a truncated layer, said as one (not a RangeError). */
async function* windowed(r: ByteReader, n: number, count: (n: number) => void, label: string, name: string): AsyncGenerator<Buffer> {
  try {
    for await (const c of r.window(n)) {
      count(c.length);
      yield c;
    }
  } catch (e) {
    if (e instanceof RangeError) throw new DockyardError('E_LAYER_FORMAT', `${label}: truncated tar archive (the body of "${name}" ends early)`, { cause: e });
    throw e;
  }
}

async function* empty(): AsyncGenerator<Buffer> {}
