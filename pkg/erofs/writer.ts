/**
 * A streaming EROFS writer (uncompressed), for Linux's fs/erofs as of 6.1.
 *
 * Layout, in the order it is written:
 *   block 0      the superblock at byte 1024 (written last);
 *   block 1…     file contents, each from a block boundary, as the entries
 *                come (EROFS_INODE_FLAT_PLAIN: contiguous blocks from
 *                raw_blkaddr); a file equal to an earlier one (size and
 *                sha256) is not kept — the data position is rewound and it
 *                points at the earlier blocks;
 *   then         directory blocks (and any symlink or directory tail that
 *                could not be inlined);
 *   meta_blkaddr the metadata area: inodes, 32-byte aligned (nid = byte
 *                offset / 32), the root directory first (nid 0: the
 *                superblock has 16 bits for it), each directory's and
 *                symlink's last partial block right after its inode
 *                (EROFS_INODE_FLAT_INLINE) when it fits in the same block.
 *
 * Memory: the tree of entries (per-inode metadata) and one write batch;
 * file contents are never held. Same entries ⇒ same bytes: inode numbers,
 * nids and block addresses follow the tree's order, and the volume UUID is
 * a hash of the content (see `uuidFrom`).
 */
import { createHash, type Hash } from 'node:crypto';
import type { Entry } from '../rootfs/entry.js';
import type { PositionalSink } from '../archive/positional.js';
import { bodyChunks } from '../archive/sink.js';
import { FsTree, type FsNode, type NodeType } from '../fstree/tree.js';
import { DockyardError } from '../errors.js';
import { BLOCK, superblockBlock, VOLUME_NAME_MAX } from './superblock.js';
import {
  COMPACT_SIZE,
  EXTENDED_SIZE,
  FLAT_INLINE,
  FLAT_PLAIN,
  MAX_MAJOR,
  MAX_MINOR,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFREG,
  compactInode,
  extendedInode,
  needsExtended,
  newEncodeDev,
  type InodeFields,
} from './inode.js';
import { dirBlock, dirLayout, FT_BLKDEV, FT_CHRDEV, FT_DIR, FT_FIFO, FT_REG_FILE, FT_SYMLINK, NAME_LEN, type DirEntry } from './dirent.js';

export interface ErofsOptions {
  /** Seconds: the superblock's build_time and the mtime of entries without one. */
  epoch: number;
  /** Volume label (up to 15 bytes: the kernel wants a NUL in its 16); default none. */
  volumeName?: string;
  signal?: AbortSignal;
}

/** Where a file's content is. */
interface FileData {
  blkaddr: number;
}

/** Block addresses are 32-bit. */
const MAX_BLOCKS = 0xffffffff;
/** Longest symlink target the kernel reads whole (page_get_link stops at PAGE_SIZE − 1). */
const MAX_SYMLINK = BLOCK - 1;
const BATCH = 1024 * 1024;
const ZERO = Buffer.alloc(64 * 1024);
const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');

/**
 * Writes `entries` as an EROFS image into `out` from byte 0. Returns the
 * image size (the superblock's block count · 4096). A duplicate file
 * rewound near the end can leave bytes past that size in `out` (more file
 * data was written than the directories and inodes cover again): they are
 * zeroed, and a file may be truncated to `bytes`.
 */
export async function writeErofs(entries: AsyncIterable<Entry>, out: PositionalSink, o: ErofsOptions): Promise<{ bytes: number }> {
  const w = new ErofsWriter(out, o);
  for await (const e of entries) {
    o.signal?.throwIfAborted();
    await w.add(e);
  }
  o.signal?.throwIfAborted();
  return w.finish();
}

/**
 * Sequential writes at a moving position, batched into 1 MiB positional
 * writes (small chunks are copied: a body's chunks may be reused once the
 * next is asked for). `rewind` drops what was written past a position.
 */
class BlockStream {
  pos: number;
  /** One past the furthest byte handed to the sink. */
  highWater: number;
  /** When set, every byte written is hashed too. */
  hash: Hash | undefined;
  private start: number;
  private readonly buf = Buffer.allocUnsafe(BATCH);
  private len = 0;

