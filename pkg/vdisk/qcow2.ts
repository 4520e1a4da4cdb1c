/**
 * qcow2 version 3 (QEMU docs/interop/qcow2.txt), written in one sequential
 * pass: the raw disk is spooled first (pkg/vdisk/spool.ts) so that every
 * non-zero 64 KiB cluster is known and the metadata can be laid out up front:
 *
 *   cluster 0                header (+ end-of-extensions marker)
 *   refcount table           (refcount_table_clusters)
 *   refcount blocks          16-bit refcounts, every used cluster = 1
 *   L1 table                 one entry per 512 MiB of guest space
 *   L2 tables                only for L1 entries that cover data
 *   data clusters            the non-zero guest clusters, in guest order
 *
 * Zero clusters are not allocated (L2 entry 0: reads as zeros, no backing
 * file). Every allocated cluster has refcount 1, so L1/L2 entries carry
 * QCOW_OFLAG_COPIED. Nothing depends on time or randomness.
 */
import type { ByteSink } from '../archive/sink.js';
import { checkRawSize, nonzeroChunks, spoolRaw, type ConvertOptions, type RawDisk, type Spooled } from './spool.js';

export const QCOW2_CLUSTER_BITS = 16;
const CS = 1 << QCOW2_CLUSTER_BITS; // == CHUNK
const L2_ENTRIES = CS / 8; // 8192 guest clusters (512 MiB) per L2 table
const REFCOUNT_ORDER = 4; // 16-bit refcounts (the default)
const REFS_PER_BLOCK = (CS * 8) >> REFCOUNT_ORDER; // 32768
const RT_ENTRIES_PER_CLUSTER = CS / 8;
const OFLAG_COPIED = 1n << 63n;
const HEADER_LENGTH = 104; // v3 header without the optional compression_type field

const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

export interface Qcow2Layout {
  size: number;
  l1Size: number;
  l1Clusters: number;
  /** L1 indices that get an L2 table, ascending. */
  l2Of: number[];
  dataClusters: number;
  refcountTableClusters: number;
  refcountBlocks: number;
  /** Cluster numbers of each region. */
  rtAt: number;
  rbAt: number;
  l1At: number;
  l2At: number;
  dataAt: number;
  totalClusters: number;
}

/** Place every structure; refcount sizes are a small fixed point (they count themselves). */
export function layoutQcow2(size: number, nonzero: Uint8Array): Qcow2Layout {
  const guestClusters = ceilDiv(size, CS);
  const l1Size = ceilDiv(guestClusters, L2_ENTRIES);
  const l1Clusters = Math.max(1, ceilDiv(l1Size * 8, CS));
  const l2Of: number[] = [];
  let dataClusters = 0;
  for (let t = 0; t < l1Size; t++) {
    let any = false;
    for (let i = t * L2_ENTRIES; i < Math.min((t + 1) * L2_ENTRIES, guestClusters); i++) {
      if (nonzero[i]) {
        any = true;
        dataClusters++;
      }
    }
    if (any) l2Of.push(t);
  }
  const fixed = 1 + l1Clusters + l2Of.length + dataClusters;
  let rtc = 1;
  let rbc = 1;
  for (;;) {
    const total = fixed + rtc + rbc;
    const nrbc = ceilDiv(total, REFS_PER_BLOCK);
    const nrtc = Math.max(1, ceilDiv(nrbc, RT_ENTRIES_PER_CLUSTER));
    if (nrbc === rbc && nrtc === rtc) break;
    rbc = nrbc;
    rtc = nrtc;
  }
  const rtAt = 1;
  const rbAt = rtAt + rtc;
  const l1At = rbAt + rbc;
  const l2At = l1At + l1Clusters;
  const dataAt = l2At + l2Of.length;
  return {
    size,
    l1Size,
    l1Clusters,
    l2Of,
    dataClusters,
    refcountTableClusters: rtc,
    refcountBlocks: rbc,
    rtAt,
    rbAt,
    l1At,
    l2At,
    dataAt,
    totalClusters: dataAt + dataClusters,
  };
}

