/**
 * The raw disk of a build, spooled once (pkg/vdisk/spool.ts) and shared by
 * every format that wraps or copies it; and the formats whose output is that
 * disk's bytes as they are (raw-efi, aws) or with a footer (fixed VHD,
 * azure): the kernel copies the spooled file into place (a disk that is
 * mostly zeros is copied chunk by chunk, leaving holes) and the digest is the
 * spool's, so the disk is not written out again through this process.
 */
import { join } from 'node:path';
import type { FormatContext, OutputFile } from '../format.js';
import { Outputs } from '../output.js';
import { shared } from '../shared.js';
import { spoolRawOnce, writeSparseCopy, type RawDisk, type Spooled } from '../../vdisk/spool.js';

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