  constructor(
    private readonly out: PositionalSink,
    pos: number,
  ) {
    this.pos = this.start = this.highWater = pos;
  }

  async write(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    this.hash?.update(b);
    if (b.length >= BATCH) {
      await this.flush();
      await this.out.pwrite(b, this.start);
      this.start += b.length;
      this.pos = this.start;
      this.highWater = Math.max(this.highWater, this.start);
      return;
    }
    if (this.len + b.length > BATCH) await this.flush();
    b.copy(this.buf, this.len);
    this.len += b.length;
    this.pos += b.length;
  }

  async zeros(n: number): Promise<void> {
    while (n > 0) {
      const k = Math.min(n, ZERO.length);
      await this.write(ZERO.subarray(0, k));
      n -= k;
    }
  }

  /** Zeros up to the next block boundary. */
  async padBlock(): Promise<void> {
    const r = this.pos % BLOCK;
    if (r) await this.zeros(BLOCK - r);
  }

  async flush(): Promise<void> {
    if (this.len === 0) return;
    // A copy: the sink may keep the buffer until its write completes, and we reuse ours.
    const b = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    await this.out.pwrite(b, this.start);
    this.start += b.length;
    this.highWater = Math.max(this.highWater, this.start);
  }

  /** Forget everything written at or after `to` (which is ≤ pos); later writes go there. */
  rewind(to: number): void {
    if (to >= this.start) this.len = to - this.start;
    else {
      this.len = 0;
      this.start = to;
    }
    this.pos = to;
  }
}

/** Per inode, what the finishing passes work out. */
interface Inode {
  node: FsNode<FileData>;
  typeBits: number;
  size: number;
  extended: boolean;
  mtime: number;
  mtimeNsec: number;
  /** Byte offset in the metadata area (nid · 32). */
  pos: number;
  /** Bytes of the last partial block (directories and symlinks), 0 if none. */
  tail: number;
  inline: boolean;
  /** i_u: raw_blkaddr or rdev. */
  u: number;
  /** Directories: entries in name order ("." and ".." included) and where blocks end. */
  dir?: { ents: { name: Buffer; idx: number; ft: number }[]; ends: number[] };
  target?: Buffer;
}

const TYPE_BITS: Record<NodeType, number> = { file: S_IFREG, dir: S_IFDIR, symlink: S_IFLNK, char: S_IFCHR, block: S_IFBLK, fifo: S_IFIFO };
const FILE_TYPE: Record<NodeType, number> = { file: FT_REG_FILE, dir: FT_DIR, symlink: FT_SYMLINK, char: FT_CHRDEV, block: FT_BLKDEV, fifo: FT_FIFO };

/** Seconds → whole seconds and nanoseconds, refusing what no 64-bit field holds. */
function splitTime(t: number, what: string): { sec: number; nsec: number } {
  if (!Number.isFinite(t) || Math.abs(t) > Number.MAX_SAFE_INTEGER) throw new DockyardError('E_LIMIT', `${what}: time ${t} does not fit EROFS's 64-bit seconds`);
  let sec = Math.floor(t);
  let nsec = Math.round((t - sec) * 1e9);
  if (nsec >= 1e9) {
    sec += 1;
    nsec = 0;
  }
  return { sec, nsec };
}

function show(path: string): string {
  return path === '' ? '/' : path;
}

class ErofsWriter {
  private readonly tree: FsTree<FileData>;
  private readonly data: BlockStream;
  private readonly dedup = new Map<string, number>();
  /** Over the digests of the stored files, then the directory and metadata blocks: the UUID's source. */
  private readonly contentHash = createHash('sha256');
  private readonly build: { sec: number; nsec: number };

  constructor(
    private readonly out: PositionalSink,
    private readonly o: ErofsOptions,
  ) {
    this.build = splitTime(o.epoch, 'build epoch');
    const label = Buffer.from(o.volumeName ?? '', 'utf8');
    if (label.length > VOLUME_NAME_MAX || label.includes(0))
      throw new DockyardError('E_LIMIT', `EROFS volume name "${o.volumeName}" is ${label.length} bytes; the kernel takes at most ${VOLUME_NAME_MAX}, without NUL`);
    this.tree = new FsTree<FileData>(o.epoch);
    this.data = new BlockStream(out, BLOCK);
  }

