/**
 * System Use Sharing Protocol (SUSP 1.12, IEEE P1281) and Rock Ridge
 * Interchange Protocol (RRIP 1.12 / "RRIP_1991A" entries, IEEE P1282): the
 * System Use entries that carry POSIX names, modes, symlinks and times in
 * each directory record, and the packing of entries that do not fit into
 * the record into Continuation Areas (SUSP 5.1).
 */
import { both32, dirDate, SECTOR } from './encode.js';

/** SUSP 4.1: every entry starts with signature (2), length (1), version (1). */
function entry(sig: string, body: Buffer): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.write(sig, 0, 'latin1');
  b[2] = b.length;
  b[3] = 1;
  body.copy(b, 4);
  return b;
}

/** SUSP 5.3 "SP": in the first record of the root directory only. Check bytes BE EF, LEN_SKP 0. */
export function spEntry(): Buffer {
  return entry('SP', Buffer.from([0xbe, 0xef, 0]));
}

export const CE_LEN = 28;

/** SUSP 5.1 "CE": block (both-endian), offset, length of the Continuation Area. */
export function ceEntry(block: number, offset: number, length: number): Buffer {
  const body = Buffer.alloc(24);
  both32(body, 0, block);
  both32(body, 8, offset);
  both32(body, 16, length);
  return entry('CE', body);
}

/**
 * SUSP 5.5 "ER": the extension reference for RRIP, in the root's "." record
 * (here via its Continuation Area). RRIP 1.09 ("RRIP_1991A", PX of length
 * 36) by default; with `inodes`, RRIP 1.12 (PX of length 44 carrying a file
 * serial number), under the identifier libisofs writes for it.
 */
export function erEntry(o: { inodes?: boolean } = {}): Buffer {
  const [id, des, src] = o.inodes
    ? ['IEEE_1282', 'THE IEEE 1282 PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS.', 'PLEASE CONTACT THE IEEE STANDARDS DEPARTMENT, PISCATAWAY, NJ, USA FOR THE 1282 SPECIFICATION.']
    : [
        'RRIP_1991A',
        'THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS',
        'PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.',
      ];
  const head = Buffer.from([id.length, des.length, src.length, 1]); // LEN_ID, LEN_DES, LEN_SRC, EXT_VER
  return entry('ER', Buffer.concat([head, Buffer.from(id + des + src, 'latin1')]));
}

/**
 * RRIP 4.1.1 "PX": st_mode, st_nlink, st_uid, st_gid, each both-endian
 * (length 36, RRIP 1.09); with `serial`, also the file serial number
 * (st_ino, length 44, RRIP 1.12), equal for every name of one file.
 */
export function pxEntry(mode: number, nlink: number, uid: number, gid: number, serial?: number): Buffer {
  const body = Buffer.alloc(serial === undefined ? 32 : 40);
  both32(body, 0, mode);
  both32(body, 8, nlink);
  both32(body, 16, uid);
  both32(body, 24, gid);
  if (serial !== undefined) both32(body, 32, serial);
  return entry('PX', body);
}

/** The largest major and minor a Linux dev_t holds (12 and 20 bits: the kernel's MKDEV). */
export const MAX_MAJOR = 0xfff;
export const MAX_MINOR = 0xfffff;

/**
 * RRIP 4.1.2 "PN": a device's number as "dev_t high" and "dev_t low", each
 * both-endian (length 20). Readers differ on what the halves mean: Linux
 * (fs/isofs/rock.c) takes high as the major and low as the minor, except
 * that high 0 with bits above the low 8 in low means low is the old
 * `major << 8 | minor`; libisofs (xorriso) and libarchive (bsdtar) join the
 * halves into one 64-bit glibc dev_t. For major < 4096 and minor < 256 (every
 * usual device node) both readings agree on high 0, low `major << 8 | minor`,
 * which is what is written. Beyond that no encoding satisfies both, and the
 * image is a root filesystem for Linux: high = major, low = minor, as the
 * kernel reads it. Major 0 with a minor over 255 the kernel cannot read at
 * all; the caller refuses it.
 */
export function pnEntry(major: number, minor: number): Buffer {
  const body = Buffer.alloc(16);
  const old = major <= 0xfff && minor <= 0xff;
  both32(body, 0, old ? 0 : major);
  both32(body, 8, old ? (major << 8) | minor : minor);
  return entry('PN', body);
}

/** RRIP 4.1.6 "TF": flags 0x0E = modify, access, attributes; 7-byte (9.1.5) times. */
export function tfEntry(epoch: number): Buffer {
  const t = dirDate(epoch);
  return entry('TF', Buffer.concat([Buffer.from([0x0e]), t, t, t]));
}

/** RRIP 4.1.4 "NM": the POSIX name, split over several entries (CONTINUE flag) if long. */
export function nmEntries(name: string): Buffer[] {
  const bytes = Buffer.from(name, 'utf8');
  const out: Buffer[] = [];
  const MAX = 255 - 5;
  for (let i = 0; i < bytes.length || out.length === 0; i += MAX) {
    const part = bytes.subarray(i, i + MAX);
    const more = i + MAX < bytes.length;
    out.push(entry('NM', Buffer.concat([Buffer.from([more ? 1 : 0]), part])));
  }
  return out;
}

