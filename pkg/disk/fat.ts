/**
 * FAT12/16/32 file systems written in one sequential pass (Microsoft
 * "FAT: General Overview of On-Disk Format", version 1.03, cited as [FAT]).
 *
 * Layout, in the order it is written:
 *   reserved region  boot sector + BPB ([FAT] 3.1–3.3); FAT32 also FSInfo
 *                    (sector 1, [FAT] 5) and their backups (sectors 6 and 7)
 *   FAT region       two copies of the allocation table ([FAT] 4)
 *   root directory   FAT12/16 only: a fixed region of RootEntCnt entries
 *   data region      clusters 2…: every directory, then every file, each
 *                    contiguous, in the sorted tree order; then free clusters
 *
 * The type follows the cluster count as [FAT] 3.5 defines it (FAT12 < 4085 ≤
 * FAT16 < 65525 ≤ FAT32); the cluster size comes from the size the way
 * [FAT] 3.5's tables (and mkfs.fat) pick it: FAT12 below 4.1 MB, FAT16 below
 * 512 MiB, FAT32 from there. Counts within 16 of a boundary are avoided.
 *
 * Names: a name that is a valid upper-case 8.3 name is stored as is; any
 * other gets VFAT long-name entries ([FAT] 7) and a generated 8.3 alias
 * (basis name + numeric tail, [FAT] 7.4). Entries are sorted by name;
 * every timestamp is the build epoch; the volume id is the caller's. File
 * bodies are streamed by their write(): nothing is held in memory but the
 * directories and (for FAT12/16) the table.
 */
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';
import { writeExactly, writeZeros } from './io.js';

export interface FatFile {
  /** `EFI/BOOT/BOOTX64.EFI`: no leading `/`; parent directories are implied. */
  path: string;
  size: number;
  /** Write exactly `size` bytes. */
  write(sink: ByteSink): Promise<void>;
}

export interface FatOptions {
  files: FatFile[];
  /** Volume label (up to 11 characters, upper case); '' for none. */
  label: string;
  volumeId: number;
  /** Seconds since 1970: every timestamp (clamped to FAT's 1980–2107). */
  epoch: number;
  /** Smallest size in bytes; the file system is exactly this big if its contents fit. */
  minSize?: number;
  /** BPB_HiddSec: sectors before the partition on its disk (default 0). */
  hiddenSectors?: number;
}

export interface FatPlan {
  /** Bytes. */
  size: number;
  type: 12 | 16 | 32;
  clusterSize: number;
  /**
   * Byte offset of a file's data in the file system (its clusters are
   * contiguous), or undefined for an empty file: what a loader that reads
   * raw sectors needs (raw-bios).
   */
  fileOffset(path: string): number | undefined;
  write(sink: ByteSink): Promise<void>;
}

const SECTOR = 512;
const DIRENT = 32;
const ATTR_VOLUME_ID = 0x08;
const ATTR_DIRECTORY = 0x10;
const ATTR_ARCHIVE = 0x20;
const ATTR_LONG_NAME = 0x0f;

type FatType = 12 | 16 | 32;

// ---------------------------------------------------------------- names

