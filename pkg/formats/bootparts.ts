/**
 * What bootable formats start from: the kernel, the initrd (ucode first) and
 * the command line of the build, written once into scratch files with the
 * kernel+initrd writer (so its per-segment cache serves every format).
 * Within one build they are written once and shared by every format that
 * asks (keyed by the build's segment list); the build releases them.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DockyardError } from '../errors.js';
import type { FormatContext } from './format.js';
import { Outputs } from './output.js';
import { writeKernelInitrd } from './initrd/initrd.js';
import { shared } from './shared.js';

export interface BootParts {
  dir: string;
  kernel: string;
  initrd: string;
  cmdline: string;
  kernelSize: number;
  initrdSize: number;
  /** sha256 (hex) of the kernel and initrd files. */
  kernelSha256: string;
  initrdSha256: string;
  cleanup(): Promise<void>;
}

/** The build's boot parts, written on first use; `cleanup()` of the result is a no-op (the build releases them). */
export function prepareBootParts(ctx: FormatContext, format: string): Promise<BootParts> {
  return shared(ctx, 'boot-parts', () => writeBootParts(ctx, format), (b) => b.cleanup()).then((b) => ({ ...b, cleanup: async () => {} }));
}

async function writeBootParts(ctx: FormatContext, format: string): Promise<BootParts> {
  if (ctx.segments[0]?.name !== 'kernel') throw new DockyardError('E_SPEC_INVALID', `${format} needs a kernel in the spec`);
  const dir = await mkdtemp(join(ctx.tmpDir ?? ctx.segmentCacheDir ?? ctx.dir, `.${format}-`));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const parts = new Outputs({ ...ctx, dir, outFile: undefined, emit: () => {} });
    const k = await parts.create('kernel');
    const i = await parts.create('initrd.img');
    const r = await writeKernelInitrd(ctx, k.sink, i.sink, format, format);
    const [kf, inf] = await parts.commit(format);
    const kernel = join(dir, 'kernel');
    const initrd = join(dir, 'initrd.img');
    return {
      dir,
      kernel,
      initrd,
      cmdline: r.cmdline.toString('utf8'),
      kernelSize: (await stat(kernel)).size,
      initrdSize: (await stat(initrd)).size,
      kernelSha256: kf.sha256,
      initrdSha256: inf.sha256,
      cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
