/**
 * Deterministic GUIDs: no random source, the bytes are a hash of stable
 * inputs, so the same build gives the same disk and partition GUIDs.
 *
 * Text form is RFC 9562 (RFC 4122) `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`;
 * being a truncated SHA-256 of a name, the version nibble is 8 ("custom",
 * RFC 9562 5.8, the slot for name-based SHA-256 ids) and the variant is 10xx.
 */
import { createHash } from 'node:crypto';
import { DockyardError } from '../errors.js';

const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A GUID derived from `parts` (joined unambiguously, then SHA-256). */
export function guidFrom(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) {
    const b = Buffer.from(p, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len).update(b);
  }
  const d = h.digest();
  d[6] = (d[6] & 0x0f) | 0x80; // version 8
  d[8] = (d[8] & 0x3f) | 0x80; // variant 10xx
  const x = d.subarray(0, 16).toString('hex').toUpperCase();
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** A 32-bit id (FAT volume id, MBR disk signature) derived from `parts`. */
export function idFrom(...parts: string[]): number {
  return createHash('sha256').update(parts.join('\0')).digest().readUInt32LE(0);
}

export function isGuid(s: string): boolean {
  return GUID_RE.test(s);
}

/**
 * The 16 on-disk bytes of a GUID as EFI stores it (UEFI spec appendix A,
 * EFI_GUID): the first three fields little-endian, the last two as written.
 */
export function guidToBytes(guid: string): Buffer {
  if (!GUID_RE.test(guid)) throw new DockyardError('E_INTERNAL', `not a GUID: "${guid}"`);
  const hex = guid.replace(/-/g, '');
  const b = Buffer.from(hex, 'hex');
  const out = Buffer.alloc(16);
  out.writeUInt32LE(b.readUInt32BE(0), 0);
  out.writeUInt16LE(b.readUInt16BE(4), 4);
  out.writeUInt16LE(b.readUInt16BE(6), 6);
  b.copy(out, 8, 8, 16);
  return out;
}

/** Inverse of guidToBytes (upper-case text form). */
export function guidFromBytes(b: Buffer): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const t = b.subarray(8, 16).toString('hex');
  return `${h(b.readUInt32LE(0), 8)}-${h(b.readUInt16LE(4), 4)}-${h(b.readUInt16LE(6), 4)}-${t.slice(0, 4)}-${t.slice(4)}`.toUpperCase();
}

/** Well-known partition type GUIDs. */
export const PARTITION_TYPE = {
  /** EFI System Partition (UEFI spec 5.3.3). */
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  /** Microsoft basic data (a FAT/NTFS data partition). */
  basicData: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
  /** Linux filesystem data. */
  linux: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
} as const;
