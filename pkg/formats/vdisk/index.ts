/**
 * The formats that wrap the raw EFI disk (GPT + FAT ESP holding the UKI,
 * pkg/formats/raw-efi) in a container, with LinuxKit's output names
 * (moby/build/output.go) where it has the format:
 *
 *   qcow2-efi    NAME-efi.qcow2      qcow2 v3, sparse             (pkg/vdisk/qcow2.ts)
 *   vhd          NAME.vhd            fixed VHD                    (pkg/vdisk/vhd.ts)
 *   dynamic-vhd  NAME.vhd            dynamic VHD, 2 MiB blocks    (pkg/vdisk/vhd.ts)
 *   vmdk         NAME.vmdk           streamOptimized VMDK         (pkg/vdisk/vmdk.ts)
 *   azure        NAME-azure.vhd      fixed VHD, size a multiple of 1 MiB (Azure's rule)
 *   gcp          NAME.img.tar.gz     disk.raw in a GNU tar, gzip  (pkg/vdisk/gcp.ts); whole GiB (GCE's
 *                                    disk sizes are whole GB; LinuxKit's gcp disk is 1G)
 *
 * azure and gcp grow the disk to their multiple with the ESP unchanged (see
 * planRawEfi).
 *   aws          NAME.raw            the raw disk (for EC2 import-snapshot)
 *   qcow2-bios   NAME.qcow2          the raw BIOS disk (pkg/formats/raw-bios) as qcow2; amd64 only
 *
 * The raw disk is planned and spooled to a scratch file once per build
 * (pkg/vdisk/spool.ts, ./spooled.ts): the containers convert from it, and
 * aws, vhd and azure are that file copied into place (vhd and azure with the
 * fixed VHD footer after it).
 */
import { basename } from 'node:path';
import type { Format, FormatContext, OutputFile } from '../format.js';
import type { ByteSink } from '../../archive/sink.js';
import { DockyardError } from '../../errors.js';
import { Outputs, Progress } from '../output.js';
import { writeQcow2 } from '../../vdisk/qcow2.js';
import { writeDynamicVhd, fixedVhdFooter } from '../../vdisk/vhd.js';
import { writeVmdk } from '../../vdisk/vmdk.js';
import { writeGcpTarGz } from '../../vdisk/gcp.js';
import type { RawDisk, Spooled } from '../../vdisk/spool.js';
import { sharedSpool, writeSpooledCopy } from './spooled.js';
import { ChunkDeflater } from '../../vdisk/grains.js';
import { shared } from '../shared.js';
import { planRawEfi, type PlannedDisk } from '../raw-efi/index.js';
import { planRawBios } from '../raw-bios/index.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

type Convert = (raw: RawDisk, sink: ByteSink, o: { epoch: number; scratchDir: string; signal?: AbortSignal; fileName: string; deflater: ChunkDeflater }) => Promise<void>;

interface VdiskSpec {
  name: string;
  file: (name: string) => string;
  /** Streams the container from the raw disk; or, without it, the output is the raw disk itself followed by `tail`. */
  convert?: Convert;
  tail?: (sp: Spooled, epoch: number) => Buffer;
  /** Disk size must be a multiple of this many bytes (azure: 1 MiB, gcp: 1 GiB). */
  align?: number;
  /** The raw disk wrapped (default: raw-efi's, grown to `align`). */
  plan?: (ctx: FormatContext, format: string) => Promise<PlannedDisk>;
  arches?: ('amd64' | 'arm64')[];
  components?: string[];
  heavy?: boolean;
  /** Which raw disk `plan` makes (the spool is shared by that name): efi by default. */
  kind?: string;
}

function vdiskFormat(s: VdiskSpec): Format {
  return {
    name: s.name,
    files: (name) => [s.file(name)],
    arches: s.arches ?? ['amd64', 'arm64'],
    heavy: s.heavy,
    components: () => s.components ?? ['systemd-boot'],
    async write(ctx: FormatContext): Promise<OutputFile[]> {
      const raw = s.plan ? await s.plan(ctx, s.name) : await planRawEfi(ctx, s.name, s.align);
      const kind = s.kind ?? 'efi';
      if (!s.convert) {
        try {
          if (s.align && raw.size % s.align !== 0) throw new DockyardError('E_INTERNAL', `${s.name}: disk size ${raw.size} is not a multiple of ${s.align}`);
          return await writeSpooledCopy(ctx, s.name, s.file(ctx.name), kind, raw, s.tail && ((sp) => s.tail!(sp, ctx.epoch)));
        } finally {
          await raw.cleanup();
        }
      }
      const convert = s.convert;
      const outs = new Outputs(ctx);
      try {
        if (s.align && raw.size % s.align !== 0) throw new DockyardError('E_INTERNAL', `${s.name}: disk size ${raw.size} is not a multiple of ${s.align}`);
        const o = await outs.create(s.file(ctx.name), true);
        ctx.emit({ kind: 'output-start', format: s.name, file: o.path });
        const fileName = o.path === '-' ? s.file(ctx.name) : basename(o.path);
        const scratchDir = ctx.tmpDir ?? ctx.segmentCacheDir ?? ctx.dir;
        const progress = new Progress(o.sink, (bytes) => ctx.emit({ kind: 'output-progress', format: s.name, file: o.path, bytes }));
        // One spooled copy of a raw disk per build, whichever container format asks first.
        const spooled: RawDisk = { size: raw.size, write: (sink) => raw.write(sink), spool: () => sharedSpool(ctx, kind, raw) };
        // One deflater per build: vmdk and gcp compress the same chunks once.
        const deflater = await shared(ctx, 'deflater', async () => new ChunkDeflater());
        await convert(spooled, progress, { epoch: ctx.epoch, scratchDir, signal: ctx.signal, fileName, deflater });
        return await outs.commit(s.name);
      } catch (e) {
        await outs.abort();
        throw e;
      } finally {
        await raw.cleanup();
      }
    },
  };
}

export const qcow2EfiFormat = vdiskFormat({ name: 'qcow2-efi', file: (n) => `${n}-efi.qcow2`, convert: writeQcow2 });
export const vhdFormat = vdiskFormat({ name: 'vhd', file: (n) => `${n}.vhd`, tail: fixedVhdFooter });
export const dynamicVhdFormat = vdiskFormat({ name: 'dynamic-vhd', file: (n) => `${n}.vhd`, convert: writeDynamicVhd });
export const vmdkFormat = vdiskFormat({ name: 'vmdk', file: (n) => `${n}.vmdk`, convert: writeVmdk, heavy: true });
export const azureFormat = vdiskFormat({ name: 'azure', file: (n) => `${n}-azure.vhd`, tail: fixedVhdFooter, align: MiB });
export const gcpFormat = vdiskFormat({ name: 'gcp', file: (n) => `${n}.img.tar.gz`, convert: writeGcpTarGz, align: GiB, heavy: true });
export const awsFormat = vdiskFormat({ name: 'aws', file: (n) => `${n}.raw` });
export const qcow2BiosFormat = vdiskFormat({ name: 'qcow2-bios', file: (n) => `${n}.qcow2`, convert: writeQcow2, plan: planRawBios, kind: 'bios', arches: ['amd64'], components: [] });

