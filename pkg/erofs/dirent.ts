/**
 * EROFS directory data (include/erofs_fs.h, struct erofs_dirent): each
 * directory block holds whole entries — first every 12-byte dirent, then
 * the names they point at (nameoff), not NUL-terminated: a name ends where
 * the next one starts, the block's last name at the first NUL or the end of
 * the block (fs/erofs/dir.c). The first dirent's nameoff is thus the block's
 * entry count · 12. Names are sorted by their bytes across all blocks, "."
 * and ".." among them: fs/erofs/namei.c binary-searches first the blocks
 * (by their first name), then the entries of one block.
 */

export const DIRENT_SIZE = 12;
/** EROFS_NAME_LEN. */
export const NAME_LEN = 255;

/** file_type codes (EROFS_FT_*, the same numbers as the kernel's FT_*). */
export const FT_REG_FILE = 1;
export const FT_DIR = 2;
export const FT_CHRDEV = 3;
export const FT_BLKDEV = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;

export interface DirEntry {
  name: Buffer;
  nid: number;
  fileType: number;
}

/** struct erofs_dirent (12 bytes). */
export function dirent(nid: number, nameoff: number, fileType: number): Buffer {
  const b = Buffer.alloc(DIRENT_SIZE);
  b.writeBigUInt64LE(BigInt(nid), 0); // 0: nid
  b.writeUInt16LE(nameoff, 8); // 8: nameoff (from the start of the block)
  b[10] = fileType; // 10: file_type
  b[11] = 0; // 11: reserved
  return b;
}

/**
 * Where the blocks of a directory with these (sorted) names break, as
 * mkfs.erofs lays them out: an entry (12 + name bytes) that would not fit
 * the rest of a block starts the next one. `ends[i]` is one past the last
 * entry of block i; `size` is i_size: whole blocks, then what the last one
 * uses.
 */
export function dirLayout(nameLengths: readonly number[], blockSize: number): { ends: number[]; size: number } {
  const ends: number[] = [];
  let used = 0;
  let size = 0;
  for (let i = 0; i < nameLengths.length; i++) {
    const len = DIRENT_SIZE + nameLengths[i];
    if (used + len > blockSize) {
      ends.push(i);
      size += blockSize;
      used = 0;
    }
    used += len;
  }
  if (used > 0) {
    ends.push(nameLengths.length);
    size += used;
  }
  return { ends, size };
}

/**
 * One directory block: the dirents of `entries`, then their names, then
 * zeros up to `length` (the block size, or for an inline tail exactly what
 * it uses).
 */
export function dirBlock(entries: readonly DirEntry[], length: number): Buffer {
  const b = Buffer.alloc(length);
  let nameoff = entries.length * DIRENT_SIZE;
  entries.forEach((e, i) => {
    dirent(e.nid, nameoff, e.fileType).copy(b, i * DIRENT_SIZE);
    e.name.copy(b, nameoff);
    nameoff += e.name.length;
  });
  if (nameoff > length) throw new Error(`directory block overflow (${nameoff} > ${length})`);
  return b;
}
