/**
 * `iso-efi`: NAME-efi.iso (LinuxKit's name), amd64 and arm64. The El
 * Torito EFI boot image (platform 0xEF, no emulation, hidden from the tree
 * as LinuxKit hides boot.img) is a FAT filesystem holding the build's
 * unified kernel image as \EFI\BOOT\BOOTX64.EFI or BOOTAA64.EFI, the path
 * UEFI firmware boots from removable media: no GRUB, no config file.
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import type { BootParts } from '../bootparts.js';
import { DockyardError } from '../../errors.js';
import { planFat } from '../../disk/fat.js';
import { idFrom } from '../../disk/guid.js';
import { EFI_BOOT_NAME, UKI_STUB } from '../../pe/uki.js';
import { sharedUki, ukiOsRelease } from '../uki/index.js';
import { writeBootIso, type EfiImage } from '../../iso/format.js';

/** The FAT El Torito image with the UKI as the removable-media boot file. */
export async function efiBootImage(ctx: FormatContext, parts: BootParts): Promise<EfiImage> {
  if (!ctx.components) throw new DockyardError('E_INTERNAL', 'iso-efi: the systemd-boot component was not resolved');
  const stub = await ctx.components.readFile('systemd-boot', UKI_STUB[ctx.arch]);
  const uki = await sharedUki(ctx, stub, parts, ukiOsRelease(ctx.name));
  return planFat({
    files: [{ path: `EFI/BOOT/${EFI_BOOT_NAME[ctx.arch]}`, size: uki.size, write: (s) => uki.write(s) }],
    label: 'EFIBOOT',
    volumeId: idFrom('dockyard-iso-efi', ctx.arch, parts.cmdline, String(ctx.epoch), ...ctx.segments.map((s) => s.key)),
    epoch: ctx.epoch,
  });
}

export const isoEfiFormat: Format = {
  name: 'iso-efi',
  files: (name) => [`${name}-efi.iso`],
  arches: ['amd64', 'arm64'],
  components: () => ['systemd-boot'],
  write: (ctx: FormatContext): Promise<OutputFile[]> => writeBootIso(ctx, { format: 'iso-efi', file: `${ctx.name}-efi.iso`, efi: efiBootImage }),
};
