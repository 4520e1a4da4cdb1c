/**
 * VMDK streamOptimized (VMware "Virtual Disk Format 1.1", sections
 * "Hosted Sparse Extent Header", "The Descriptor File" and "Stream-Optimized
 * Compressed Sparse Extents"), the form VMware and VirtualBox import (OVF):
 *
 *   sector 0         sparse extent header, gdOffset = GD_AT_END
 *   sector 1..       embedded descriptor (createType="streamOptimized")
 *   overHead (128)   grains: grain marker (LBA, compressed size) + zlib data,
 *                    padded to a sector, in ascending LBA order
 *   then             for each grain table with data: GT marker + 512 entries
 *                    (sector of each grain's marker; 0 = zeros)
 *   then             GD marker + grain directory (sector of each GT; 0 = none)
 *   then             footer marker + footer (the header with gdOffset set)
 *   last sector      end-of-stream marker
 *
 * Integers are little-endian. Grains are 64 KiB (128 sectors), compressed
 * with deflate in zlib framing, a few at a time on the thread pool; the bytes
 * do not depend on that parallelism. The CID is derived from the content.
 */
import type { ByteSink } from '../archive/sink.js';
import { DockyardError } from '../errors.js';
import { CHUNK, SECTOR, checkRawSize, nonzeroChunks, spoolRaw, type ConvertOptions, type RawDisk, type Spooled } from './spool.js';
import { ChunkDeflater, DEFLATE_LEVEL, zlibFrame } from './grains.js';

const GRAIN_SECTORS = CHUNK / SECTOR; // 128
const GTES_PER_GT = 512;
const GT_SECTORS = (GTES_PER_GT * 4) / SECTOR; // 4
const OVERHEAD_SECTORS = 128; // header + descriptor, padded to the first grain boundary
const GD_AT_END = 0xffffffffffffffffn;
const FLAG_NL_DETECT = 1 << 0;
const FLAG_COMPRESSED = 1 << 16;
const FLAG_MARKERS = 1 << 17;
const COMPRESSION_DEFLATE = 1;
const MARKER_EOS = 0;
const MARKER_GT = 1;
const MARKER_GD = 2;
const MARKER_FOOTER = 3;
const PARALLEL = 8;
export const VMDK_DEFLATE_LEVEL = DEFLATE_LEVEL;

export interface VmdkOptions extends ConvertOptions {
  /** File name written in the descriptor's extent line (the .vmdk's own name). */
  fileName: string;
  /** Deflated chunks shared with other compressed containers of the build (pkg/vdisk/grains.ts). */
  deflater?: ChunkDeflater;
}

/** SparseExtentHeader (spec "Hosted Sparse Extent Header"), one sector. */
export function encodeVmdkHeader(o: { capacity: number; descriptorSectors: number; gdOffset: bigint }): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.write('KDMV', 0, 'latin1'); //                               0  magicNumber 0x564d444b (LE)
  b.writeUInt32LE(3, 4); //                                       4  version (3: streamOptimized)
  b.writeUInt32LE(FLAG_NL_DETECT | FLAG_COMPRESSED | FLAG_MARKERS, 8); // 8 flags
  b.writeBigUInt64LE(BigInt(o.capacity), 12); //                 12  capacity (sectors)
  b.writeBigUInt64LE(BigInt(GRAIN_SECTORS), 20); //              20  grainSize (sectors)
  b.writeBigUInt64LE(1n, 28); //                                 28  descriptorOffset (sectors)
  b.writeBigUInt64LE(BigInt(o.descriptorSectors), 36); //        36  descriptorSize (sectors)
  b.writeUInt32LE(GTES_PER_GT, 44); //                           44  numGTEsPerGT
  b.writeBigUInt64LE(0n, 48); //                                 48  rgdOffset (no redundant GD)
  b.writeBigUInt64LE(o.gdOffset, 56); //                         56  gdOffset
  b.writeBigUInt64LE(BigInt(OVERHEAD_SECTORS), 64); //           64  overHead
  b.writeUInt8(0, 72); //                                        72  uncleanShutdown
  b.write('\n \r\n', 73, 'latin1'); //                           73  singleEndLineChar, nonEndLineChar, doubleEndLineChar1/2
  b.writeUInt16LE(COMPRESSION_DEFLATE, 77); //                   77  compressAlgorithm; 79.. pad
  return b;
}

/** A metadata marker sector (val = sectors of metadata that follow, size 0, type). */
function marker(val: number, type: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeBigUInt64LE(BigInt(val), 0);
  b.writeUInt32LE(0, 8);
  b.writeUInt32LE(type, 12);
  return b;
}