  async add(e: Entry): Promise<void> {
    this.checkEntry(e);
    if (e.type === 'file') this.tree.add(e, await this.storeBody(e));
    else this.tree.add(e);
  }

  /** Refuses, naming the path, what the image could not represent. */
  private checkEntry(e: Entry): void {
    const p = show(e.path);
    if (e.path !== '') {
      for (const part of e.path.split('/')) {
        const n = Buffer.byteLength(part, 'utf8');
        if (n > NAME_LEN) throw new DockyardError('E_LAYER_FORMAT', `${p}: a name of ${n} bytes; EROFS names are at most ${NAME_LEN} bytes`);
        if (n === 0 || part === '.' || part === '..' || part.includes('\0')) throw new DockyardError('E_LAYER_FORMAT', `${p}: "${part}" cannot be a name in an EROFS directory`);
      }
    }
    if (e.type === 'hardlink') return;
    for (const [k, v] of [
      ['uid', e.uid],
      ['gid', e.gid],
    ] as const)
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DockyardError('E_LIMIT', `${p}: ${k} ${v} does not fit EROFS's 32 bits`);
    if (e.mtime !== undefined) splitTime(e.mtime, p);
    if (e.type === 'file' && (!Number.isSafeInteger(e.size) || e.size < 0)) throw new DockyardError('E_LIMIT', `${p}: size ${e.size} is not a size EROFS can hold`);
    if (e.type === 'symlink') {
      const n = Buffer.byteLength(e.linkname ?? '', 'utf8');
      if (n === 0) throw new DockyardError('E_LAYER_FORMAT', `${p}: symlink with an empty target`);
      if (n > MAX_SYMLINK) throw new DockyardError('E_LIMIT', `${p}: symlink target of ${n} bytes; at most ${MAX_SYMLINK} can be read back`);
    }
    if (e.type === 'char' || e.type === 'block') {
      const ma = e.devmajor ?? 0;
      const mi = e.devminor ?? 0;
      if (!Number.isInteger(ma) || !Number.isInteger(mi) || ma < 0 || mi < 0 || ma > MAX_MAJOR || mi > MAX_MINOR)
        throw new DockyardError('E_LIMIT', `${p}: device ${ma}:${mi} does not fit EROFS's encoding (major ≤ ${MAX_MAJOR}, minor ≤ ${MAX_MINOR})`);
    }
  }

  /** Streams a file's content to the data area; a duplicate is rewound and shares the earlier blocks. */
  private async storeBody(e: Entry): Promise<FileData> {
    const start = this.data.pos;
    const h = createHash('sha256');
    let n = 0;
    for await (const c of bodyChunks(e.body)) {
      n += c.length;
      if (n > e.size) throw new DockyardError('E_INTERNAL', `${e.path}: body is longer than the ${e.size} bytes its header says`);
      h.update(c);
      await this.data.write(c);
    }
    if (n !== e.size) throw new DockyardError('E_INTERNAL', `${e.path}: body is ${n} bytes, header says ${e.size}`);
    if (n === 0) return { blkaddr: 0 };
    const digest = h.digest();
    const key = `${n}:${digest.toString('base64')}`;
    const earlier = this.dedup.get(key);
    if (earlier !== undefined) {
      this.data.rewind(start);
      return { blkaddr: earlier };
    }
    await this.data.padBlock();
    if (this.data.pos / BLOCK > MAX_BLOCKS) throw new DockyardError('E_LIMIT', `${e.path}: the EROFS image would pass ${MAX_BLOCKS} blocks of ${BLOCK} bytes`);
    const blkaddr = start / BLOCK;
    this.dedup.set(key, blkaddr);
    this.contentHash.update(digest);
    return { blkaddr };
  }