/**
 * RRIP 4.1.3 "SL": the target as Component Records (flags: 1 continue,
 * 2 current, 4 parent, 8 root), packed into entries of at most 255 bytes
 * with the entry's CONTINUE flag on all but the last.
 *
 * Every entry but the last ends inside a component (its last record has
 * the component CONTINUE flag: a piece of a name, or an empty record). Linux
 * (fs/isofs/rock.c) and libisofs read a clean break between entries as a
 * "/", but libarchive (bsdtar) joins the two names without one; a break
 * inside a component reads the same to all of them.
 */
export function slEntries(target: string): Buffer[] {
  const comps: { flags: number; text: Buffer }[] = [];
  const none = Buffer.alloc(0);
  if (target.startsWith('/')) comps.push({ flags: 8, text: none });
  for (const p of target.split('/')) {
    if (p === '') continue;
    if (p === '.') comps.push({ flags: 2, text: none });
    else if (p === '..') comps.push({ flags: 4, text: none });
    else comps.push({ flags: 0, text: Buffer.from(p, 'utf8') });
  }
  const ROOM = 255 - 5; // the entry's header and its flags byte
  const out: Buffer[][] = [[]];
  let used = 0;
  const put = (flags: number, text: Buffer) => {
    out[out.length - 1].push(Buffer.from([flags, text.length]), text);
    used += 2 + text.length;
  };
  for (const c of comps) {
    let text = c.text;
    for (;;) {
      // Two bytes are always kept for an empty continued record to end the entry with.
      const room = ROOM - used - 2;
      if (2 + text.length <= room) {
        put(c.flags, text);
        break;
      }
      if (c.flags === 0 && room >= 3) {
        // A piece of the name, continued in the next entry.
        const piece = text.subarray(0, room - 2);
        put(1, piece);
        text = text.subarray(piece.length);
      } else put(1, none);
      out.push([]);
      used = 0;
    }
  }
  return out.map((cs, i) => entry('SL', Buffer.concat([Buffer.from([i < out.length - 1 ? 1 : 0]), ...cs])));
}

/** Where a record's overflow goes: chunks of one shared Continuation Area region. */
export interface ContChunk {
  entries: Buffer[];
  /** Index of the chunk its CE points to, if any. */
  next?: number;
  /** Filled by layout: sector within the region and byte offset in it. */
  sector?: number;
  offset?: number;
  length: number;
}

export class ContinuationRegion {
  readonly chunks: ContChunk[] = [];
  /** Absolute LBA of the region's first sector, once laid out. */
  lba = 0;
  sectorCount = 0;

  /**
   * Place entries that did not fit a record: in chunks of at most one
   * sector (SUSP: a Continuation Area never spans a logical block), chained
   * by CE entries. Returns the index of the first chunk.
   */
  add(entries: Buffer[]): number {
    const first = this.chunks.length;
    let cur: ContChunk = { entries: [], length: 0 };
    this.chunks.push(cur);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      const last = i === entries.length - 1;
      const need = e.length + (last ? 0 : CE_LEN);
      if (cur.length + need > SECTOR && cur.entries.length > 0) {
        const next: ContChunk = { entries: [], length: 0 };
        cur.next = this.chunks.length;
        cur.length += CE_LEN;
        this.chunks.push(next);
        cur = next;
      }
      cur.entries.push(e);
      cur.length += e.length;
    }
    return first;
  }

  /** Assign sectors/offsets: chunks packed in order, never crossing a sector. */
  layout(): number {
    let sector = 0;
    let off = 0;
    for (const c of this.chunks) {
      if (off + c.length > SECTOR) {
        sector++;
        off = 0;
      }
      c.sector = sector;
      c.offset = off;
      off += c.length;
    }
    this.sectorCount = this.chunks.length ? sector + 1 : 0;
    return this.sectorCount;
  }

  ceFor(index: number): Buffer {
    const c = this.chunks[index];
    return ceEntry(this.lba + c.sector!, c.offset!, c.length);
  }

  encode(): Buffer {
    const b = Buffer.alloc(this.sectorCount * SECTOR);
    for (const c of this.chunks) {
      let p = c.sector! * SECTOR + c.offset!;
      for (const e of c.entries) {
        e.copy(b, p);
        p += e.length;
      }
      if (c.next !== undefined) this.ceFor(c.next).copy(b, p);
    }
    return b;
  }
}

/**
 * The System Use field of one record: `room` bytes available. Entries that
 * fit stay; if not all do, those after the last that fits with a CE go to
 * the continuation region. `fixedFirst` entries (SP) must stay first.
 */
export interface PackedSU {
  inline: Buffer[];
  cont?: number;
  length: number;
}

export function packSystemUse(entries: Buffer[], room: number, region: ContinuationRegion): PackedSU {
  const total = entries.reduce((n, e) => n + e.length, 0);
  if (total <= room) return { inline: entries, length: total };
  const inline: Buffer[] = [];
  let used = 0;
  let i = 0;
  for (; i < entries.length; i++) {
    if (used + entries[i].length + CE_LEN > room) break;
    inline.push(entries[i]);
    used += entries[i].length;
  }
  const cont = region.add(entries.slice(i));
  return { inline, cont, length: used + CE_LEN };
}