/** Characters allowed in a short name besides A–Z and 0–9 ([FAT] 6.1). */
const SHORT_CHAR = /^[A-Z0-9!#$%&'()\-@^_`{}~]$/;
/** Characters a long name may not hold ([FAT] 7: those of 8.3 plus + , ; = [ ] and space/period are allowed). */
const LONG_BAD = /[\x00-\x1f"*/:<>?\\|\x7f]/;

/** The 11-byte name if `name` already is a valid upper-case 8.3 name. */
function exactShortName(name: string): string | undefined {
  const dot = name.indexOf('.');
  if (dot !== name.lastIndexOf('.')) return undefined;
  const base = dot < 0 ? name : name.slice(0, dot);
  const ext = dot < 0 ? '' : name.slice(dot + 1);
  if (base.length < 1 || base.length > 8 || ext.length > 3 || (dot >= 0 && ext.length === 0)) return undefined;
  for (const c of base + ext) if (!SHORT_CHAR.test(c)) return undefined;
  return base.padEnd(8, ' ') + ext.padEnd(3, ' ');
}

/** [FAT] 7.4 basis name: upper case, invalid characters as `_`, spaces and leading periods dropped. */
function basisName(name: string): { base: string; ext: string; lossy: boolean } {
  let lossy = false;
  let s = name.toUpperCase();
  const stripped = s.replace(/ /g, '').replace(/^\.+/, '');
  if (stripped !== s) lossy = true;
  s = stripped;
  const dot = s.lastIndexOf('.');
  let base = dot < 0 ? s : s.slice(0, dot);
  let ext = dot < 0 ? '' : s.slice(dot + 1);
  if (base.includes('.')) {
    lossy = true;
    base = base.replace(/\./g, '');
  }
  const map = (t: string) =>
    [...t]
      .map((c) => {
        if (SHORT_CHAR.test(c)) return c;
        lossy = true;
        return '_';
      })
      .join('');
  base = map(base);
  ext = map(ext);
  if (base.length > 8 || ext.length > 3) lossy = true;
  base = base.slice(0, 8);
  ext = ext.slice(0, 3);
  if (base === '') {
    base = '_';
    lossy = true;
  }
  return { base, ext, lossy };
}

/** [FAT] 7.2 checksum of an 11-byte short name, stored in each long-name entry. */
export function shortNameChecksum(short: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short[i]) & 0xff;
  return sum;
}

// ---------------------------------------------------------------- time

/** [FAT] 6.3 date and time of `epoch` (UTC), clamped to 1980-01-01 … 2107-12-31. */
export function fatTimestamp(epoch: number): { date: number; time: number; tenth: number } {
  const d = new Date(epoch * 1000);
  const y = d.getUTCFullYear();
  if (!Number.isFinite(y) || y < 1980) return { date: (0 << 9) | (1 << 5) | 1, time: 0, tenth: 0 };
  if (y > 2107) return { date: (127 << 9) | (12 << 5) | 31, time: (23 << 11) | (59 << 5) | 29, tenth: 100 };
  const s = d.getUTCSeconds();
  return {
    date: ((y - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | (s >> 1),
    tenth: (s & 1) * 100,
  };
}

// ---------------------------------------------------------------- tree

interface FileNode {
  kind: 'file';
  name: string;
  file: FatFile;
  short?: Buffer;
  cluster: number;
  clusters: number;
}
interface DirNode {
  kind: 'dir';
  name: string;
  children: Map<string, Node>; // by upper-cased name: FAT names are case-insensitive
  short?: Buffer;
  parent?: DirNode;
  cluster: number;
  clusters: number;
  /** 32-byte slots it holds (dot entries, long-name entries, short entries, label). */
  slots: number;
}
type Node = FileNode | DirNode;

function lfnSlots(n: Node): number {
  return n.short && n.short.toString('latin1') === exactShortName(n.name) ? 0 : Math.ceil(n.name.length / 13);
}

function sortedChildren(d: DirNode): Node[] {
  return [...d.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function buildTree(files: FatFile[], label: string): { root: DirNode; dirs: DirNode[]; fileNodes: FileNode[] } {
  const root: DirNode = { kind: 'dir', name: '', children: new Map(), cluster: 0, clusters: 0, slots: 0 };
  for (const f of files) {
    const parts = f.path.split('/');
    if (f.path === '' || f.path.startsWith('/') || parts.some((p) => p === '' || p === '.' || p === '..'))
      throw new DockyardError('E_INTERNAL', `FAT: bad path "${f.path}"`);
    if (!Number.isSafeInteger(f.size) || f.size < 0 || f.size > 0xffffffff)
      throw new DockyardError('E_OUTPUT', `FAT: ${f.path} is ${f.size} bytes; FAT files hold at most 4 GiB - 1`);
    let d = root;
    parts.forEach((p, i) => {
      if (p.length > 255 || LONG_BAD.test(p) || /[. ]$/.test(p))
        throw new DockyardError('E_OUTPUT', `FAT: "${f.path}": "${p}" is not a valid FAT long name`);
      const key = p.toUpperCase();
      const have = d.children.get(key);
      const last = i === parts.length - 1;
      if (have) {
        if (last || have.kind === 'file' || have.name !== p)
          throw new DockyardError('E_OUTPUT', `FAT: "${f.path}" collides with another file (FAT names ignore case)`);
        d = have;
      } else if (last) {
        d.children.set(key, { kind: 'file', name: p, file: f, cluster: 0, clusters: 0 });
      } else {
        const nd: DirNode = { kind: 'dir', name: p, children: new Map(), parent: d, cluster: 0, clusters: 0, slots: 0 };
        d.children.set(key, nd);
        d = nd;
      }
    });
  }
  const dirs: DirNode[] = [];
  const fileNodes: FileNode[] = [];
  const walk = (d: DirNode) => {
    dirs.push(d);
    const kids = sortedChildren(d);
    if (kids.length > 65534) throw new DockyardError('E_OUTPUT', `FAT: directory "${d.name}" has too many entries`);
    assignShortNames(kids);
    d.slots = (d === root ? (label ? 1 : 0) : 2) + kids.reduce((n, k) => n + lfnSlots(k) + 1, 0);
    if (d.slots > 65536) throw new DockyardError('E_OUTPUT', `FAT: directory "${d.name}" has too many entries`);
    for (const k of kids) {
      if (k.kind === 'file') fileNodes.push(k);
    }
    for (const k of kids) if (k.kind === 'dir') walk(k);
  };
  walk(root);
  return { root, dirs, fileNodes };
}

/** 8.3 names for one directory's children: exact names first, then aliases with numeric tails. */
function assignShortNames(kids: Node[]): void {
  const used = new Set<string>();
  for (const k of kids) {
    const ex = exactShortName(k.name);
    if (ex) {
      k.short = Buffer.from(ex, 'latin1');
      used.add(ex);
    }
  }
  for (const k of kids) {
    if (k.short) continue;
    const { base, ext, lossy } = basisName(k.name);
    const plain = base.padEnd(8, ' ') + ext.padEnd(3, ' ');
    if (!lossy && !used.has(plain)) {
      k.short = Buffer.from(plain, 'latin1');
      used.add(plain);
      continue;
    }
    for (let n = 1; ; n++) {
      const tail = `~${n}`;
      const s = (base.slice(0, 8 - tail.length) + tail).padEnd(8, ' ') + ext.padEnd(3, ' ');
      if (!used.has(s)) {
        k.short = Buffer.from(s, 'latin1');
        used.add(s);
        break;
      }
    }
  }
}

// ---------------------------------------------------------------- geometry

interface Geometry {
  type: FatType;
  totalSectors: number;
  spc: number;
  reserved: number;
  fatSectors: number;
  rootEntries: number;
  rootSectors: number;
  dataStart: number;
  clusters: number;
}

const MARGIN = 16;
const typeOf = (clusters: number): FatType => (clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32);
const nearBoundary = (c: number) => Math.abs(c - 4085) <= MARGIN || Math.abs(c - 65525) <= MARGIN;
const fatBytes = (entries: number, t: FatType) => (t === 12 ? Math.ceil((entries * 3) / 2) : entries * (t / 8));

function geometry(totalSectors: number, type: FatType, spc: number, rootEntries: number): Geometry {
  const reserved = type === 32 ? 32 : 1;
  const rootSectors = type === 32 ? 0 : Math.ceil((rootEntries * DIRENT) / SECTOR);
  let fatSectors = 1;
  let clusters = 0;
  for (;;) {
    clusters = Math.floor((totalSectors - reserved - 2 * fatSectors - rootSectors) / spc);
    const need = Math.ceil(fatBytes(Math.max(clusters, 0) + 2, type) / SECTOR);
    if (need <= fatSectors) break;
    fatSectors = need;
  }
  return { type, totalSectors, spc, reserved, fatSectors, rootEntries: type === 32 ? 0 : rootEntries, rootSectors, dataStart: reserved + 2 * fatSectors + rootSectors, clusters };
}

/** Type and cluster size for a volume of `s` sectors, as [FAT] 3.5's tables give them. */
function pick(s: number, rootEntries: number): Geometry | undefined {
  let g: Geometry | undefined;
  if (s < 8400) {
    for (let spc = 1; spc <= 64; spc *= 2) {
      const c = geometry(s, 12, spc, rootEntries);
      if (c.clusters <= 4084 - MARGIN) {
        g = c;
        break;
      }
    }
  } else if (s < 1048576) {
    const spc = s <= 32680 ? 2 : s <= 262144 ? 4 : s <= 524288 ? 8 : 16;
    g = geometry(s, 16, spc, rootEntries);
  } else {
    const spc = s <= 16777216 ? 8 : s <= 33554432 ? 16 : s <= 67108864 ? 32 : 64;
    g = geometry(s, 32, spc, rootEntries);
  }
  if (!g || g.clusters < 1 || typeOf(g.clusters) !== g.type || nearBoundary(g.clusters)) return undefined;
  if (g.type === 32 && g.clusters > 0x0ffffff5 - 2) return undefined;
  return g;
}

// ---------------------------------------------------------------- encoding

function bootSector(g: Geometry, o: FatOptions, label: Buffer): Buffer {
  const b = Buffer.alloc(SECTOR);
  // [FAT] 3.1 BPB, common part
  if (g.type === 32) b.set([0xeb, 0x58, 0x90], 0); // BS_jmpBoot → offset 90
  else b.set([0xeb, 0x3c, 0x90], 0); //                     → offset 62
  b.write('MSWIN4.1', 3, 'latin1'); // BS_OEMName ([FAT] recommends this value)
  b.writeUInt16LE(SECTOR, 11); // BPB_BytsPerSec
  b.writeUInt8(g.spc, 13); // BPB_SecPerClus
  b.writeUInt16LE(g.reserved, 14); // BPB_RsvdSecCnt
  b.writeUInt8(2, 16); // BPB_NumFATs
  b.writeUInt16LE(g.rootEntries, 17); // BPB_RootEntCnt (0 on FAT32)
  const small = g.type !== 32 && g.totalSectors < 0x10000;
  b.writeUInt16LE(small ? g.totalSectors : 0, 19); // BPB_TotSec16
  b.writeUInt8(0xf8, 21); // BPB_Media: fixed disk
  b.writeUInt16LE(g.type === 32 ? 0 : g.fatSectors, 22); // BPB_FATSz16
  b.writeUInt16LE(63, 24); // BPB_SecPerTrk
  b.writeUInt16LE(255, 26); // BPB_NumHeads
  b.writeUInt32LE((o.hiddenSectors ?? 0) >>> 0, 28); // BPB_HiddSec
  b.writeUInt32LE(small ? 0 : g.totalSectors, 32); // BPB_TotSec32
  let p = 36;
  if (g.type === 32) {
    // [FAT] 3.3 FAT32 extended BPB
    b.writeUInt32LE(g.fatSectors, 36); // BPB_FATSz32
    b.writeUInt16LE(0, 40); // BPB_ExtFlags: both FATs mirrored
    b.writeUInt16LE(0, 42); // BPB_FSVer 0.0
    b.writeUInt32LE(2, 44); // BPB_RootClus
    b.writeUInt16LE(1, 48); // BPB_FSInfo
    b.writeUInt16LE(6, 50); // BPB_BkBootSec
    p = 64;
  }
  // [FAT] 3.2 / 3.3: BS_DrvNum, BS_Reserved1, BS_BootSig, BS_VolID, BS_VolLab, BS_FilSysType
  b.writeUInt8(0x80, p);
  b.writeUInt8(0x29, p + 2);
  b.writeUInt32LE(o.volumeId >>> 0, p + 3);
  label.copy(b, p + 7);
  b.write(`FAT${g.type}   `, p + 18, 'latin1');
  // Boot code (not bootable): int 18h (BIOS: try the next device), then halt.
  b.set([0xcd, 0x18, 0xf4, 0xeb, 0xfd], p + 26);
  b.writeUInt16LE(0xaa55, 510); // signature
  return b;
}

/** [FAT] 5 FSInfo sector. */
function fsInfo(free: number, nextFree: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeUInt32LE(0x41615252, 0); // FSI_LeadSig
  b.writeUInt32LE(0x61417272, 484); // FSI_StrucSig
  b.writeUInt32LE(free >>> 0, 488); // FSI_Free_Count
  b.writeUInt32LE(nextFree >>> 0, 492); // FSI_Nxt_Free
  b.writeUInt32LE(0xaa550000, 508); // FSI_TrailSig
  return b;
}

interface Ts {
  date: number;
  time: number;
  tenth: number;
}

/** [FAT] 6 directory entry. */
function shortEntry(buf: Buffer, off: number, name: Buffer, attr: number, cluster: number, size: number, ts: Ts): void {
  name.copy(buf, off, 0, 11); // DIR_Name
  buf.writeUInt8(attr, off + 11); // DIR_Attr
  buf.writeUInt8(0, off + 12); // DIR_NTRes
  buf.writeUInt8(ts.tenth, off + 13); // DIR_CrtTimeTenth
  buf.writeUInt16LE(ts.time, off + 14); // DIR_CrtTime
  buf.writeUInt16LE(ts.date, off + 16); // DIR_CrtDate
  buf.writeUInt16LE(ts.date, off + 18); // DIR_LstAccDate
  buf.writeUInt16LE(cluster >>> 16, off + 20); // DIR_FstClusHI
  buf.writeUInt16LE(ts.time, off + 22); // DIR_WrtTime
  buf.writeUInt16LE(ts.date, off + 24); // DIR_WrtDate
  buf.writeUInt16LE(cluster & 0xffff, off + 26); // DIR_FstClusLO
  buf.writeUInt32LE(size >>> 0, off + 28); // DIR_FileSize
}

/** [FAT] 7 long-name entries for `name`, in on-disk order (last part first); returns the next offset. */
function longEntries(buf: Buffer, off: number, name: string, checksum: number): number {
  const n = Math.ceil(name.length / 13);
  const units: number[] = [];
  for (let i = 0; i < n * 13; i++) units.push(i < name.length ? name.charCodeAt(i) : i === name.length ? 0x0000 : 0xffff);
  for (let ord = n; ord >= 1; ord--) {
    const u = units.slice((ord - 1) * 13, ord * 13);
    buf.writeUInt8(ord === n ? ord | 0x40 : ord, off); // LDIR_Ord (0x40: last long entry)
    for (let i = 0; i < 5; i++) buf.writeUInt16LE(u[i], off + 1 + 2 * i); // LDIR_Name1
    buf.writeUInt8(ATTR_LONG_NAME, off + 11); // LDIR_Attr
    buf.writeUInt8(0, off + 12); // LDIR_Type
    buf.writeUInt8(checksum, off + 13); // LDIR_Chksum
    for (let i = 0; i < 6; i++) buf.writeUInt16LE(u[5 + i], off + 14 + 2 * i); // LDIR_Name2
    buf.writeUInt16LE(0, off + 26); // LDIR_FstClusLO
    for (let i = 0; i < 2; i++) buf.writeUInt16LE(u[11 + i], off + 28 + 2 * i); // LDIR_Name3
    off += DIRENT;
  }
  return off;
}

function encodeDir(d: DirNode, bytes: number, ts: Ts, label: Buffer | undefined): Buffer {
  const buf = Buffer.alloc(bytes);
  let off = 0;
  if (d.parent) {
    // [FAT] 6.5: "." and ".." (".." of a child of the root points at cluster 0)
    shortEntry(buf, 0, Buffer.from('.          ', 'latin1'), ATTR_DIRECTORY, d.cluster, 0, ts);
    shortEntry(buf, 32, Buffer.from('..         ', 'latin1'), ATTR_DIRECTORY, d.parent.parent ? d.parent.cluster : 0, 0, ts);
    off = 64;
  } else if (label) {
    shortEntry(buf, 0, label, ATTR_VOLUME_ID, 0, 0, ts);
    off = 32;
  }
  for (const k of sortedChildren(d)) {
    if (lfnSlots(k) > 0) off = longEntries(buf, off, k.name, shortNameChecksum(k.short!));
    if (k.kind === 'dir') shortEntry(buf, off, k.short!, ATTR_DIRECTORY, k.cluster, 0, ts);
    else shortEntry(buf, off, k.short!, ATTR_ARCHIVE, k.clusters ? k.cluster : 0, k.file.size, ts);
    off += DIRENT;
  }
  return buf;
}

// ---------------------------------------------------------------- plan

export function planFat(o: FatOptions): FatPlan {
  const labelText = o.label.toUpperCase();
  if (labelText.length > 11 || ![...labelText].every((c) => c === ' ' || SHORT_CHAR.test(c)))
    throw new DockyardError('E_INTERNAL', `FAT: bad volume label "${o.label}"`);
  const label = labelText.trim() ? Buffer.from(labelText.padEnd(11, ' '), 'latin1') : undefined;
  const { root, dirs, fileNodes } = buildTree(o.files, label ? labelText : '');
  const rootEntries = Math.max(512, Math.ceil(root.slots / 16) * 16);

  const needed = (g: Geometry): number => {
    const cs = g.spc * SECTOR;
    let n = 0;
    for (const d of dirs) if (d !== root || g.type === 32) n += Math.max(1, Math.ceil((d.slots * DIRENT) / cs));
    for (const f of fileNodes) n += Math.ceil(f.file.size / cs);
    return n;
  };

  let s = Math.max(Math.ceil((o.minSize ?? 0) / SECTOR), 64);
  let g: Geometry | undefined;
  for (let iter = 0; ; iter++) {
    if (iter > 200 || s > 0xffffffff) throw new DockyardError('E_OUTPUT', 'FAT: the files do not fit in a FAT file system');
    const c = pick(s, rootEntries);
    if (!c) {
      s += 64;
      continue;
    }
    const need = needed(c);
    if (need <= c.clusters) {
      g = c;
      break;
    }
    const short = need - c.clusters;
    s += short * c.spc + 2 * Math.ceil(fatBytes(short, c.type) / SECTOR) + 1;
  }
  const geo = g;

  // Allocate: directories (root first on FAT32), then files, in tree order.
  const cs = geo.spc * SECTOR;
  let next = 2;
  const chainEnds = new Set<number>();
  for (const d of dirs) {
    if (d === root && geo.type !== 32) continue;
    d.clusters = Math.max(1, Math.ceil((d.slots * DIRENT) / cs));
    d.cluster = next;
    next += d.clusters;
    chainEnds.add(next - 1);
  }
  for (const f of fileNodes) {
    f.clusters = Math.ceil(f.file.size / cs);
    if (f.clusters === 0) continue;
    f.cluster = next;
    next += f.clusters;
    chainEnds.add(next - 1);
  }
  const usedEnd = next; // first free cluster
  const free = geo.clusters - (usedEnd - 2);
  const ts = fatTimestamp(o.epoch);
  const bpbLabel = label ?? Buffer.from('NO NAME    ', 'latin1');

  const eoc = geo.type === 12 ? 0xfff : geo.type === 16 ? 0xffff : 0x0fffffff;
  const entryAt = (i: number): number => {
    if (i === 0) return geo.type === 12 ? 0xff8 : geo.type === 16 ? 0xfff8 : 0x0ffffff8; // media byte in low 8 bits
    if (i === 1) return eoc;
    if (i >= usedEnd) return 0;
    return chainEnds.has(i) ? eoc : i + 1;
  };

  async function writeFat(sink: ByteSink): Promise<void> {
    const total = geo.fatSectors * SECTOR;
    if (geo.type === 12) {
      const b = Buffer.alloc(total);
      for (let i = 0; i < geo.clusters + 2; i++) {
        const v = entryAt(i);
        const off = Math.floor((i * 3) / 2);
        if (i & 1) {
          b[off] = (b[off] & 0x0f) | ((v & 0x0f) << 4);
          b[off + 1] = v >> 4;
        } else {
          b[off] = v & 0xff;
          b[off + 1] = (b[off + 1] & 0xf0) | (v >> 8);
        }
      }
      await sink.write(b);
      return;
    }
    const w = geo.type / 8;
    const perChunk = (1024 * 1024) / w;
    const entries = total / w;
    for (let start = 0; start < entries; start += perChunk) {
      const n = Math.min(perChunk, entries - start);
      const b = Buffer.alloc(n * w);
      const last = Math.min(start + n, usedEnd);
      for (let i = start; i < last; i++) {
        if (w === 2) b.writeUInt16LE(entryAt(i), (i - start) * 2);
        else b.writeUInt32LE(entryAt(i), (i - start) * 4);
      }
      await sink.write(b);
    }
  }

  const offsets = new Map(fileNodes.map((f) => [f.file.path, f.clusters ? (geo.dataStart + (f.cluster - 2) * geo.spc) * SECTOR : undefined]));

  return {
    size: geo.totalSectors * SECTOR,
    type: geo.type,
    clusterSize: cs,
    fileOffset: (path) => {
      if (!offsets.has(path)) throw new DockyardError('E_INTERNAL', `FAT: no file "${path}"`);
      return offsets.get(path);
    },
    async write(sink: ByteSink): Promise<void> {
      // Reserved region
      const boot = bootSector(geo, o, bpbLabel);
      const reserved = Buffer.alloc(geo.reserved * SECTOR);
      boot.copy(reserved, 0);
      if (geo.type === 32) {
        const info = fsInfo(free, free > 0 ? usedEnd : 0xffffffff);
        info.copy(reserved, SECTOR);
        boot.copy(reserved, 6 * SECTOR); // backup boot sector (BPB_BkBootSec)
        info.copy(reserved, 7 * SECTOR);
      }
      await sink.write(reserved);
      // FAT region
      await writeFat(sink);
      await writeFat(sink);
      // Root directory region (FAT12/16)
      if (geo.type !== 32) await sink.write(encodeDir(root, geo.rootSectors * SECTOR, ts, label));
      // Data region
      for (const d of dirs) {
        if (d === root && geo.type !== 32) continue;
        await sink.write(encodeDir(d, d.clusters * cs, ts, d === root ? label : undefined));
      }
      for (const f of fileNodes) {
        await writeExactly(sink, f.file.size, `FAT: ${f.file.path}`, (s) => f.file.write(s));
        const pad = f.clusters * cs - f.file.size;
        if (pad) await writeZeros(sink, pad);
      }
      await writeZeros(sink, (geo.totalSectors - geo.dataStart - (usedEnd - 2) * geo.spc) * SECTOR);
    },
  };
}
