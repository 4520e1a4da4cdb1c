/**
 * Field encodings of ECMA-119 (4th edition, 2019) section 7: numbers in
 * little-, big- and both-byte orders, the two date/time forms, and padded
 * character fields.
 */

/** Logical sector / block size: ECMA-119 6.1.2 (2048 for CD media and every ISO we write). */
export const SECTOR = 2048;

/** 7.3.3: 32-bit both-byte order (LE then BE, 8 bytes). */
export function both32(b: Buffer, off: number, v: number): void {
  b.writeUInt32LE(v >>> 0, off);
  b.writeUInt32BE(v >>> 0, off + 4);
}

/** 7.2.3: 16-bit both-byte order (LE then BE, 4 bytes). */
export function both16(b: Buffer, off: number, v: number): void {
  b.writeUInt16LE(v, off);
  b.writeUInt16BE(v, off + 2);
}

/** Read 7.3.3 back (LE half). */
export function readBoth32(b: Buffer, off: number): number {
  return b.readUInt32LE(off);
}

/** 9.1.5: "recording date and time", 7 bytes, GMT offset 0. */
export function dirDate(epoch: number): Buffer {
  const d = new Date(epoch * 1000);
  return Buffer.from([d.getUTCFullYear() - 1900, d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), 0]);
}

/** 8.4.26.1: volume descriptor date, 16 ASCII digits + GMT offset byte (17 bytes). */
export function volDate(epoch: number | undefined): Buffer {
  const b = Buffer.alloc(17, 0);
  if (epoch === undefined) {
    b.write('0000000000000000', 0, 'latin1'); // "not specified"
    return b;
  }
  const d = new Date(epoch * 1000);
  const p = (n: number, w: number) => String(n).padStart(w, '0');
  const s = p(d.getUTCFullYear(), 4) + p(d.getUTCMonth() + 1, 2) + p(d.getUTCDate(), 2) + p(d.getUTCHours(), 2) + p(d.getUTCMinutes(), 2) + p(d.getUTCSeconds(), 2) + '00';
  b.write(s, 0, 'latin1');
  return b;
}

/** Write an a-/d-character field padded with spaces (7.4). */
export function padStr(b: Buffer, off: number, len: number, s: string): void {
  b.fill(0x20, off, off + len);
  b.write(s.slice(0, len), off, 'latin1');
}

/** Sectors needed for n bytes. */
export function sectors(n: number): number {
  return Math.ceil(n / SECTOR);
}

/** The d-characters of 7.4.1 (A–Z, 0–9, _). */
export function dChars(s: string): string {
  return s.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
}
