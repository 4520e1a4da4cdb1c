/**
 * The raw disk of a build, spooled once (pkg/vdisk/spool.ts) and shared by
 * every format written from it, and the one factory of those formats
 * (diskFormat): either a container converted from the spool (qcow2, dynamic
 * VHD, VMDK, GCE archive), or the disk's bytes as they are (raw-efi,
 * raw-bios, aws) or with a footer (fixed VHD, azure). For the latter the
 * kernel copies the spooled file into place (a disk that is mostly zeros is
 * copied chunk by chunk, leaving holes) and the digest is the spool's, so the
 * disk is not written out again through this process.
 */
import { basename, join } from 'node:path';
import type { Format, FormatContext, OutputFile } from '../format.js';
import type { ByteSink } from '../../archive/sink.js';
import { DockyardError } from '../../errors.js';
import { Outputs, Progress } from '../output.js';
import { shared } from '../shared.js';
import { spoolRawOnce, writeSparseCopy, type RawDisk, type Spooled } from '../../vdisk/spool.js';
import { ChunkDeflater } from '../../vdisk/grains.js';
import type { PlannedDisk } from '../raw-efi/index.js';

/** A raw disk a build plans (raw-efi's, raw-bios's): its spool is shared under `kind`. */
export interface RawDiskKind {
  kind: string;
  /** The disk for the build; with `align`, grown to a multiple of it. */
  plan(ctx: FormatContext, format: string, align?: number): Promise<PlannedDisk>;
  arches: ('amd64' | 'arm64')[];
  /** Components the disk's plan reads. */
  components: string[];
}

type Convert = (raw: RawDisk, sink: ByteSink, o: { epoch: number; scratchDir: string; signal?: AbortSignal; fileName: string; deflater: ChunkDeflater }) => Promise<void>;

export interface DiskFormatSpec {
  name: string;
  file: (name: string) => string;
  disk: RawDiskKind;
  /** Streams a container from the raw disk; without it the output is the raw disk itself followed by `tail`. */
  convert?: Convert;
  tail?: (sp: Spooled, epoch: number) => Buffer;
  /** Disk size must be a multiple of this many bytes (azure: 1 MiB, gcp: 1 GiB). */
  align?: number;
  heavy?: boolean;
}

/** The build's spooled copy of `raw` (`kind` names the disk: efi, bios); its close() is the build's business. */
export function sharedSpool(ctx: FormatContext, kind: string, raw: RawDisk): Promise<Spooled> {
  const dir = ctx.tmpDir ?? ctx.segmentCacheDir ?? ctx.dir;
  return shared(ctx, `spool:${kind}:${raw.size}`, () => spoolRawOnce(raw, dir, ctx.signal), (sp) => sp.close()).then((sp) => ({ ...sp, close: async () => {} }));
}

/** Write `file` as the spooled disk followed by `tail(sp)` (none by default). */
export async function writeSpooledCopy(
  ctx: FormatContext,
  format: string,
  file: string,
  kind: string,
  raw: RawDisk,
  tail?: (sp: Spooled) => Buffer,
): Promise<OutputFile[]> {
  const outs = new Outputs(ctx);
  try {
    const sp = await sharedSpool(ctx, kind, raw);
    const t = tail?.(sp);
    const path = ctx.outFile ?? join(ctx.dir, file);
    ctx.emit({ kind: 'output-start', format, file: path });
    // Mostly zeros (a big --size, gcp's GiB): holes in the output instead of written zeros.
    const zeroChunks = sp.nonzero.length - sp.nonzero.reduce((a, b) => a + b, 0);
    const copy = zeroChunks * 2 > sp.nonzero.length ? (_: string, dest: string) => writeSparseCopy(sp, dest, ctx.signal) : undefined;
    await outs.createCopy(file, sp.path, { size: sp.size, sha256: await sp.sha256(t), tail: t, signal: ctx.signal, copy }, true);
    return await outs.commit(format);
  } catch (e) {
    await outs.abort();
    throw e;
  }
}

/** A format written from the build's raw disk (see the file comment). */
export function diskFormat(s: DiskFormatSpec): Format {
  return {
    name: s.name,
    files: (name) => [s.file(name)],
    arches: s.disk.arches,
    heavy: s.heavy,
    components: () => s.disk.components,
    async write(ctx: FormatContext): Promise<OutputFile[]> {
      const raw = await s.disk.plan(ctx, s.name, s.align);
      try {
        if (s.align && raw.size % s.align !== 0) throw new DockyardError('E_INTERNAL', `${s.name}: disk size ${raw.size} is not a multiple of ${s.align}`);
        if (!s.convert) return await writeSpooledCopy(ctx, s.name, s.file(ctx.name), s.disk.kind, raw, s.tail && ((sp) => s.tail!(sp, ctx.epoch)));
        return await writeConverted(ctx, s, s.convert, raw);
      } finally {
        await raw.cleanup();
      }
    },
  };
}

async function writeConverted(ctx: FormatContext, s: DiskFormatSpec, convert: Convert, raw: RawDisk): Promise<OutputFile[]> {
  const outs = new Outputs(ctx);
  try {
    const o = await outs.create(s.file(ctx.name), true);
    ctx.emit({ kind: 'output-start', format: s.name, file: o.path });
    const fileName = o.path === '-' ? s.file(ctx.name) : basename(o.path);
    const scratchDir = ctx.tmpDir ?? ctx.segmentCacheDir ?? ctx.dir;
    const progress = new Progress(o.sink, (bytes) => ctx.emit({ kind: 'output-progress', format: s.name, file: o.path, bytes }));
    // One spooled copy of a raw disk per build, whichever format asks first.
    const spooled: RawDisk = { size: raw.size, write: (sink) => raw.write(sink), spool: () => sharedSpool(ctx, s.disk.kind, raw) };
    // One deflater per build: vmdk and gcp compress the same chunks once.
    const deflater = await shared(ctx, 'deflater', async () => new ChunkDeflater());
    await convert(spooled, progress, { epoch: ctx.epoch, scratchDir, signal: ctx.signal, fileName, deflater });
    return await outs.commit(s.name);
  } catch (e) {
    await outs.abort();
    throw e;
  }
}
