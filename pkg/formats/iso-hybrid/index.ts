/**
 * `iso-hybrid`: NAME-hybrid.iso — one image that boots from a CD and from a
 * USB stick (LinuxKit's open issue #2227).
 *
 * amd64, BIOS and UEFI:
 * El Torito: ISOLINUX as the default (BIOS) entry, the FAT image with the
 * UKI in a UEFI section. System area: an isohybrid MBR whose code loads
 * ISOLINUX from a disk, partition 1 (type 0x00, active) spanning the image,
 * partition 2 (type 0xEF) the EFI image, partition 3 (0xEE) protecting a
 * GPT whose one EFI System Partition is the EFI image too: UEFI firmware
 * booting from a disk mounts it to find \EFI\BOOT\BOOTX64.EFI.
 *
 * arm64, UEFI only (as Debian's arm64 installer ISOs): the El Torito EFI
 * entry for a CD, and for a disk a protective MBR and a GPT whose EFI
 * System Partition is that same FAT image (\EFI\BOOT\BOOTAA64.EFI).
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import { writeBootIso } from '../../iso/format.js';
import { efiBootImage } from '../iso-efi/index.js';

export const isoHybridFormat: Format = {
  name: 'iso-hybrid',
  files: (name) => [`${name}-hybrid.iso`],
  arches: ['amd64', 'arm64'],
  components: (arch) => (arch === 'amd64' ? ['syslinux', 'systemd-boot'] : ['systemd-boot']),
  write: (ctx: FormatContext): Promise<OutputFile[]> =>
    writeBootIso(ctx, { format: 'iso-hybrid', file: `${ctx.name}-hybrid.iso`, bios: ctx.arch === 'amd64', efi: efiBootImage, hybrid: true }),
};
