/**
 * A squashfs 4.0 image (zlib), written from a stream of entries as Linux's
 * fs/squashfs and squashfs-tools read it:
 *
 *   0        superblock (96 bytes, written last)
 *   96       data: file blocks and fragment blocks, as the entries come
 *            inode table, directory table          (metadata blocks)
 *            fragment table + its index, id table + its index
 *            zero padding to a 4 KiB multiple (not in bytes_used)
 *
 * File content is streamed: each full block is compressed on libuv's pool
 * (up to `parallel` at once) and written strictly in order, so positions
 * depend on the bytes only. Small files and tail ends are packed into
 * fragment blocks; all-zero blocks are sparse (no data); a file equal to
 * an earlier one (size + sha256) shares its blocks and fragment — its own
 * blocks were written already, so the data position is rewound over them.
 * Only per-inode metadata stays in memory until the tables are written.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Entry } from '../rootfs/entry.js';
import type { PositionalSink } from '../archive/positional.js';
import { bodyChunks } from '../archive/sink.js';
import { FsTree, type FsNode } from '../fstree/tree.js';
import { DockyardError } from '../errors.js';
import { compress, MetadataWriter, inodeRef, type MetaRef } from './metadata.js';
import {
  BLKDEV_TYPE,
  CHRDEV_TYPE,
  DIR_TYPE,
  FIFO_TYPE,
  FILE_TYPE,
  NO_FRAGMENT,
  SYMLINK_TYPE,
  devInode,
  dirInode,
  encodeDev,
  fifoInode,
  fileInode,
  fitsBasicFile,
  ldirInode,
  lregInode,
  symlinkInode,
  type FileLayout,
  type InodeBase,
} from './inode.js';
import { Listing, NAME_LEN } from './directory.js';
import { encodeFragments, encodeIds, writeTable, UNCOMPRESSED_BLOCK, type FragmentEntry } from './tables.js';
import { encodeSuperblock, FLAG_ALWAYS_FRAGMENTS, FLAG_DUPLICATES, FLAG_NO_XATTRS, SUPERBLOCK_SIZE } from './superblock.js';

export interface SquashfsOptions {
  /** Seconds: the superblock's mkfs_time and the mtime of entries without one. */
  epoch: number;
  /** Data block size, a power of two 4 KiB..1 MiB; default 131072 (mksquashfs's). */
  blockSize?: number;
  /** zlib level 1..9; default 9 (mksquashfs's gzip default). */
  level?: number;
  /** Blocks compressed at once (libuv pool); default os.availableParallelism() * 2. Output never depends on it. */
  parallel?: number;
  signal?: AbortSignal;
}

const PAD = 4096; // mksquashfs pads the image to a 4 KiB multiple
const SYMLINK_MAX = 4095; // the kernel refuses a symlink longer than a page; Linux's own limit is PATH_MAX − 1
const ZERO = Buffer.alloc(1 << 20);
const DONE = Promise.resolve({ bytes: Buffer.alloc(0), entry: 0 });
const TAG_SPARSE = Buffer.from([0]);
const TAG_DATA = Buffer.from([1]);

/**
 * Writes the image; returns its length (padded to 4 KiB). A duplicate file
 * rewound at the very end can leave bytes past that length in `out`: they
 * are zeroed, and a file may be truncated to `bytes`.
 */
