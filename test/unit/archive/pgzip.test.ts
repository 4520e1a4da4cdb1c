/**
 * ParallelGzip: what it writes gunzips (as a series of members) to the input;
 * the bytes do not depend on the parallelism; members end only at record
 * boundaries (each member gunzips on its own to whole records); a record
 * larger than the buffering limit goes through a streaming member.
 */
import { describe, it, expect } from 'vitest';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { ParallelGzip } from '../../../pkg/archive/pgzip.js';

class Collect {
  chunks: Buffer[] = [];
  async write(b: Buffer) {
    this.chunks.push(Buffer.from(b));
  }
  get bytes() {
    return Buffer.concat(this.chunks);
  }
}

/** Deterministic pseudo-random records of the given sizes. */
function records(sizes: number[]): Buffer[] {
  let seed = 1;
  return sizes.map((n, i) => {
    const b = Buffer.alloc(n);
    for (let j = 0; j < n; j++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      b[j] = j % 7 === 0 ? seed & 0xff : i & 0xff; // compressible, not trivial
    }
    return b;
  });
}

async function run(recs: Buffer[], parallel: number, chunk: number): Promise<Buffer> {
  const out = new Collect();
  const gz = new ParallelGzip(out, 6, { parallel, chunk });
  for (const r of recs) {
    // written in uneven pieces, as a writer does
    for (let o = 0; o < r.length; o += 777) await gz.write(r.subarray(o, o + 777));
    await gz.boundary();
  }
  await gz.end();
  return out.bytes;
}

/** Split a series of gzip members (each: 10-byte header, raw deflate, 8-byte trailer). */
function members(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    expect(buf.subarray(off, off + 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const res = inflateRawSync(buf.subarray(off + 10), { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
    out.push(res.buffer);
    off += 10 + res.engine.bytesWritten + 8;
  }
  return out;
}

describe('ParallelGzip', () => {
  const sizes = [100, 5000, 300_000, 70_000, 1_200_000, 10, 0, 450_000, 2_000_000, 64];
  const recs = records(sizes);
  const input = Buffer.concat(recs);

  it('round-trips, and the bytes do not depend on the parallelism', async () => {
    const a = await run(recs, 1, 256 * 1024);
    const b = await run(recs, 4, 256 * 1024);
    expect(createHash('sha256').update(a).digest('hex')).toBe(createHash('sha256').update(b).digest('hex'));
    expect(gunzipSync(a).equals(input)).toBe(true);
  });

  it('members end only at record boundaries; big records stream', async () => {
    const out = await run(recs, 2, 256 * 1024);
    const ms = members(out);
    expect(ms.length).toBeGreaterThan(2);
    const ends = new Set<number>();
    let acc = 0;
    for (const r of recs) ends.add((acc += r.length));
    acc = 0;
    for (const m of ms) {
      acc += m.length;
      expect(ends.has(acc), `member ends at ${acc}`).toBe(true);
    }
    // 2_000_000 > 4 × 256 KiB: that record went through a streaming member of its own size or more
    expect(ms.some((m) => m.length >= 2_000_000)).toBe(true);
  });
});
