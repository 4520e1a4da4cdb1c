/**
 * `iso-bios`: NAME.iso (LinuxKit's name), amd64 only. ISOLINUX from the
 * `syslinux` component boots /kernel with /initrd.img and the build's
 * command line from a CD (El Torito, no emulation, boot information
 * table) or, through its isohybrid MBR, from a disk — as LinuxKit's
 * mkimage-iso-bios (genisoimage, then isohybrid) does, minus the tools.
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import { writeBootIso } from '../../iso/format.js';

export const isoBiosFormat: Format = {
  name: 'iso-bios',
  files: (name) => [`${name}.iso`],
  arches: ['amd64'],
  components: () => ['syslinux'],
  write: (ctx: FormatContext): Promise<OutputFile[]> => writeBootIso(ctx, { format: 'iso-bios', file: `${ctx.name}.iso`, bios: true }),
};
