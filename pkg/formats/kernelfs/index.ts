/**
 * `kernel+squashfs` and `kernel+erofs`: NAME-kernel, NAME-cmdline and the
 * root filesystem as NAME-squashfs.img / NAME-erofs.img, as LinuxKit names
 * them (its output.go: boot/kernel and boot/cmdline split out, the rest of
 * boot/ dropped, everything else in the image). The kernel mounts the image
 * as its root (`root=/dev/vda` or wherever it is attached) — or an
 * initramfs does, for kernels that build the filesystem as a module.
 *
 * The image is written while the segments stream by (pkg/squashfs,
 * pkg/erofs): file data as it comes, tables at the end, the superblock last;
 * nothing is unpacked on the host.
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import type { Entry } from '../../rootfs/entry.js';
import type { PositionalSink } from '../../archive/positional.js';
import { bodyChunks, collectBody, type ByteSink } from '../../archive/sink.js';
import { Outputs } from '../output.js';
import { DockyardError } from '../../errors.js';
import { writeSquashfs } from '../../squashfs/index.js';
import { writeErofs } from '../../erofs/index.js';

const isBoot = (p: string) => p === 'boot' || p.startsWith('boot/');

/**
 * The system's entries for a root filesystem image, in output order:
 * `boot/kernel` goes to `kernel` (when given), `boot/cmdline` is returned
 * through `cmdline`, the rest of boot/ is dropped (LinuxKit).
 */
export async function* rootEntries(ctx: FormatContext, kernel: ByteSink | undefined, cmdline: { value: Buffer; kernel: boolean }): AsyncGenerator<Entry> {
  for (const seg of ctx.segments) {
    ctx.signal?.throwIfAborted();
    for await (const e of seg.entries()) {
      if (!isBoot(e.path)) {
        yield e;
        continue;
      }
      if (e.path === 'boot/kernel' && e.type === 'file') {
        cmdline.kernel = true;
        for await (const c of bodyChunks(e.body)) if (kernel) await kernel.write(c);
      } else if (e.path === 'boot/cmdline' && e.type === 'file') cmdline.value = await collectBody(e.body);
      else for await (const _ of bodyChunks(e.body)) void _;
    }
  }
}

type FsWriter = (entries: AsyncIterable<Entry>, out: PositionalSink, o: { epoch: number; signal?: AbortSignal }) => Promise<{ bytes: number }>;

function kernelFsFormat(fs: 'squashfs' | 'erofs', write: FsWriter): Format {
  const name = `kernel+${fs}`;
  return {
    name,
    files: (n) => [`${n}-kernel`, `${n}-${fs}.img`, `${n}-cmdline`],
    sameBytes: (n) => [`${n}-kernel`, `${n}-cmdline`],
    async write(ctx: FormatContext): Promise<OutputFile[]> {
      if (ctx.outFile) throw new DockyardError('E_USAGE', `${name} writes three files: use --dir and --name, not -o`);
      const hasKernel = ctx.segments[0]?.name === 'kernel';
      const outs = new Outputs(ctx);
      try {
        // Without a kernel in the spec, the image alone (as kernel+initrd writes the initrd alone).
        const kernel = hasKernel ? await outs.create(`${ctx.name}-kernel`) : undefined;
        const img = await outs.createPositional(`${ctx.name}-${fs}.img`);
        ctx.emit({ kind: 'output-start', format: name, file: img.path });
        const boot = { value: Buffer.alloc(0), kernel: false };
        const { bytes } = await write(rootEntries(ctx, kernel?.sink, boot), img.sink, { epoch: ctx.epoch, signal: ctx.signal });
        await img.sink.truncate(bytes);
        if (hasKernel) {
          if (!boot.kernel) throw new DockyardError('E_KERNEL', 'the kernel image has no boot/kernel');
          const c = await outs.create(`${ctx.name}-cmdline`);
          await c.sink.write(boot.value);
        }
        return await outs.commit(name);
      } catch (e) {
        await outs.abort();
        throw e;
      }
    },
  };
}

export const kernelSquashfsFormat = kernelFsFormat('squashfs', writeSquashfs);
export const kernelErofsFormat = kernelFsFormat('erofs', writeErofs);