/** The embedded descriptor (spec "The Descriptor File"). */
export function vmdkDescriptor(o: { capacity: number; cid: number; fileName: string }): string {
  const heads = 255;
  const sectors = 63;
  const cylinders = Math.min(65535, Math.floor(o.capacity / (heads * sectors)));
  return [
    '# Disk DescriptorFile',
    'version=1',
    `CID=${o.cid.toString(16).padStart(8, '0')}`,
    'parentCID=ffffffff',
    'createType="streamOptimized"',
    '',
    '# Extent description',
    `RW ${o.capacity} SPARSE "${o.fileName.replace(/["\n\r]/g, '_')}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.virtualHWVersion = "6"', // as LinuxKit's (qemu-img -o compat6)
    `ddb.geometry.cylinders = "${cylinders}"`,
    `ddb.geometry.heads = "${heads}"`,
    `ddb.geometry.sectors = "${sectors}"`,
    'ddb.adapterType = "lsilogic"',
    '',
  ].join('\n');
}

export async function writeVmdk(raw: RawDisk, sink: ByteSink, opts: VmdkOptions): Promise<void> {
  checkRawSize(raw.size, 'vmdk');
  const sp = await spoolRaw(raw, opts.scratchDir, opts.signal);
  try {
    await writeVmdkFrom(sp, sink, opts);
  } finally {
    await sp.close();
  }
}

export async function writeVmdkFrom(sp: Spooled, sink: ByteSink, opts: Pick<VmdkOptions, 'fileName' | 'signal' | 'deflater'>): Promise<void> {
  const deflater = opts.deflater ?? new ChunkDeflater(VMDK_DEFLATE_LEVEL);
  const capacity = sp.size / SECTOR;
  let cid = sp.id.readUInt32BE(0);
  if (cid >= 0xfffffffe) cid = 0x7fffffff; // ffffffff / fffffffe mean "no parent" / invalid
  const desc = Buffer.from(vmdkDescriptor({ capacity, cid, fileName: opts.fileName }), 'utf8');
  const descriptorSectors = Math.ceil(desc.length / SECTOR);
  if (1 + descriptorSectors > OVERHEAD_SECTORS) throw new DockyardError('E_INTERNAL', 'vmdk: descriptor too long');
  const head = Buffer.alloc(OVERHEAD_SECTORS * SECTOR);
  encodeVmdkHeader({ capacity, descriptorSectors, gdOffset: GD_AT_END }).copy(head, 0);
  desc.copy(head, SECTOR);
  await sink.write(head);
  let sector = OVERHEAD_SECTORS;

  // Grains, compressed PARALLEL at a time, written in order.
  const grains = sp.nonzero.length;
  const gte = new Uint32Array(grains); // sector of each grain's marker
  const pending: { g: number; data: Promise<Buffer> }[] = [];
  const emit = async (): Promise<void> => {
    const p = pending.shift()!;
    const z = await p.data;
    const total = Math.ceil((12 + z.length) / SECTOR) * SECTOR;
    const b = Buffer.alloc(total);
    b.writeBigUInt64LE(BigInt(p.g * GRAIN_SECTORS), 0); // grain marker: LBA
    b.writeUInt32LE(z.length, 8); //                       compressed size
    z.copy(b, 12);
    gte[p.g] = sector;
    sector += total / SECTOR;
    await sink.write(b);
  };
  for await (const [g, bytes] of nonzeroChunks(sp, opts.signal)) {
    const data = deflater.deflate(bytes).then((d) => zlibFrame(d, deflater.level));
    data.catch(() => {}); // awaited in order by emit()
    pending.push({ g, data });
    if (pending.length >= PARALLEL) await emit();
  }
  while (pending.length) await emit();

  // Grain tables that have data, then the directory pointing at them.
  const numGts = Math.ceil(grains / GTES_PER_GT);
  const gd = Buffer.alloc(Math.ceil((numGts * 4) / SECTOR) * SECTOR);
  for (let t = 0; t < numGts; t++) {
    const gt = Buffer.alloc(GT_SECTORS * SECTOR);
    let any = false;
    for (let j = 0; j < GTES_PER_GT; j++) {
      const g = t * GTES_PER_GT + j;
      if (g < grains && gte[g]) {
        gt.writeUInt32LE(gte[g], j * 4);
        any = true;
      }
    }
    if (!any) continue;
    await sink.write(marker(GT_SECTORS, MARKER_GT));
    sector += 1;
    gd.writeUInt32LE(sector, t * 4);
    await sink.write(gt);
    sector += GT_SECTORS;
  }
  await sink.write(marker(gd.length / SECTOR, MARKER_GD));
  sector += 1;
  const gdOffset = sector;
  await sink.write(gd);
  sector += gd.length / SECTOR;

  await sink.write(marker(1, MARKER_FOOTER));
  await sink.write(encodeVmdkHeader({ capacity, descriptorSectors, gdOffset: BigInt(gdOffset) }));
  await sink.write(marker(0, MARKER_EOS));
}