  async finish(): Promise<{ bytes: number }> {
    const nodes = this.tree.finish();
    if (nodes.length > 0xffffffff) throw new DockyardError('E_LIMIT', `${nodes.length} inodes: more than EROFS's 32-bit inode numbers`);
    const inodes = this.describe(nodes);
    const metaBytes = layoutMeta(inodes);

    // Directory (and non-inline tail) blocks go right after the file data.
    await this.data.padBlock(); // (already aligned: every stored file is padded, a rewind goes back to a boundary)
    let blk = this.data.pos / BLOCK;
    const firstDirBlock = blk;
    for (const ino of inodes) {
      if (!ino.dir && !ino.target) continue;
      const n = Math.floor(ino.size / BLOCK) + (ino.tail && !ino.inline ? 1 : 0);
      ino.u = n ? blk : 0;
      blk += n;
    }
    const metaBlkaddr = blk;
    const blocks = metaBlkaddr + metaBytes / BLOCK;
    if (blocks > MAX_BLOCKS) throw new DockyardError('E_LIMIT', `the EROFS image would pass ${MAX_BLOCKS} blocks of ${BLOCK} bytes`);

    const s = this.data;
    s.hash = this.contentHash;
    for (const ino of inodes) {
      if (ino.dir) {
        const full = ino.dir.ends.length - (ino.inline ? 1 : 0);
        for (let j = 0; j < full; j++) await s.write(dirBlock(this.dirSlice(inodes, ino, j), BLOCK));
      } else if (ino.target && !ino.inline) {
        await s.write(ino.target);
        await s.padBlock();
      }
    }
    if (s.pos !== metaBlkaddr * BLOCK) throw new DockyardError('E_INTERNAL', `EROFS directory blocks: wrote ${s.pos / BLOCK - firstDirBlock}, planned ${metaBlkaddr - firstDirBlock}`);

    const metaStart = s.pos;
    for (let i = 0; i < inodes.length; i++) {
      const ino = inodes[i];
      await s.zeros(metaStart + ino.pos - s.pos);
      const f: InodeFields = {
        layout: ino.inline ? FLAT_INLINE : FLAT_PLAIN,
        mode: ino.typeBits | ino.node.mode,
        nlink: ino.node.links,
        size: ino.size,
        u: ino.u,
        ino: i + 1,
        uid: ino.node.uid,
        gid: ino.node.gid,
        mtime: ino.mtime,
        mtimeNsec: ino.mtimeNsec,
      };
      await s.write(ino.extended ? extendedInode(f) : compactInode(f));
      if (ino.inline) {
        if (ino.dir) await s.write(dirBlock(this.dirSlice(inodes, ino, ino.dir.ends.length - 1), ino.tail));
        else await s.write(ino.target!);
      }
    }
    await s.padBlock();
    s.hash = undefined;
    if (s.pos !== blocks * BLOCK) throw new DockyardError('E_INTERNAL', `EROFS metadata: ended at ${s.pos}, planned ${blocks * BLOCK}`);
    const uuid = uuidFrom(this.contentHash.digest());

    // A duplicate rewound near the end may have left bytes past the image: zero them (they are not part of it; `out` may be truncated to `bytes`).
    if (s.highWater > s.pos) await s.zeros(s.highWater - s.pos);
    await s.flush();

    await this.out.pwrite(
      superblockBlock({
        rootNid: inodes[0].pos / 32,
        inos: inodes.length,
        buildTime: this.build.sec,
        buildTimeNsec: this.build.nsec,
        blocks,
        metaBlkaddr,
        uuid,
        volumeName: this.o.volumeName,
      }),
      0,
    );
    return { bytes: blocks * BLOCK };
  }

  /** Entries of directory block `j`, with their nids. */
  private dirSlice(inodes: Inode[], ino: Inode, j: number): DirEntry[] {
    const { ents, ends } = ino.dir!;
    return ents.slice(j === 0 ? 0 : ends[j - 1], ends[j]).map((d) => ({ name: d.name, nid: inodes[d.idx].pos / 32, fileType: d.ft }));
  }

