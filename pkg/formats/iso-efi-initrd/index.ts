/**
 * `iso-efi-initrd`: NAME-efi-initrd.iso (LinuxKit's name), amd64 and
 * arm64. As LinuxKit's mkimage-iso-efi-initrd: GRUB in the El Torito EFI
 * image (a FAT filesystem, \EFI\BOOT\BOOTX64.EFI / BOOTAA64.EFI), /kernel
 * and /initrd.img on the ISO, a grub.cfg that boots them with the build's
 * command line. GRUB is Debian's monolithic image from the `grub-efi`
 * component; its built-in config finds the volume holding /.disk/info and
 * sources /boot/grub/grub.cfg from it, so both are on the ISO.
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import type { BootParts } from '../bootparts.js';
import { DockyardError } from '../../errors.js';
import { planFat } from '../../disk/fat.js';
import { idFrom } from '../../disk/guid.js';
import { EFI_BOOT_NAME } from '../../pe/uki.js';
import { writeBootIso, type EfiImage } from '../../iso/format.js';
import type { IsoNode } from '../../iso/iso.js';

/** GRUB in the grub-efi component, per architecture. */
export const GRUB_EFI: Record<'amd64' | 'arm64', string> = {
  amd64: 'usr/lib/grub/x86_64-efi/monolithic/grubx64.efi',
  arm64: 'usr/lib/grub/arm64-efi/monolithic/grubaa64.efi',
};

/** grub.cfg as LinuxKit writes it, plus the initrd (LinuxKit's kernel+initrd variant). */
export function grubCfg(cmdline: string): string {
  if (/[\n'"]/.test(cmdline)) throw new DockyardError('E_SPEC_INVALID', 'iso-efi-initrd: the kernel command line may not hold quotes or newlines (GRUB would read them)');
  return ['set timeout=0', 'set gfxpayload=text', "menuentry 'dockyard' {", `\tlinux /kernel ${cmdline}`, '\tinitrd /initrd.img', '}', ''].join('\n');
}

async function grubImage(ctx: FormatContext, parts: BootParts): Promise<EfiImage> {
  if (!ctx.components) throw new DockyardError('E_INTERNAL', 'iso-efi-initrd: the grub-efi component was not resolved');
  const grub = await ctx.components.readFile('grub-efi', GRUB_EFI[ctx.arch]);
  return planFat({
    files: [{ path: `EFI/BOOT/${EFI_BOOT_NAME[ctx.arch]}`, size: grub.length, write: (s) => s.write(grub) }],
    label: 'EFIBOOT',
    volumeId: idFrom('dockyard-iso-efi-initrd', ctx.arch, parts.cmdline, String(ctx.epoch), ...ctx.segments.map((s) => s.key)),
    epoch: ctx.epoch,
  });
}

function grubFiles(ctx: FormatContext, parts: BootParts): IsoNode[] {
  const cfg = Buffer.from(grubCfg(parts.cmdline));
  const info = Buffer.from(`dockyard ${ctx.name} ${ctx.arch}\n`);
  return [
    { type: 'file', path: 'boot/grub/grub.cfg', size: cfg.length, data: cfg },
    { type: 'file', path: '.disk/info', size: info.length, data: info },
  ];
}

export const isoEfiInitrdFormat: Format = {
  name: 'iso-efi-initrd',
  files: (name) => [`${name}-efi-initrd.iso`],
  arches: ['amd64', 'arm64'],
  components: () => ['grub-efi'],
  write: (ctx: FormatContext): Promise<OutputFile[]> =>
    writeBootIso(ctx, { format: 'iso-efi-initrd', file: `${ctx.name}-efi-initrd.iso`, efi: grubImage, kernelInitrd: true, extra: grubFiles }),
};
