/**
 * VHD (Microsoft "Virtual Hard Disk Image Format Specification" v1.0).
 *
 * Fixed:   the raw disk, then the 512-byte hard disk footer. Streams
 *          straight through (no scratch copy): the unique id is derived from
 *          the content while it passes.
 * Dynamic: footer copy, dynamic disk header, Block Allocation Table, the
 *          allocated 2 MiB blocks (each a 512-byte sector bitmap + data), and
 *          the footer; blocks holding only zeros are not allocated.
 *
 * All fields are big-endian. Time stamps count seconds from 2000-01-01
 * 00:00:00 UTC and come from the build's epoch; the unique id is a hash of
 * the content. The creator application is "qem2": readers (QEMU among them)
 * then take the disk size from the footer's current size rather than the
 * CHS geometry, which cannot express most sizes exactly.
 */
import type { ByteSink } from '../archive/sink.js';
import { DockyardError } from '../errors.js';
import { CHUNK, ChunkScanner, SECTOR, checkRawSize, derivedUuid, spoolRaw, type ConvertOptions, type RawDisk, type Spooled } from './spool.js';

export const VHD_FOOTER_SIZE = 512;
export const VHD_BLOCK_SIZE = 2 * 1024 * 1024;
const VHD_EPOCH = Date.UTC(2000, 0, 1) / 1000; // 946684800
const DISK_FIXED = 2;
const DISK_DYNAMIC = 3;
const NO_OFFSET = 0xffffffffffffffffn;

/** The largest VHD disk (Hyper-V's limit; the format's 2 TiB less its own overhead). */
export const VHD_MAX_SIZE = 2040 * 1024 * 1024 * 1024;

function checkVhdSize(size: number, what: string): void {
  checkRawSize(size, what);
  if (size > VHD_MAX_SIZE) throw new DockyardError('E_OUTPUT', `${what}: a ${Math.ceil(size / 2 ** 30)} GiB disk is larger than VHD allows (2040 GiB)`);
}

export function vhdTimestamp(epoch: number): number {
  return Math.min(0xffffffff, Math.max(0, Math.floor(epoch - VHD_EPOCH)));
}

/** CHS geometry from the total sector count (spec appendix "CHS Calculation"). */
export function vhdGeometry(totalBytes: number): { cylinders: number; heads: number; sectorsPerTrack: number } {
  let total = Math.floor(totalBytes / SECTOR);
  if (total > 65535 * 16 * 255) total = 65535 * 16 * 255;
  let spt: number;
  let heads: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(total / spt);
  } else {
    spt = 17;
    cth = Math.floor(total / spt);
    heads = Math.floor((cth + 1023) / 1024);
    if (heads < 4) heads = 4;
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(total / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(total / spt);
    }
  }
  return { cylinders: Math.floor(cth / heads), heads, sectorsPerTrack: spt };
}

/** One's complement of the byte sum, with the checksum field taken as zero. */
export function vhdChecksum(b: Buffer, checksumAt: number): number {
  let sum = 0;
  for (let i = 0; i < b.length; i++) if (i < checksumAt || i >= checksumAt + 4) sum += b[i];
  return ~sum >>> 0;
}

export interface VhdFooterFields {
  size: number;
  type: 'fixed' | 'dynamic';
  epoch: number;
  uniqueId: Buffer;
}

/** The hard disk footer (spec "Hard Disk Footer Format"). */
export function encodeVhdFooter(f: VhdFooterFields): Buffer {
  const b = Buffer.alloc(VHD_FOOTER_SIZE);
  const g = vhdGeometry(f.size);
  b.write('conectix', 0, 'latin1'); //                 0  cookie
  b.writeUInt32BE(0x00000002, 8); //                    8  features (reserved bit always set)
  b.writeUInt32BE(0x00010000, 12); //                  12  file format version 1.0
  b.writeBigUInt64BE(f.type === 'fixed' ? NO_OFFSET : 512n, 16); // 16 data offset (dynamic header)
  b.writeUInt32BE(vhdTimestamp(f.epoch), 24); //       24  time stamp
  b.write('qem2', 28, 'latin1'); //                    28  creator application
  b.writeUInt32BE(0x00010000, 32); //                  32  creator version
  b.write('Wi2k', 36, 'latin1'); //                    36  creator host OS
  b.writeBigUInt64BE(BigInt(f.size), 40); //           40  original size
  b.writeBigUInt64BE(BigInt(f.size), 48); //           48  current size
  b.writeUInt16BE(g.cylinders, 56); //                 56  disk geometry: cylinders
  b.writeUInt8(g.heads, 58); //                        58                 heads
  b.writeUInt8(g.sectorsPerTrack, 59); //              59                 sectors per track
  b.writeUInt32BE(f.type === 'fixed' ? DISK_FIXED : DISK_DYNAMIC, 60); // 60 disk type
  f.uniqueId.copy(b, 68, 0, 16); //                    68  unique id
  b.writeUInt8(0, 84); //                              84  saved state; 85..511 reserved
  b.writeUInt32BE(vhdChecksum(b, 64), 64); //          64  checksum
  return b;
}

