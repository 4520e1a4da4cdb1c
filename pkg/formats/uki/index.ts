/**
 * `uki`: NAME.efi, a unified kernel image (systemd-boot's EFI stub with the
 * kernel, initrd, command line and os-release as PE sections; pkg/pe/uki.ts).
 * Boots from any UEFI firmware, e.g. as \EFI\BOOT\BOOTX64.EFI on an ESP. The
 * stub comes from the `systemd-boot` component.
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import { DockyardError } from '../../errors.js';
import { prepareBootParts } from '../bootparts.js';
import { Outputs } from '../output.js';
import { planUki, UKI_STUB } from '../../pe/uki.js';
import { shared } from '../shared.js';
import type { BootParts } from '../bootparts.js';

/** The build's UKI (stub + its boot parts), planned once per build and arch and shared by the formats that hold one. */
export function sharedUki(ctx: FormatContext, stub: Buffer, parts: BootParts, osRelease: string): ReturnType<typeof planUki> {
  return shared(ctx, `uki:${osRelease}`, () => planUki({ stub, kernel: parts.kernel, initrd: parts.initrd, cmdline: parts.cmdline, osRelease, arch: ctx.arch }));
}

/** os-release(5) of the image: fixed fields plus the output name, so nothing varies between builds. */
export function ukiOsRelease(name: string): string {
  const id = name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'image';
  const pretty = `dockyard ${name}`.replace(/["\\`$]/g, '\\$&');
  return ['NAME=dockyard', 'ID=dockyard', `PRETTY_NAME="${pretty}"`, `IMAGE_ID=${id}`, ''].join('\n');
}

export const ukiFormat: Format = {
  name: 'uki',
  files: (name) => [`${name}.efi`],
  arches: ['amd64', 'arm64'],
  components: () => ['systemd-boot'],
  async write(ctx: FormatContext): Promise<OutputFile[]> {
    if (!ctx.components) throw new DockyardError('E_INTERNAL', 'uki: the systemd-boot component was not resolved');
    const stub = await ctx.components.readFile('systemd-boot', UKI_STUB[ctx.arch]);
    const parts = await prepareBootParts(ctx, 'uki');
    const outs = new Outputs(ctx);
    try {
      const uki = await sharedUki(ctx, stub, parts, ukiOsRelease(ctx.name));
      const o = await outs.create(`${ctx.name}.efi`, true);
      ctx.emit({ kind: 'output-start', format: 'uki', file: o.path });
      await uki.write(o.sink);
      return await outs.commit('uki');
    } catch (e) {
      await outs.abort();
      throw e;
    } finally {
      await parts.cleanup();
    }
  },
};
