/**
 * The EROFS superblock (include/erofs_fs.h, struct erofs_super_block, 128
 * bytes at byte 1024 of block 0) and its crc32c checksum, as Linux's
 * fs/erofs/super.c (erofs_read_superblock, erofs_superblock_csum_verify)
 * reads them. Only what kernel 6.1 knows is set: feature_compat SB_CHKSUM
 * and MTIME, no feature_incompat bits, blkszbits 12, no extension slots.
 */
import { DockyardError } from '../errors.js';

/** EROFS_SUPER_MAGIC_V1. */
export const EROFS_MAGIC = 0xe0f5e1e2;
/** EROFS_SUPER_OFFSET: room for x86 boot sectors "and other oddities". */
export const SUPER_OFFSET = 1024;
/** The block size we write; 6.1 mounts only blkszbits == PAGE_SHIFT (12 on the usual pages). */
export const BLOCK_BITS = 12;
export const BLOCK = 1 << BLOCK_BITS;

/** EROFS_FEATURE_COMPAT_SB_CHKSUM: crc32c over the superblock block from byte 1024. */
export const FEATURE_COMPAT_SB_CHKSUM = 0x1;
/** EROFS_FEATURE_COMPAT_MTIME: extended inodes carry mtime (mkfs.erofs sets it too). */
export const FEATURE_COMPAT_MTIME = 0x2;

/**
 * The volume label's room: 16 bytes, but the kernel copies it with
 * strscpy and refuses a label with no NUL in those 16 bytes ("bad volume
 * name without NIL terminator"), so 15 bytes of text at most.
 */
export const VOLUME_NAME_MAX = 15;

let crcTable: Uint32Array | undefined;

/**
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as the kernel's
 * crc32c(seed, data, len) computes it: no final inversion. The superblock
 * checksum is crc32c(~0, ...), i.e. the inverse of the usual CRC-32C value.
 */
export function crc32cRaw(data: Uint8Array, seed = 0xffffffff): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = seed >>> 0;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return c >>> 0;
}

export interface SuperblockFields {
  /** nid of the root directory (16 bits in this superblock). */
  rootNid: number;
  /** Total valid inodes. */
  inos: number;
  /** Seconds (and nanoseconds): the time of every compact inode. */
  buildTime: number;
  buildTimeNsec: number;
  /** Total blocks of the image (statfs). */
  blocks: number;
  /** Start block of the metadata area (nid 0 is its first 32 bytes). */
  metaBlkaddr: number;
  uuid: Buffer;
  volumeName?: string;
}

/**
 * Block 0 of the image: zeros, the superblock at byte 1024, zeros to the
 * end of the block, with the checksum set (the kernel checksums the whole
 * rest of the block, checksum field zeroed while computing).
 */
export function superblockBlock(f: SuperblockFields): Buffer {
  if (f.rootNid > 0xffff) throw new DockyardError('E_INTERNAL', `EROFS root nid ${f.rootNid} does not fit the superblock's 16 bits`);
  if (f.uuid.length !== 16) throw new DockyardError('E_INTERNAL', 'EROFS uuid must be 16 bytes');
  const name = Buffer.from(f.volumeName ?? '', 'utf8');
  if (name.length > VOLUME_NAME_MAX || name.includes(0))
    throw new DockyardError('E_LIMIT', `EROFS volume name "${f.volumeName}" is ${name.length} bytes; at most ${VOLUME_NAME_MAX}, without NUL, fit (the kernel needs a NUL terminator in its 16 bytes)`);
  const blk = Buffer.alloc(BLOCK);
  const b = blk.subarray(SUPER_OFFSET);
  b.writeUInt32LE(EROFS_MAGIC, 0); // 0: magic
  b.writeUInt32LE(0, 4); // 4: checksum (zero while computing it)
  b.writeUInt32LE(FEATURE_COMPAT_SB_CHKSUM | FEATURE_COMPAT_MTIME, 8); // 8: feature_compat
  b[12] = BLOCK_BITS; // 12: blkszbits
  b[13] = 0; // 13: sb_extslots (superblock is 128 + 16·n bytes)
  b.writeUInt16LE(f.rootNid, 14); // 14: root_nid
  b.writeBigUInt64LE(BigInt(f.inos), 16); // 16: inos
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(f.buildTime)), 24); // 24: build_time
  b.writeUInt32LE(f.buildTimeNsec, 32); // 32: build_time_nsec
  b.writeUInt32LE(f.blocks, 36); // 36: blocks
  b.writeUInt32LE(f.metaBlkaddr, 40); // 40: meta_blkaddr
  b.writeUInt32LE(0, 44); // 44: xattr_blkaddr (no shared xattrs)
  f.uuid.copy(b, 48); // 48: uuid[16]
  name.copy(b, 64); // 64: volume_name[16], NUL-padded
  b.writeUInt32LE(0, 80); // 80: feature_incompat (none: plain 6.1 layout)
  b.writeUInt16LE(0, 84); // 84: u1 (available_compr_algs / lz4_max_distance): unused
  b.writeUInt16LE(0, 86); // 86: extra_devices
  b.writeUInt16LE(0, 88); // 88: devt_slotoff; 90–127 reserved (zero)
  b.writeUInt32LE(crc32cRaw(b), 4); // the kernel: crc32c(~0, block from 1024, 4096 − 1024)
  return blk;
}
