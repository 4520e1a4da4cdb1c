/**
 * An ISO 9660 image writer (ECMA-119) with Rock Ridge (SUSP/RRIP) and El
 * Torito boot entries. The image is planned first (every LBA and size known
 * from the tree and the files' sizes), then written front to back: system
 * area, volume descriptors, path tables, boot catalog, directories,
 * Continuation Areas, then file contents streamed from their writers.
 *
 * Layout (logical blocks of 2048 bytes):
 *   0–15      system area (zero, or an isohybrid MBR/GPT from `systemArea`)
 *   16        Primary Volume Descriptor (8.4)
 *   17        Boot Record (El Torito 2.0), if booting
 *   next      Joliet Supplementary Volume Descriptor (8.5), unless turned off
 *   next      Volume Descriptor Set Terminator (8.3)
 *   next      type L and type M path tables (9.4), then Joliet's
 *   next      boot catalog, if booting
 *   next      directories in path table order (6.8), each followed by the
 *             Rock Ridge Continuation Areas of its records; then Joliet's
 *   next      file data: boot images first, then the tree in directory order
 *   end       padding to `padTo`, then `tail` (a backup GPT) in the last bytes
 *
 * Rock Ridge carries what a root filesystem needs: names, modes (setuid,
 * setgid, sticky), owners, times, symlinks, device nodes and fifos, and hard
 * links (names sharing one extent; with `inodes`, one file serial number).
 *
 * Deterministic: every time is the node's or `epoch`, children sorted, no
 * identifiers drawn at random.
 */
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';
import { SECTOR, sectors } from './encode.js';
import { assignNames, compareIsoNames, type IsoName } from './names.js';
import { ContinuationRegion, MAX_MAJOR, MAX_MINOR, nmEntries, packSystemUse, pnEntry, pxEntry, slEntries, spEntry, erEntry, tfEntry, type PackedSU } from './susp.js';
import { dirRecord, FLAG_DIR, pathTableRecord, primaryVolumeDescriptor, recordBase, terminatorDescriptor } from './records.js';
import { bootCatalog, bootRecordDescriptor, loadSectorsFor, patchBootInfoTable, type BootPlatform } from './eltorito.js';

/**
 * What Rock Ridge records of every node: permission bits (0o7777, setuid,
 * setgid and sticky included; default 0644 for files and special files,
 * 0755 for directories, 0777 for symlinks), owner and group (default 0),
 * modification time in seconds (default the image's epoch).
 */
export interface IsoAttrs {
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
}

export type IsoNode =
  | (IsoAttrs & {
      type: 'file';
      size: number;
      /** Writes exactly `size` bytes. */
      write?(sink: ByteSink): Promise<void>;
      /** The bytes, for small files (needed for a boot information table). */
      data?: Buffer;
      /** Allocated, but listed in no directory (an El Torito image only the catalog points at). */
      hidden?: boolean;
    })
  /** A directory; path '' (or '/') gives the root's attributes. */
  | (IsoAttrs & { type: 'dir' })
  | (IsoAttrs & { type: 'symlink'; target: string })
  /** A device node (Rock Ridge PX type and PN numbers); no extent. */
  | (IsoAttrs & { type: 'device'; kind: 'char' | 'block'; major: number; minor: number })
  | (IsoAttrs & { type: 'fifo' })
  /**
   * Another name for the node at `linkTo` (any type but a directory): the
   * same extent and attributes; PX counts the names, and with `inodes` both
   * carry the same file serial number.
   */
  | { type: 'hardlink'; path: string; linkTo: string };

export interface IsoBootEntry {
  platform: BootPlatform;
  /** Path of a file node (may be hidden). */
  path: string;
  /** 512-byte virtual sectors to load; default: the whole file (saturated at 0xFFFF). */
  loadSectors?: number;
  /** Patch the ISOLINUX boot information table into the file (needs `data`). */
  bootInfoTable?: boolean;
}

export interface IsoLayout {
  /** Total bytes of the image. */
  size: number;
  lbaOf(path: string): number;
  sizeOf(path: string): number;
  catalogLba?: number;
}

