/**
 * Read-only access to the guest's view of a disk image, just enough for
 * `dockyard run` to look at its partition table: raw, qcow2, VHD (fixed and
 * dynamic) and VMDK (hosted sparse, streamOptimized included). Unallocated
 * ranges read as zeros. Nothing here writes.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { inflateRawSync, inflateSync, constants as zc } from 'node:zlib';

export type DiskFormat = 'raw' | 'qcow2' | 'vhd' | 'vmdk';

export interface GuestDisk {
  readonly format: DiskFormat;
  /** Virtual size in bytes. */
  readonly size: number;
  /** `length` bytes of the guest disk at `offset` (zeros past the end). */
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

async function pread(fh: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return buf;
}

/** Reads a byte range as a sequence of fixed-size blocks, each looked up by `block(i)`. */
async function readBlocks(
  offset: number,
  length: number,
  blockSize: number,
  size: number,
  block: (index: number) => Promise<Buffer | null>,
): Promise<Buffer> {
  const out = Buffer.alloc(length);
  let pos = offset;
  const end = Math.min(offset + length, size);
  while (pos < end) {
    const i = Math.floor(pos / blockSize);
    const within = pos - i * blockSize;
    const n = Math.min(blockSize - within, end - pos);
    const data = await block(i);
    if (data) data.copy(out, pos - offset, within, within + n);
    pos += n;
  }
  return out;
}

const u64be = (b: Buffer, o: number): number => Number(b.readBigUInt64BE(o));
const u64le = (b: Buffer, o: number): number => Number(b.readBigUInt64LE(o));

async function openRaw(fh: FileHandle): Promise<GuestDisk> {
  const size = (await fh.stat()).size;
  return {
    format: 'raw',
    size,
    read: (offset, length) => pread(fh, offset, Math.max(0, Math.min(length, size - offset))).then((b) => {
      const out = Buffer.alloc(length);
      b.copy(out);
      return out;
    }),
    close: () => fh.close(),
  };
}

/* qcow2 (QEMU docs/interop/qcow2.txt), big-endian header:
 *   0 magic 'QFI\xfb' | 4 version | 20 cluster_bits | 24 size | 32 crypt_method
 *   36 l1_size | 40 l1_table_offset | 72 incompatible_features (v3) | 104 compression_type (v3, if header_length > 104)
 * L1 entry bits 9-55: L2 table offset. L2 entry: bit 62 compressed; standard bits 9-55 host cluster offset,
 * bit 0 reads as zeros; compressed: host offset in bits 0..x-1, (additional sectors) in x..61, x = 62 - (cluster_bits - 8). */
async function openQcow2(fh: FileHandle): Promise<GuestDisk> {
  const h = await pread(fh, 0, 112);
  const version = h.readUInt32BE(4);
  const clusterBits = h.readUInt32BE(20);
  const size = u64be(h, 24);
  if (h.readUInt32BE(32) !== 0) throw new Error('encrypted qcow2');
  const l1Size = h.readUInt32BE(36);
  const l1Offset = u64be(h, 40);
  let l2EntryBytes = 8;
  let compression = 0;
  if (version >= 3) {
    const incompat = h.readBigUInt64BE(72);
    if (incompat & 16n) l2EntryBytes = 16; // extended L2 entries
    if (h.readUInt32BE(100) > 104) compression = h[104];
  }
  const clusterSize = 2 ** clusterBits;
  const l2Entries = clusterSize / l2EntryBytes;
  const l1 = await pread(fh, l1Offset, l1Size * 8);
  const offMask = 0x00fffffffffffe00n;
  const x = BigInt(62 - (clusterBits - 8));
  const cluster = async (i: number): Promise<Buffer | null> => {
    const l1i = Math.floor(i / l2Entries);
    if (l1i >= l1Size) return null;
    const l2Off = Number(l1.readBigUInt64BE(l1i * 8) & offMask);
    if (l2Off === 0) return null;
    const e = (await pread(fh, l2Off + (i % l2Entries) * l2EntryBytes, 8)).readBigUInt64BE(0);
    if (e & (1n << 62n)) {
      if (compression !== 0) throw new Error('qcow2 compressed with zstd');
      const hostOff = Number(e & ((1n << x) - 1n));
      const sectors = Number((e >> x) & ((1n << BigInt(clusterBits - 8)) - 1n)) + 1;
      const comp = await pread(fh, hostOff, sectors * 512 - (hostOff % 512));
      return inflateRawSync(comp, { finishFlush: zc.Z_SYNC_FLUSH }).subarray(0, clusterSize);
    }
    if (e & 1n) return null;
    const host = Number(e & offMask);
    return host === 0 ? null : pread(fh, host, clusterSize);
  };
  return { format: 'qcow2', size, read: (o, n) => readBlocks(o, n, clusterSize, size, cluster), close: () => fh.close() };
}

