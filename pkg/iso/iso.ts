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
 *   next      directories in path table order (6.8), then Joliet's
 *   next      Rock Ridge Continuation Areas
 *   next      file data: boot images first, then the tree in directory order
 *   end       padding to `padTo`, then `tail` (a backup GPT) in the last bytes
 *
 * Deterministic: every time is `epoch`, children sorted, no identifiers
 * drawn at random.
 */
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';
import { SECTOR, sectors } from './encode.js';
import { assignNames, compareIsoNames, type IsoName } from './names.js';
import { ContinuationRegion, nmEntries, packSystemUse, pxEntry, slEntries, spEntry, erEntry, tfEntry, type PackedSU } from './susp.js';
import { dirRecord, FLAG_DIR, pathTableRecord, primaryVolumeDescriptor, recordBase, terminatorDescriptor } from './records.js';
import { bootCatalog, bootRecordDescriptor, loadSectorsFor, patchBootInfoTable, type BootPlatform } from './eltorito.js';

export type IsoNode =
  | {
      type: 'file';
      path: string;
      size: number;
      /** Writes exactly `size` bytes. */
      write?(sink: ByteSink): Promise<void>;
      /** The bytes, for small files (needed for a boot information table). */
      data?: Buffer;
      mode?: number;
      /** Allocated, but listed in no directory (an El Torito image only the catalog points at). */
      hidden?: boolean;
    }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string; mode?: number };

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

interface Dir {
  kind: 'dir';
  name: string;
  mode: number;
  parent?: Dir;
  children: Map<string, Node>;
  iso?: IsoName;
  number: number; // path table number (1-based)
  lba: number;
  size: number;
  records: { node: Node | Dir; id: Buffer; role: 'self' | 'parent' | 'child'; su: PackedSU }[];
}
interface File {
  kind: 'file';
  name: string;
  mode: number;
  size: number;
  write?(sink: ByteSink): Promise<void>;
  data?: Buffer;
  hidden: boolean;
  iso?: IsoName;
  lba: number;
  path: string;
}
interface Link {
  kind: 'symlink';
  name: string;
  mode: number;
  target: string;
  iso?: IsoName;
}
type Node = Dir | File | Link;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** 9.1.4: one extent holds at most 2^32 − 1 bytes; we write no multi-extent files. */
const MAX_FILE = 0xffffffff - SECTOR + 1;

function splitPath(p: string): string[] {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0 || parts.some((s) => s === '..')) throw new DockyardError('E_INTERNAL', `iso: bad path "${p}"`);
  return parts;
}

function newDir(name: string, mode: number, parent?: Dir): Dir {
  return { kind: 'dir', name, mode, parent, children: new Map(), number: 0, lba: 0, size: 0, records: [] };
}

function buildTree(nodes: IsoNode[]): { root: Dir; files: Map<string, File> } {
  const root = newDir('', 0o755);
  const files = new Map<string, File>();
  const dirOf = (parts: string[]): Dir => {
    let d = root;
    for (const p of parts) {
      let c = d.children.get(p);
      if (!c) {
        c = newDir(p, 0o755, d);
        d.children.set(p, c);
      }
      if (c.kind !== 'dir') throw new DockyardError('E_INTERNAL', `iso: ${parts.join('/')} is below a non-directory`);
      d = c;
    }
    return d;
  };
  for (const n of nodes) {
    const parts = splitPath(n.path);
    const name = parts[parts.length - 1];
    const parent = dirOf(parts.slice(0, -1));
    const existing = parent.children.get(name);
    if (n.type === 'dir') {
      const d = existing ?? newDir(name, 0o755, parent);
      if (d.kind !== 'dir') throw new DockyardError('E_INTERNAL', `iso: ${n.path} given twice`);
      d.mode = n.mode ?? 0o755;
      parent.children.set(name, d);
      continue;
    }
    if (existing) throw new DockyardError('E_INTERNAL', `iso: ${n.path} given twice`);
    if (n.type === 'symlink') {
      parent.children.set(name, { kind: 'symlink', name, mode: n.mode ?? 0o777, target: n.target });
    } else {
      if (n.size > MAX_FILE) throw new DockyardError('E_OUTPUT', `iso: ${n.path} is ${n.size} bytes; files over 4 GiB are not supported`);
      if (!n.write && !n.data) throw new DockyardError('E_INTERNAL', `iso: ${n.path} has neither data nor a writer`);
      if (n.data && n.data.length !== n.size) throw new DockyardError('E_INTERNAL', `iso: ${n.path} size ${n.size} but ${n.data.length} bytes given`);
      const f: File = { kind: 'file', name, mode: n.mode ?? 0o644, size: n.size, write: n.write, data: n.data, hidden: !!n.hidden, lba: 0, path: parts.join('/') };
      parent.children.set(name, f);
      files.set(f.path, f);
    }
  }
  return { root, files };
}

