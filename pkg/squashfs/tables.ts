/**
 * The fragment table and the id table (squashfs_fs.h struct
 * squashfs_fragment_entry, SQUASHFS_FRAGMENT_INDEX*, SQUASHFS_ID_*; read by
 * the kernel's fs/squashfs/fragment.c and id.c). Each is an array of
 * fixed-size entries stored in metadata blocks, followed by an
 * uncompressed index: one u64 per metadata block, its absolute position.
 * The superblock points at the index. The kernel requires each index to
 * end exactly where the next table starts (fragment index → first id
 * block; id index → bytes_used), so the tables are written back to back.
 */
import type { PositionalSink } from '../archive/positional.js';
import { METADATA_SIZE, metadataBlock } from './metadata.js';
import { u64 } from './superblock.js';

export const FRAGMENT_ENTRY_SIZE = 16;
export const UNCOMPRESSED_BLOCK = 1 << 24; // SQUASHFS_COMPRESSED_BIT_BLOCK: set = stored uncompressed

/** Where a fragment block is: position and size field (length | UNCOMPRESSED_BLOCK if stored). */
export interface FragmentEntry {
  start: number;
  size: number;
}

/** struct squashfs_fragment_entry for each fragment block, in fragment index order. */
export function encodeFragments(entries: FragmentEntry[]): Buffer {
  const b = Buffer.alloc(entries.length * FRAGMENT_ENTRY_SIZE);
  entries.forEach((e, i) => {
    const p = i * FRAGMENT_ENTRY_SIZE;
    u64(b, p, e.start); // +0: start_block
    b.writeUInt32LE(e.size, p + 8); // +8: size
    b.writeUInt32LE(0, p + 12); // +12: unused
  });
  return b;
}

/** The id table: each uid/gid as a u32, indexed by the inodes' 16-bit uid/guid fields. */
export function encodeIds(ids: number[]): Buffer {
  const b = Buffer.alloc(ids.length * 4);
  ids.forEach((id, i) => b.writeUInt32LE(id, i * 4));
  return b;
}

/**
 * Writes `bytes` as metadata blocks at `at`, then their index. Returns the
 * index's position (the superblock field) and where the index ends.
 */
export async function writeTable(out: PositionalSink, at: number, bytes: Buffer, level: number): Promise<{ start: number; end: number }> {
  const pieces: Buffer[] = [];
  for (let p = 0; p < bytes.length; p += METADATA_SIZE) pieces.push(bytes.subarray(p, p + METADATA_SIZE));
  const blocks = await Promise.all(pieces.map((p) => metadataBlock(p, level)));
  const index = Buffer.alloc(8 * blocks.length);
  let pos = at;
  for (const [i, b] of blocks.entries()) {
    u64(index, 8 * i, pos);
    await out.pwrite(b, pos);
    pos += b.length;
  }
  await out.pwrite(index, pos);
  return { start: pos, end: pos + index.length };
}