  /** Sizes, forms, directory entries: everything but positions. */
  private describe(nodes: FsNode<FileData>[]): Inode[] {
    const index = new Map<FsNode<FileData>, number>();
    nodes.forEach((n, i) => index.set(n, i));
    const parent: number[] = [0]; // the root is its own parent
    return nodes.map((node, i) => {
      const p = show(node.path);
      const t = splitTime(node.mtime, p);
      const ino: Inode = { node, typeBits: TYPE_BITS[node.type], size: 0, extended: false, mtime: t.sec, mtimeNsec: t.nsec, pos: 0, tail: 0, inline: false, u: 0 };
      switch (node.type) {
        case 'file':
          ino.size = node.size;
          ino.u = node.data?.blkaddr ?? 0;
          break;
        case 'symlink':
          ino.target = Buffer.from(node.target ?? '', 'utf8');
          ino.size = ino.target.length;
          break;
        case 'char':
        case 'block':
          ino.u = newEncodeDev(node.devmajor ?? 0, node.devminor ?? 0);
          break;
        case 'fifo':
          break;
        case 'dir': {
          const ents = [
            { name: DOT, idx: i, ft: FT_DIR },
            { name: DOTDOT, idx: parent[i], ft: FT_DIR },
          ];
          for (const [name, c] of node.children!) {
            const idx = index.get(c)!;
            const b = Buffer.from(name, 'utf8');
            if (b.length > NAME_LEN) throw new DockyardError('E_LAYER_FORMAT', `${node.path ? node.path + '/' : ''}${name}: a name of ${b.length} bytes; EROFS names are at most ${NAME_LEN} bytes`);
            if (c.type === 'dir') parent[idx] = i;
            ents.push({ name: b, idx, ft: FILE_TYPE[c.type] });
          }
          ents.sort((a, b) => Buffer.compare(a.name, b.name));
          const { ends, size } = dirLayout(
            ents.map((d) => d.name.length),
            BLOCK,
          );
          ino.dir = { ents, ends };
          ino.size = size;
          break;
        }
      }
      if (node.links > 0xffffffff) throw new DockyardError('E_LIMIT', `${p}: ${node.links} links do not fit EROFS's 32 bits`);
      if (ino.dir || ino.target) ino.tail = ino.size % BLOCK;
      ino.extended = needsExtended({ nlink: node.links, size: ino.size, uid: node.uid, gid: node.gid, mtime: ino.mtime, mtimeNsec: ino.mtimeNsec }, this.build.sec, this.build.nsec);
      return ino;
    });
  }
}

/**
 * Places inodes (in order, the root first) in the metadata area and decides
 * which tails are inlined. The kernel's rule (erofs_map_blocks_flatmode,
 * erofs_fill_symlink): an inline tail starts right after the inode and must
 * end in the same block. An inode never straddles a block either. When the
 * tail does not fit what is left of the current block, the rest of it is
 * skipped if that wastes less than a whole block for the tail would; else the
 * tail gets a block of its own (EROFS_INODE_FLAT_PLAIN). A tail that does
 * not fit a block even after its inode is never inline. Returns the area's
 * size (whole blocks).
 */
function layoutMeta(inodes: Inode[]): number {
  let pos = 0;
  for (const ino of inodes) {
    const isize = ino.extended ? EXTENDED_SIZE : COMPACT_SIZE;
    let room = BLOCK - (pos % BLOCK);
    if (isize > room) {
      pos += room;
      room = BLOCK;
    }
    if (ino.tail > 0 && isize + ino.tail <= BLOCK) {
      if (isize + ino.tail <= room) ino.inline = true;
      else if (room < BLOCK - ino.tail) {
        pos += room;
        ino.inline = true;
      }
    }
    ino.pos = pos;
    pos += isize + (ino.inline ? ino.tail : 0);
    pos = Math.ceil(pos / 32) * 32;
  }
  return Math.ceil(pos / BLOCK) * BLOCK;
}

/**
 * The volume UUID: the first 16 bytes of a sha256 over the sha256 of every
 * stored file (in block order), then the directory blocks and the metadata
 * area as written — everything before the superblock — with the RFC 9562
 * version 8 ("custom", name-based SHA-256 ids) and 10xx variant bits set,
 * as pkg/disk/guid.ts does.
 */
function uuidFrom(digest: Buffer): Buffer {
  const u = Buffer.from(digest.subarray(0, 16));
  u[6] = (u[6] & 0x0f) | 0x80;
  u[8] = (u[8] & 0x3f) | 0x80;
  return u;
}
