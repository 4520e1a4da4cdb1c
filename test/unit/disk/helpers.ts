/** Shared helpers for the disk unit tests: write a planned image to a file, deterministic file bodies. */
import { createWriteStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { Sink, type ByteSink } from '../../../pkg/archive/sink.js';
import type { FatFile } from '../../../pkg/disk/fat.js';

export async function writePlan(plan: { write(s: ByteSink): Promise<void> }, path: string): Promise<{ bytes: number; sha256: string }> {
  const sink = new Sink([createWriteStream(path)]);
  await plan.write(sink);
  await sink.end();
  return { bytes: sink.bytes, sha256: sink.sha256() };
}

/** A file of `size` bytes whose content is a function of `seed`, written in 1 MiB chunks. */
export function patternFile(path: string, size: number, seed = path): FatFile & { sha256: string } {
  const chunk = (i: number, n: number) => {
    const b = Buffer.alloc(n);
    const tag = Buffer.from(`${seed}:${i};`);
    for (let o = 0; o < n; o += tag.length) tag.copy(b, o, 0, Math.min(tag.length, n - o));
    return b;
  };
  const CH = 1024 * 1024;
  const h = createHash('sha256');
  for (let i = 0, o = 0; o < size; i++, o += CH) h.update(chunk(i, Math.min(CH, size - o)));
  return {
    path,
    size,
    sha256: h.digest('hex'),
    async write(s: ByteSink) {
      for (let i = 0, o = 0; o < size; i++, o += CH) await s.write(chunk(i, Math.min(CH, size - o)));
    },
  };
}

export function textFile(path: string, text: string): FatFile {
  const b = Buffer.from(text);
  return { path, size: b.length, write: (s) => s.write(b) };
}
