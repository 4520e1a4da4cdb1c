/**
 * MBR (DOS) partitioned disks written in one sequential pass, for BIOS boot
 * (the legacy MBR as the UEFI Specification 2.10 section 5.2.1 describes it):
 *
 *   LBA 0    boot code (440 bytes, the caller's), disk signature (440),
 *            four partition records (446, 16 bytes each), 0x55AA (510)
 *   LBA 1…   optional data for the boot code (the "MBR gap")
 *   1 MiB…   primary partitions, each on a 1 MiB boundary
 */
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';
import { writeExactly, writeZeros } from './io.js';
import { alignUp, layoutPartitions, mbrRecord, MiB, SECTOR, type DiskPlan } from './gpt.js';

export interface MbrPartition {
  /** OSType: 0x0C FAT32 (LBA), 0x0E FAT16 (LBA), 0x01 FAT12, 0x83 Linux, … */
  type: number;
  /** BootIndicator 0x80 (the partition a classic MBR boot code chains to). */
  bootable?: boolean;
  size: number;
  write(sink: ByteSink): Promise<void>;
}

export interface MbrDiskOptions {
  /** Up to 440 bytes of boot code (e.g. SYSLINUX's mbr.bin). */
  bootCode?: Buffer;
  /** UniqueMBRDiskSignature (derive it from content: guid.ts idFrom). */
  diskSignature: number;
  partitions: MbrPartition[];
  /** Disk size in bytes (default: the partitions, 1 MiB aligned). */
  size?: number;
  /** Bytes written from LBA 1, in the gap before the first partition (a boot loader's data). */
  gap?: Buffer;
}

export function planMbrDisk(o: MbrDiskOptions): DiskPlan {
  if (o.partitions.length > 4) throw new DockyardError('E_INTERNAL', 'MBR: at most 4 primary partitions');
  if (o.bootCode && o.bootCode.length > 440) throw new DockyardError('E_INTERNAL', 'MBR: boot code is more than 440 bytes');
  const { offsets, end } = layoutPartitions(o.partitions.map((p) => p.size));
  const size = o.size ?? end;
  if (size < end) throw new DockyardError('E_OUTPUT', `disk of ${size} bytes cannot hold its partitions (${end} bytes needed)`);
  if (size % SECTOR) throw new DockyardError('E_INTERNAL', 'MBR: disk size is not a whole number of sectors');
  if (size / SECTOR > 0xffffffff) throw new DockyardError('E_OUTPUT', 'MBR: disks over 2 TiB need GPT');

  const mbr = Buffer.alloc(SECTOR);
  o.bootCode?.copy(mbr, 0); // BootCode
  mbr.writeUInt32LE(o.diskSignature >>> 0, 440); // UniqueMBRDiskSignature
  o.partitions.forEach((p, i) => {
    mbrRecord({ boot: !!p.bootable, type: p.type, startLba: offsets[i] / SECTOR, sectors: Math.ceil(p.size / SECTOR) }).copy(mbr, 446 + 16 * i);
  });
  mbr.writeUInt16LE(0xaa55, 510); // Signature
  const gap = o.gap ?? Buffer.alloc(0);
  if (SECTOR + gap.length > (offsets[0] ?? size)) throw new DockyardError('E_INTERNAL', 'MBR: the gap data overlaps the first partition');

  return {
    size,
    partitionOffsets: offsets,
    async write(sink: ByteSink): Promise<void> {
      await sink.write(mbr);
      await sink.write(gap);
      let at = SECTOR + gap.length;
      for (let i = 0; i < o.partitions.length; i++) {
        const p = o.partitions[i];
        await writeZeros(sink, offsets[i] - at);
        await writeExactly(sink, p.size, `partition ${i + 1}`, (s) => p.write(s));
        const pad = alignUp(p.size, SECTOR) - p.size;
        await writeZeros(sink, pad);
        at = offsets[i] + p.size + pad;
      }
      await writeZeros(sink, size - at);
    },
  };
}

export { MiB };
