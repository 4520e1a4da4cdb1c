/**
 * rpm's "header structure", used twice in a package: for the signature
 * header and for the main header ("RPM File Format", "The Header Structure";
 * LSB Core "Package File Format" §22.2.2; rpm 4.18 lib/header.c).
 *
 *   0  magic      8e ad e8 01 00 00 00 00   (3 bytes magic, version 1, 4 reserved)
 *   8  il         int32 BE: number of index entries
 *  12  dl         int32 BE: bytes of the data store
 *  16  index      il × 16 bytes: tag, type, offset (into the store), count, each int32 BE
 *  16+il*16  store  dl bytes: the values, big-endian, each aligned to its type's size
 *
 * Every header rpm writes into a package is one "immutable region"
 * (docs/manual/hregions.md): the first index entry is the region tag
 * (63 HEADERIMMUTABLE for the main header, 62 HEADERSIGNATURES for the
 * signature header), type BIN, count 16, pointing at a 16-byte "trailer" at
 * the very end of the store. The trailer is itself an index entry, big
 * endian: the same tag, type BIN, count 16, and offset = -(il × 16): minus the
 * size of the whole index, region entry included. rpm 4.18 refuses a package
 * header whose region does not span the whole header
 * (hdrblobVerifyRegion(), exact_size), so every entry lives inside it.
 *
 * Other checks rpm makes on reading (hdrblobVerifyInfo) and that encode()
 * keeps: entries after the region entry are sorted by tag (rpm binary
 * searches them), every tag ≥ 100, count ≥ 1, data offsets aligned to the
 * type (2 for INT16, 4 for INT32, 8 for INT64), values do not overlap, and
 * arrays hold at most 0xfffff items.
 */
import { DockyardError } from '../../errors.js';
import { HEADER_I18NTABLE, HEADER_IMMUTABLE, HEADER_SIGNATURES, RpmType } from './tags.js';

export type HeaderEntry =
  | { tag: number; type: typeof RpmType.CHAR | typeof RpmType.INT8 | typeof RpmType.INT16 | typeof RpmType.INT32; value: number[] }
  | { tag: number; type: typeof RpmType.INT64; value: bigint[] }
  | { tag: number; type: typeof RpmType.STRING; value: string }
  | { tag: number; type: typeof RpmType.STRING_ARRAY | typeof RpmType.I18NSTRING; value: string[] }
  | { tag: number; type: typeof RpmType.BIN; value: Buffer };

export type RegionTag = typeof HEADER_SIGNATURES | typeof HEADER_IMMUTABLE;

export const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
const INDEX_ENTRY = 16;
/** header.c HEADER_ARRAY_MAX: largest count of a non-BIN entry. */
const ARRAY_MAX = 0xfffff;
/** header.c HEADER_DATA_MAX: largest data store. */
const DATA_MAX = 0x0fffffff;
/** header.c HEADER_TAGS_MAX: most index entries. */
const TAGS_MAX = 0xffff;

const ALIGN: Record<number, number> = { [RpmType.INT16]: 2, [RpmType.INT32]: 4, [RpmType.INT64]: 8 };
const INT_BOUND: Record<number, number> = { [RpmType.CHAR]: 0xff, [RpmType.INT8]: 0xff, [RpmType.INT16]: 0xffff, [RpmType.INT32]: 0xffffffff };

const bug = (msg: string) => new DockyardError('E_INTERNAL', `rpm header: ${msg}`);

/** A header being assembled: one value per tag, typed by the helper used. */
export class HeaderBuilder {
  private readonly entries = new Map<number, HeaderEntry>();

