/**
 * UEFI firmware: the Debian packages' OVMF (amd64) and AAVMF (arm64) split
 * images, CODE read-only and a fresh copy of the VARS template per run, or
 * `--fw CODE[,VARS]` (a single file is a combined image, copied per run too,
 * since the firmware writes its variables into it).
 */
import { existsSync } from 'node:fs';
import { DockyardError } from '../errors.js';
import type { Arch } from './detect.js';

export interface Firmware {
  code: string;
  /** Template copied per run; absent for a combined image. */
  vars?: string;
}

/** Debian's paths, preferred first (ovmf: the 4 MiB build, then the 2 MiB one; qemu-efi-aarch64: AAVMF). */
export const DEBIAN_FIRMWARE: Record<Arch, Firmware[]> = {
  amd64: [
    { code: '/usr/share/OVMF/OVMF_CODE_4M.fd', vars: '/usr/share/OVMF/OVMF_VARS_4M.fd' },
    { code: '/usr/share/OVMF/OVMF_CODE.fd', vars: '/usr/share/OVMF/OVMF_VARS.fd' },
  ],
  arm64: [{ code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/usr/share/AAVMF/AAVMF_VARS.fd' }],
};

const PACKAGE: Record<Arch, string> = { amd64: 'ovmf', arm64: 'qemu-efi-aarch64' };

export function findFirmware(arch: Arch, fw?: string, exists: (p: string) => boolean = existsSync): Firmware {
  if (fw !== undefined && fw !== '') {
    const [code, vars, ...rest] = fw.split(',');
    if (!code || rest.length > 0 || vars === '') throw new DockyardError('E_USAGE', `--fw takes CODE[,VARS], got "${fw}"`);
    for (const f of [code, vars]) if (f !== undefined && !exists(f)) throw new DockyardError('E_OUTPUT', `firmware file ${f} does not exist`);
    return vars === undefined ? { code } : { code, vars };
  }
  const found = DEBIAN_FIRMWARE[arch].find((f) => exists(f.code) && (f.vars === undefined || exists(f.vars)));
  if (!found) {
    throw new DockyardError(
      'E_OUTPUT',
      `no UEFI firmware for ${arch}: install Debian's ${PACKAGE[arch]} (${DEBIAN_FIRMWARE[arch][0].code}) or give --fw CODE[,VARS]`,
    );
  }
  return found;
}