/** The dynamic disk header (spec "Dynamic Disk Header Format"), 1024 bytes. */
export function encodeVhdDynamicHeader(o: { tableOffset: number; maxTableEntries: number }): Buffer {
  const b = Buffer.alloc(1024);
  b.write('cxsparse', 0, 'latin1'); //                 0  cookie
  b.writeBigUInt64BE(NO_OFFSET, 8); //                  8  data offset (unused)
  b.writeBigUInt64BE(BigInt(o.tableOffset), 16); //    16  table offset (BAT)
  b.writeUInt32BE(0x00010000, 24); //                  24  header version
  b.writeUInt32BE(o.maxTableEntries, 28); //           28  max table entries
  b.writeUInt32BE(VHD_BLOCK_SIZE, 32); //              32  block size
  // 40 parent unique id, 56 parent time stamp, 64 parent unicode name, 576 parent locators: none.
  b.writeUInt32BE(vhdChecksum(b, 36), 36); //          36  checksum
  return b;
}

/** Fixed VHD: the raw bytes, then the footer. */
export async function writeFixedVhd(raw: RawDisk, sink: ByteSink, opts: Pick<ConvertOptions, 'epoch' | 'signal'>): Promise<void> {
  checkVhdSize(raw.size, 'vhd');
  const scan = new ChunkScanner(raw.size, undefined, opts.signal);
  await raw.write({
    async write(b: Buffer): Promise<void> {
      await scan.write(b);
      await sink.write(b);
    },
  });
  const id = await scan.finish();
  await sink.write(encodeVhdFooter({ size: raw.size, type: 'fixed', epoch: opts.epoch, uniqueId: derivedUuid(id, 'vhd') }));
}

/** The footer that follows a spooled raw disk to make it a fixed VHD (what writeFixedVhd ends with). */
export function fixedVhdFooter(sp: Pick<Spooled, 'size' | 'id'>, epoch: number): Buffer {
  checkVhdSize(sp.size, 'vhd');
  return encodeVhdFooter({ size: sp.size, type: 'fixed', epoch, uniqueId: derivedUuid(sp.id, 'vhd') });
}

/** Dynamic VHD: only blocks holding data are stored. */
export async function writeDynamicVhd(raw: RawDisk, sink: ByteSink, opts: ConvertOptions): Promise<void> {
  checkVhdSize(raw.size, 'dynamic vhd');
  const sp = await spoolRaw(raw, opts.scratchDir, opts.signal);
  try {
    await writeDynamicVhdFrom(sp, sink, opts);
  } finally {
    await sp.close();
  }
}

const CHUNKS_PER_BLOCK = VHD_BLOCK_SIZE / CHUNK;
const BITMAP_SIZE = Math.ceil(VHD_BLOCK_SIZE / SECTOR / 8 / SECTOR) * SECTOR; // 512

export async function writeDynamicVhdFrom(sp: Spooled, sink: ByteSink, opts: Pick<ConvertOptions, 'epoch' | 'signal'>): Promise<void> {
  const entries = Math.ceil(sp.size / VHD_BLOCK_SIZE);
  const tableOffset = VHD_FOOTER_SIZE + 1024;
  const batBytes = Math.ceil((entries * 4) / SECTOR) * SECTOR;
  const allocated: boolean[] = [];
  for (let blk = 0; blk < entries; blk++) {
    let any = false;
    for (let c = blk * CHUNKS_PER_BLOCK; c < Math.min((blk + 1) * CHUNKS_PER_BLOCK, sp.nonzero.length); c++) if (sp.nonzero[c]) any = true;
    allocated.push(any);
  }
  const bat = Buffer.alloc(batBytes, 0xff); // unused entries (and padding) = 0xFFFFFFFF
  let at = tableOffset + batBytes;
  for (let blk = 0; blk < entries; blk++) {
    if (!allocated[blk]) continue;
    bat.writeUInt32BE(at / SECTOR, blk * 4);
    at += BITMAP_SIZE + VHD_BLOCK_SIZE;
  }
  const footer = encodeVhdFooter({ size: sp.size, type: 'dynamic', epoch: opts.epoch, uniqueId: derivedUuid(sp.id, 'vhd') });
  await sink.write(footer);
  await sink.write(encodeVhdDynamicHeader({ tableOffset, maxTableEntries: entries }));
  await sink.write(bat);
  // Every sector of a stored block is marked present: its bytes are in the block.
  const bitmap = Buffer.alloc(BITMAP_SIZE, 0xff);
  for (let blk = 0; blk < entries; blk++) {
    if (!allocated[blk]) continue;
    opts.signal?.throwIfAborted();
    await sink.write(bitmap);
    for (let c = 0; c < CHUNKS_PER_BLOCK; c++) {
      const g = blk * CHUNKS_PER_BLOCK + c;
      await sink.write(g < sp.nonzero.length && sp.nonzero[g] ? await sp.read(g * CHUNK, CHUNK) : Buffer.alloc(CHUNK));
    }
  }
  await sink.write(footer);
}