  private put(e: HeaderEntry): this {
    if (this.entries.has(e.tag)) throw bug(`tag ${e.tag} set twice`);
    this.entries.set(e.tag, e);
    return this;
  }
  int16(tag: number, v: number | number[]): this {
    return this.put({ tag, type: RpmType.INT16, value: Array.isArray(v) ? v : [v] });
  }
  int32(tag: number, v: number | number[]): this {
    return this.put({ tag, type: RpmType.INT32, value: Array.isArray(v) ? v : [v] });
  }
  int64(tag: number, v: number | number[]): this {
    return this.put({ tag, type: RpmType.INT64, value: (Array.isArray(v) ? v : [v]).map((n) => BigInt(n)) });
  }
  string(tag: number, s: string): this {
    return this.put({ tag, type: RpmType.STRING, value: s });
  }
  stringArray(tag: number, v: string[]): this {
    return this.put({ tag, type: RpmType.STRING_ARRAY, value: v });
  }
  /** An I18NSTRING with the one locale "C" (needs HEADERI18NTABLE ["C"] beside it, as rpmbuild writes). */
  i18n(tag: number, s: string): this {
    return this.put({ tag, type: RpmType.I18NSTRING, value: [s] });
  }
  bin(tag: number, b: Buffer): this {
    return this.put({ tag, type: RpmType.BIN, value: b });
  }
  has(tag: number): boolean {
    return this.entries.has(tag);
  }
  list(): HeaderEntry[] {
    return [...this.entries.values()];
  }
  encode(region: RegionTag): Buffer {
    return encodeHeader(this.list(), region);
  }
}

/** NUL-terminated UTF-8; a NUL inside would cut the value short for every reader. */
function cstring(s: string, tag: number): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.includes(0)) throw new DockyardError('E_PACKAGE', `rpm header: the value of tag ${tag} contains a NUL byte: ${JSON.stringify(s.slice(0, 60))}`);
  return Buffer.concat([b, Buffer.alloc(1)]);
}

/** The bytes of one value and its count, before alignment. */
function valueBytes(e: HeaderEntry): { data: Buffer; count: number } {
  switch (e.type) {
    case RpmType.CHAR:
    case RpmType.INT8:
    case RpmType.INT16:
    case RpmType.INT32: {
      const size = e.type === RpmType.INT32 ? 4 : e.type === RpmType.INT16 ? 2 : 1;
      const max = INT_BOUND[e.type];
      const data = Buffer.alloc(e.value.length * size);
      e.value.forEach((v, i) => {
        if (!Number.isInteger(v) || v < 0 || v > max) throw bug(`tag ${e.tag}: ${v} does not fit type ${e.type}`);
        data.writeUIntBE(v, i * size, size);
      });
      return { data, count: e.value.length };
    }
    case RpmType.INT64: {
      const data = Buffer.alloc(e.value.length * 8);
      e.value.forEach((v, i) => {
        if (v < 0n || v > 0xffffffffffffffffn) throw bug(`tag ${e.tag}: ${v} does not fit 64 bits`);
        data.writeBigUInt64BE(v, i * 8);
      });
      return { data, count: e.value.length };
    }
    case RpmType.STRING:
      return { data: cstring(e.value, e.tag), count: 1 };
    case RpmType.STRING_ARRAY:
    case RpmType.I18NSTRING:
      return { data: Buffer.concat(e.value.map((s) => cstring(s, e.tag))), count: e.value.length };
    case RpmType.BIN:
      return { data: e.value, count: e.value.length };
  }
}

function indexEntry(tag: number, type: number, offset: number, count: number): Buffer {
  const b = Buffer.alloc(INDEX_ENTRY);
  b.writeUInt32BE(tag, 0);
  b.writeUInt32BE(type, 4);
  b.writeInt32BE(offset, 8);
  b.writeUInt32BE(count, 12);
  return b;
}

/**
 * One header structure as rpm writes it into a package: entries sorted by
 * tag, inside one region `region` that spans the whole header (the region
 * entry first in the index, its trailer last in the store).
 */