export async function writeSquashfs(entries: AsyncIterable<Entry>, out: PositionalSink, o: SquashfsOptions): Promise<{ bytes: number }> {
  const blockSize = o.blockSize ?? 131072;
  const level = o.level ?? 9;
  const parallel = o.parallel ?? availableParallelism() * 2;
  if (!Number.isInteger(blockSize) || blockSize < 4096 || blockSize > 1 << 20 || (blockSize & (blockSize - 1)) !== 0)
    throw new DockyardError('E_USAGE', `squashfs: block size ${blockSize} is not a power of two from 4 KiB to 1 MiB`);
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new DockyardError('E_USAGE', `squashfs: zlib level ${level} is not 1..9`);
  if (!Number.isInteger(parallel) || parallel < 1) throw new DockyardError('E_USAGE', `squashfs: parallel ${parallel} is not a positive integer`);
  checkTime(o.epoch, 'the build epoch');

  const tree = new FsTree<FileLayout>(o.epoch);
  const data = new DataWriter(out, blockSize, level, parallel, o.signal);
  for await (const e of entries) {
    o.signal?.throwIfAborted();
    checkEntry(e);
    if (e.type === 'file') tree.add(e, await data.file(e));
    else tree.add(e);
  }
  o.signal?.throwIfAborted();
  const dataEnd = await data.finish();
  tree.finish(); // link counts

  const t = await buildTables(tree.root, level, o.signal);
  const inodeTableStart = dataEnd;
  const directoryTableStart = await writeBlocks(out, inodeTableStart, t.inodes);
  const fragStart = await writeBlocks(out, directoryTableStart, t.dirs);
  const frags = await writeTable(out, fragStart, encodeFragments(data.fragments), level);
  const ids = await writeTable(out, frags.end, encodeIds(t.ids), level);
  const bytesUsed = ids.end;
  const padded = Math.ceil(bytesUsed / PAD) * PAD;
  await writeZeros(out, bytesUsed, Math.max(padded, data.high) - bytesUsed);
  await out.pwrite(
    encodeSuperblock({
      inodes: t.count,
      mkfsTime: o.epoch,
      blockSize,
      fragments: data.fragments.length,
      flags: FLAG_NO_XATTRS | FLAG_DUPLICATES | FLAG_ALWAYS_FRAGMENTS,
      ids: t.ids.length,
      rootInode: inodeRef(t.root),
      bytesUsed,
      idTableStart: ids.start,
      inodeTableStart,
      directoryTableStart,
      fragmentTableStart: frags.start,
    }),
    0,
  );
  return { bytes: padded };
}

function checkTime(t: number, what: string): void {
  if (!Number.isFinite(t) || t < 0 || Math.floor(t) > 0xffffffff)
    throw new DockyardError('E_LIMIT', `${what}: time ${t} does not fit squashfs's unsigned 32-bit seconds (1970..2106)`);
}

function checkId(id: number, path: string, what: string): void {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new DockyardError('E_LIMIT', `${path}: ${what} ${id} does not fit squashfs's 32-bit ids`);
}

/** What the image could not hold, refused before any of it is written. */
function checkEntry(e: Entry): void {
  const shown = e.path === '' ? '/' : e.path;
  if (e.path !== '')
    for (const part of e.path.split('/')) {
      if (part === '' || part === '.' || part === '..' || part.includes('\0'))
        throw new DockyardError('E_LAYER_FORMAT', `${shown}: "${part}" is not a name a squashfs directory can hold`);
      const n = Buffer.byteLength(part);
      if (n > NAME_LEN) throw new DockyardError('E_LAYER_FORMAT', `${shown}: a name of ${n} bytes; squashfs names are at most ${NAME_LEN} bytes`);
    }
  if (e.mtime !== undefined) checkTime(e.mtime, shown);
  checkId(e.uid, shown, 'uid');
  checkId(e.gid, shown, 'gid');
  if (e.type === 'file' && (!Number.isSafeInteger(e.size) || e.size < 0)) throw new DockyardError('E_LIMIT', `${shown}: file size ${e.size} is not a byte count`);
  if (e.type === 'char' || e.type === 'block') {
    const major = e.devmajor ?? 0;
    const minor = e.devminor ?? 0;
    if (!Number.isInteger(major) || major < 0 || major > 0xfff || !Number.isInteger(minor) || minor < 0 || minor > 0xfffff)
      throw new DockyardError('E_LIMIT', `${shown}: device ${major}:${minor} does not fit squashfs's 12-bit major and 20-bit minor`);
  }
  if (e.type === 'symlink') {
    const target = e.linkname ?? '';
    if (target.includes('\0')) throw new DockyardError('E_LAYER_FORMAT', `${shown}: symlink target contains a NUL byte`);
    const n = Buffer.byteLength(target);
    if (n > SYMLINK_MAX) throw new DockyardError('E_LIMIT', `${shown}: symlink target of ${n} bytes; the kernel reads at most ${SYMLINK_MAX}`);
  }
}

/** One write to the data area, in order: bytes once compressed, then told where they went. */
interface Job {
  out: Promise<{ bytes: Buffer; entry: number }>;
  place(at: number, entry: number): void;
}

/** zlib, or the raw bytes flagged as stored when zlib does not shrink them (squashfs_fs.h SQUASHFS_COMPRESSED_BIT_BLOCK). */
function compressBlock(raw: Buffer, level: number): Job['out'] {
  return compress(raw, level).then((z) => (z ? { bytes: z, entry: z.length } : { bytes: raw, entry: raw.length | UNCOMPRESSED_BLOCK }));
}

function isZero(b: Buffer): boolean {
  return b.equals(ZERO.subarray(0, b.length));
}