export interface IsoOptions {
  nodes: IsoNode[];
  epoch: number;
  volumeId?: string;
  systemId?: string;
  publisherId?: string;
  applicationId?: string;
  boot?: {
    /** Where the catalog appears in the tree; `hidden` keeps it out of directories. */
    catalog: { path: string; hidden?: boolean };
    /** The first entry is the default entry; the others get sections of their own. */
    entries: IsoBootEntry[];
  };
  /** Also write a Joliet tree (UCS-2 names up to 103 characters, for Windows); default true. */
  joliet?: boolean;
  /**
   * RRIP 1.12: every PX carries a file serial number (nodes numbered in
   * plan order, hard links sharing theirs), so readers see hard links as one
   * inode. Default false: RRIP 1.09 PX (length 36), as before.
   */
  inodes?: boolean;
  /** The first 32 KiB, computed once the layout is known (isohybrid MBR + GPT). */
  systemArea?: (l: IsoLayout) => Buffer;
  /** Round the image size up to a multiple of this many bytes (after the tail). */
  padTo?: number;
  /** Bytes at the very end of the image (a backup GPT), computed from the layout. */
  tail?: { size: number; encode(l: IsoLayout): Buffer };
}

export interface IsoPlan extends IsoLayout {
  write(sink: ByteSink): Promise<void>;
}

/** What every name of one node shares (hard links name the same Meta). */
interface Meta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Names of a non-directory in listed directories (counted once the tree is complete). */
  names: number;
  /** RRIP 1.12 file serial number, in plan order from 1. */
  serial: number;
}
interface Dir {
  kind: 'dir';
  name: string;
  ino: Meta;
  parent?: Dir;
  children: Map<string, Node>;
  iso?: IsoName;
  number: number; // path table number (1-based)
  lba: number;
  size: number;
  records: { node: Node | Dir; id: Buffer; role: 'self' | 'parent' | 'child'; su: PackedSU }[];
  /** Its records' Continuation Areas, in the blocks right after its extent. */
  region: ContinuationRegion;
}
interface FileData extends Meta {
  size: number;
  write?(sink: ByteSink): Promise<void>;
  data?: Buffer;
  lba: number;
  /** The path it was given at (messages). */
  path: string;
}
interface File {
  kind: 'file';
  name: string;
  ino: FileData;
  hidden: boolean;
  iso?: IsoName;
}
interface Link {
  kind: 'symlink';
  name: string;
  ino: Meta & { target: string };
  iso?: IsoName;
}
interface Special {
  kind: 'special';
  name: string;
  /** S_IFCHR, S_IFBLK or S_IFIFO, and the device's numbers. */
  ino: Meta & { format: number; major: number; minor: number };
  iso?: IsoName;
}
type Node = Dir | File | Link | Special;

const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFDIR = 0o040000;
const S_IFBLK = 0o060000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** 9.1.4: one extent holds at most 2^32 − 1 bytes; we write no multi-extent files. */
const MAX_FILE = 0xffffffff - SECTOR + 1;
/** Largest file the writer takes (bytes): one extent. */
export const ISO_MAX_FILE = MAX_FILE;
/**
 * Longest name (UTF-8 bytes) Rock Ridge carries here: NAME_MAX, which Linux
 * (fs/isofs/rock.c) reads whole and no POSIX filesystem goes past; xorriso
 * and libisofs refuse longer ones too.
 */
export const ISO_MAX_NAME = 255;
/**
 * Longest symlink target (bytes). Linux reads up to a page, but libisofs
 * (xorriso) refuses to load an image with a target of 1024 bytes or more.
 */
export const ISO_MAX_TARGET = 1023;
/** 9.1.5: the seven-byte date has years 1900–2155. */
const MIN_TIME = Date.UTC(1900, 0, 1) / 1000;
const MAX_TIME = Date.UTC(2155, 11, 31, 23, 59, 59) / 1000;

/** A time a directory record and TF can hold: whole seconds, clamped to 1900–2155. */
function recTime(t: number): number {
  return Math.min(MAX_TIME, Math.max(MIN_TIME, Math.floor(t)));
}

function splitPath(p: string): string[] {
  const parts = splitOrRoot(p);
  if (parts.length === 0) throw new DockyardError('E_INTERNAL', `iso: bad path "${p}"`);
  return parts;
}

function splitOrRoot(p: string): string[] {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.some((s) => s === '..')) throw new DockyardError('E_INTERNAL', `iso: bad path "${p}"`);
  return parts;
}

