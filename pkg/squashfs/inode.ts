/**
 * squashfs 4.0 inodes (squashfs_fs.h struct squashfs_*_inode_header; read
 * by the kernel's fs/squashfs/inode.c squashfs_read_inode). Every inode
 * starts with the 16-byte base header; the rest depends on the type. The
 * basic types are used where they can hold the inode, the extended ones
 * (larger fields, nlink for files, a directory index) where they cannot.
 * `mode` holds the permission bits only (SQUASHFS_MODE: 0o7777); the kernel
 * adds the S_IFMT bits from the type.
 */
import { u64 } from './superblock.js';

export const DIR_TYPE = 1; // SQUASHFS_DIR_TYPE
export const FILE_TYPE = 2; // SQUASHFS_FILE_TYPE
export const SYMLINK_TYPE = 3; // SQUASHFS_SYMLINK_TYPE
export const BLKDEV_TYPE = 4; // SQUASHFS_BLKDEV_TYPE
export const CHRDEV_TYPE = 5; // SQUASHFS_CHRDEV_TYPE
export const FIFO_TYPE = 6; // SQUASHFS_FIFO_TYPE
export const LDIR_TYPE = 8; // SQUASHFS_LDIR_TYPE
export const LREG_TYPE = 9; // SQUASHFS_LREG_TYPE

export const NO_FRAGMENT = 0xffffffff; // SQUASHFS_INVALID_FRAG
const NO_XATTR = 0xffffffff; // SQUASHFS_INVALID_XATTR

/** Fields of struct squashfs_base_inode_header. */
export interface InodeBase {
  mode: number;
  /** Index of the owner in the id table. */
  uid: number;
  /** Index of the group in the id table. */
  gid: number;
  mtime: number;
  number: number;
}

function base(b: Buffer, type: number, h: InodeBase): void {
  b.writeUInt16LE(type, 0); // 0: inode_type
  b.writeUInt16LE(h.mode & 0o7777, 2); // 2: mode (permission bits)
  b.writeUInt16LE(h.uid, 4); // 4: uid (id table index)
  b.writeUInt16LE(h.gid, 6); // 6: guid (id table index)
  b.writeUInt32LE(h.mtime, 8); // 8: mtime
  b.writeUInt32LE(h.number, 12); // 12: inode_number
}

/** The kernel's new_encode_dev (include/linux/kdev_t.h): 12-bit major, 20-bit minor. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** struct squashfs_dir_inode_header (type 1): a listing of up to 65532 bytes, no index. */
export function dirInode(h: InodeBase, d: { start: number; nlink: number; size: number; offset: number; parent: number }): Buffer {
  const b = Buffer.alloc(32);
  base(b, DIR_TYPE, h);
  b.writeUInt32LE(d.start, 16); // 16: start_block (from directory_table_start)
  b.writeUInt32LE(d.nlink, 20); // 20: nlink
  b.writeUInt16LE(d.size, 24); // 24: file_size (listing bytes + 3)
  b.writeUInt16LE(d.offset, 26); // 26: offset in the uncompressed block
  b.writeUInt32LE(d.parent, 28); // 28: parent_inode
  return b;
}

/** struct squashfs_dir_index: one entry of an extended directory's index. */
export interface DirIndexEntry {
  /** Offset of a directory header in the listing. */
  index: number;
  /** Directory table block (from directory_table_start) holding that header. */
  start: number;
  /** The header's first name. */
  name: Buffer;
}

/** struct squashfs_ldir_inode_header (type 8) with its index entries after it. */
export function ldirInode(h: InodeBase, d: { start: number; nlink: number; size: number; offset: number; parent: number; index: DirIndexEntry[] }): Buffer {
  const len = 40 + d.index.reduce((n, e) => n + 12 + e.name.length, 0);
  const b = Buffer.alloc(len);
  base(b, LDIR_TYPE, h);
  b.writeUInt32LE(d.nlink, 16); // 16: nlink
  b.writeUInt32LE(d.size, 20); // 20: file_size (listing bytes + 3)
  b.writeUInt32LE(d.start, 24); // 24: start_block
  b.writeUInt32LE(d.parent, 28); // 28: parent_inode
  b.writeUInt16LE(d.index.length, 32); // 32: i_count
  b.writeUInt16LE(d.offset, 34); // 34: offset
  b.writeUInt32LE(NO_XATTR, 36); // 36: xattr
  let p = 40; // 40: index[]
  for (const e of d.index) {
    b.writeUInt32LE(e.index, p); // +0: index
    b.writeUInt32LE(e.start, p + 4); // +4: start_block
    b.writeUInt32LE(e.name.length - 1, p + 8); // +8: size (name length − 1)
    e.name.copy(b, p + 12); // +12: name
    p += 12 + e.name.length;
  }
  return b;
}

