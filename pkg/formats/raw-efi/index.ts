/**
 * `raw-efi`: NAME-efi.img (LinuxKit's name for it, moby/build/output.go), a
 * raw GPT disk with one EFI System Partition holding the unified kernel
 * image as the removable-media boot file \EFI\BOOT\BOOTX64.EFI (amd64) or
 * \EFI\BOOT\BOOTAA64.EFI (arm64) (UEFI spec 3.5.1.1): any UEFI firmware
 * boots it with no boot entries configured.
 *
 * Layout as LinuxKit's mkimage-raw-efi makes it: ESP from 1 MiB, named
 * "EFI System", with the legacy-BIOS-bootable attribute. By default the disk
 * is 4 MiB bigger than the smallest ESP that holds the UKI (LinuxKit's
 * figure); the ESP always fills the disk but for 1 MiB at each end (the
 * backup GPT lives in the last one), so the default ESP has 2 MiB to spare
 * and a --size disk gives the ESP all its room. The FAT is FAT12/16/32 by
 * the ESP's size. Every id (disk and partition GUIDs, FAT volume id) is a
 * hash of what the disk is made of: the same inputs give the same bytes.
 *
 * planRawEfi() is also what the virtual-disk formats (qcow2-efi, vhd, vmdk,
 * …) start from: they convert the planned raw disk as it streams.
 */
import { createHash } from 'node:crypto';
import type { Format, FormatContext } from '../format.js';
import type { ByteSink } from '../../archive/sink.js';
import { DockyardError } from '../../errors.js';
import { prepareBootParts } from '../bootparts.js';
import { diskFormat, type RawDiskKind } from '../vdisk/spooled.js';
import { UKI_STUB, EFI_BOOT_NAME } from '../../pe/uki.js';
import { shared } from '../shared.js';
import { sharedUki } from '../uki/index.js';
import { ukiOsRelease } from '../uki/index.js';
import { planFat } from '../../disk/fat.js';
import { planGptDisk, alignUp, MiB } from '../../disk/gpt.js';
import { guidFrom, idFrom, PARTITION_TYPE } from '../../disk/guid.js';

export interface PlannedDisk {
  /** Bytes. */
  size: number;
  write(sink: ByteSink): Promise<void>;
  /** Remove the scratch files (kernel, initrd) the plan streams from. */
  cleanup(): Promise<void>;
}

/** Room LinuxKit's raw-efi disks have besides the smallest ESP. */
const DEFAULT_EXTRA = 4 * MiB;
/** The least: 1 MiB before the ESP (alignment), 1 MiB after it (backup GPT, aligned). */
const MIN_EXTRA = 2 * MiB;

const mib = (n: number) => `${Math.round((n / MiB) * 100) / 100} MiB`;

/**
 * The build's raw EFI disk for ctx.diskSize, planned once and shared by every
 * format that wraps it. With `align` (a cloud's size rule: azure 1 MiB, gcp
 * 1 GiB) the disk is grown to a multiple of it with the ESP left as it is:
 * the room is unpartitioned, the backup GPT moves to the new end, and every
 * chunk of the ESP stays where raw-efi has it (so its compressed chunks are
 * shared, pkg/vdisk/grains.ts).
 */
export function planRawEfi(ctx: FormatContext, format = 'raw-efi', align = 1): Promise<PlannedDisk> {
  return shared(ctx, `raw-efi:${ctx.diskSize ?? 'default'}:${align}`, () => planRawEfiOnce(ctx, format, align)).then((d) => ({ ...d, cleanup: async () => {} }));
}

async function planRawEfiOnce(ctx: FormatContext, format: string, align: number): Promise<PlannedDisk> {
  if (!ctx.components) throw new DockyardError('E_INTERNAL', `${format}: the systemd-boot component was not resolved`);
  const stub = await ctx.components.readFile('systemd-boot', UKI_STUB[ctx.arch]);
  const parts = await prepareBootParts(ctx, format);
  try {
    const osRelease = ukiOsRelease(ctx.name);
    const uki = await sharedUki(ctx, stub, parts, osRelease);

    // Everything the disk's bytes follow from, cheaply: the segments' content keys, the stub, the command line, the name.
    const h = createHash('sha256').update(stub).update('\0').update(parts.cmdline).update('\0').update(osRelease).update('\0').update(String(ctx.epoch));
    for (const s of ctx.segments) h.update('\0').update(s.key);
    const seed = `dockyard raw-efi ${ctx.arch} ${h.digest('hex')}`;

    const files = [{ path: `EFI/BOOT/${EFI_BOOT_NAME[ctx.arch]}`, size: uki.size, write: (s: ByteSink) => uki.write(s) }];
    const fatOpts = { files, label: 'EFI', volumeId: idFrom(seed, 'fat'), epoch: ctx.epoch, hiddenSectors: MiB / 512 };
    const smallest = alignUp(planFat(fatOpts).size, MiB);
    const needs = smallest + MIN_EXTRA;
    let size: number;
    if (ctx.diskSize !== undefined) {
      size = alignUp(ctx.diskSize, 512);
      if (size < needs) throw new DockyardError('E_OUTPUT', `${format}: the system needs ${mib(needs)}, --size gives ${mib(ctx.diskSize)}`);
    } else {
      size = smallest + DEFAULT_EXTRA;
    }
    const espSpace = Math.floor((size - MIN_EXTRA) / MiB) * MiB; // ESP ends on a MiB boundary, 1 MiB before the end at least
    const esp = planFat({ ...fatOpts, minSize: espSpace });
    if (esp.size > espSpace) throw new DockyardError('E_OUTPUT', `${format}: the system needs ${mib(esp.size + MIN_EXTRA)}, --size gives ${mib(size)}`);
    const disk = planGptDisk({
      diskGuid: guidFrom(seed, 'disk'),
      size: alignUp(size, align),
      partitions: [
        {
          name: 'EFI System',
          typeGuid: PARTITION_TYPE.esp,
          uniqueGuid: guidFrom(seed, 'esp'),
          size: esp.size,
          bootable: true,
          write: (s) => esp.write(s),
        },
      ],
    });
    return { size: disk.size, write: (s) => disk.write(s), cleanup: () => parts.cleanup() };
  } catch (e) {
    await parts.cleanup();
    throw e;
  }
}

/** The raw EFI disk, as the disk formats name it (./vdisk/spooled.ts). */
export const EFI_DISK: RawDiskKind = { kind: 'efi', plan: planRawEfi, arches: ['amd64', 'arm64'], components: ['systemd-boot'] };

/** raw-efi: the spooled disk copied into place (the vdisk formats read the same spool). */
export const rawEfiFormat: Format = diskFormat({ name: 'raw-efi', file: (n) => `${n}-efi.img`, disk: EFI_DISK });
