/**
 * Bootable ISOs of a build: the tree and El Torito entries the iso-*
 * formats write. BIOS: ISOLINUX (no emulation, 4 virtual sectors, boot
 * information table) with ldlinux.c32 beside it and an isolinux.cfg booting
 * /kernel with /initrd.img; an isohybrid MBR so the image also boots from a
 * disk. UEFI: an El Torito EFI image (a FAT filesystem, hidden from the
 * tree as LinuxKit's `-hide boot.img` does) — alone, or as the second
 * platform beside ISOLINUX, where the hybrid MBR also points a partition of
 * type 0xEF at it.
 */
import { DockyardError } from '../errors.js';
import { createHash } from 'node:crypto';
import type { ByteSink } from '../archive/sink.js';
import { copyFile } from '../formats/output.js';
import { planIso, type IsoBootEntry, type IsoNode, type IsoPlan } from './iso.js';
import { addProtectiveEntry, GPT_TAIL, gptBackup, gptPrimary, HYBRID_ALIGN, isohybridMbr, protectiveMbr, type IsoGptInput } from './hybrid.js';
import { guidFrom } from '../disk/guid.js';
import type { IsoLayout } from './iso.js';

/** Where the syslinux component keeps what an ISO needs (Debian's isolinux and syslinux-common). */
export const SYSLINUX_FILES = {
  isolinux: 'usr/lib/ISOLINUX/isolinux.bin',
  isohdpfx: 'usr/lib/ISOLINUX/isohdpfx.bin',
  ldlinux: 'usr/lib/syslinux/modules/bios/ldlinux.c32',
} as const;

export const VOLUME_ID = 'DOCKYARD';

/** isolinux.cfg: serial console, no prompt, boots /kernel with /initrd.img and the build's command line. */
export function isolinuxCfg(cmdline: string): string {
  return ['SERIAL 0 115200', 'DEFAULT linux', 'PROMPT 0', 'TIMEOUT 0', 'LABEL linux', '  KERNEL /kernel', '  INITRD /initrd.img', `  APPEND ${cmdline}`, ''].join('\n');
}

export interface BootIsoInput {
  epoch: number;
  kernel: { path: string; size: number };
  initrd: { path: string; size: number };
  cmdline: string;
  bios?: { isolinux: Buffer; ldlinux: Buffer; isohdpfx: Buffer };
  efi?: { size: number; write(sink: ByteSink): Promise<void> };
  /** Put /kernel and /initrd.img in the tree even without ISOLINUX (a GRUB EFI image loads them from there). */
  kernelInitrd?: boolean;
  /** More files of the tree (GRUB's config). */
  extra?: IsoNode[];
  /** Stable inputs the disk signature is derived from (segment keys, cmdline, epoch). */
  seed: string[];
  /**
   * Without `bios`: bootable from a disk too (a USB stick) — a protective
   * MBR and a GPT whose EFI System Partition is the El Torito EFI image.
   */
  hybrid?: boolean;
}

const streamed = (path: string, file: { path: string; size: number }): IsoNode => ({
  type: 'file',
  path,
  size: file.size,
  write: (s) => copyFile(file.path, s),
});

export function planBootIso(o: BootIsoInput): IsoPlan {
  const nodes: IsoNode[] = [];
  const entries: IsoBootEntry[] = [];
  if (o.bios) {
    const cfg = Buffer.from(isolinuxCfg(o.cmdline));
    nodes.push(
      { type: 'file', path: 'isolinux/isolinux.bin', size: o.bios.isolinux.length, data: o.bios.isolinux },
      { type: 'file', path: 'isolinux/ldlinux.c32', size: o.bios.ldlinux.length, data: o.bios.ldlinux },
      { type: 'file', path: 'isolinux/isolinux.cfg', size: cfg.length, data: cfg },
    );
    entries.push({ platform: 'bios', path: 'isolinux/isolinux.bin', loadSectors: 4, bootInfoTable: true });
  }
  if (o.bios || o.kernelInitrd) nodes.push(streamed('kernel', o.kernel), streamed('initrd.img', o.initrd));
  nodes.push(...(o.extra ?? []));
  if (o.efi) {
    nodes.push({ type: 'file', path: 'boot.img', size: o.efi.size, write: o.efi.write, hidden: true });
    entries.push({ platform: 'efi', path: 'boot.img' });
  }
  const bios = o.bios;
  const diskId = createHash('sha256').update(['dockyard-iso', ...o.seed].join('\0')).digest().readUInt32LE(0);
  // BIOS + UEFI: a GPT too, whose one partition is the EFI image.
  const gpt = (l: IsoLayout): IsoGptInput => ({
    size: l.size,
    diskGuid: guidFrom('dockyard-iso-disk', ...o.seed),
    esp: { lba512: l.lbaOf('boot.img') * 4, sectors: Math.ceil(l.sizeOf('boot.img') / 512), guid: guidFrom('dockyard-iso-esp', ...o.seed) },
  });
  const hybrid = bios && o.efi;
  if (!bios && o.hybrid) {
    if (!o.efi) throw new DockyardError('E_INTERNAL', 'iso: an EFI-only hybrid image needs the EFI image');
    return planIso({
      nodes,
      epoch: o.epoch,
      volumeId: VOLUME_ID,
      boot: { catalog: { path: 'boot.catalog', hidden: true }, entries },
      padTo: HYBRID_ALIGN,
      systemArea: (l: IsoLayout) => Buffer.concat([protectiveMbr(l.size, diskId), gptPrimary(gpt(l))]),
      tail: { size: GPT_TAIL, encode: (l: IsoLayout) => gptBackup(gpt(l)) },
    });
  }
  return planIso({
    nodes,
    epoch: o.epoch,
    volumeId: VOLUME_ID,
    boot: { catalog: bios ? { path: 'isolinux/boot.cat' } : { path: 'boot.catalog', hidden: true }, entries },
    ...(bios
      ? {
          padTo: HYBRID_ALIGN,
          systemArea: (l: IsoLayout) => {
            const mbr = isohybridMbr({
              code: bios.isohdpfx,
              loader: bios.isolinux,
              loaderLba: l.lbaOf('isolinux/isolinux.bin'),
              size: l.size,
              diskId,
              efi: o.efi ? { lba: l.lbaOf('boot.img'), size: l.sizeOf('boot.img') } : undefined,
            });
            return hybrid ? Buffer.concat([addProtectiveEntry(mbr, l.size), gptPrimary(gpt(l))]) : mbr;
          },
          ...(hybrid ? { tail: { size: GPT_TAIL, encode: (l: IsoLayout) => gptBackup(gpt(l)) } } : {}),
        }
      : {}),
  });
}
