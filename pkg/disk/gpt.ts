/**
 * GPT disks written in one sequential pass (UEFI Specification 2.10,
 * chapter 5 "GUID Partition Table (GPT) Disk Layout", cited as [UEFI]):
 *
 *   LBA 0            protective MBR ([UEFI] 5.2.3): one 0xEE partition
 *                    covering the disk; optional 440 bytes of BIOS boot code
 *   LBA 1            primary GPT header ([UEFI] 5.3.2, table 5-5)
 *   LBA 2–33         partition entry array: 128 entries of 128 bytes ([UEFI] 5.3.3)
 *   LBA 2048…        partitions, each starting on a 1 MiB boundary
 *   last-32…last-1   backup entry array
 *   last LBA         backup GPT header
 *
 * Sizes are in bytes; sectors are 512 bytes. GUIDs are the caller's
 * (deterministic: see guid.ts).
 */
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';
import { crc32 } from './crc32.js';
import { guidToBytes, isGuid } from './guid.js';
import { writeExactly, writeZeros } from './io.js';

export interface DiskPartition {
  /** Partition name (UTF-16LE, up to 36 code units). */
  name: string;
  typeGuid: string;
  uniqueGuid: string;
  /** Bytes; rounded up to whole sectors on disk (the rest zero). */
  size: number;
  /** GPT attribute bit 2, "Legacy BIOS bootable" ([UEFI] 5.3.3 table 5-8). */
  bootable?: boolean;
  /** Write exactly `size` bytes. */
  write(sink: ByteSink): Promise<void>;
}

export interface GptDiskOptions {
  diskGuid: string;
  partitions: DiskPartition[];
  /** Disk size in bytes (default: the smallest that holds the partitions plus 1 MiB at the end). */
  size?: number;
  /** 440 bytes of boot code for the protective MBR (BIOS boot through GPT, e.g. SYSLINUX's gptmbr.bin). */
  biosBootCode?: Buffer;
}

export interface DiskPlan {
  size: number;
  /** Byte offset of each partition. */
  partitionOffsets: number[];
  write(sink: ByteSink): Promise<void>;
}

export const SECTOR = 512;
export const MiB = 1024 * 1024;
const ENTRIES = 128;
const ENTRY_SIZE = 128;
const ENTRY_SECTORS = (ENTRIES * ENTRY_SIZE) / SECTOR; // 32
const FIRST_USABLE = 2 + ENTRY_SECTORS; // 34

export const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** [UEFI] 5.2.1 / legacy MBR: CHS of an LBA with 255 heads and 63 sectors per track, or the 1023/254/63 cap. */
export function chs(lba: number): Buffer {
  const spt = 63;
  const heads = 255;
  let c = Math.floor(lba / (spt * heads));
  let h = Math.floor(lba / spt) % heads;
  let s = (lba % spt) + 1;
  if (c > 1023) {
    c = 1023;
    h = 254;
    s = 63;
  }
  return Buffer.from([h, (s & 0x3f) | ((c >> 2) & 0xc0), c & 0xff]);
}

/** A 16-byte MBR partition record ([UEFI] 5.2.1 table 5-2). */
export function mbrRecord(o: { boot: boolean; type: number; startLba: number; sectors: number; endChs?: Buffer; startChs?: Buffer }): Buffer {
  const r = Buffer.alloc(16);
  r.writeUInt8(o.boot ? 0x80 : 0, 0); // BootIndicator
  (o.startChs ?? chs(o.startLba)).copy(r, 1); // StartingCHS
  r.writeUInt8(o.type, 4); // OSType
  (o.endChs ?? chs(o.startLba + o.sectors - 1)).copy(r, 5); // EndingCHS
  r.writeUInt32LE(o.startLba, 8); // StartingLBA
  r.writeUInt32LE(o.sectors, 12); // SizeInLBA
  return r;
}

/** Lay partitions out on 1 MiB boundaries from 1 MiB; returns their offsets and the first free byte after them. */
export function layoutPartitions(sizes: number[]): { offsets: number[]; end: number } {
  const offsets: number[] = [];
  let at = MiB;
  for (const s of sizes) {
    offsets.push(at);
    at = alignUp(at + alignUp(s, SECTOR), MiB);
  }
  return { offsets, end: at };
}

function header(o: { myLba: number; altLba: number; lastUsable: number; diskGuid: Buffer; entriesLba: number; entriesCrc: number }): Buffer {
  const h = Buffer.alloc(SECTOR);
  h.write('EFI PART', 0, 'latin1'); // Signature
  h.writeUInt32LE(0x00010000, 8); // Revision 1.0
  h.writeUInt32LE(92, 12); // HeaderSize
  // 16: HeaderCRC32, computed below over the 92 header bytes with this field zero
  h.writeUInt32LE(0, 20); // Reserved
  h.writeBigUInt64LE(BigInt(o.myLba), 24); // MyLBA
  h.writeBigUInt64LE(BigInt(o.altLba), 32); // AlternateLBA
  h.writeBigUInt64LE(BigInt(FIRST_USABLE), 40); // FirstUsableLBA
  h.writeBigUInt64LE(BigInt(o.lastUsable), 48); // LastUsableLBA
  o.diskGuid.copy(h, 56); // DiskGUID
  h.writeBigUInt64LE(BigInt(o.entriesLba), 72); // PartitionEntryLBA
  h.writeUInt32LE(ENTRIES, 80); // NumberOfPartitionEntries
  h.writeUInt32LE(ENTRY_SIZE, 84); // SizeOfPartitionEntry
  h.writeUInt32LE(o.entriesCrc, 88); // PartitionEntryArrayCRC32
  h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
  return h;
}