/** The data area: file blocks and fragment blocks, compressed in parallel, written in order. */
class DataWriter {
  /** Where the next block goes. */
  private pos = SUPERBLOCK_SIZE;
  /** One past the highest byte written (a rewind leaves bytes past `pos`). */
  high = SUPERBLOCK_SIZE;
  private readonly queue: Job[] = [];
  /** Fragment blocks written, by index. */
  readonly fragments: FragmentEntry[] = [];
  private fragmentCount = 0;
  private frag: Buffer;
  private fragFill = 0;
  /** Files by size + content hash, for deduplication. */
  private readonly seen = new Map<string, FileLayout>();

  constructor(
    private readonly out: PositionalSink,
    private readonly bs: number,
    private readonly level: number,
    private readonly parallel: number,
    private readonly signal?: AbortSignal,
  ) {
    this.frag = Buffer.allocUnsafe(bs);
  }

  private async submit(job: Job): Promise<void> {
    job.out.catch(() => {}); // awaited in order by place(); no unhandled rejection meanwhile
    this.queue.push(job);
    while (this.queue.length > this.parallel) await this.placeNext();
  }

  private async placeNext(): Promise<void> {
    const job = this.queue.shift()!;
    const { bytes, entry } = await job.out;
    const at = this.pos;
    if (bytes.length > 0) {
      await this.out.pwrite(bytes, at);
      this.pos += bytes.length;
      this.high = Math.max(this.high, this.pos);
    }
    job.place(at, entry);
  }

  /** Consumes a file entry's body; returns where its content is. */
  async file(e: Entry): Promise<FileLayout> {
    const size = e.size;
    if (size < this.bs) {
      const content = await readAll(e);
      const f: FileLayout = { size, start: 0, blocks: [], fragment: NO_FRAGMENT, offset: 0, sparse: 0 };
      if (size === 0) return f;
      const key = `${size}:${createHash('sha256').update(content).digest('hex')}`;
      const dup = this.seen.get(key);
      if (dup) return dup;
      await this.toFragment(content, f);
      this.seen.set(key, f);
      return f;
    }
    return this.largeFile(e);
  }

  /** A file of at least one block: blocks streamed out, the tail kept for a fragment. */
  private async largeFile(e: Entry): Promise<FileLayout> {
    const { size } = e;
    const bs = this.bs;
    const full = Math.floor(size / bs);
    const f: FileLayout = { size, start: -1, blocks: new Array<number>(full).fill(0), fragment: NO_FRAGMENT, offset: 0, sparse: 0 };
    // Over each block a tag and (unless sparse) its bytes, then the tail: equal for equal contents of one size.
    const hash = createHash('sha256');
    const tail = Buffer.allocUnsafe(size - full * bs);
    let tailFill = 0;
    let cur: Buffer | undefined;
    let fill = 0;
    let n = 0;
    let got = 0;
    const block = async (b: Buffer, owned: boolean): Promise<boolean> => {
      this.signal?.throwIfAborted(); // a body may be gigabytes
      const i = n++;
      if (isZero(b)) {
        hash.update(TAG_SPARSE);
        f.sparse += bs;
        return false;
      }
      hash.update(TAG_DATA).update(b);
      const raw = owned ? b : Buffer.from(b); // the body's chunk may be reused once we ask for more
      await this.submit({
        out: compressBlock(raw, this.level),
        place: (at, entry) => {
          if (f.start < 0) f.start = at;
          f.blocks[i] = entry;
        },
      });
      return true;
    };
    for await (const c of bodyChunks(e.body)) {
      got += c.length;
      if (got > size) throw sizeMismatch(e, `more than ${size}`);
      let p = 0;
      while (p < c.length) {
        if (n < full) {
          if (fill === 0 && c.length - p >= bs) {
            await block(c.subarray(p, p + bs), false);
            p += bs;
            continue;
          }
          cur ??= Buffer.allocUnsafe(bs);
          const k = Math.min(bs - fill, c.length - p);
          c.copy(cur, fill, p, p + k);
          fill += k;
          p += k;
          if (fill === bs) {
            if (await block(cur, true)) cur = undefined;
            fill = 0;
          }
        } else {
          c.copy(tail, tailFill, p);
          tailFill += c.length - p;
          p = c.length;
        }
      }
    }
    if (got !== size) throw sizeMismatch(e, String(got));
    hash.update(tail);
    const key = `${size}:${hash.digest('hex')}`;
    const dup = this.seen.get(key);
    await this.submit({
      out: DONE,
      place: (at) => {
        if (f.start < 0) f.start = at;
        // A duplicate: what its blocks wrote is overwritten by whatever comes next.
        if (dup) this.pos = f.start;
      },
    });
    if (dup) return dup;
    if (tail.length > 0) await this.toFragment(tail, f);
    this.seen.set(key, f);
    return f;
  }

