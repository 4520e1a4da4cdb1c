/**
 * `rpi3` (arm64): NAME.tar, to be extracted onto the FAT boot partition of a
 * Raspberry Pi 3's SD card — what LinuxKit's tools/mkimage-rpi3 puts there:
 *
 *   kernel.uimg        the kernel as a U-Boot image (`mkimage -T kernel`;
 *                      gzip-compressed when the kernel file is gzip, as
 *                      LinuxKit's arm64 kernels are, else stored)
 *   initrd.uimg        the initramfs of kernel+initrd (`-T ramdisk`)
 *   boot.scr           the U-Boot script (`-T script`, bootfiles.ts) with the
 *                      spec's command line
 *   dtb/broadcom/bcm2837-rpi-3-b*.dtb
 *                      from the system's boot/dtb/broadcom/ (LinuxKit's
 *                      arm64 kernels carry them in kernel.tar)
 *   config.txt         the firmware's settings (bootfiles.ts)
 *   u-boot.bin         U-Boot for the Pi 3, from the `u-boot-rpi` component
 *                      (Debian's u-boot-rpi: /usr/lib/u-boot/rpi_3/)
 *   bootcode.bin, start{,_cd,_x}.elf, fixup{,_cd,_x}.dat, LICENCE.broadcom
 *                      the GPU firmware and its licence, from the
 *                      `raspi-firmware` component (Debian's raspi-firmware:
 *                      /usr/lib/raspi-firmware/, the licence its copyright file)
 *
 * Entries sorted, owned by root, dated SOURCE_DATE_EPOCH; the uImages' time
 * is the same epoch. The kernel and initramfs are the build's boot parts
 * (written once, shared with kernel+initrd and the ISO/disk formats); their
 * CRC-32 is read from those files before the tar streams them.
 */
import { createReadStream } from 'node:fs';
import type { Format, FormatContext, OutputFile } from '../format.js';
import type { Entry, Segment } from '../../rootfs/entry.js';
import { DockyardError } from '../../errors.js';
import { bodyChunks, collectBody } from '../../archive/sink.js';
import { tarHeader, writeTarEntry, END_OF_ARCHIVE } from '../../archive/tarwrite.js';
import { crc32 } from '../../disk/crc32.js';
import { formatSize } from '../../limits.js';
import { uimageHeader, scriptImage, type UImageHeader } from '../../uboot/uimage.js';
import { prepareBootParts } from '../bootparts.js';
import { copyFile, Outputs } from '../output.js';
import { bootScript, configTxt, DTB_DIR, isRpi3Dtb, KERNEL_LOAD, MAX_INITRD_UIMG, MAX_KERNEL_UIMG } from './bootfiles.js';

const FIRMWARE_DIR = 'usr/lib/raspi-firmware/';
/** The firmware files LinuxKit's image carries (the Pi 3's: not the Pi 4's start4*, fixup4*). */
export const FIRMWARE_FILES = ['bootcode.bin', 'fixup.dat', 'fixup_cd.dat', 'fixup_x.dat', 'start.elf', 'start_cd.elf', 'start_x.elf'];
const FIRMWARE_LICENCE = 'usr/share/doc/raspi-firmware/copyright';
const UBOOT_BIN = 'usr/lib/u-boot/rpi_3/u-boot.bin';

/**
 * The Pi 3 device trees of the system: from the kernel segment's modules
 * tar (where LinuxKit kernels carry boot/dtb/) and the spec's `files`
 * (later wins). Other images are not read again for them.
 */
async function deviceTrees(ctx: FormatContext): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const take = async (entries: AsyncIterable<Entry>) => {
    for await (const e of entries) {
      ctx.signal?.throwIfAborted();
      if (e.type === 'file' && isRpi3Dtb(e.path)) out.set(e.path.slice('boot/'.length), await collectBody(e.body, 16 * 1024 * 1024, e.path));
      else for await (const _ of bodyChunks(e.body)) void _;
    }
  };
  const kernel = ctx.segments[0];
  if (kernel?.name === 'kernel') await take(kernel.split ? kernel.split.rest() : kernel.entries());
  const files: Segment | undefined = ctx.segments.find((s) => s.name === 'files');
  if (files) await take(files.entries());
  return out;
}

/** CRC-32 of a file, streamed. */
async function fileCrc(path: string, signal?: AbortSignal): Promise<number> {
  let c = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) {
    signal?.throwIfAborted();
    c = crc32(chunk as Buffer, c);
  }
  return c;
}

async function firstBytes(path: string, n: number): Promise<Buffer> {
  for await (const chunk of createReadStream(path, { start: 0, end: n - 1 })) return chunk as Buffer;
  return Buffer.alloc(0);
}

const file = (path: string, size: number): Entry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, size });
const dir = (path: string): Entry => ({ path, type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0 });

