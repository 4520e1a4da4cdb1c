/**
 * `raw-bios`: NAME-bios.img (LinuxKit's name, moby/build/output.go), a raw
 * MBR disk for BIOS machines (amd64): one bootable FAT partition from 1 MiB
 * holding `kernel`, `initrd.img` and `cmdline` (the files LinuxKit's
 * mkimage-raw-bios puts there), and dockyard's own boot path instead of
 * SYSLINUX, which needs no installer:
 *
 *   MBR boot code   pkg/boot/mbrload.S: reads three extents and starts Linux
 *   LBA 1…          the kernel's real-mode setup with its header filled in
 *                   for the boot protocol, and the command line (pkg/boot/bzimage.ts)
 *   FAT partition   kernel and initrd, each contiguous: the MBR's load table
 *                   points at their sectors
 *
 * Because the loader reads sectors recorded at build time, replacing the
 * files on the partition needs a rebuild (as with LILO). The FAT type
 * follows the partition size; ids come from the content; by default the
 * disk is 4 MiB bigger than the smallest partition that holds the files,
 * the partition filling all but the first MiB (--size likewise).
 */
import { createHash } from 'node:crypto';
import { readHead } from '../../fsutil.js';
import type { Format, FormatContext } from '../format.js';
import type { ByteSink } from '../../archive/sink.js';
import { DockyardError } from '../../errors.js';
import { prepareBootParts } from '../bootparts.js';
import { copyFile } from '../output.js';
import { diskFormat, type RawDiskKind } from '../vdisk/spooled.js';
import { planFat } from '../../disk/fat.js';
import { planMbrDisk } from '../../disk/mbr.js';
import { alignUp, MiB } from '../../disk/gpt.js';
import { idFrom } from '../../disk/guid.js';
import { mbrLoader } from '../../boot/mbrload.js';
import { initrdAddress, KERNEL_ADDR, lowImage, parseBzImage, SETUP_ADDR } from '../../boot/bzimage.js';
import type { PlannedDisk } from '../raw-efi/index.js';

const SECTOR = 512;
const DEFAULT_EXTRA = 4 * MiB;
const MIN_EXTRA = MiB;
const mib = (n: number) => `${Math.round((n / MiB) * 100) / 100} MiB`;


export async function planRawBios(ctx: FormatContext, format = 'raw-bios'): Promise<PlannedDisk> {
  if (ctx.arch !== 'amd64') throw new DockyardError('E_UNSUPPORTED_ARCH', `${format} is for amd64 (BIOS) only`);
  const parts = await prepareBootParts(ctx, format);
  try {
    const head = await readHead(parts.kernel, 64 * 1024);
    const hdr = parseBzImage(head);
    if (parts.kernelSize <= hdr.setupBytes) throw new DockyardError('E_KERNEL', `${format}: the kernel is shorter than its setup code`);
    const initrdAddr = initrdAddress(hdr, parts.kernelSize, parts.initrdSize);
    const low = lowImage(head, hdr, { cmdline: parts.cmdline, initrdAddr, initrdSize: parts.initrdSize });

    const h = createHash('sha256').update(head.subarray(0, hdr.setupBytes)).update('\0').update(parts.cmdline).update('\0').update(String(ctx.epoch));
    for (const s of ctx.segments) h.update('\0').update(s.key);
    const seed = `dockyard raw-bios ${h.digest('hex')}`;

    const cmdline = Buffer.from(parts.cmdline + '\n');
    const files = [
      { path: 'cmdline', size: cmdline.length, write: (s: ByteSink) => s.write(cmdline) },
      { path: 'initrd.img', size: parts.initrdSize, write: (s: ByteSink) => copyFile(parts.initrd, s, ctx.signal) },
      { path: 'kernel', size: parts.kernelSize, write: (s: ByteSink) => copyFile(parts.kernel, s, ctx.signal) },
    ];
    const fatOpts = { files, label: 'DOCKYARD', volumeId: idFrom(seed, 'fat'), epoch: ctx.epoch, hiddenSectors: MiB / SECTOR };
    const smallest = alignUp(planFat(fatOpts).size, MiB);
    const needs = smallest + MIN_EXTRA;
    let size: number;
    if (ctx.diskSize !== undefined) {
      size = alignUp(ctx.diskSize, SECTOR);
      if (size < needs) throw new DockyardError('E_OUTPUT', `${format}: the system needs ${mib(needs)}, --size gives ${mib(ctx.diskSize)}`);
    } else {
      size = smallest + DEFAULT_EXTRA;
    }
    const fat = planFat({ ...fatOpts, minSize: size - MIN_EXTRA });
    if (fat.size > size - MIN_EXTRA) throw new DockyardError('E_OUTPUT', `${format}: the system needs ${mib(fat.size + MIN_EXTRA)}, --size gives ${mib(size)}`);

    const partLba = MiB / SECTOR;
    const lbaOf = (path: string) => partLba + fat.fileOffset(path)! / SECTOR;
    const boot = mbrLoader([
      { lba: 1, sectors: low.length / SECTOR, dest: SETUP_ADDR },
      { lba: lbaOf('kernel') + hdr.setupBytes / SECTOR, sectors: Math.ceil((parts.kernelSize - hdr.setupBytes) / SECTOR), dest: KERNEL_ADDR },
      { lba: lbaOf('initrd.img'), sectors: Math.ceil(parts.initrdSize / SECTOR), dest: initrdAddr },
    ]);
    const disk = planMbrDisk({
      bootCode: boot,
      diskSignature: idFrom(seed, 'disk'),
      gap: low,
      size,
      partitions: [{ type: fat.type === 32 ? 0x0c : fat.type === 16 ? 0x0e : 0x01, bootable: true, size: fat.size, write: (s) => fat.write(s) }],
    });
    return { size: disk.size, write: (s) => disk.write(s), cleanup: () => parts.cleanup() };
  } catch (e) {
    await parts.cleanup();
    throw e;
  }
}

/** The raw BIOS disk, as the disk formats name it (../vdisk/spooled.ts); amd64 only. */
export const BIOS_DISK: RawDiskKind = { kind: 'bios', plan: planRawBios, arches: ['amd64'], components: [] };

/** raw-bios: the spooled disk copied into place (qcow2-bios reads the same spool). */
export const rawBiosFormat: Format = diskFormat({ name: 'raw-bios', file: (n) => `${n}-bios.img`, disk: BIOS_DISK });