  /** Packs a small file or a tail into the fragment block being filled. */
  private async toFragment(bytes: Buffer, f: FileLayout): Promise<void> {
    if (this.fragFill + bytes.length > this.bs) await this.flushFragment();
    f.fragment = this.fragmentCount;
    f.offset = this.fragFill;
    bytes.copy(this.frag, this.fragFill);
    this.fragFill += bytes.length;
  }

  private async flushFragment(): Promise<void> {
    if (this.fragFill === 0) return;
    if (this.fragmentCount >= NO_FRAGMENT) throw new DockyardError('E_LIMIT', 'squashfs: more than 2^32 − 1 fragment blocks');
    const raw = this.frag.subarray(0, this.fragFill);
    const i = this.fragmentCount++;
    this.frag = Buffer.allocUnsafe(this.bs);
    this.fragFill = 0;
    await this.submit({ out: compressBlock(raw, this.level), place: (at, entry) => (this.fragments[i] = { start: at, size: entry }) });
  }

  /** Writes the last fragment and everything still compressing; returns the end of the data. */
  async finish(): Promise<number> {
    await this.flushFragment();
    while (this.queue.length > 0) await this.placeNext();
    return this.pos;
  }
}

function sizeMismatch(e: Entry, got: string): DockyardError {
  return new DockyardError('E_LAYER_FORMAT', `${e.path}: the content is ${got} bytes, its header says ${e.size}`);
}

/** A small body (under one block), checked against its size. */
async function readAll(e: Entry): Promise<Buffer> {
  const b = Buffer.allocUnsafe(e.size);
  let got = 0;
  for await (const c of bodyChunks(e.body)) {
    if (got + c.length > e.size) throw sizeMismatch(e, `more than ${e.size}`);
    c.copy(b, got);
    got += c.length;
  }
  if (got !== e.size) throw sizeMismatch(e, String(got));
  return b;
}

/** The id table: each uid/gid once, in the order the inodes first use them. */
class Ids {
  readonly list: number[] = [];
  private readonly index = new Map<number, number>();
  get(id: number): number {
    let i = this.index.get(id);
    if (i === undefined) {
      if (this.list.length === 0xffff) throw new DockyardError('E_LIMIT', 'squashfs: more than 65535 distinct uids and gids');
      i = this.list.length;
      this.list.push(id);
      this.index.set(id, i);
    }
    return i;
  }
}

function basicType(n: FsNode<FileLayout>): number {
  switch (n.type) {
    case 'dir':
      return DIR_TYPE;
    case 'file':
      return FILE_TYPE;
    case 'symlink':
      return SYMLINK_TYPE;
    case 'block':
      return BLKDEV_TYPE;
    case 'char':
      return CHRDEV_TYPE;
    case 'fifo':
      return FIFO_TYPE;
  }
}

type Child = [Buffer, FsNode<FileLayout>];

/** A directory's children in strcmp order of their UTF-8 names (as sortedChildren), encoded once. */
function sortedKids(d: FsNode<FileLayout>): Child[] {
  const kids: Child[] = [...d.children!].map(([name, n]) => [Buffer.from(name), n]);
  kids.sort(([a], [b]) => Buffer.compare(a, b));
  for (let i = 1; i < kids.length; i++)
    if (kids[i - 1][0].equals(kids[i][0])) throw new DockyardError('E_LAYER_FORMAT', `${d.path || '/'}: two names encode to the same bytes (${kids[i][0].toString()})`);
  return kids;
}

/**
 * Every distinct node once, each directory after its children (depth
 * first, names in order): the order inodes are written and numbered in, so
 * that a directory's listing can name its children's inodes. The root is
 * last (inode N), as mksquashfs has it.
 */