/* VHD (Microsoft "Virtual Hard Disk Image Format Specification"), big-endian.
 * Footer (last 512 bytes; a dynamic disk also has a copy at 0): 0 cookie 'conectix' | 16 data offset
 * | 48 current size | 60 disk type (2 fixed, 3 dynamic, 4 differencing).
 * Dynamic header at data offset: 0 cookie 'cxsparse' | 16 table (BAT) offset | 28 max table entries | 32 block size.
 * BAT entry: sector of the block's sector bitmap (0xFFFFFFFF: unallocated); the data follows the bitmap. */
async function openVhd(fh: FileHandle): Promise<GuestDisk> {
  const fileSize = (await fh.stat()).size;
  const footer = await pread(fh, fileSize - 512, 512);
  if (footer.toString('latin1', 0, 8) !== 'conectix') throw new Error('no VHD footer');
  const size = u64be(footer, 48);
  const type = footer.readUInt32BE(60);
  if (type === 2) {
    return { format: 'vhd', size, read: (o, n) => readBlocks(o, n, 512, size, (i) => pread(fh, i * 512, 512)), close: () => fh.close() };
  }
  if (type !== 3) throw new Error(`VHD disk type ${type} not supported`);
  const dyn = await pread(fh, u64be(footer, 16), 1024);
  if (dyn.toString('latin1', 0, 8) !== 'cxsparse') throw new Error('no VHD dynamic header');
  const batOffset = u64be(dyn, 16);
  const entries = dyn.readUInt32BE(28);
  const blockSize = dyn.readUInt32BE(32);
  const bat = await pread(fh, batOffset, entries * 4);
  const bitmapBytes = Math.ceil(blockSize / 512 / 8 / 512) * 512;
  const block = async (i: number): Promise<Buffer | null> => {
    if (i >= entries) return null;
    const sector = bat.readUInt32BE(i * 4);
    return sector === 0xffffffff ? null : pread(fh, sector * 512 + bitmapBytes, blockSize);
  };
  return { format: 'vhd', size, read: (o, n) => readBlocks(o, n, blockSize, size, block), close: () => fh.close() };
}

/* VMDK hosted sparse extent (VMware "Virtual Disk Format 1.1"), little-endian SparseExtentHeader:
 *   0 'KDMV' | 8 flags (bit 16: compressed grains, bit 17: markers) | 12 capacity (sectors) | 20 grainSize (sectors)
 *   44 numGTEsPerGT | 56 gdOffset (sectors; ~0 = GD_AT_END: use the footer header 1024 bytes before the end).
 * Grain directory entries: sector of a grain table; grain table entries: sector of a grain (0 unallocated, 1 zeros).
 * A compressed grain starts with a marker: 0 lba (u64) | 8 size (u32), then `size` bytes of RFC 1950 deflate. */
async function openVmdk(fh: FileHandle): Promise<GuestDisk> {
  const fileSize = (await fh.stat()).size;
  let h = await pread(fh, 0, 512);
  if (h.readUInt32LE(0) !== 0x564d444b) throw new Error('not a VMDK sparse extent');
  if (h.readBigUInt64LE(56) === 0xffffffffffffffffn) h = await pread(fh, fileSize - 1024, 512);
  const flags = h.readUInt32LE(8);
  const size = u64le(h, 12) * 512;
  const grainBytes = u64le(h, 20) * 512;
  const perGT = h.readUInt32LE(44);
  const gdOffset = u64le(h, 56) * 512;
  const grains = size / grainBytes;
  const gdEntries = Math.ceil(grains / perGT);
  const gd = await pread(fh, gdOffset, gdEntries * 4);
  const compressed = (flags & (1 << 16)) !== 0;
  const grain = async (i: number): Promise<Buffer | null> => {
    const gdi = Math.floor(i / perGT);
    if (gdi >= gdEntries) return null;
    const gt = gd.readUInt32LE(gdi * 4);
    if (gt === 0) return null;
    const sector = (await pread(fh, gt * 512 + (i % perGT) * 4, 4)).readUInt32LE(0);
    if (sector <= 1) return null;
    if (!compressed) return pread(fh, sector * 512, grainBytes);
    const m = await pread(fh, sector * 512, 12);
    const data = await pread(fh, sector * 512 + 12, m.readUInt32LE(8));
    return inflateSync(data, { finishFlush: zc.Z_SYNC_FLUSH });
  };
  return { format: 'vmdk', size, read: (o, n) => readBlocks(o, n, grainBytes, size, grain), close: () => fh.close() };
}

export async function openGuestDisk(path: string, format: DiskFormat): Promise<GuestDisk> {
  const fh = await open(path, 'r');
  try {
    switch (format) {
      case 'raw':
        return await openRaw(fh);
      case 'qcow2':
        return await openQcow2(fh);
      case 'vhd':
        return await openVhd(fh);
      case 'vmdk':
        return await openVmdk(fh);
    }
  } catch (e) {
    await fh.close();
    throw e;
  }
}
