/**
 * `tar`: the whole system as one tar archive (LinuxKit's `-format tar`),
 * NAME.tar or the `-o` file (`-` = stdout). Each segment's tar bytes are
 * cached by key; the archive is their concatenation plus the end blocks.
 */
import type { Format, FormatContext, OutputFile } from '../format.js';
import { END_OF_ARCHIVE, writeTarEntry } from '../../archive/tarwrite.js';
import { Outputs } from '../output.js';
import { cachedEncode, segmentCacheOptions } from '../segcache.js';
import type { ByteSink } from '../../archive/sink.js';
import type { Segment } from '../../rootfs/entry.js';

export async function writeSegmentsTar(ctx: FormatContext, segments: Segment[], sink: ByteSink, file: string, format: string): Promise<void> {
  for (const seg of segments) {
    ctx.signal?.throwIfAborted();
    await cachedEncode(seg, segmentCacheOptions(ctx, 'tar'), sink, async (s) => {
      for await (const e of seg.entries()) {
        ctx.signal?.throwIfAborted();
        await writeTarEntry(s, e, ctx.epoch);
      }
    });
    ctx.emit({ kind: 'output-progress', format, file, bytes: (sink as { bytes?: number }).bytes ?? 0 });
  }
  await sink.write(END_OF_ARCHIVE);
}

export const tarFormat: Format = {
  name: 'tar',
  files: (name) => [`${name}.tar`],
  async write(ctx: FormatContext): Promise<OutputFile[]> {
    const outs = new Outputs(ctx);
    try {
      const o = await outs.create(`${ctx.name}.tar`, true);
      ctx.emit({ kind: 'output-start', format: 'tar', file: o.path });
      await writeSegmentsTar(ctx, ctx.segments, o.sink, o.path, 'tar');
      return await outs.commit('tar');
    } catch (e) {
      await outs.abort();
      throw e;
    }
  },
};