export function encodeHeader(entries: HeaderEntry[], region: RegionTag): Buffer {
  const sorted = [...entries].sort((a, b) => a.tag - b.tag);
  const il = sorted.length + 1;
  if (il > TAGS_MAX) throw bug(`${il} entries`);
  const index: Buffer[] = [];
  const store: Buffer[] = [];
  let dl = 0;
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i];
    if (!Number.isInteger(e.tag) || e.tag < HEADER_I18NTABLE) throw bug(`tag ${e.tag} is reserved`);
    if (i > 0 && sorted[i - 1].tag === e.tag) throw bug(`tag ${e.tag} twice`);
    const { data, count } = valueBytes(e);
    if (count < 1) throw bug(`tag ${e.tag} has no value (rpm refuses count 0)`);
    if (e.type !== RpmType.BIN && count > ARRAY_MAX) throw new DockyardError('E_PACKAGE', `rpm header: tag ${e.tag} has ${count} items; rpm reads at most ${ARRAY_MAX}`);
    const align = ALIGN[e.type] ?? 1;
    const pad = (align - (dl % align)) % align;
    if (pad) store.push(Buffer.alloc(pad));
    dl += pad;
    index.push(indexEntry(e.tag, e.type, dl, count));
    store.push(data);
    dl += data.length;
  }
  // The region: its index entry points at the trailer, which is the last 16 bytes of the store.
  const trailerAt = dl;
  store.push(indexEntry(region, RpmType.BIN, -(il * INDEX_ENTRY), INDEX_ENTRY));
  dl += INDEX_ENTRY;
  if (dl > DATA_MAX) throw new DockyardError('E_PACKAGE', `rpm header: ${dl} bytes of metadata; rpm reads at most ${DATA_MAX}`);
  const intro = Buffer.alloc(16);
  HEADER_MAGIC.copy(intro, 0);
  intro.writeUInt32BE(il, 8);
  intro.writeUInt32BE(dl, 12);
  return Buffer.concat([intro, indexEntry(region, RpmType.BIN, trailerAt, INDEX_ENTRY), ...index, ...store]);
}

export interface DecodedHeader {
  /** The region tag the header is wrapped in. */
  region: RegionTag;
  /** Every entry but the region's, in index order. */
  entries: HeaderEntry[];
  /** Bytes the header structure takes (16 + il × 16 + dl), without any padding after it. */
  byteLength: number;
}

/**
 * Reads one header structure at `offset`, with the checks rpm 4.18 makes on
 * a package's headers (lib/header.c hdrblobInit: magic, bounds, alignment,
 * region spanning the whole header). For tests and tools; dockyard never
 * reads packages otherwise.
 */
