/**
 * What every iso-* format does: prepare the boot parts (kernel, initrd,
 * cmdline), read the bootloader from its component, plan the ISO and
 * stream it into an atomic output.
 */
import { DockyardError } from '../errors.js';
import type { ByteSink } from '../archive/sink.js';
import type { FormatContext, OutputFile } from '../formats/format.js';
import { prepareBootParts, type BootParts } from '../formats/bootparts.js';
import { Outputs } from '../formats/output.js';
import { planBootIso, SYSLINUX_FILES } from './boot.js';
import type { IsoNode } from './iso.js';

export interface EfiImage {
  size: number;
  write(sink: ByteSink): Promise<void>;
}

export interface BootIsoFormat {
  format: string;
  file: string;
  bios?: boolean;
  /** The El Torito EFI image (a FAT filesystem), made from the boot parts. */
  efi?: (ctx: FormatContext, parts: BootParts) => Promise<EfiImage>;
  /** /kernel and /initrd.img in the tree, and more files (GRUB's config), for an EFI image that loads them. */
  kernelInitrd?: boolean;
  extra?: (ctx: FormatContext, parts: BootParts) => IsoNode[];
  /** Bootable from a disk too (isohybrid MBR + GPT with BIOS; protective MBR + GPT without). */
  hybrid?: boolean;
}

export async function writeBootIso(ctx: FormatContext, f: BootIsoFormat): Promise<OutputFile[]> {
  let bios: { isolinux: Buffer; ldlinux: Buffer; isohdpfx: Buffer } | undefined;
  if (f.bios) {
    if (!ctx.components) throw new DockyardError('E_INTERNAL', `${f.format}: the syslinux component was not resolved`);
    const got = await ctx.components.readFiles('syslinux', Object.values(SYSLINUX_FILES));
    bios = { isolinux: got.get(SYSLINUX_FILES.isolinux)!, ldlinux: got.get(SYSLINUX_FILES.ldlinux)!, isohdpfx: got.get(SYSLINUX_FILES.isohdpfx)! };
  }
  const parts = await prepareBootParts(ctx, f.format);
  const outs = new Outputs(ctx);
  try {
    const efi = f.efi ? await f.efi(ctx, parts) : undefined;
    const plan = planBootIso({
      epoch: ctx.epoch,
      kernel: { path: parts.kernel, size: parts.kernelSize },
      initrd: { path: parts.initrd, size: parts.initrdSize },
      cmdline: parts.cmdline,
      bios,
      efi,
      kernelInitrd: f.kernelInitrd,
      extra: f.extra?.(ctx, parts),
      hybrid: f.hybrid,
      seed: [f.format, ctx.arch, parts.cmdline, String(ctx.epoch), ...ctx.segments.map((s) => s.key)],
    });
    const o = await outs.create(f.file, true);
    ctx.emit({ kind: 'output-start', format: f.format, file: o.path });
    await plan.write(o.sink);
    return await outs.commit(f.format);
  } catch (e) {
    await outs.abort();
    throw e;
  } finally {
    await parts.cleanup();
  }
}
