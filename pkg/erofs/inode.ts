/**
 * EROFS on-disk inodes (include/erofs_fs.h): the 32-byte compact form
 * (struct erofs_inode_compact) and the 64-byte extended form (struct
 * erofs_inode_extended), as fs/erofs/inode.c (erofs_read_inode) reads them.
 * Inodes live in the metadata area at meta_blkaddr·4096 + nid·32.
 */

/** i_format bit 0: EROFS_INODE_LAYOUT_COMPACT (0) / _EXTENDED (1). */
export const COMPACT_SIZE = 32;
export const EXTENDED_SIZE = 64;

/** i_format bits 1–3, the data layout (EROFS_INODE_*). */
export const FLAT_PLAIN = 0; // data in contiguous blocks from raw_blkaddr
export const FLAT_INLINE = 2; // same, but the last partial block right after the inode

/** File type bits of i_mode (the kernel's S_IF*). */
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFDIR = 0o040000;
export const S_IFBLK = 0o060000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** The largest major and minor new_encode_dev can hold (12 and 20 bits). */
export const MAX_MAJOR = 0xfff;
export const MAX_MINOR = 0xfffff;

/**
 * The kernel's new_encode_dev(): what i_u holds for a device node, which
 * erofs_read_inode turns back with new_decode_dev().
 */
export function newEncodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

export interface InodeFields {
  layout: number;
  /** Full i_mode: type bits | permission bits. */
  mode: number;
  nlink: number;
  size: number;
  /** i_u: raw_blkaddr (file, dir, symlink) or rdev (device, fifo). */
  u: number;
  /** i_ino: for 32-bit stat compatibility only (64-bit kernels use the nid). */
  ino: number;
  uid: number;
  gid: number;
  /** Extended only: mtime seconds and nanoseconds. */
  mtime: number;
  mtimeNsec: number;
}

/** Whether an inode needs the extended form: the compact one has 16-bit ids and nlink, a 32-bit size and no time (it takes the superblock's build time). */
export function needsExtended(f: Pick<InodeFields, 'uid' | 'gid' | 'nlink' | 'size' | 'mtime' | 'mtimeNsec'>, buildTime: number, buildTimeNsec: number): boolean {
  return f.uid > 0xffff || f.gid > 0xffff || f.nlink > 0xffff || f.size > 0xffffffff || f.mtime !== buildTime || f.mtimeNsec !== buildTimeNsec;
}

/** struct erofs_inode_compact (32 bytes). */
export function compactInode(f: InodeFields): Buffer {
  const b = Buffer.alloc(COMPACT_SIZE);
  b.writeUInt16LE(0 | (f.layout << 1), 0); // 0: i_format (bit 0 = 0: compact; bits 1–3: datalayout)
  b.writeUInt16LE(0, 2); // 2: i_xattr_icount (no inline xattrs)
  b.writeUInt16LE(f.mode, 4); // 4: i_mode
  b.writeUInt16LE(f.nlink, 6); // 6: i_nlink
  b.writeUInt32LE(f.size, 8); // 8: i_size
  b.writeUInt32LE(0, 12); // 12: i_reserved (newer kernels: mtime relative to build_time; 0 = build_time)
  b.writeUInt32LE(f.u >>> 0, 16); // 16: i_u (raw_blkaddr / rdev)
  b.writeUInt32LE(f.ino >>> 0, 20); // 20: i_ino
  b.writeUInt16LE(f.uid, 24); // 24: i_uid
  b.writeUInt16LE(f.gid, 26); // 26: i_gid
  b.writeUInt32LE(0, 28); // 28: i_reserved2
  return b;
}

/** struct erofs_inode_extended (64 bytes). */
export function extendedInode(f: InodeFields): Buffer {
  const b = Buffer.alloc(EXTENDED_SIZE);
  b.writeUInt16LE(1 | (f.layout << 1), 0); // 0: i_format (bit 0 = 1: extended)
  b.writeUInt16LE(0, 2); // 2: i_xattr_icount
  b.writeUInt16LE(f.mode, 4); // 4: i_mode
  b.writeUInt16LE(0, 6); // 6: i_reserved
  b.writeBigUInt64LE(BigInt(f.size), 8); // 8: i_size
  b.writeUInt32LE(f.u >>> 0, 16); // 16: i_u (raw_blkaddr / rdev)
  b.writeUInt32LE(f.ino >>> 0, 20); // 20: i_ino
  b.writeUInt32LE(f.uid, 24); // 24: i_uid
  b.writeUInt32LE(f.gid, 28); // 28: i_gid
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(f.mtime)), 32); // 32: i_mtime (the kernel reads it as signed time64)
  b.writeUInt32LE(f.mtimeNsec, 40); // 40: i_mtime_nsec
  b.writeUInt32LE(f.nlink, 44); // 44: i_nlink; 48–63: i_reserved2
  return b;
}
