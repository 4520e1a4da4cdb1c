/**
 * isohybrid: an MBR in the ISO's system area so the same image boots from
 * a USB stick. Layout of the 512-byte sector (syslinux's isohybrid
 * conventions over the classic MBR):
 *   0–431    boot code (isohdpfx.bin: loads isolinux.bin by the LBA below)
 *   432–439  LBA of isolinux.bin in 512-byte sectors, 64-bit LE
 *   440–443  disk signature
 *   444–445  zero
 *   446–509  four partition entries (16 bytes each)
 *   510–511  55 AA
 * Partitions: 1 = the whole image, active, type 0x17 as isohybrid writes
 * it, or 0x00 when there is an EFI image (so UEFI firmware does not reject
 * it as overlapping partition 2; xorriso's convention for hybrid BIOS/UEFI
 * images), 2 = the El Torito EFI image,
 * type 0xEF (EFI System Partition), which a UEFI firmware booting from disk
 * mounts to find \EFI\BOOT\BOOT*.EFI. CHS in the 64-head, 32-sector
 * geometry isohybrid uses; the image is a multiple of 1 MiB (one cylinder).
 */
import { DockyardError } from '../errors.js';
import { crc32 } from '../disk/crc32.js';
import { guidToBytes, PARTITION_TYPE } from '../disk/guid.js';

export const HYBRID_ALIGN = 64 * 32 * 512;
/** isolinux.bin carries this at byte 0x40 when it supports isohybrid booting. */
export const ISOHYBRID_MAGIC = 0x7078c0fb;

function chs(lba: number): Buffer {
  const heads = 64;
  const spt = 32;
  let c = Math.floor(lba / (heads * spt));
  let h = Math.floor(lba / spt) % heads;
  let s = (lba % spt) + 1;
  if (c > 1023) {
    c = 1023;
    h = 63;
    s = 32;
  }
  return Buffer.from([h, s | ((c >> 2) & 0xc0), c & 0xff]);
}

function partEntry(active: boolean, type: number, start: number, count: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = active ? 0x80 : 0; // boot indicator
  chs(start).copy(b, 1); // CHS of first sector
  b[4] = type; // partition type
  chs(start + count - 1).copy(b, 5); // CHS of last sector
  b.writeUInt32LE(start, 8); // LBA of first sector
  b.writeUInt32LE(count, 12); // number of sectors
  return b;
}

export interface HybridMbrInput {
  /** isohdpfx.bin (first 432 bytes used). */
  code: Buffer;
  /** isolinux.bin's bytes (checked for the isohybrid signature). */
  loader?: Buffer;
  /** isolinux.bin's LBA in 2048-byte blocks. */
  loaderLba: number;
  /** Image size in bytes (a multiple of HYBRID_ALIGN). */
  size: number;
  diskId: number;
  /** The El Torito EFI image, in 2048-byte blocks and bytes. */
  efi?: { lba: number; size: number };
}

