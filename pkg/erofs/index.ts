/**
 * EROFS images (uncompressed), written natively: see writer.ts for the
 * layout, superblock.ts, inode.ts and dirent.ts for the on-disk structures.
 */
export { writeErofs, type ErofsOptions } from './writer.js';
export { BLOCK as EROFS_BLOCK_SIZE, EROFS_MAGIC, VOLUME_NAME_MAX as EROFS_VOLUME_NAME_MAX } from './superblock.js';