export const rpi3Format: Format = {
  name: 'rpi3',
  arches: ['arm64'],
  files: (name) => [`${name}.tar`],
  components: () => ['u-boot-rpi', 'raspi-firmware'],
  async write(ctx: FormatContext): Promise<OutputFile[]> {
    if (ctx.segments[0]?.name !== 'kernel') throw new DockyardError('E_SPEC_INVALID', 'rpi3 needs a kernel in the spec');
    if (!ctx.components) throw new DockyardError('E_INTERNAL', 'rpi3: components were not resolved');
    const dtbs = await deviceTrees(ctx);
    if (dtbs.size === 0) {
      throw new DockyardError('E_KERNEL', `rpi3: the system has no /${DTB_DIR}bcm2837-rpi-3-b*.dtb (LinuxKit's arm64 kernels carry them in kernel.tar; or add them with files:)`);
    }
    const firmware = await ctx.components.readFiles('raspi-firmware', [...FIRMWARE_FILES.map((f) => FIRMWARE_DIR + f), FIRMWARE_LICENCE]);
    const uboot = await ctx.components.readFile('u-boot-rpi', UBOOT_BIN);
    const parts = await prepareBootParts(ctx, 'rpi3');
    if (parts.kernelSize > MAX_KERNEL_UIMG - 64) throw new DockyardError('E_LIMIT', `rpi3: the kernel is ${formatSize(parts.kernelSize)}, over the ${formatSize(MAX_KERNEL_UIMG - 64)} the boot script leaves it`);
    if (parts.initrdSize > MAX_INITRD_UIMG - 64) throw new DockyardError('E_LIMIT', `rpi3: the initramfs is ${formatSize(parts.initrdSize)} compressed, over the ${formatSize(MAX_INITRD_UIMG - 64)} a 1 GiB Raspberry Pi 3 can load`);

    const kernelMagic = await firstBytes(parts.kernel, 2);
    const base = { arch: 'arm64', time: ctx.epoch } as const;
    const kernelHdr = uimageHeader({
      ...base,
      type: 'kernel',
      comp: kernelMagic[0] === 0x1f && kernelMagic[1] === 0x8b ? 'gzip' : 'none',
      load: KERNEL_LOAD,
      entry: KERNEL_LOAD,
      name: 'Linux kernel',
      size: parts.kernelSize,
      dataCrc: await fileCrc(parts.kernel, ctx.signal),
    } satisfies UImageHeader);
    const initrdHdr = uimageHeader({ ...base, type: 'ramdisk', name: 'initramfs', size: parts.initrdSize, dataCrc: await fileCrc(parts.initrd, ctx.signal) });
    const script = scriptImage({ ...base, name: 'dockyard rpi3' }, bootScript(parts.cmdline));

    // Everything in name order; the two large members stream from the boot parts.
    type Member = { entry: Entry; body?: Buffer; stream?: { header: Buffer; path: string; size: number } };
    const members: Member[] = [
      { entry: file('LICENCE.broadcom', 0), body: firmware.get(FIRMWARE_LICENCE)! },
      { entry: file('boot.scr', 0), body: script },
      { entry: file('config.txt', 0), body: Buffer.from(configTxt()) },
      { entry: dir('dtb') },
      { entry: dir('dtb/broadcom') },
      ...[...dtbs].map(([p, b]) => ({ entry: file(p, 0), body: b })),
      ...FIRMWARE_FILES.map((f) => ({ entry: file(f, 0), body: firmware.get(FIRMWARE_DIR + f)! })),
      { entry: file('initrd.uimg', 0), stream: { header: initrdHdr, path: parts.initrd, size: parts.initrdSize } },
      { entry: file('kernel.uimg', 0), stream: { header: kernelHdr, path: parts.kernel, size: parts.kernelSize } },
      { entry: file('u-boot.bin', 0), body: uboot },
    ];
    members.sort((a, b) => (a.entry.path < b.entry.path ? -1 : a.entry.path > b.entry.path ? 1 : 0));

    const outs = new Outputs(ctx);
    try {
      const o = await outs.create(`${ctx.name}.tar`, true);
      ctx.emit({ kind: 'output-start', format: 'rpi3', file: o.path });
      for (const m of members) {
        ctx.signal?.throwIfAborted();
        if (m.stream) {
          const size = m.stream.header.length + m.stream.size;
          await o.sink.write(tarHeader({ ...m.entry, size }, ctx.epoch));
          await o.sink.write(m.stream.header);
          await copyFile(m.stream.path, o.sink, ctx.signal);
          await o.sink.write(Buffer.alloc((512 - (size % 512)) % 512));
        } else if (m.body) {
          await writeTarEntry(o.sink, { ...m.entry, size: m.body.length, body: m.body }, ctx.epoch);
        } else {
          await writeTarEntry(o.sink, m.entry, ctx.epoch);
        }
      }
      await o.sink.write(END_OF_ARCHIVE);
      return await outs.commit('rpi3');
    } catch (e) {
      await outs.abort();
      throw e;
    } finally {
      await parts.cleanup();
    }
  },
};
