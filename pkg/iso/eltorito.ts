/**
 * El Torito Bootable CD-ROM Format Specification 1.0 (Phoenix/IBM, 1995):
 * the Boot Record Volume Descriptor (2.0), the Boot Catalog (2.1–2.4:
 * validation entry, initial/default entry, section headers and entries)
 * and the ISOLINUX boot information table (a mkisofs convention, patched
 * into the boot file at byte 8).
 */
import { SECTOR } from './encode.js';

export type BootPlatform = 'bios' | 'efi';

/** Platform IDs: 2.1 (0 = 80x86) and the UEFI specification's 0xEF. */
export const PLATFORM_ID: Record<BootPlatform, number> = { bios: 0x00, efi: 0xef };

/** 2.0: Boot Record Volume Descriptor pointing at the catalog. */
export function bootRecordDescriptor(catalogLba: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b[0] = 0; // BP 0: Boot Record Indicator
  b.write('CD001', 1, 'latin1'); // BP 1–5: ISO-9660 Identifier
  b[6] = 1; // BP 6: Version
  b.write('EL TORITO SPECIFICATION', 7, 'latin1'); // BP 7–26 (rest of 32 bytes zero)
  b.writeUInt32LE(catalogLba, 0x47); // BP 47–4A: absolute pointer to the Boot Catalog
  return b;
}

export interface CatalogEntry {
  platform: BootPlatform;
  lba: number;
  /** Sector count field: virtual 512-byte sectors loaded (no emulation). */
  loadSectors: number;
}

/** 2.1: Validation Entry; the 16-bit words of the entry sum to 0. */
function validationEntry(platform: BootPlatform): Buffer {
  const b = Buffer.alloc(32);
  b[0] = 1; // Header ID
  b[1] = PLATFORM_ID[platform]; // Platform ID
  b.write('dockyard', 4, 'latin1'); // 4–1B: ID string (manufacturer)
  b[0x1e] = 0x55; // key bytes
  b[0x1f] = 0xaa;
  let sum = 0;
  for (let i = 0; i < 32; i += 2) sum = (sum + b.readUInt16LE(i)) & 0xffff;
  b.writeUInt16LE((0x10000 - sum) & 0xffff, 0x1c); // 1C–1D: checksum
  return b;
}

/** 2.2 / 2.4: Initial/Default Entry and Section Entry (same first 12 bytes). */
function bootEntry(e: CatalogEntry): Buffer {
  const b = Buffer.alloc(32);
  b[0] = 0x88; // Boot Indicator: bootable
  b[1] = 0; // Boot media type: no emulation
  b.writeUInt16LE(0, 2); // Load Segment: 0 = traditional 7C0
  b[4] = 0; // System Type (partition type; unused for no emulation)
  b.writeUInt16LE(e.loadSectors, 6); // Sector Count (512-byte virtual sectors)
  b.writeUInt32LE(e.lba, 8); // Load RBA
  return b; // 0C: selection criteria type 0 (none)
}

/** 2.3: Section Header; 0x90 more headers follow, 0x91 final. */
function sectionHeader(platform: BootPlatform, count: number, final: boolean): Buffer {
  const b = Buffer.alloc(32);
  b[0] = final ? 0x91 : 0x90;
  b[1] = PLATFORM_ID[platform];
  b.writeUInt16LE(count, 2);
  return b;
}

/**
 * The Boot Catalog (one sector): the first entry is the default one (its
 * platform is the validation entry's); every further entry gets a section
 * of its own platform, the last section marked final.
 */
export function bootCatalog(entries: CatalogEntry[]): Buffer {
  if (entries.length === 0 || entries.length > 30) throw new Error('boot catalog wants 1..30 entries');
  const parts = [validationEntry(entries[0].platform), bootEntry(entries[0])];
  const rest = entries.slice(1);
  rest.forEach((e, i) => {
    parts.push(sectionHeader(e.platform, 1, i === rest.length - 1), bootEntry(e));
  });
  const b = Buffer.alloc(SECTOR);
  Buffer.concat(parts).copy(b);
  return b;
}

/** Virtual-sector count for a no-emulation image: its size in 512-byte units, saturated at 0xFFFF. */
export function loadSectorsFor(size: number): number {
  return Math.min(0xffff, Math.max(1, Math.ceil(size / 512)));
}

/**
 * The boot information table: bytes 8–63 of the boot file receive the LBA
 * of the Primary Volume Descriptor, the boot file's own LBA and length, and
 * the 32-bit sum of its little-endian words from byte 64 on; 40 bytes reserved (zero).
 */
export function patchBootInfoTable(file: Buffer, pvdLba: number, fileLba: number): Buffer {
  if (file.length < 64) throw new Error('boot file too small for a boot information table');
  const b = Buffer.from(file);
  let sum = 0;
  const padded = Buffer.alloc(Math.ceil(b.length / 4) * 4);
  b.copy(padded);
  for (let i = 64; i < padded.length; i += 4) sum = (sum + padded.readUInt32LE(i)) >>> 0;
  b.writeUInt32LE(pvdLba, 8); // bi_pvd
  b.writeUInt32LE(fileLba, 12); // bi_file
  b.writeUInt32LE(b.length, 16); // bi_length
  b.writeUInt32LE(sum, 20); // bi_csum
  b.fill(0, 24, 64); // bi_reserved
  return b;
}
