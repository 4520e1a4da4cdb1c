/**
 * ECMA-119 structures: Directory Records (9.1), Path Table Records (9.4),
 * the Primary Volume Descriptor (8.4) and the Volume Descriptor Set
 * Terminator (8.3).
 */
import { both16, both32, dirDate, padStr as padAscii, SECTOR, volDate } from './encode.js';

export const FLAG_DIR = 0x02; // 9.1.6 bit 1: Directory

/** 9.1: a Directory Record; `id` is the File Identifier bytes (0x00 = ".", 0x01 = ".."). */
export function dirRecord(o: { id: Buffer; lba: number; size: number; flags: number; epoch: number; su?: Buffer[] }): Buffer {
  const idLen = o.id.length;
  const pad = idLen % 2 === 0 ? 1 : 0; // 9.1.12: padding so the System Use field starts at an even offset
  const suLen = (o.su ?? []).reduce((n, e) => n + e.length, 0);
  const len = 33 + idLen + pad + suLen;
  if (len > 255) throw new Error(`directory record too long (${len})`);
  const b = Buffer.alloc(len);
  b[0] = len; // BP 1: Length of Directory Record
  b[1] = 0; // BP 2: Extended Attribute Record Length
  both32(b, 2, o.lba); // BP 3–10: Location of Extent
  both32(b, 10, o.size); // BP 11–18: Data Length
  dirDate(o.epoch).copy(b, 18); // BP 19–25: Recording Date and Time
  b[25] = o.flags; // BP 26: File Flags
  b[26] = 0; // BP 27: File Unit Size
  b[27] = 0; // BP 28: Interleave Gap Size
  both16(b, 28, 1); // BP 29–32: Volume Sequence Number
  b[32] = idLen; // BP 33: Length of File Identifier
  o.id.copy(b, 33); // BP 34–: File Identifier
  let p = 33 + idLen + pad; // then the System Use field (SUSP entries)
  for (const e of o.su ?? []) {
    e.copy(b, p);
    p += e.length;
  }
  return b;
}

/** Bytes a record takes before its System Use field. */
export function recordBase(idLen: number): number {
  return 33 + idLen + (idLen % 2 === 0 ? 1 : 0);
}

/** 9.4: one Path Table Record, little- (type L) or big-endian (type M). */
export function pathTableRecord(id: Buffer, lba: number, parent: number, bigEndian: boolean): Buffer {
  const b = Buffer.alloc(8 + id.length + (id.length % 2));
  b[0] = id.length; // BP 1: Length of Directory Identifier
  b[1] = 0; // BP 2: Extended Attribute Record Length
  if (bigEndian) {
    b.writeUInt32BE(lba, 2); // BP 3–6: Location of Extent
    b.writeUInt16BE(parent, 6); // BP 7–8: Parent Directory Number
  } else {
    b.writeUInt32LE(lba, 2);
    b.writeUInt16LE(parent, 6);
  }
  id.copy(b, 8); // BP 9–: Directory Identifier (+ padding byte if odd)
  return b;
}

export interface PvdFields {
  systemId: string;
  volumeId: string;
  volumeSetId: string;
  publisherId: string;
  preparerId: string;
  applicationId: string;
  volumeBlocks: number;
  pathTableSize: number;
  lPathLba: number;
  mPathLba: number;
  rootRecord: Buffer; // 34 bytes
  epoch: number;
  /** A Joliet Supplementary Volume Descriptor (8.5; identifiers in UCS-2, escape sequence %/E = UCS-2 level 3). */
  joliet?: boolean;
}

/** Joliet: a character field in UCS-2 big-endian, padded with UCS-2 spaces (00 20). */
function padUcs2(b: Buffer, off: number, len: number, s: string): void {
  for (let i = 0; i + 1 < len; i += 2) b.writeUInt16BE(0x0020, off + i);
  if (len % 2) b[off + len - 1] = 0x20;
  const chars = s.slice(0, Math.floor(len / 2));
  for (let i = 0; i < chars.length; i++) b.writeUInt16BE(chars.charCodeAt(i), off + 2 * i);
}

/** 8.4: the Primary Volume Descriptor (or, with `joliet`, the 8.5 Supplementary one). */
export function primaryVolumeDescriptor(f: PvdFields): Buffer {
  const b = Buffer.alloc(SECTOR);
  const padStr = f.joliet ? padUcs2 : padAscii;
  b[0] = f.joliet ? 2 : 1; // BP 1: Volume Descriptor Type (primary / supplementary)
  b.write('CD001', 1, 'latin1'); // BP 2–6: Standard Identifier
  b[6] = 1; // BP 7: Volume Descriptor Version
  padStr(b, 8, 32, f.systemId); // BP 9–40: System Identifier
  padStr(b, 40, 32, f.volumeId); // BP 41–72: Volume Identifier
  both32(b, 80, f.volumeBlocks); // BP 81–88: Volume Space Size
  if (f.joliet) b.write('%/E', 88, 'latin1'); // BP 89–120: Escape Sequences (SVD only): UCS-2 level 3
  both16(b, 120, 1); // BP 121–124: Volume Set Size
  both16(b, 124, 1); // BP 125–128: Volume Sequence Number
  both16(b, 128, SECTOR); // BP 129–132: Logical Block Size
  both32(b, 132, f.pathTableSize); // BP 133–140: Path Table Size
  b.writeUInt32LE(f.lPathLba, 140); // BP 141–144: Location of Type L Path Table
  b.writeUInt32LE(0, 144); // BP 145–148: Optional Type L Path Table (none)
  b.writeUInt32BE(f.mPathLba, 148); // BP 149–152: Location of Type M Path Table
  b.writeUInt32BE(0, 152); // BP 153–156: Optional Type M Path Table (none)
  f.rootRecord.copy(b, 156); // BP 157–190: Directory Record for Root Directory
  padStr(b, 190, 128, f.volumeSetId); // BP 191–318: Volume Set Identifier
  padStr(b, 318, 128, f.publisherId); // BP 319–446: Publisher Identifier
  padStr(b, 446, 128, f.preparerId); // BP 447–574: Data Preparer Identifier
  padStr(b, 574, 128, f.applicationId); // BP 575–702: Application Identifier
  padStr(b, 702, 37, ''); // BP 703–739: Copyright File Identifier
  padStr(b, 739, 37, ''); // BP 740–776: Abstract File Identifier
  padStr(b, 776, 37, ''); // BP 777–813: Bibliographic File Identifier
  volDate(f.epoch).copy(b, 813); // BP 814–830: Volume Creation Date and Time
  volDate(f.epoch).copy(b, 830); // BP 831–847: Volume Modification Date and Time
  volDate(undefined).copy(b, 847); // BP 848–864: Volume Expiration Date and Time
  volDate(f.epoch).copy(b, 864); // BP 865–881: Volume Effective Date and Time
  b[881] = 1; // BP 882: File Structure Version
  return b;
}

/** 8.3: Volume Descriptor Set Terminator. */
export function terminatorDescriptor(): Buffer {
  const b = Buffer.alloc(SECTOR);
  b[0] = 255;
  b.write('CD001', 1, 'latin1');
  b[6] = 1;
  return b;
}