export function isohybridMbr(o: HybridMbrInput): Buffer {
  if (o.code.length < 432) throw new DockyardError('E_IMAGE_NOT_FOUND', `isohdpfx.bin is ${o.code.length} bytes; want at least 432`);
  if (o.loader && (o.loader.length < 0x44 || o.loader.readUInt32LE(0x40) !== ISOHYBRID_MAGIC)) {
    throw new DockyardError('E_IMAGE_NOT_FOUND', 'isolinux.bin lacks the isohybrid signature (syslinux 3.72 or later is needed)');
  }
  const b = Buffer.alloc(512);
  o.code.copy(b, 0, 0, 432);
  b.writeUInt32LE(o.loaderLba * 4, 432);
  b.writeUInt32LE(0, 436);
  b.writeUInt32LE(o.diskId >>> 0, 440);
  const sectors512 = o.size / 512;
  partEntry(true, o.efi ? 0x00 : 0x17, 0, sectors512).copy(b, 446);
  if (o.efi) partEntry(false, 0xef, o.efi.lba * 4, Math.ceil(o.efi.size / 512)).copy(b, 462);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

/**
 * A GPT beside the isohybrid MBR (UEFI 2.10 section 5.3), in 512-byte LBAs:
 * header at LBA 1, 128 entries of 128 bytes at LBA 2–33 (both inside the
 * ISO's 32 KiB system area), the backup entries and header in the image's
 * last 33 sectors. One partition: the El Torito EFI image as the EFI System
 * Partition, so firmware that reads the GPT (a protective 0xEE entry is
 * added to the MBR) finds the same FAT filesystem the MBR's 0xEF entry
 * names. No partition overlaps another (UEFI firmware drops overlapping
 * GPT entries), which is why the ISO data gets none.
 */

export const GPT_TAIL = 33 * 512;
const ENTRIES = 128;
const ENTRY_SIZE = 128;
const FIRST_USABLE = 34;

export interface IsoGptInput {
  /** Image size in bytes (a multiple of 512). */
  size: number;
  diskGuid: string;
  esp: { lba512: number; sectors: number; guid: string };
}

function gptEntries(o: IsoGptInput): Buffer {
  const b = Buffer.alloc(ENTRIES * ENTRY_SIZE);
  guidToBytes(PARTITION_TYPE.esp).copy(b, 0); // PartitionTypeGUID
  guidToBytes(o.esp.guid).copy(b, 16); // UniquePartitionGUID
  b.writeBigUInt64LE(BigInt(o.esp.lba512), 32); // StartingLBA
  b.writeBigUInt64LE(BigInt(o.esp.lba512 + o.esp.sectors - 1), 40); // EndingLBA (inclusive)
  b.writeBigUInt64LE(0n, 48); // Attributes
  b.write('EFI boot image', 56, 'utf16le'); // PartitionName (36 UTF-16LE code units)
  return b;
}

function gptHeader(o: IsoGptInput, myLba: number, altLba: number, entriesLba: number, entriesCrc: number): Buffer {
  const last = o.size / 512 - 1;
  const h = Buffer.alloc(512);
  h.write('EFI PART', 0, 'latin1'); // Signature
  h.writeUInt32LE(0x00010000, 8); // Revision 1.0
  h.writeUInt32LE(92, 12); // HeaderSize; 16: HeaderCRC32 below
  h.writeBigUInt64LE(BigInt(myLba), 24); // MyLBA
  h.writeBigUInt64LE(BigInt(altLba), 32); // AlternateLBA
  h.writeBigUInt64LE(BigInt(FIRST_USABLE), 40); // FirstUsableLBA
  h.writeBigUInt64LE(BigInt(last - 33), 48); // LastUsableLBA
  guidToBytes(o.diskGuid).copy(h, 56); // DiskGUID
  h.writeBigUInt64LE(BigInt(entriesLba), 72); // PartitionEntryLBA
  h.writeUInt32LE(ENTRIES, 80); // NumberOfPartitionEntries
  h.writeUInt32LE(ENTRY_SIZE, 84); // SizeOfPartitionEntry
  h.writeUInt32LE(entriesCrc, 88); // PartitionEntryArrayCRC32
  h.writeUInt32LE(crc32(h.subarray(0, 92)), 16);
  return h;
}

/** Bytes 512–17407 of the image: primary header and entries. */
export function gptPrimary(o: IsoGptInput): Buffer {
  const e = gptEntries(o);
  return Buffer.concat([gptHeader(o, 1, o.size / 512 - 1, 2, crc32(e)), e]);
}

/** The image's last 33 sectors: backup entries, then the backup header. */
export function gptBackup(o: IsoGptInput): Buffer {
  const e = gptEntries(o);
  const last = o.size / 512 - 1;
  return Buffer.concat([e, gptHeader(o, last, 1, last - 32, crc32(e))]);
}

/**
 * A protective MBR (UEFI 2.10 §5.2.3) for an EFI-only hybrid image (arm64,
 * as Debian's arm64 installer ISOs): no boot code, the disk signature at
 * 440, one 0xEE entry (slot 1, byte 446) from LBA 1 over the rest of the
 * image, 0x55AA at 510. UEFI firmware then reads the GPT behind it.
 */
export function protectiveMbr(size: number, diskId: number): Buffer {
  const b = Buffer.alloc(512);
  b.writeUInt32LE(diskId >>> 0, 440);
  partEntry(false, 0xee, 1, Math.min(size / 512 - 1, 0xffffffff)).copy(b, 446);
  b.writeUInt16LE(0xaa55, 510);
  return b;
}

/** MBR partition entry 3 (slot at byte 478): the protective 0xEE entry from LBA 1 over the rest of the image. */
export function addProtectiveEntry(mbr: Buffer, size: number): Buffer {
  const b = Buffer.from(mbr);
  const sectors = Math.min(size / 512 - 1, 0xffffffff);
  partEntry(false, 0xee, 1, sectors).copy(b, 478);
  return b;
}
