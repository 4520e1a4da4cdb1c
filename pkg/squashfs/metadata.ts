/**
 * squashfs metadata blocks (squashfs_fs.h SQUASHFS_METADATA_SIZE; the
 * kernel's fs/squashfs/block.c squashfs_read_data): the inode, directory,
 * fragment and id tables are streams cut into 8 KiB pieces, each stored
 * as a 2-byte little-endian header and the piece, compressed unless
 * compressing does not make it smaller:
 *   header bits 0–14: the stored length; bit 15 (SQUASHFS_COMPRESSED_BIT)
 *   set: stored uncompressed.
 * Something in a table is found by an "inode ref" style pair: the byte
 * offset of its block's header from the table's start, and its offset in
 * the block's uncompressed bytes (SQUASHFS_MKINODE: block << 16 | offset).
 */
import { deflate } from 'node:zlib';
import { promisify } from 'node:util';
import { DockyardError } from '../errors.js';

const deflateAsync = promisify(deflate);

export const METADATA_SIZE = 8192; // SQUASHFS_METADATA_SIZE
const UNCOMPRESSED_META = 0x8000; // SQUASHFS_COMPRESSED_BIT: set = stored uncompressed

/** Where something starts in a metadata table. */
export interface MetaRef {
  /** Offset of the block's header from the table's start. */
  block: number;
  /** Offset in the block's uncompressed bytes (0..8191). */
  offset: number;
}

/** SQUASHFS_MKINODE: the 48-bit reference kept in the superblock (root_inode) and export table. */
export function inodeRef(r: MetaRef): number {
  return r.block * 0x10000 + r.offset;
}

/** zlib (RFC 1950) at `level`, or undefined when that does not make `raw` smaller. */
export async function compress(raw: Buffer, level: number): Promise<Buffer | undefined> {
  const z = await deflateAsync(raw, { level });
  return z.length < raw.length ? z : undefined;
}

/** One metadata block: header + (compressed or raw) bytes of at most 8 KiB. */
export async function metadataBlock(raw: Buffer, level: number): Promise<Buffer> {
  if (raw.length > METADATA_SIZE) throw new Error(`metadata block of ${raw.length} bytes`);
  const z = await compress(raw, level);
  const body = z ?? raw;
  const b = Buffer.alloc(2 + body.length);
  b.writeUInt16LE(z ? body.length : body.length | UNCOMPRESSED_META, 0);
  body.copy(b, 2);
  return b;
}

/**
 * A metadata table being written: bytes go in as a stream; every full
 * 8 KiB is compressed at once (in order), so the block a byte lands in
 * already has its final offset when add() returns the ref. The compressed
 * blocks are kept (they are written out once the data area's end is known).
 */
export class MetadataWriter {
  private buf = Buffer.alloc(METADATA_SIZE);
  private fill = 0;
  /** Compressed bytes of the blocks done so far: the current block's offset. */
  private done = 0;
  readonly blocks: Buffer[] = [];

  constructor(
    private readonly level: number,
    /** For the E_LIMIT message: "inode table", "directory table". */
    private readonly what: string,
  ) {}

  /** Where the next byte will go. */
  position(): MetaRef {
    if (this.done > 0xffffffff) throw new DockyardError('E_LIMIT', `squashfs: the ${this.what} is larger than 4 GiB, which its 32-bit references cannot address`);
    return { block: this.done, offset: this.fill };
  }

  /** Appends `b`; returns where it starts. */
  async add(b: Buffer): Promise<MetaRef> {
    const at = this.position();
    let p = 0;
    while (p < b.length) {
      const n = Math.min(METADATA_SIZE - this.fill, b.length - p);
      b.copy(this.buf, this.fill, p, p + n);
      this.fill += n;
      p += n;
      if (this.fill === METADATA_SIZE) await this.flush();
    }
    return at;
  }

  private async flush(): Promise<void> {
    if (this.fill === 0) return;
    const block = await metadataBlock(this.buf.subarray(0, this.fill), this.level);
    this.blocks.push(block);
    this.done += block.length;
    this.fill = 0;
  }

  /** Compresses the last, partial block; returns the table's length. */
  async finish(): Promise<number> {
    await this.flush();
    return this.done;
  }
}