function postOrder(root: FsNode<FileLayout>): { order: FsNode<FileLayout>[]; kids: Map<FsNode<FileLayout>, Child[]>; parent: Map<FsNode<FileLayout>, FsNode<FileLayout>> } {
  const order: FsNode<FileLayout>[] = [];
  const kids = new Map<FsNode<FileLayout>, Child[]>();
  const parent = new Map<FsNode<FileLayout>, FsNode<FileLayout>>();
  const seen = new Set<FsNode<FileLayout>>([root]);
  kids.set(root, sortedKids(root));
  const stack: { dir: FsNode<FileLayout>; i: number }[] = [{ dir: root, i: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const list = kids.get(top.dir)!;
    if (top.i === list.length) {
      order.push(top.dir);
      stack.pop();
      continue;
    }
    const c = list[top.i++][1];
    if (seen.has(c)) continue; // a hard link to a node already placed
    seen.add(c);
    if (c.type === 'dir') {
      parent.set(c, top.dir);
      kids.set(c, sortedKids(c));
      stack.push({ dir: c, i: 0 });
    } else order.push(c);
  }
  return { order, kids, parent };
}

/** Inode and directory tables (compressed blocks, offsets relative to each table) and the ids. */
async function buildTables(root: FsNode<FileLayout>, level: number, signal?: AbortSignal): Promise<{ inodes: Buffer[]; dirs: Buffer[]; ids: number[]; root: MetaRef; count: number }> {
  const { order, kids, parent } = postOrder(root);
  const count = order.length;
  const number = new Map<FsNode<FileLayout>, number>();
  order.forEach((n, i) => number.set(n, i + 1));
  const ids = new Ids();
  const inodes = new MetadataWriter(level, 'inode table');
  const dirs = new MetadataWriter(level, 'directory table');
  const refs = new Map<FsNode<FileLayout>, MetaRef>();
  for (const [i, n] of order.entries()) {
    if (i % 1024 === 0) signal?.throwIfAborted();
    const h: InodeBase = { mode: n.mode, uid: ids.get(n.uid), gid: ids.get(n.gid), mtime: Math.floor(n.mtime), number: i + 1 };
    refs.set(n, await inodes.add(await encodeInode(n, h)));
  }

  async function encodeInode(n: FsNode<FileLayout>, h: InodeBase): Promise<Buffer> {
    switch (n.type) {
      case 'dir': {
        const listing = new Listing();
        for (const [name, c] of kids.get(n)!) listing.add(name, refs.get(c)!, number.get(c)!, basicType(c));
        kids.delete(n);
        const { start, index } = await listing.write(dirs);
        const size = listing.size + 3; // "." and ".." count as 3 bytes
        if (size > 0xffffffff) throw new DockyardError('E_LIMIT', `${n.path || '/'}: a directory listing of ${size} bytes; squashfs holds at most 4 GiB`);
        const d = { start: start.block, offset: start.offset, nlink: n.links, size, parent: n === root ? count + 1 : number.get(parent.get(n)!)! };
        return size <= 0xffff && index.length === 0 ? dirInode(h, d) : ldirInode(h, { ...d, index });
      }
      case 'file': {
        const f = n.data ?? { size: 0, start: 0, blocks: [], fragment: NO_FRAGMENT, offset: 0, sparse: 0 };
        return fitsBasicFile(f, n.links) ? fileInode(h, f) : lregInode(h, f, n.links);
      }
      case 'symlink':
        return symlinkInode(h, n.links, Buffer.from(n.target ?? ''));
      case 'char':
      case 'block':
        return devInode(h, n.type === 'char' ? CHRDEV_TYPE : BLKDEV_TYPE, n.links, encodeDev(n.devmajor ?? 0, n.devminor ?? 0));
      case 'fifo':
        return fifoInode(h, n.links);
    }
  }

  const rootRef = refs.get(root)!;
  await inodes.finish();
  await dirs.finish();
  return { inodes: inodes.blocks, dirs: dirs.blocks, ids: ids.list, root: rootRef, count };
}

/** Writes compressed metadata blocks back to back from `at` (in writes of about 1 MiB); returns where they end. */
async function writeBlocks(out: PositionalSink, at: number, blocks: Buffer[]): Promise<number> {
  let batch: Buffer[] = [];
  let len = 0;
  const flush = async () => {
    await out.pwrite(Buffer.concat(batch, len), at);
    at += len;
    batch = [];
    len = 0;
  };
  for (const b of blocks) {
    batch.push(b);
    len += b.length;
    if (len >= 1 << 20) await flush();
  }
  if (len > 0) await flush();
  return at;
}

async function writeZeros(out: PositionalSink, at: number, n: number): Promise<void> {
  while (n > 0) {
    const k = Math.min(n, ZERO.length);
    await out.pwrite(ZERO.subarray(0, k), at);
    at += k;
    n -= k;
  }
}