function newMeta(epoch: number, mode: number): Meta {
  return { mode, uid: 0, gid: 0, mtime: epoch, names: 0, serial: 0 };
}

function newDir(name: string, ino: Meta, parent?: Dir): Dir {
  return { kind: 'dir', name, ino, parent, children: new Map(), number: 0, lba: 0, size: 0, records: [], region: new ContinuationRegion() };
}

function pathOf(d: Dir): string {
  const parts: string[] = [];
  for (let at: Dir | undefined = d; at?.parent; at = at.parent) parts.unshift(at.name);
  return parts.join('/');
}

/** The attributes of a node, checked against what Rock Ridge holds. */
function metaOf(n: IsoAttrs, epoch: number, mode: number): Meta {
  const id = (v: number | undefined, what: string): number => {
    if (v === undefined) return 0;
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DockyardError('E_LIMIT', `iso: ${n.path}: ${what} ${v} does not fit Rock Ridge's 32 bits`);
    return v;
  };
  return { mode: (n.mode ?? mode) & 0o7777, uid: id(n.uid, 'uid'), gid: id(n.gid, 'gid'), mtime: recTime(n.mtime ?? epoch), names: 0, serial: 0 };
}

function checkName(name: string, path: string): void {
  const len = Buffer.byteLength(name);
  if (len > ISO_MAX_NAME) throw new DockyardError('E_LIMIT', `iso: ${path}: a name of ${len} bytes; Rock Ridge names here (and Linux's NAME_MAX) are at most ${ISO_MAX_NAME}`);
}

function buildTree(nodes: IsoNode[], epoch: number): { root: Dir; files: Map<string, File> } {
  const root = newDir('', newMeta(epoch, 0o755));
  const files = new Map<string, File>();
  const dirOf = (parts: string[], path: string): Dir => {
    let d = root;
    for (const p of parts) {
      let c = d.children.get(p);
      if (!c) {
        checkName(p, path);
        c = newDir(p, newMeta(epoch, 0o755), d);
        d.children.set(p, c);
      }
      if (c.kind !== 'dir') throw new DockyardError('E_INTERNAL', `iso: ${parts.join('/')} is below a non-directory`);
      d = c;
    }
    return d;
  };
  const lookup = (parts: string[]): Node | undefined => {
    let at: Node | undefined = root;
    for (const p of parts) at = at?.kind === 'dir' ? at.children.get(p) : undefined;
    return at;
  };
  const links: { path: string; linkTo: string }[] = [];
  for (const n of nodes) {
    if (n.type === 'hardlink') {
      links.push(n);
      continue;
    }
    if (n.type === 'dir' && splitOrRoot(n.path).length === 0) {
      root.ino = metaOf(n, epoch, 0o755);
      continue;
    }
    const parts = splitPath(n.path);
    const name = parts[parts.length - 1];
    const parent = dirOf(parts.slice(0, -1), n.path);
    const existing = parent.children.get(name);
    checkName(name, n.path);
    if (n.type === 'dir') {
      const d = existing ?? newDir(name, newMeta(epoch, 0o755), parent);
      if (d.kind !== 'dir') throw new DockyardError('E_INTERNAL', `iso: ${n.path} given twice`);
      d.ino = metaOf(n, epoch, 0o755);
      parent.children.set(name, d);
      continue;
    }
    if (existing) throw new DockyardError('E_INTERNAL', `iso: ${n.path} given twice`);
    if (n.type === 'symlink') {
      const len = Buffer.byteLength(n.target);
      if (len > ISO_MAX_TARGET) throw new DockyardError('E_LIMIT', `iso: ${n.path}: a symlink target of ${len} bytes; Rock Ridge targets here are at most ${ISO_MAX_TARGET} (xorriso reads no longer ones)`);
      parent.children.set(name, { kind: 'symlink', name, ino: { ...metaOf(n, epoch, 0o777), target: n.target } });
    } else if (n.type === 'device' || n.type === 'fifo') {
      const dev = n.type === 'device' ? { format: n.kind === 'char' ? S_IFCHR : S_IFBLK, major: n.major, minor: n.minor } : { format: S_IFIFO, major: 0, minor: 0 };
      if (![dev.major, dev.minor].every(Number.isInteger) || dev.major < 0 || dev.minor < 0 || dev.major > MAX_MAJOR || dev.minor > MAX_MINOR || (dev.major === 0 && dev.minor > 0xff))
        throw new DockyardError('E_LIMIT', `iso: ${n.path}: device ${dev.major}:${dev.minor} cannot be written for Linux to read (majors 1–${MAX_MAJOR}, minors up to ${MAX_MINOR}; major 0 only with minors up to 255)`);
      parent.children.set(name, { kind: 'special', name, ino: { ...metaOf(n, epoch, 0o644), ...dev } });
    } else {
      if (n.size > MAX_FILE) throw new DockyardError('E_LIMIT', `iso: ${n.path} is ${n.size} bytes; an ISO 9660 file (one extent) holds at most ${MAX_FILE}`);
      if (!n.write && !n.data) throw new DockyardError('E_INTERNAL', `iso: ${n.path} has neither data nor a writer`);
      if (n.data && n.data.length !== n.size) throw new DockyardError('E_INTERNAL', `iso: ${n.path} size ${n.size} but ${n.data.length} bytes given`);
      const path = parts.join('/');
      const f: File = { kind: 'file', name, hidden: !!n.hidden, ino: { ...metaOf(n, epoch, 0o644), size: n.size, write: n.write, data: n.data, lba: 0, path } };
      parent.children.set(name, f);
      files.set(path, f);
    }
  }
  // Hard links, once every node is in place (a link may name a later node, or another link).
  for (let pending = links; pending.length; ) {
    const later: typeof links = [];
    for (const h of pending) {
      const target = lookup(splitOrRoot(h.linkTo));
      if (!target) {
        later.push(h);
        continue;
      }
      if (target.kind === 'dir') throw new DockyardError('E_INTERNAL', `iso: hard link ${h.path} to the directory ${h.linkTo}`);
      const parts = splitPath(h.path);
      const name = parts[parts.length - 1];
      checkName(name, h.path);
      const parent = dirOf(parts.slice(0, -1), h.path);
      if (parent.children.has(name)) throw new DockyardError('E_INTERNAL', `iso: ${h.path} given twice`);
      const c: Node = target.kind === 'file' ? { kind: 'file', name, hidden: false, ino: target.ino } : target.kind === 'symlink' ? { kind: 'symlink', name, ino: target.ino } : { kind: 'special', name, ino: target.ino };
      parent.children.set(name, c);
      if (c.kind === 'file') files.set(parts.join('/'), c);
    }
    if (later.length === pending.length) throw new DockyardError('E_INTERNAL', `iso: hard link ${later[0].path} to ${later[0].linkTo}, which is not in the image`);
    pending = later;
  }
  return { root, files };
}

