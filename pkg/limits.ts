/**
 * The bounds dockyard holds itself to on inputs it did not write, with their
 * defaults. Those a user may need to raise have a flag; the rest are fixed
 * sizes of documents no honest input comes near.
 */

import { DockyardError } from './errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export interface Limits {
  /** Decompressed bytes of one image layer, or of a kernel image's modules tar (--max-layer-size). */
  layerBytes: number;
  /** Bytes of one output file (--max-output-size). */
  outputBytes: number;
  /**
   * Uncompressed bytes of an initramfs (--max-initrd): the kernel unpacks
   * it into memory, and newc cpio cannot hold a file of 4 GiB or more (past
   * 4 GiB LinuxKit's initrds break silently, linuxkit/linuxkit#3926).
   */
  initrdBytes: number;
}

export const defaultLimits: Limits = {
  layerBytes: 8 * GiB,
  outputBytes: 64 * GiB,
  initrdBytes: 4 * GiB,
};

/**
 * A spec file (YAML). LinuxKit's largest example is 5 KiB; a spec at this
 * size (≈30k files entries) loads in about 2 s and 200 MB. Large contents
 * belong in `files: source:`.
 */
export const MaxSpecBytes = 1 * MiB;

/** `~/.docker/config.json`. */
export const MaxDockerConfigBytes = 1 * MiB;

/** Ids written into headers: 0 … 2^32-2 (2^32-1 is the kernel's "no id", (uid_t)-1). */
export const MaxId = 4294967294;

/** SOURCE_DATE_EPOCH and entry times: what every output can carry (cpio's 32-bit c_mtime). */
export const MaxEpoch = 4294967295;

/** `512M`, `8G`, `1.5G`, or bytes: powers of 1024. */
export function parseSize(s: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(s.trim());
  const unit = m?.[2] ? 1024 ** ('KMGT'.indexOf(m[2].toUpperCase()) + 1) : 1;
  const n = m ? Number(m[1]) * unit : NaN;
  if (!m || !Number.isFinite(n) || n < 1 || n > Number.MAX_SAFE_INTEGER) throw new DockyardError('E_USAGE', `${flag} wants a size like 512M or 2G, got "${s}"`);
  return Math.floor(n);
}

/** `8 GiB`, `512 MiB`, `300 bytes`. */
export function formatSize(n: number): string {
  for (const [unit, v] of [
    ['TiB', 1024 * GiB],
    ['GiB', GiB],
    ['MiB', MiB],
    ['KiB', KiB],
  ] as const) {
    if (n >= v) return `${+(n / v).toFixed(2)} ${unit}`;
  }
  return `${n} bytes`;
}

/** SOURCE_DATE_EPOCH when it is not set: 1970-01-01. */
export const defaultEpoch = 0;
