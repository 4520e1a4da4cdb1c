/**
 * Sealed files (derived data kept between builds): written with their length
 * and digest, handed out only after a full check; anything else about them
 * (truncated, a byte changed, an old file without a trailer, a trailer that
 * lies) is removed and reported, never used. Plus the temp-name rules the
 * sweeps rely on and the size flags.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtemp, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { openSealed, SealedWriter, TRAILER_BYTES } from '../../../pkg/cache/sealed.js';
import { hostTag, runTag, tempIsStale } from '../../../pkg/tempfiles.js';
import { formatSize, parseSize } from '../../../pkg/limits.js';
import { choosePlatform } from '../../../pkg/oci/manifest.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dy-sealed-'));
});

async function seal(name: string, content: Buffer): Promise<string> {
  const w = new SealedWriter(join(dir, `${name}.tmp`));
  await w.write(content.subarray(0, 10));
  await w.write(content.subarray(10));
  const p = join(dir, name);
  await w.commit(p);
  return p;
}

async function contentOf(p: string): Promise<{ got?: Buffer; why?: string }> {
  let why: string | undefined;
  const f = await openSealed(p, (w) => (why = w));
  if (!f) return { why };
  const chunks: Buffer[] = [];
  for await (const c of f.stream()) chunks.push(c as Buffer);
  return { got: Buffer.concat(chunks) };
}

describe('sealed files', () => {
  const content = Buffer.from('the encoded bytes of a segment, '.repeat(100));

  it('round trip; the temp file is gone; an absent file is undefined', async () => {
    const p = await seal('a', content);
    expect((await stat(p)).size).toBe(content.length + TRAILER_BYTES);
    expect((await contentOf(p)).got).toEqual(content);
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(await openSealed(join(dir, 'none'), () => {})).toBeUndefined();
    const empty = await seal('empty', Buffer.alloc(0));
    expect((await contentOf(empty)).got).toEqual(Buffer.alloc(0));
  });

  it.each([
    ['truncated', async (p: string) => truncate(p, 100), /no trailer|shorter than its trailer/],
    ['cut into its trailer', async (p: string) => truncate(p, content.length + 20), /no trailer|bytes where its trailer says/],
    ['a byte changed', async (p: string) => {
      const b = await readFile(p);
      b[7] ^= 1;
      await writeFile(p, b);
    }, /its content hashes to sha256:[0-9a-f]{64}, its trailer says sha256:[0-9a-f]{64}/],
    ['bytes appended', async (p: string) => writeFile(p, Buffer.concat([await readFile(p), Buffer.from('more')])), /no trailer/],
    ['written by an older version (no trailer)', async (p: string) => writeFile(p, content), /no trailer/],
  ])('%s: removed and reported', async (name, spoil, why) => {
    const p = await seal(`s-${name.replace(/\W/g, '')}`, content);
    await spoil(p);
    const r = await contentOf(p);
    expect(r.got).toBeUndefined();
    expect(r.why).toMatch(why);
    await expect(stat(p)).rejects.toThrow();
  });
});

describe('temp names', () => {
  it('a run tag of this host is stale when its pid is gone; another host’s after a day; names without a tag are not judged', () => {
    expect(runTag).toBe(`${hostTag}-${process.pid}`);
    expect(tempIsStale(`run-${runTag}-abc`, Date.now())).toBe(false);
    expect(tempIsStale(`run-${hostTag}-999999999-abc`, Date.now())).toBe(true);
    expect(tempIsStale(`.x.tar.${hostTag}-999999999-0a0b0c0d.tmp`, Date.now())).toBe(true);
    // pid 1 lives here; on another host a fresh entry is kept either way.
    expect(tempIsStale('run-00000000-1-abc', Date.now())).toBe(false);
    expect(tempIsStale('run-00000000-1-abc', Date.now() - 2 * 86400_000)).toBe(hostTag !== '00000000');
    expect(tempIsStale('blob-123-0-abcdef', Date.now())).toBeUndefined();
  });
});

describe('sizes', () => {
  it('parse and print', () => {
    expect(parseSize('512M', '--x')).toBe(512 << 20);
    expect(parseSize('1.5G', '--x')).toBe(1.5 * 2 ** 30);
    expect(parseSize('100', '--x')).toBe(100);
    expect(parseSize('2GiB', '--x')).toBe(2 ** 31);
    for (const bad of ['', 'lots', '-1', '0', '1e3', '1Q']) expect(() => parseSize(bad, '--max-layer-size')).toThrow(/--max-layer-size wants a size like 512M or 2G/);
    expect(formatSize(8 * 2 ** 30)).toBe('8 GiB');
    expect(formatSize(1536)).toBe('1.5 KiB');
    expect(formatSize(10)).toBe('10 bytes');
  });
});

describe('nested indexes', () => {
  it('say so, instead of "no image for linux/amd64 (index has linux/amd64)"', () => {
    const d = (c: string) => 'sha256:' + c.repeat(64);
    const index = {
      schemaVersion: 2 as const,
      manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: d('a'), size: 1, platform: { os: 'linux', architecture: 'amd64' } }],
    };
    expect(() => choosePlatform(index, { os: 'linux', architecture: 'amd64' }, 'x')).toThrow(/x: the index's linux\/amd64 entry is itself an index \(nested indexes are not supported\)/);
  });
});
