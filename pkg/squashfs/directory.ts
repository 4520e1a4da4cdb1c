/**
 * squashfs 4.0 directory listings (squashfs_fs.h struct squashfs_dir_header,
 * struct squashfs_dir_entry; read by the kernel's fs/squashfs/dir.c and
 * namei.c). A listing is a run of headers, each followed by up to 256
 * entries whose inodes are in one inode-table block and whose inode
 * numbers are within a signed 16-bit delta of the header's. Names are in
 * strcmp order ("." and ".." are not stored: the inode's file_size counts
 * them as 3 bytes).
 *
 * As mksquashfs does (add_dir), a header is also started once a header
 * would begin more than 8 KiB after the last such point; those headers are
 * the extended directory inode's index entries, which let the kernel's
 * lookup skip to the right metadata block of a large directory.
 */
import { METADATA_SIZE, type MetadataWriter, type MetaRef } from './metadata.js';
import type { DirIndexEntry } from './inode.js';

export const DIR_COUNT = 256; // SQUASHFS_DIR_COUNT: entries a header can hold
export const NAME_LEN = 256; // SQUASHFS_NAME_LEN
const HEADER_SIZE = 12;
const ENTRY_SIZE = 8;

/** struct squashfs_dir_header. */
export function dirHeader(count: number, start: number, number: number): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeUInt32LE(count - 1, 0); // 0: count (entries − 1)
  b.writeUInt32LE(start, 4); // 4: start_block (inode table block of every entry's inode)
  b.writeUInt32LE(number, 8); // 8: inode_number (base for the deltas)
  return b;
}

/** struct squashfs_dir_entry. */
export function dirEntry(offset: number, delta: number, type: number, name: Buffer): Buffer {
  const b = Buffer.alloc(ENTRY_SIZE + name.length);
  b.writeUInt16LE(offset, 0); // 0: offset of the inode in its uncompressed block
  b.writeInt16LE(delta, 2); // 2: inode_number − the header's
  b.writeUInt16LE(type, 4); // 4: type (basic inode type)
  b.writeUInt16LE(name.length - 1, 6); // 6: size (name length − 1)
  name.copy(b, 8); // 8: name
  return b;
}

/** One header and its entries. */
interface Run {
  /** Offset of the header in the listing. */
  at: number;
  block: number;
  base: number;
  names: Buffer[];
  parts: Buffer[];
  /** Whether this header is an index point. */
  indexed: boolean;
}

/** A directory's listing, built from its children in name order. */
export class Listing {
  private readonly runs: Run[] = [];
  /** Listing bytes so far. */
  size = 0;
  private lastIndex = 0;

  /** Adds a child: its name, where its inode is, its inode number and basic type. */
  add(name: Buffer, inode: MetaRef, number: number, type: number): void {
    const cur = this.runs[this.runs.length - 1];
    const len = ENTRY_SIZE + name.length;
    const farFromIndex = cur !== undefined && this.size + len - this.lastIndex > METADATA_SIZE;
    if (
      !cur ||
      cur.names.length === DIR_COUNT ||
      cur.block !== inode.block ||
      number - cur.base > 32767 ||
      number - cur.base < -32768 ||
      farFromIndex
    ) {
      if (farFromIndex) this.lastIndex = this.size;
      this.runs.push({ at: this.size, block: inode.block, base: number, names: [], parts: [], indexed: farFromIndex });
      this.size += HEADER_SIZE;
    }
    const run = this.runs[this.runs.length - 1];
    run.names.push(name);
    run.parts.push(dirEntry(inode.offset, number - run.base, type, name));
    this.size += len;
  }

  /**
   * Appends the listing to the directory table. Returns where it starts and
   * the index entries (empty for a listing under 8 KiB).
   */
  async write(table: MetadataWriter): Promise<{ start: MetaRef; index: DirIndexEntry[] }> {
    const start = table.position();
    const index: DirIndexEntry[] = [];
    for (const r of this.runs) {
      // The header's first byte lands in the block being filled now.
      if (r.indexed) index.push({ index: r.at, start: table.position().block, name: r.names[0] });
      await table.add(Buffer.concat([dirHeader(r.names.length, r.block, r.base), ...r.parts]));
    }
    return { start, index };
  }
}