/** The header cluster (qcow2.txt "Header"; all fields big-endian). */
export function encodeQcow2Header(l: Qcow2Layout): Buffer {
  const h = Buffer.alloc(CS);
  h.write('QFI\xfb', 0, 'latin1'); //           0  magic
  h.writeUInt32BE(3, 4); //                      4  version
  h.writeBigUInt64BE(0n, 8); //                  8  backing_file_offset (none)
  h.writeUInt32BE(0, 16); //                    16  backing_file_size
  h.writeUInt32BE(QCOW2_CLUSTER_BITS, 20); //   20  cluster_bits
  h.writeBigUInt64BE(BigInt(l.size), 24); //    24  size (guest bytes)
  h.writeUInt32BE(0, 32); //                    32  crypt_method (none)
  h.writeUInt32BE(l.l1Size, 36); //             36  l1_size (entries)
  h.writeBigUInt64BE(BigInt(l.l1At * CS), 40); // 40 l1_table_offset
  h.writeBigUInt64BE(BigInt(l.rtAt * CS), 48); // 48 refcount_table_offset
  h.writeUInt32BE(l.refcountTableClusters, 56); // 56 refcount_table_clusters
  h.writeUInt32BE(0, 60); //                    60  nb_snapshots
  h.writeBigUInt64BE(0n, 64); //                64  snapshots_offset
  h.writeBigUInt64BE(0n, 72); //                72  incompatible_features
  h.writeBigUInt64BE(0n, 80); //                80  compatible_features
  h.writeBigUInt64BE(0n, 88); //                88  autoclear_features
  h.writeUInt32BE(REFCOUNT_ORDER, 96); //       96  refcount_order
  h.writeUInt32BE(HEADER_LENGTH, 100); //      100  header_length
  // 104: header extensions; type 0 length 0 ends them (the zero bytes already there).
  return h;
}

/** Write `raw` as a sparse qcow2 v3 image into `sink`. */
export async function writeQcow2(raw: RawDisk, sink: ByteSink, opts: ConvertOptions): Promise<void> {
  checkRawSize(raw.size, 'qcow2');
  const sp = await spoolRaw(raw, opts.scratchDir, opts.signal);
  try {
    await writeQcow2From(sp, sink, opts.signal);
  } finally {
    await sp.close();
  }
}

export async function writeQcow2From(sp: Spooled, sink: ByteSink, signal?: AbortSignal): Promise<void> {
  const l = layoutQcow2(sp.size, sp.nonzero);
  await sink.write(encodeQcow2Header(l));

  // Refcount table: the offsets of the refcount blocks.
  const rt = Buffer.alloc(l.refcountTableClusters * CS);
  for (let i = 0; i < l.refcountBlocks; i++) rt.writeBigUInt64BE(BigInt((l.rbAt + i) * CS), i * 8);
  await sink.write(rt);

  // Refcount blocks: 1 for clusters [0, totalClusters), 0 after.
  for (let b = 0; b < l.refcountBlocks; b++) {
    const rb = Buffer.alloc(CS);
    const first = b * REFS_PER_BLOCK;
    const n = Math.min(REFS_PER_BLOCK, l.totalClusters - first);
    for (let i = 0; i < n; i++) rb.writeUInt16BE(1, i * 2);
    await sink.write(rb);
  }

  // L1: each table-bearing entry points at its L2 table.
  const l1 = Buffer.alloc(l.l1Clusters * CS);
  l.l2Of.forEach((t, k) => l1.writeBigUInt64BE(BigInt((l.l2At + k) * CS) | OFLAG_COPIED, t * 8));
  await sink.write(l1);

  // L2 tables: data clusters numbered in guest order.
  let next = l.dataAt;
  for (const t of l.l2Of) {
    const l2 = Buffer.alloc(CS);
    for (let j = 0; j < L2_ENTRIES; j++) {
      const g = t * L2_ENTRIES + j;
      if (g < sp.nonzero.length && sp.nonzero[g]) l2.writeBigUInt64BE(BigInt(next++ * CS) | OFLAG_COPIED, j * 8);
    }
    await sink.write(l2);
  }

  // Data clusters, in guest order.
  for await (const [, c] of nonzeroChunks(sp, signal)) await sink.write(c);
}
