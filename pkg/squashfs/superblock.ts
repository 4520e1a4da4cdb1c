/**
 * The squashfs 4.0 superblock (squashfs_fs.h struct squashfs_super_block;
 * read by the kernel's fs/squashfs/super.c squashfs_fill_super): 96 bytes
 * at offset 0, little-endian, pointing at the tables written after the data.
 */

export const SUPERBLOCK_SIZE = 96;
export const SQUASHFS_MAGIC = 0x73717368; // "hsqs"
export const ZLIB_COMPRESSION = 1;

/** squashfs_fs.h filesystem flags (SQUASHFS_MKFLAGS bit numbers). */
export const FLAG_UNCOMPRESSED_INODES = 1 << 0; // SQUASHFS_NOI
export const FLAG_UNCOMPRESSED_DATA = 1 << 1; // SQUASHFS_NOD
export const FLAG_UNCOMPRESSED_FRAGMENTS = 1 << 3; // SQUASHFS_NOF
export const FLAG_NO_FRAGMENTS = 1 << 4; // SQUASHFS_NO_FRAG
export const FLAG_ALWAYS_FRAGMENTS = 1 << 5; // SQUASHFS_ALWAYS_FRAG: tail ends of large files packed into fragments too
export const FLAG_DUPLICATES = 1 << 6; // SQUASHFS_DUPLICATE: duplicate files share their data
export const FLAG_EXPORTABLE = 1 << 7; // SQUASHFS_EXPORT: an inode lookup table is present
export const FLAG_NO_XATTRS = 1 << 9; // SQUASHFS_NO_XATTR

/** An absent table (SQUASHFS_INVALID_BLK, -1 as a u64). */
export const NO_TABLE = -1;

export interface SuperblockFields {
  inodes: number;
  mkfsTime: number;
  blockSize: number;
  fragments: number;
  flags: number;
  ids: number;
  /** inodeRef() of the root directory's inode. */
  rootInode: number;
  bytesUsed: number;
  idTableStart: number;
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
}

/** A u64 from a safe integer; NO_TABLE as all ones. */
export function u64(b: Buffer, off: number, n: number): void {
  if (n === NO_TABLE) {
    b.writeUInt32LE(0xffffffff, off);
    b.writeUInt32LE(0xffffffff, off + 4);
    return;
  }
  b.writeUInt32LE(n % 0x1_0000_0000, off);
  b.writeUInt32LE(Math.floor(n / 0x1_0000_0000), off + 4);
}

export function encodeSuperblock(f: SuperblockFields): Buffer {
  const b = Buffer.alloc(SUPERBLOCK_SIZE);
  b.writeUInt32LE(SQUASHFS_MAGIC, 0); // 0: s_magic
  b.writeUInt32LE(f.inodes, 4); // 4: inodes
  b.writeUInt32LE(f.mkfsTime, 8); // 8: mkfs_time
  b.writeUInt32LE(f.blockSize, 12); // 12: block_size
  b.writeUInt32LE(f.fragments, 16); // 16: fragments
  b.writeUInt16LE(ZLIB_COMPRESSION, 20); // 20: compression
  b.writeUInt16LE(Math.log2(f.blockSize), 22); // 22: block_log
  b.writeUInt16LE(f.flags, 24); // 24: flags
  b.writeUInt16LE(f.ids, 26); // 26: no_ids
  b.writeUInt16LE(4, 28); // 28: s_major
  b.writeUInt16LE(0, 30); // 30: s_minor
  u64(b, 32, f.rootInode); // 32: root_inode
  u64(b, 40, f.bytesUsed); // 40: bytes_used (without the padding)
  u64(b, 48, f.idTableStart); // 48: id_table_start
  u64(b, 56, NO_TABLE); // 56: xattr_id_table_start: no xattrs
  u64(b, 64, f.inodeTableStart); // 64: inode_table_start
  u64(b, 72, f.directoryTableStart); // 72: directory_table_start
  u64(b, 80, f.fragmentTableStart); // 80: fragment_table_start
  u64(b, 88, NO_TABLE); // 88: lookup_table_start: no export table
  return b;
}
