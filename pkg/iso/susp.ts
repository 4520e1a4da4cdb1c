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

/** SUSP 5.5 "ER": the extension reference for RRIP, in the root's "." record (here via its Continuation Area). */
export function erEntry(): Buffer {
  const id = 'RRIP_1991A';
  const des = 'THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS';
  const src = 'PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION.';
  const head = Buffer.from([id.length, des.length, src.length, 1]); // LEN_ID, LEN_DES, LEN_SRC, EXT_VER
  return entry('ER', Buffer.concat([head, Buffer.from(id + des + src, 'latin1')]));
}

/** RRIP 4.1.1 "PX": st_mode, st_nlink, st_uid, st_gid, each both-endian (RRIP_1991A length 36). */
export function pxEntry(mode: number, nlink: number, uid: number, gid: number): Buffer {
  const body = Buffer.alloc(32);
  both32(body, 0, mode);
  both32(body, 8, nlink);
  both32(body, 16, uid);
  both32(body, 24, gid);
  return entry('PX', body);
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
 */
export function slEntries(target: string): Buffer[] {
  const comps: Buffer[] = [];
  const parts = target.split('/');
  if (target.startsWith('/')) comps.push(Buffer.from([8, 0]));
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p === '') continue;
    if (p === '.') comps.push(Buffer.from([2, 0]));
    else if (p === '..') comps.push(Buffer.from([4, 0]));
    else {
      const b = Buffer.from(p, 'utf8');
      const MAXC = 255 - 5 - 2;
      for (let j = 0; j < b.length; j += MAXC) {
        const piece = b.subarray(j, j + MAXC);
        comps.push(Buffer.concat([Buffer.from([j + MAXC < b.length ? 1 : 0, piece.length]), piece]));
      }
    }
  }
  const out: Buffer[][] = [[]];
  let used = 0;
  for (const c of comps) {
    if (used + c.length > 255 - 5) {
      out.push([]);
      used = 0;
    }
    out[out.length - 1].push(c);
    used += c.length;
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
