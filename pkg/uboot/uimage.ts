/**
 * U-Boot's legacy image format (`mkimage -T kernel|ramdisk|script`): a
 * 64-byte big-endian header before the data (u-boot include/image.h,
 * struct legacy_img_hdr):
 *
 *    0 ih_magic  0x27051956      4 ih_hcrc  CRC-32 of the header, this field 0
 *    8 ih_time   seconds         12 ih_size  data bytes
 *   16 ih_load   load address    20 ih_ep    entry point
 *   24 ih_dcrc   CRC-32 of the data
 *   28 ih_os     29 ih_arch      30 ih_type  31 ih_comp
 *   32 ih_name   32 bytes, NUL-padded
 *
 * A script image's data is a table of big-endian u32 lengths ended by 0,
 * then the script (the "multi-file" layout `source` reads). Deterministic:
 * ih_time is the build epoch (mkimage takes SOURCE_DATE_EPOCH the same way).
 * Used by the rpi3 format (u-boot's `bootm`, `source`).
 */
import { DockyardError } from '../errors.js';
import { crc32 } from '../disk/crc32.js';

export const UIMAGE_MAGIC = 0x27051956;
export const UIMAGE_HEADER = 64;

/** image.h's IH_OS_LINUX, IH_ARCH_ARM/ARM64, IH_TYPE_*, IH_COMP_*. */
export const IH_OS_LINUX = 5;
export const IH_ARCH = { arm: 2, arm64: 22 } as const;
export const IH_TYPE = { kernel: 2, ramdisk: 3, script: 6 } as const;
export const IH_COMP = { none: 0, gzip: 1 } as const;

export interface UImageHeader {
  type: keyof typeof IH_TYPE;
  arch: keyof typeof IH_ARCH;
  comp?: keyof typeof IH_COMP;
  /** Load address and entry point (0 for ramdisks and scripts). */
  load?: number;
  entry?: number;
  /** Up to 31 bytes (ASCII). */
  name: string;
  /** Seconds (the build epoch). */
  time: number;
  /** Data length and its CRC-32 (`crc32` of pkg/disk, continued over every chunk). */
  size: number;
  dataCrc: number;
}

const u32 = (v: number, what: string) => {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new DockyardError('E_LIMIT', `u-boot image: ${what} ${v} does not fit 32 bits`);
  return v;
};

export function uimageHeader(h: UImageHeader): Buffer {
  const name = Buffer.from(h.name, 'latin1');
  if (name.length > 31) throw new DockyardError('E_INTERNAL', `u-boot image: name "${h.name}" is over 31 bytes`);
  const b = Buffer.alloc(UIMAGE_HEADER);
  b.writeUInt32BE(UIMAGE_MAGIC, 0);
  b.writeUInt32BE(u32(h.time, 'time'), 8);
  b.writeUInt32BE(u32(h.size, 'size'), 12);
  b.writeUInt32BE(u32(h.load ?? 0, 'load address'), 16);
  b.writeUInt32BE(u32(h.entry ?? 0, 'entry point'), 20);
  b.writeUInt32BE(h.dataCrc >>> 0, 24);
  b[28] = IH_OS_LINUX;
  b[29] = IH_ARCH[h.arch];
  b[30] = IH_TYPE[h.type];
  b[31] = IH_COMP[h.comp ?? 'none'];
  name.copy(b, 32);
  b.writeUInt32BE(crc32(b), 4);
  return b;
}

/** A whole image of small data (a boot script). */
export function uimage(h: Omit<UImageHeader, 'size' | 'dataCrc'>, data: Buffer): Buffer {
  return Buffer.concat([uimageHeader({ ...h, size: data.length, dataCrc: crc32(data) }), data]);
}

/** A boot script as `mkimage -T script` wraps it: its length, 0, the text. */
export function scriptImage(h: Omit<UImageHeader, 'size' | 'dataCrc' | 'type'>, script: string): Buffer {
  const text = Buffer.from(script, 'utf8');
  const table = Buffer.alloc(8);
  table.writeUInt32BE(text.length, 0);
  return uimage({ ...h, type: 'script' }, Buffer.concat([table, text]));
}