export function decodeHeader(buf: Buffer, offset = 0): DecodedHeader {
  const fail = (msg: string) => new DockyardError('E_PACKAGE', `rpm header at ${offset}: ${msg}`);
  if (buf.length < offset + 16 || !buf.subarray(offset, offset + 8).equals(HEADER_MAGIC)) throw fail('bad magic');
  const il = buf.readUInt32BE(offset + 8);
  const dl = buf.readUInt32BE(offset + 12);
  if (il < 1 || il > TAGS_MAX || dl > DATA_MAX) throw fail(`implausible il ${il} dl ${dl}`);
  const indexAt = offset + 16;
  const storeAt = indexAt + il * INDEX_ENTRY;
  if (buf.length < storeAt + dl) throw fail(`truncated: needs ${storeAt + dl - offset} bytes`);
  const store = buf.subarray(storeAt, storeAt + dl);
  const ent = (i: number) => ({
    tag: buf.readUInt32BE(indexAt + i * INDEX_ENTRY),
    type: buf.readUInt32BE(indexAt + i * INDEX_ENTRY + 4),
    offset: buf.readInt32BE(indexAt + i * INDEX_ENTRY + 8),
    count: buf.readUInt32BE(indexAt + i * INDEX_ENTRY + 12),
  });

  const r = ent(0);
  if (r.tag !== HEADER_SIGNATURES && r.tag !== HEADER_IMMUTABLE) throw fail(`first entry is tag ${r.tag}, not a region`);
  if (r.type !== RpmType.BIN || r.count !== INDEX_ENTRY) throw fail('bad region entry');
  if (r.offset < 0 || r.offset + INDEX_ENTRY !== dl) throw fail('the region does not span the whole store');
  const t = { tag: store.readUInt32BE(r.offset), type: store.readUInt32BE(r.offset + 4), offset: store.readInt32BE(r.offset + 8), count: store.readUInt32BE(r.offset + 12) };
  if (t.tag !== r.tag || t.type !== RpmType.BIN || t.count !== INDEX_ENTRY) throw fail('bad region trailer');
  if (-t.offset !== il * INDEX_ENTRY) throw fail(`region trailer offset ${t.offset}, expected ${-il * INDEX_ENTRY}`);

  const entries: HeaderEntry[] = [];
  let end = 0;
  let prevTag = -1;
  for (let i = 1; i < il; i++) {
    const e = ent(i);
    if (e.tag < HEADER_I18NTABLE) throw fail(`entry ${i}: tag ${e.tag}`);
    if (e.tag <= prevTag) throw fail(`entry ${i}: tags not sorted`);
    prevTag = e.tag;
    if (e.count < 1) throw fail(`entry ${i} (tag ${e.tag}): count 0`);
    if (e.offset < end) throw fail(`entry ${i} (tag ${e.tag}): overlaps the previous value`);
    const align = ALIGN[e.type] ?? 1;
    if (e.offset % align) throw fail(`entry ${i} (tag ${e.tag}): misaligned`);
    const limit = r.offset; // values may not reach into the trailer
    const { entry, length } = readValue(store, e, limit, fail);
    end = e.offset + length;
    entries.push(entry);
  }
  return { region: r.tag as RegionTag, entries, byteLength: 16 + il * INDEX_ENTRY + dl };
}

function readValue(store: Buffer, e: { tag: number; type: number; offset: number; count: number }, limit: number, fail: (m: string) => Error): { entry: HeaderEntry; length: number } {
  const { tag, type, offset, count } = e;
  const need = (n: number) => {
    if (offset + n > limit) throw fail(`tag ${tag}: value runs past the store`);
  };
  const strings = (n: number): { list: string[]; length: number } => {
    const list: string[] = [];
    let p = offset;
    for (let k = 0; k < n; k++) {
      const z = store.indexOf(0, p);
      if (z < 0 || z >= limit) throw fail(`tag ${tag}: unterminated string`);
      list.push(store.toString('utf8', p, z));
      p = z + 1;
    }
    return { list, length: p - offset };
  };
  switch (type) {
    case RpmType.CHAR:
    case RpmType.INT8:
    case RpmType.INT16:
    case RpmType.INT32: {
      const size = type === RpmType.INT32 ? 4 : type === RpmType.INT16 ? 2 : 1;
      need(count * size);
      const value = Array.from({ length: count }, (_, k) => store.readUIntBE(offset + k * size, size));
      return { entry: { tag, type, value }, length: count * size };
    }
    case RpmType.INT64: {
      need(count * 8);
      const value = Array.from({ length: count }, (_, k) => store.readBigUInt64BE(offset + k * 8));
      return { entry: { tag, type, value }, length: count * 8 };
    }
    case RpmType.STRING: {
      if (count !== 1) throw fail(`tag ${tag}: STRING with count ${count}`);
      const { list, length } = strings(1);
      return { entry: { tag, type, value: list[0] }, length };
    }
    case RpmType.STRING_ARRAY:
    case RpmType.I18NSTRING: {
      const { list, length } = strings(count);
      return { entry: { tag, type, value: list }, length };
    }
    case RpmType.BIN: {
      need(count);
      return { entry: { tag, type, value: Buffer.from(store.subarray(offset, offset + count)) }, length: count };
    }
    default:
      throw fail(`tag ${tag}: unknown type ${type}`);
  }
}

/** The value of `tag` in decoded entries (undefined if absent). */
export function headerValue(h: DecodedHeader, tag: number): HeaderEntry['value'] | undefined {
  return h.entries.find((e) => e.tag === tag)?.value;
}