/** Children in byte order of their names. */
function byName(d: Dir): Node[] {
  return [...d.children.values()]
    .map((c) => ({ c, key: Buffer.from(c.name) }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((k) => k.c);
}

/** Children listed in the directory, in 9.3 order. */
function listed(d: Dir): Node[] {
  return [...d.children.values()].filter((c) => !(c.kind === 'file' && c.hidden)).sort((a, b) => compareIsoNames(a.iso!, b.iso!));
}

function posixMode(n: Node): number {
  const format = n.kind === 'dir' ? S_IFDIR : n.kind === 'file' ? S_IFREG : n.kind === 'symlink' ? S_IFLNK : n.ino.format;
  return format | (n.ino.mode & 0o7777);
}

function nlink(n: Node): number {
  if (n.kind !== 'dir') return Math.max(1, n.ino.names);
  let k = 2;
  for (const c of n.children.values()) if (c.kind === 'dir') k++;
  return k;
}

/** A directory of the Joliet tree: the same directory, other names, no System Use fields. */
interface JDir {
  kind: 'jdir';
  dir: Dir;
  parent?: JDir;
  id: Buffer;
  number: number;
  lba: number;
  size: number;
  records: { node: Node | JDir; id: Buffer }[];
}

const JOLIET_MAX = 103; // characters; mkisofs -joliet-long (Joliet proper says 64)

/** A Joliet identifier: UCS-2 big-endian, no * / : ; ? \\ or controls, files with ";1", unique in its directory. */
function jolietId(name: string, isDir: boolean, used: Set<string>): Buffer {
  let clean = '';
  for (const ch of name) {
    const cp = ch.codePointAt(0)!;
    clean += cp < 0x20 || cp > 0xffff || '*/:;?\\'.includes(ch) ? '_' : ch;
  }
  const max = isDir ? JOLIET_MAX : JOLIET_MAX - 2;
  // Cut the stem, not a (short) extension; a clash gets ~N before the extension.
  const dot = clean.lastIndexOf('.');
  const ext = !isDir && dot > 0 && clean.length - dot <= 11 ? clean.slice(dot) : '';
  const stem = ext ? clean.slice(0, dot) : clean;
  const fit = (suffix: string) => stem.slice(0, max - ext.length - suffix.length) + suffix + ext;
  let n = fit('');
  for (let i = 1; used.has(n); i++) n = fit(`~${i}`);
  used.add(n);
  const full = isDir ? n : `${n};1`;
  const b = Buffer.alloc(full.length * 2);
  for (let i = 0; i < full.length; i++) b.writeUInt16BE(full.charCodeAt(i), 2 * i);
  return b;
}

/** Bytes of a directory's extent: whole sectors, no record crossing one (6.8.1.1). */
function extentSize(lengths: number[]): number {
  let sec = 0;
  let off = 0;
  for (const len of lengths) {
    if (off + len > SECTOR) {
      sec++;
      off = 0;
    }
    off += len;
  }
  return (sec + 1) * SECTOR;
}

export function planIso(o: IsoOptions): IsoPlan {
  // The boot catalog is a file of the tree (one sector; hidden or listed), filled in once the layout is known.
  const catalogPath = o.boot ? splitPath(o.boot.catalog.path).join('/') : undefined;
  const catalogNodes: IsoNode[] = catalogPath ? [{ type: 'file', path: catalogPath, size: SECTOR, data: Buffer.alloc(SECTOR), mode: 0o444, hidden: !!o.boot!.catalog.hidden }] : [];
  const epoch = recTime(o.epoch);
  const { root, files } = buildTree([...o.nodes, ...catalogNodes], epoch);
  const catalogNode = catalogPath ? files.get(catalogPath) : undefined;

  // Path table records name their parent by a 16-bit number: at most 65535 directories, the root included.
  const allDirs: Dir[] = [root];
  for (let i = 0; i < allDirs.length && allDirs.length <= 0xffff; i++) for (const c of byName(allDirs[i])) if (c.kind === 'dir') allDirs.push(c);
  if (allDirs.length > 0xffff) throw new DockyardError('E_LIMIT', `iso: more than 65535 directories (the path table numbers them in 16 bits, the root included): ${pathOf(allDirs[0xffff])} is one too many`);

  // Names per node (PX st_nlink of hard-linked files) and serial numbers in
  // plan order: the root, then depth first, children in byte order of names.
  let serial = 0;
  const number = (d: Dir): void => {
    d.ino.serial = ++serial;
    for (const c of byName(d)) {
      if (c.kind === 'dir') number(c);
      else {
        if (!(c.kind === 'file' && c.hidden)) c.ino.names++;
        if (c.ino.serial === 0) c.ino.serial = ++serial;
      }
    }
  };
  number(root);

  // Identifiers: children in byte order of their names claim identifiers first.
  const assign = (d: Dir): void => {
    const kids = byName(d).filter((c) => !(c.kind === 'file' && c.hidden));
    const names = assignNames(kids.map((k) => ({ name: k.name, isDir: k.kind === 'dir' })));
    kids.forEach((k, i) => (k.iso = names[i]));
    for (const c of d.children.values()) if (c.kind === 'dir') assign(c);
  };
  assign(root);

  // Path table order (9.4.3 / 6.9.1): by level, then parent number, then identifier.
  const dirs: Dir[] = [root];
  for (let i = 0; i < dirs.length; i++) {
    const d = dirs[i];
    d.number = i + 1;
    for (const c of listed(d)) if (c.kind === 'dir') dirs.push(c);
  }

  // Directory records with their System Use fields; overflow to the
  // directory's Continuation Areas, in the blocks right after its extent
  // (as mkisofs and libisofs place them: libarchive, reading the image as a
  // stream, takes a CE only at the position where the directory ends).
  // Entries: [SP first, root "." only], PX, TF, then PN/NM/SL or ER.
  const su = (n: Node, idLen: number, region: ContinuationRegion, x: { sp?: boolean; after?: Buffer[] } = {}): PackedSU =>
    packSystemUse(
      [...(x.sp ? [spEntry()] : []), pxEntry(posixMode(n), nlink(n), n.ino.uid, n.ino.gid, o.inodes ? n.ino.serial : undefined), tfEntry(n.ino.mtime), ...(x.after ?? [])],
      255 - recordBase(idLen),
      region,
    );
  const rrOf = (c: Node): Buffer[] => [
    ...(c.kind === 'special' && c.ino.format !== S_IFIFO ? [pnEntry(c.ino.major, c.ino.minor)] : []),
    ...nmEntries(c.name),
    ...(c.kind === 'symlink' ? slEntries(c.ino.target) : []),
  ];
  for (const d of dirs) {
    const isRoot = d === root;
    d.records.push({ node: d, id: Buffer.from([0]), role: 'self', su: su(d, 1, d.region, isRoot ? { sp: true, after: [erEntry({ inodes: o.inodes })] } : {}) });
    d.records.push({ node: d.parent ?? d, id: Buffer.from([1]), role: 'parent', su: su(d.parent ?? d, 1, d.region) });
    for (const c of listed(d)) {
      const id = Buffer.from(c.iso!.id, 'latin1');
      d.records.push({ node: c, id, role: 'child', su: su(c, id.length, d.region, { after: rrOf(c) }) });
    }
    d.size = extentSize(d.records.map((r) => recordBase(r.id.length) + r.su.length));
  }

  // Joliet (Microsoft's Joliet specification, 1995): a second tree over the
  // same file extents; directories in path table order, symlinks, devices
  // and fifos left out (Joliet has no such thing).
  const jdirs: JDir[] = [];
  if (o.joliet !== false) {
    jdirs.push({ kind: 'jdir', dir: root, id: Buffer.from([0]), number: 0, lba: 0, size: 0, records: [] });
    for (let i = 0; i < jdirs.length; i++) {
      const jd = jdirs[i];
      jd.number = i + 1;
      const kids = byName(jd.dir).filter((c) => c.kind === 'dir' || (c.kind === 'file' && !c.hidden));
      const used = new Set<string>();
      const named = kids.map((c) => ({ c, id: jolietId(c.name, c.kind === 'dir', used) })).sort((a, b) => Buffer.compare(a.id, b.id));
      jd.records.push({ node: jd, id: Buffer.from([0]) }, { node: jd.parent ?? jd, id: Buffer.from([1]) });
      for (const { c, id } of named) {
        if (c.kind === 'dir') {
          const child: JDir = { kind: 'jdir', dir: c, parent: jd, id, number: 0, lba: 0, size: 0, records: [] };
          jdirs.push(child);
          jd.records.push({ node: child, id });
        } else jd.records.push({ node: c, id });
      }
      jd.size = extentSize(jd.records.map((r) => recordBase(r.id.length)));
    }
  }

  // Path tables.
  const ptRecords = (big: boolean) =>
    Buffer.concat(dirs.map((d) => pathTableRecord(d === root ? Buffer.from([0]) : Buffer.from(d.iso!.id, 'latin1'), d.lba, d.parent ? d.parent.number : 1, big)));
  const ptSize = ptRecords(false).length;
  const jptRecords = (big: boolean) => Buffer.concat(jdirs.map((d) => pathTableRecord(d.id, d.lba, d.parent ? d.parent.number : 1, big)));
  const jptSize = jptRecords(false).length;

  // Boot entries.
  const bootFiles: FileData[] = [];
  if (o.boot) {
    for (const e of o.boot.entries) {
      const f = files.get(splitPath(e.path).join('/'))?.ino;
      if (!f) throw new DockyardError('E_INTERNAL', `iso: boot image ${e.path} is not a file of the image`);
      if (e.bootInfoTable && !f.data) throw new DockyardError('E_INTERNAL', `iso: boot information table needs ${e.path}'s bytes`);
      if (!bootFiles.includes(f)) bootFiles.push(f);
    }
  }

  // LBAs.
  let lba = 16;
  const pvdLba = lba++;
  if (o.boot) lba++; // 17: El Torito wants its Boot Record here
  if (jdirs.length) lba++; // Joliet's Supplementary Volume Descriptor
  lba++; // Terminator
  const lPathLba = lba;
  lba += sectors(ptSize);
  const mPathLba = lba;
  lba += sectors(ptSize);
  const jlPathLba = lba;
  lba += sectors(jptSize);
  const jmPathLba = lba;
  lba += sectors(jptSize);
  let catalogLba = 0;
  if (o.boot) {
    catalogLba = lba++;
    if (catalogNode) catalogNode.ino.lba = catalogLba;
  }
  for (const d of dirs) {
    d.lba = lba;
    lba += d.size / SECTOR;
    d.region.lba = lba;
    lba += d.region.layout();
  }
  for (const d of jdirs) {
    d.lba = lba;
    lba += d.size / SECTOR;
  }
  // File data: boot images first, then each file once (hard links share it) in tree order.
  const dataOrder: FileData[] = [...bootFiles];
  const placed = new Set<FileData>(bootFiles);
  if (catalogNode) placed.add(catalogNode.ino);
  const walk = (d: Dir): void => {
    for (const c of byName(d)) {
      if (c.kind === 'file' && !placed.has(c.ino)) {
        placed.add(c.ino);
        dataOrder.push(c.ino);
      } else if (c.kind === 'dir') walk(c);
    }
  };
  walk(root);
  for (const f of dataOrder) {
    if (f.size === 0) continue;
    f.lba = lba;
    lba += sectors(f.size);
  }
  // 8.4.8: the Volume Space Size is a 32-bit count of blocks.
  if (lba + sectors((o.tail?.size ?? 0) + (o.padTo ?? 0)) > 0xffffffff) throw new DockyardError('E_LIMIT', `iso: the image would be over ${0xffffffff} blocks of 2 KiB`);
  const volumeEnd = lba * SECTOR;
  const tailSize = o.tail?.size ?? 0;
  let total = volumeEnd + tailSize;
  if (o.padTo) total = Math.ceil(total / o.padTo) * o.padTo;
  total = Math.ceil(total / SECTOR) * SECTOR;

  const layout: IsoLayout = {
    size: total,
    catalogLba: o.boot ? catalogLba : undefined,
    lbaOf: (p) => {
      const f = files.get(splitPath(p).join('/'));
      if (!f) throw new DockyardError('E_INTERNAL', `iso: no file ${p}`);
      return f.ino.lba;
    },
    sizeOf: (p) => {
      const f = files.get(splitPath(p).join('/'));
      if (!f) throw new DockyardError('E_INTERNAL', `iso: no file ${p}`);
      return f.ino.size;
    },
  };

  // Boot-info-table patches and the catalog's bytes.
  if (o.boot) {
    for (const e of o.boot.entries) {
      const f = files.get(splitPath(e.path).join('/'))!.ino;
      if (e.bootInfoTable) f.data = patchBootInfoTable(f.data!, pvdLba, f.lba);
    }
  }
  const catalog = o.boot
    ? bootCatalog(
        o.boot.entries.map((e) => {
          const f = files.get(splitPath(e.path).join('/'))!.ino;
          return { platform: e.platform, lba: f.lba, loadSectors: e.loadSectors ?? loadSectorsFor(f.size) };
        }),
      )
    : undefined;
  if (catalogNode) catalogNode.ino.data = catalog;

  // Encode directories.
  const recordOf = (n: Node | JDir, id: Buffer, s?: PackedSU, region?: ContinuationRegion): Buffer => {
    const entries = s ? [...s.inline, ...(s.cont !== undefined ? [region!.ceFor(s.cont)] : [])] : [];
    // 9.1.5: the recording date is the node's modification time, as in its TF.
    if (n.kind === 'jdir') return dirRecord({ id, lba: n.lba, size: n.size, flags: FLAG_DIR, epoch: n.dir.ino.mtime });
    if (n.kind === 'dir') return dirRecord({ id, lba: n.lba, size: n.size, flags: FLAG_DIR, epoch: n.ino.mtime, su: entries });
    if (n.kind === 'file') return dirRecord({ id, lba: n.ino.lba, size: n.ino.size, flags: 0, epoch: n.ino.mtime, su: entries });
    // Symlinks, devices and fifos: no extent.
    return dirRecord({ id, lba: 0, size: 0, flags: 0, epoch: n.ino.mtime, su: entries });
  };
  const encodeDir = (d: Dir | JDir): Buffer => {
    const b = Buffer.alloc(d.size);
    let p = 0;
    const region = d.kind === 'dir' ? d.region : undefined;
    for (const r of d.records as { node: Node | JDir; id: Buffer; su?: PackedSU }[]) {
      const rec = recordOf(r.node, r.id, r.su, region);
      if ((p % SECTOR) + rec.length > SECTOR) p = Math.ceil(p / SECTOR) * SECTOR;
      rec.copy(b, p);
      p += rec.length;
    }
    return b;
  };

  const write = async (sink: ByteSink): Promise<void> => {
    let pos = 0;
    const put = async (b: Buffer) => {
      await sink.write(b);
      pos += b.length;
    };
    const padToLba = async (target: number) => {
      const want = target * SECTOR;
      if (want < pos) throw new DockyardError('E_INTERNAL', `iso: layout overlap at ${pos} > ${want}`);
      while (pos < want) await put(Buffer.alloc(Math.min(want - pos, 1 << 20)));
    };
    // System area (16 sectors).
    const sys = Buffer.alloc(16 * SECTOR);
    if (o.systemArea) {
      const s = o.systemArea(layout);
      if (s.length > sys.length) throw new DockyardError('E_INTERNAL', 'iso: system area over 32 KiB');
      s.copy(sys);
    }
    await put(sys);
    const rootRec = dirRecord({ id: Buffer.from([0]), lba: root.lba, size: root.size, flags: FLAG_DIR, epoch: root.ino.mtime });
    // The same identification in the primary and the Joliet descriptor.
    const ids = {
      systemId: o.systemId ?? 'LINUX',
      volumeId: o.volumeId ?? 'ISOIMAGE',
      volumeSetId: o.volumeId ?? 'ISOIMAGE',
      publisherId: o.publisherId ?? '',
      preparerId: 'DOCKYARD',
      applicationId: o.applicationId ?? 'DOCKYARD',
      volumeBlocks: total / SECTOR,
    };
    await put(
      primaryVolumeDescriptor({
        ...ids,
        pathTableSize: ptSize,
        lPathLba,
        mPathLba,
        rootRecord: rootRec,
        epoch,
      }),
    );
    if (o.boot) await put(bootRecordDescriptor(catalogLba));
    if (jdirs.length) {
      const j = jdirs[0];
      await put(
        primaryVolumeDescriptor({
          joliet: true,
          ...ids,
          pathTableSize: jptSize,
          lPathLba: jlPathLba,
          mPathLba: jmPathLba,
          rootRecord: dirRecord({ id: Buffer.from([0]), lba: j.lba, size: j.size, flags: FLAG_DIR, epoch: root.ino.mtime }),
          epoch,
        }),
      );
    }
    await put(terminatorDescriptor());
    await padToLba(lPathLba);
    await put(ptRecords(false));
    await padToLba(mPathLba);
    await put(ptRecords(true));
    if (jdirs.length) {
      await padToLba(jlPathLba);
      await put(jptRecords(false));
      await padToLba(jmPathLba);
      await put(jptRecords(true));
    }
    if (catalog) {
      await padToLba(catalogLba);
      await put(catalog);
    }
    for (const d of dirs) {
      await padToLba(d.lba);
      await put(encodeDir(d));
      if (d.region.sectorCount) {
        await padToLba(d.region.lba);
        await put(d.region.encode());
      }
    }
    for (const d of jdirs) {
      await padToLba(d.lba);
      await put(encodeDir(d));
    }
    for (const f of dataOrder) {
      if (f.size === 0) continue;
      await padToLba(f.lba);
      const start = pos;
      if (f.data) await put(f.data);
      else {
        await f.write!({ write: put });
      }
      if (pos - start !== f.size) throw new DockyardError('E_INTERNAL', `iso: ${f.path} wrote ${pos - start} bytes, planned ${f.size}`);
    }
    await padToLba(lba);
    const tail = o.tail?.encode(layout);
    if (tail && tail.length !== tailSize) throw new DockyardError('E_INTERNAL', 'iso: tail size differs from plan');
    const tailStart = total - tailSize;
    while (pos < tailStart) await put(Buffer.alloc(Math.min(tailStart - pos, 1 << 20)));
    if (tail) await put(tail);
  };

  return { ...layout, write };
}