/** Where a regular file's content is. */
export interface FileLayout {
  size: number;
  /** Data position of the first block. */
  start: number;
  /** Per full block: compressed length | (1 << 24 if stored), 0 = sparse. */
  blocks: number[];
  /** Fragment block index holding the tail, or NO_FRAGMENT. */
  fragment: number;
  /** Offset of the tail in the uncompressed fragment block. */
  offset: number;
  /** Bytes in sparse blocks. */
  sparse: number;
}

/** Whether the basic file inode (type 2: 32-bit fields, nlink 1, no sparse count) can hold it. */
export function fitsBasicFile(f: FileLayout, nlink: number): boolean {
  return nlink === 1 && f.size <= 0xffffffff && f.start <= 0xffffffff && f.sparse === 0;
}

/** struct squashfs_reg_inode_header (type 2) and its block list. */
export function fileInode(h: InodeBase, f: FileLayout): Buffer {
  const b = Buffer.alloc(32 + 4 * f.blocks.length);
  base(b, FILE_TYPE, h);
  b.writeUInt32LE(f.start, 16); // 16: start_block
  b.writeUInt32LE(f.fragment, 20); // 20: fragment
  b.writeUInt32LE(f.offset, 24); // 24: offset
  b.writeUInt32LE(f.size, 28); // 28: file_size
  blockList(b, 32, f.blocks); // 32: block_list[]
  return b;
}

/** struct squashfs_lreg_inode_header (type 9) and its block list. */
export function lregInode(h: InodeBase, f: FileLayout, nlink: number): Buffer {
  const b = Buffer.alloc(56 + 4 * f.blocks.length);
  base(b, LREG_TYPE, h);
  u64(b, 16, f.start); // 16: start_block
  u64(b, 24, f.size); // 24: file_size
  // mksquashfs keeps `sparse` below the size (so a wholly sparse file still reads as "not all sparse").
  u64(b, 32, f.sparse && f.sparse >= f.size ? f.size - 1 : f.sparse); // 32: sparse
  b.writeUInt32LE(nlink, 40); // 40: nlink
  b.writeUInt32LE(f.fragment, 44); // 44: fragment
  b.writeUInt32LE(f.offset, 48); // 48: offset
  b.writeUInt32LE(NO_XATTR, 52); // 52: xattr
  blockList(b, 56, f.blocks); // 56: block_list[]
  return b;
}

function blockList(b: Buffer, off: number, blocks: number[]): void {
  for (let i = 0; i < blocks.length; i++) b.writeUInt32LE(blocks[i], off + 4 * i);
}

/** struct squashfs_symlink_inode_header (type 3) and the target. */
export function symlinkInode(h: InodeBase, nlink: number, target: Buffer): Buffer {
  const b = Buffer.alloc(24 + target.length);
  base(b, SYMLINK_TYPE, h);
  b.writeUInt32LE(nlink, 16); // 16: nlink
  b.writeUInt32LE(target.length, 20); // 20: symlink_size
  target.copy(b, 24); // 24: symlink
  return b;
}

/** struct squashfs_dev_inode_header (type 4 block, 5 char). */
export function devInode(h: InodeBase, type: typeof BLKDEV_TYPE | typeof CHRDEV_TYPE, nlink: number, rdev: number): Buffer {
  const b = Buffer.alloc(24);
  base(b, type, h);
  b.writeUInt32LE(nlink, 16); // 16: nlink
  b.writeUInt32LE(rdev, 20); // 20: rdev (new_encode_dev)
  return b;
}

/** struct squashfs_ipc_inode_header (type 6 fifo). */
export function fifoInode(h: InodeBase, nlink: number): Buffer {
  const b = Buffer.alloc(20);
  base(b, FIFO_TYPE, h);
  b.writeUInt32LE(nlink, 16); // 16: nlink
  return b;
}
