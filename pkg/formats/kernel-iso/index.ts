/**
 * `kernel+iso`: NAME-kernel, NAME-cmdline and the root filesystem as
 * NAME.iso, as LinuxKit names them — the kernel and its command line split
 * out as kernel+squashfs does (boot/kernel and boot/cmdline; the rest of
 * boot/ dropped), everything else an ISO 9660 image with Rock Ridge (owners,
 * modes, times, symlinks, device nodes, hard links) and Joliet, and no El
 * Torito boot: the kernel is handed to the bootloader (or qemu) separately
 * and mounts the ISO as its root (`root=/dev/sr0`).
 *
 * The ISO writer plans every block before writing the first, and the tree
 * is known only once the whole stream has passed (a later entry may replace
 * an earlier one), so file contents are spooled as they come, appended to
 * one scratch file; the tree keeps each file's offset and size there, and
 * the image copies them back in 1 MiB reads. Memory grows with the number
 * of entries, not their size. The spool is removed however the write ends.
 */
import { tmpdir } from 'node:os';
import type { Format, FormatContext, OutputFile } from '../format.js';
import { bodyChunks, type ByteSink } from '../../archive/sink.js';
import { Outputs, Progress } from '../output.js';
import { rootEntries } from '../kernelfs/index.js';
import { DockyardError } from '../../errors.js';
import { Spool, type Spooled } from '../../archive/spool.js';
import { FsTree, sortedChildren, type FsNode } from '../../fstree/tree.js';
import { ISO_MAX_FILE, planIso, type IsoNode } from '../../iso/iso.js';
import { VOLUME_ID } from '../../iso/boot.js';

const NAME = 'kernel+iso';

/**
 * The ISO's nodes from the finished tree: every path in byte order of its
 * names, depth first; a node met again (a hard link) is a link to the path
 * it was first met at.
 */
/** A spooled body into `sink`. */
async function copyRange(spool: Spool, s: Spooled, sink: ByteSink, signal?: AbortSignal): Promise<void> {
  for await (const c of spool.read(s)) {
    signal?.throwIfAborted();
    await sink.write(c);
  }
}

function isoNodes(tree: FsTree<Spooled>, spool: Spool, signal?: AbortSignal): IsoNode[] {
  const out: IsoNode[] = [];
  const first = new Map<FsNode<Spooled>, string>();
  const attrs = (n: FsNode<Spooled>, path: string) => ({ path, mode: n.mode, uid: n.uid, gid: n.gid, mtime: n.mtime });
  out.push({ type: 'dir', ...attrs(tree.root, '') });
  const walk = (dir: FsNode<Spooled>, prefix: string): void => {
    for (const [name, n] of sortedChildren(dir)) {
      const path = prefix + name;
      const seen = first.get(n);
      if (seen !== undefined) {
        out.push({ type: 'hardlink', path, linkTo: seen });
        continue;
      }
      first.set(n, path);
      switch (n.type) {
        case 'dir':
          out.push({ type: 'dir', ...attrs(n, path) });
          walk(n, `${path}/`);
          break;
        case 'file': {
          const data = n.data ?? { offset: 0, size: 0, sha256: '', md5: '' };
          if (data.size !== n.size) throw new DockyardError('E_INTERNAL', `${path}: ${data.size} bytes spooled, ${n.size} in the tree`);
          out.push({ type: 'file', ...attrs(n, path), size: n.size, write: (sink) => copyRange(spool, data, sink, signal) });
          break;
        }
        case 'symlink':
          out.push({ type: 'symlink', ...attrs(n, path), target: n.target ?? '' });
          break;
        case 'char':
        case 'block':
          out.push({ type: 'device', ...attrs(n, path), kind: n.type, major: n.devmajor ?? 0, minor: n.devminor ?? 0 });
          break;
        case 'fifo':
          out.push({ type: 'fifo', ...attrs(n, path) });
          break;
      }
    }
  };
  walk(tree.root, '');
  return out;
}

export const kernelIsoFormat: Format = {
  name: NAME,
  files: (n) => [`${n}-kernel`, `${n}.iso`, `${n}-cmdline`],
  sameBytes: (n) => [`${n}-kernel`, `${n}-cmdline`],
  async write(ctx: FormatContext): Promise<OutputFile[]> {
    if (ctx.outFile) throw new DockyardError('E_USAGE', `${NAME} writes three files: use --dir and --name, not -o`);
    const hasKernel = ctx.segments[0]?.name === 'kernel';
    const outs = new Outputs(ctx);
    let spool: Spool | undefined;
    try {
      // Without a kernel in the spec, the image alone (as kernel+squashfs writes its image alone).
      const kernel = hasKernel ? await outs.create(`${ctx.name}-kernel`) : undefined;
      spool = await Spool.create(ctx.tmpDir ?? tmpdir(), 'kernel-iso', { digests: false, code: 'E_OUTPUT' });
      const boot = { value: Buffer.alloc(0), kernel: false };
      const tree = new FsTree<Spooled>(ctx.epoch);
      for await (const e of rootEntries(ctx, kernel?.sink, boot)) {
        ctx.signal?.throwIfAborted();
        if (e.type === 'file') {
          // Refused before its bytes are spooled (the writer would refuse it after).
          if (e.size > ISO_MAX_FILE) throw new DockyardError('E_LIMIT', `${e.path} is ${e.size} bytes; an ISO 9660 file (one extent) holds at most ${ISO_MAX_FILE}`);
          tree.add(e, await spool.add(bodyChunks(e.body), ctx.signal, { size: e.size, what: e.path }));
        } else tree.add(e);
      }
      if (hasKernel && !boot.kernel) throw new DockyardError('E_KERNEL', 'the kernel image has no boot/kernel');
      const plan = planIso({ nodes: isoNodes(tree, spool, ctx.signal), epoch: ctx.epoch, volumeId: VOLUME_ID, inodes: true });
      const iso = await outs.create(`${ctx.name}.iso`);
      ctx.emit({ kind: 'output-start', format: NAME, file: iso.path });
      await plan.write(new Progress(iso.sink, (bytes) => ctx.emit({ kind: 'output-progress', format: NAME, file: iso.path, bytes })));
      if (hasKernel) {
        const c = await outs.create(`${ctx.name}-cmdline`);
        await c.sink.write(boot.value);
      }
      return await outs.commit(NAME);
    } catch (e) {
      await outs.abort();
      throw e;
    } finally {
      await spool?.close();
    }
  },
};
