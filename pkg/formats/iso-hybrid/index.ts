/**
 * `iso-hybrid`: NAME-hybrid.iso, amd64 — one image that boots BIOS and
 * UEFI, from a CD and from a USB stick (LinuxKit's open issue #2227).
 * El Torito: ISOLINUX as the default (BIOS) entry, the FAT image with the
 * UKI in a UEFI section. System area: an isohybrid MBR whose code loads
 * ISOLINUX from a disk, partition 1 (type 0x00, active) spanning the image,
 * partition 2 (type 0xEF) the EFI image, partition 3 (0xEE) protecting a
 * GPT whose one EFI System Partition is the EFI image too: UEFI firmware
 * booting from a disk mounts it to find \EFI\BOOT\BOOTX64.EFI.
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import { writeBootIso } from '../../iso/format.js';
import { efiBootImage } from '../iso-efi/index.js';

export const isoHybridFormat: Format = {
  name: 'iso-hybrid',
  files: (name) => [`${name}-hybrid.iso`],
  arches: ['amd64'],
  components: () => ['syslinux', 'systemd-boot'],
  write: (ctx: FormatContext): Promise<OutputFile[]> => writeBootIso(ctx, { format: 'iso-hybrid', file: `${ctx.name}-hybrid.iso`, bios: true, efi: efiBootImage }),
};