/** Children listed in the directory, in 9.3 order. */
function listed(d: Dir): Node[] {
  return [...d.children.values()].filter((c) => !(c.kind === 'file' && c.hidden)).sort((a, b) => compareIsoNames(a.iso!, b.iso!));
}

function posixMode(n: Node): number {
  return (n.kind === 'dir' ? S_IFDIR : n.kind === 'file' ? S_IFREG : S_IFLNK) | (n.mode & 0o7777);
}

function nlink(n: Node): number {
  if (n.kind !== 'dir') return 1;
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
  const { root, files } = buildTree([...o.nodes, ...catalogNodes]);
  const catalogNode = catalogPath ? files.get(catalogPath) : undefined;
  const epoch = o.epoch;

  // Identifiers: children in byte order of their names claim identifiers first.
  const assign = (d: Dir): void => {
    const kids = [...d.children.values()].filter((c) => !(c.kind === 'file' && c.hidden));
    kids.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
    const names = assignNames(kids.map((k) => ({ name: k.name, isDir: k.kind === 'dir' })));
    kids.forEach((k, i) => (k.iso = names[i]));
    for (const c of d.children.values()) if (c.kind === 'dir') assign(c);
  };
  assign(root);

  // Path table order (9.4.3 / 6.9.1): by level, then parent number, then identifier.
  const dirs: Dir[] = [];
  const queue: Dir[] = [root];
  while (queue.length) {
    const d = queue.shift()!;
    d.number = dirs.length + 1;
    dirs.push(d);
    for (const c of listed(d)) if (c.kind === 'dir') queue.push(c);
  }
  if (dirs.length > 0xffff) throw new DockyardError('E_OUTPUT', 'iso: more than 65535 directories');

  // Directory records with their System Use fields; overflow to Continuation Areas.
  const region = new ContinuationRegion();
  // Entries: [SP first, root "." only], PX, TF, then NM/SL or ER.
  const su = (n: Node, idLen: number, o: { sp?: boolean; after?: Buffer[] } = {}): PackedSU =>
    packSystemUse([...(o.sp ? [spEntry()] : []), pxEntry(posixMode(n), nlink(n), 0, 0), tfEntry(epoch), ...(o.after ?? [])], 255 - recordBase(idLen), region);
  for (const d of dirs) {
    const isRoot = d === root;
    d.records.push({ node: d, id: Buffer.from([0]), role: 'self', su: su(d, 1, isRoot ? { sp: true, after: [erEntry()] } : {}) });
    d.records.push({ node: d.parent ?? d, id: Buffer.from([1]), role: 'parent', su: su(d.parent ?? d, 1) });
    for (const c of listed(d)) {
      const id = Buffer.from(c.iso!.id, 'latin1');
      d.records.push({ node: c, id, role: 'child', su: su(c, id.length, { after: [...nmEntries(c.name), ...(c.kind === 'symlink' ? slEntries(c.target) : [])] }) });
    }
    d.size = extentSize(d.records.map((r) => recordBase(r.id.length) + r.su.length));
  }

  // Joliet (Microsoft's Joliet specification, 1995): a second tree over the
  // same file extents; directories in path table order, symlinks left out.
  const jdirs: JDir[] = [];
  if (o.joliet !== false) {
    const queue: JDir[] = [{ kind: 'jdir', dir: root, id: Buffer.from([0]), number: 0, lba: 0, size: 0, records: [] }];
    while (queue.length) {
      const jd = queue.shift()!;
      jd.number = jdirs.length + 1;
      jdirs.push(jd);
      const kids = [...jd.dir.children.values()].filter((c) => c.kind === 'dir' || (c.kind === 'file' && !c.hidden));
      kids.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
      const used = new Set<string>();
      const named = kids.map((c) => ({ c, id: jolietId(c.name, c.kind === 'dir', used) })).sort((a, b) => Buffer.compare(a.id, b.id));
      jd.records.push({ node: jd, id: Buffer.from([0]) }, { node: jd.parent ?? jd, id: Buffer.from([1]) });
      for (const { c, id } of named) {
        if (c.kind === 'dir') {
          const child: JDir = { kind: 'jdir', dir: c, parent: jd, id, number: 0, lba: 0, size: 0, records: [] };
          queue.push(child);
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
  const bootFiles: File[] = [];
  if (o.boot) {
    for (const e of o.boot.entries) {
      const f = files.get(splitPath(e.path).join('/'));
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
    if (catalogNode) catalogNode.lba = catalogLba;
  }
  for (const d of [...dirs, ...jdirs]) {
    d.lba = lba;
    lba += d.size / SECTOR;
  }
  region.lba = lba;
  lba += region.layout();
  const dataOrder: File[] = [...bootFiles];
  const walk = (d: Dir): void => {
    for (const c of [...d.children.values()].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))) {
      if (c.kind === 'file' && c !== catalogNode && !dataOrder.includes(c)) dataOrder.push(c);
      else if (c.kind === 'dir') walk(c);
    }
  };
  walk(root);
  for (const f of dataOrder) {
    if (f.size === 0) continue;
    f.lba = lba;
    lba += sectors(f.size);
  }
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
      return f.lba;
    },
    sizeOf: (p) => {
      const f = files.get(splitPath(p).join('/'));
      if (!f) throw new DockyardError('E_INTERNAL', `iso: no file ${p}`);
      return f.size;
    },
  };

  // Boot-info-table patches and the catalog's bytes.
  if (o.boot) {
    for (const e of o.boot.entries) {
      const f = files.get(splitPath(e.path).join('/'))!;
      if (e.bootInfoTable) f.data = patchBootInfoTable(f.data!, pvdLba, f.lba);
    }
  }
  const catalog = o.boot
    ? bootCatalog(
        o.boot.entries.map((e) => {
          const f = files.get(splitPath(e.path).join('/'))!;
          return { platform: e.platform, lba: f.lba, loadSectors: e.loadSectors ?? loadSectorsFor(f.size) };
        }),
      )
    : undefined;
  if (catalogNode) catalogNode.data = catalog;

  // Encode directories.
  const recordOf = (n: Node | JDir, id: Buffer, s?: PackedSU): Buffer => {
    const entries = s ? [...s.inline, ...(s.cont !== undefined ? [region.ceFor(s.cont)] : [])] : [];
    if (n.kind === 'jdir') return dirRecord({ id, lba: n.lba, size: n.size, flags: FLAG_DIR, epoch });
    if (n.kind === 'dir') return dirRecord({ id, lba: n.lba, size: n.size, flags: FLAG_DIR, epoch, su: entries });
    if (n.kind === 'file') return dirRecord({ id, lba: n.lba, size: n.size, flags: 0, epoch, su: entries });
    return dirRecord({ id, lba: 0, size: 0, flags: 0, epoch, su: entries });
  };
  const encodeDir = (d: Dir | JDir): Buffer => {
    const b = Buffer.alloc(d.size);
    let p = 0;
    for (const r of d.records as { node: Node | JDir; id: Buffer; su?: PackedSU }[]) {
      const rec = recordOf(r.node, r.id, r.su);
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
    const rootRec = dirRecord({ id: Buffer.from([0]), lba: root.lba, size: root.size, flags: FLAG_DIR, epoch });
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
          rootRecord: dirRecord({ id: Buffer.from([0]), lba: j.lba, size: j.size, flags: FLAG_DIR, epoch }),
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
    for (const d of [...dirs, ...jdirs]) {
      await padToLba(d.lba);
      await put(encodeDir(d));
    }
    await padToLba(region.lba);
    await put(region.encode());
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