export function planGptDisk(o: GptDiskOptions): DiskPlan {
  if (o.partitions.length > ENTRIES) throw new DockyardError('E_INTERNAL', `GPT: at most ${ENTRIES} partitions`);
  if (o.biosBootCode && o.biosBootCode.length > 440) throw new DockyardError('E_INTERNAL', 'GPT: BIOS boot code is more than 440 bytes');
  for (const g of [o.diskGuid, ...o.partitions.flatMap((p) => [p.typeGuid, p.uniqueGuid])])
    if (!isGuid(g)) throw new DockyardError('E_INTERNAL', `GPT: not a GUID: "${g}"`);
  const { offsets, end } = layoutPartitions(o.partitions.map((p) => p.size));
  // Backup array + header need 33 sectors; keep the MiB alignment of the whole disk.
  const minSize = end + MiB;
  const size = o.size ?? minSize;
  if (size < end + (ENTRY_SECTORS + 1) * SECTOR)
    throw new DockyardError('E_OUTPUT', `disk of ${size} bytes cannot hold its partitions (${minSize} bytes needed)`);
  if (size % SECTOR) throw new DockyardError('E_INTERNAL', 'GPT: disk size is not a whole number of sectors');
  const sectors = size / SECTOR;
  const lastLba = sectors - 1;
  const lastUsable = lastLba - ENTRY_SECTORS - 1;

  // [UEFI] 5.3.3 partition entries
  const entries = Buffer.alloc(ENTRIES * ENTRY_SIZE);
  o.partitions.forEach((p, i) => {
    const e = entries.subarray(i * ENTRY_SIZE, (i + 1) * ENTRY_SIZE);
    const first = offsets[i] / SECTOR;
    const last = first + Math.ceil(p.size / SECTOR) - 1;
    guidToBytes(p.typeGuid).copy(e, 0); // PartitionTypeGUID
    guidToBytes(p.uniqueGuid).copy(e, 16); // UniquePartitionGUID
    e.writeBigUInt64LE(BigInt(first), 32); // StartingLBA
    e.writeBigUInt64LE(BigInt(last), 40); // EndingLBA (inclusive)
    e.writeBigUInt64LE(p.bootable ? 1n << 2n : 0n, 48); // Attributes
    const name = Buffer.from(p.name, 'utf16le');
    if (name.length > 72) throw new DockyardError('E_INTERNAL', `GPT: partition name "${p.name}" is longer than 36 characters`);
    name.copy(e, 56); // PartitionName
  });
  const entriesCrc = crc32(entries);
  const diskGuid = guidToBytes(o.diskGuid);

  // [UEFI] 5.2.3 protective MBR
  const mbr = Buffer.alloc(SECTOR);
  o.biosBootCode?.copy(mbr, 0); // BootCode (440 bytes)
  // 440: UniqueMBRDiskSignature, 444: Unknown — zero
  mbrRecord({
    boot: false,
    type: 0xee,
    startLba: 1,
    sectors: Math.min(sectors - 1, 0xffffffff),
    startChs: Buffer.from([0x00, 0x02, 0x00]),
    endChs: sectors - 1 > 1024 * 255 * 63 ? Buffer.from([0xff, 0xff, 0xff]) : chs(sectors - 1),
  }).copy(mbr, 446);
  mbr.writeUInt16LE(0xaa55, 510);

  const primary = header({ myLba: 1, altLba: lastLba, lastUsable, diskGuid, entriesLba: 2, entriesCrc });
  const backup = header({ myLba: lastLba, altLba: 1, lastUsable, diskGuid, entriesLba: lastLba - ENTRY_SECTORS, entriesCrc });

  return {
    size,
    partitionOffsets: offsets,
    async write(sink: ByteSink): Promise<void> {
      await sink.write(Buffer.concat([mbr, primary, entries]));
      let at = FIRST_USABLE * SECTOR;
      for (let i = 0; i < o.partitions.length; i++) {
        const p = o.partitions[i];
        await writeZeros(sink, offsets[i] - at);
        await writeExactly(sink, p.size, `partition ${p.name}`, (s) => p.write(s));
        const pad = alignUp(p.size, SECTOR) - p.size;
        await writeZeros(sink, pad);
        at = offsets[i] + p.size + pad;
      }
      await writeZeros(sink, (lastLba - ENTRY_SECTORS) * SECTOR - at);
      await sink.write(Buffer.concat([entries, backup]));
    },
  };
}
