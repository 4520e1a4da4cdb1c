/**
 * Native squashfs 4.0 (zlib) image writer: see writer.ts for the layout,
 * and one file per on-disk structure beside it.
 */
export { writeSquashfs, type SquashfsOptions } from './writer.js';
