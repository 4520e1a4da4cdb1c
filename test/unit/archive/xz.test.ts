/**
 * xz decompression (pkg/archive/xz.ts) of streams made by xz(1) itself:
 * the same bytes back whole or fed in small chunks; a corrupt, truncated
 * or foreign stream is one clear error; the output limit holds. The
 * compiled module (dist/, what the CLI runs) decodes on worker threads:
 * the same checks hold there, a source's own failure comes out as it is,
 * a reader that stops early frees the thread, and streams decode side by
 * side.
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { xzBuffer, xzChunks } from '../../../pkg/archive/xz.js';
import { DockyardError } from '../../../pkg/errors.js';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(import.meta.dirname, '../../..');
type XzModule = typeof import('../../../pkg/archive/xz.js');

async function xz(data: Buffer, args: string[] = []): Promise<Buffer> {
  const r = await execa('xz', ['-z', '-c', ...args], { input: data, encoding: 'buffer' });
  return Buffer.from(r.stdout as unknown as Uint8Array);
}

// Compressible but not trivial: text lines with random words.
const plain = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `Package: p${i}\nVersion: ${i % 97}.${randomBytes(3).toString('hex')}\n`).join('\n'));

describe('xz', () => {
  it('xz -9e, -0 and CRC32/CRC64/no-check streams come back byte for byte, whole and from 1000-byte chunks', async () => {
    for (const args of [['-9e'], ['-0'], ['--check=crc32'], ['--check=none']]) {
      const z = await xz(plain, args);
      expect((await xzBuffer(z, 'x', plain.length)).equals(plain)).toBe(true);
      const chunks = async function* () {
        for (let i = 0; i < z.length; i += 1000) yield z.subarray(i, i + 1000);
      };
      const parts: Buffer[] = [];
      for await (const c of xzChunks(chunks(), 'x')) parts.push(Buffer.from(c));
      expect(Buffer.concat(parts).equals(plain)).toBe(true);
    }
  });

  it('corrupt, truncated and foreign streams are one E_ARCHIVE_FORMAT line naming the input; the limit is E_LIMIT', async () => {
    const z = await xz(plain);
    const flipped = Buffer.from(z);
    flipped[Math.floor(z.length / 2)] ^= 0xff;
    for (const [bad, name] of [[flipped, 'flipped'], [z.subarray(0, z.length - 40), 'truncated'], [Buffer.from('not xz at all'), 'text']] as const) {
      const e = await xzBuffer(bad, name, 1e9).then(() => undefined, (err: unknown) => err);
      expect(e, name).toBeInstanceOf(DockyardError);
      expect((e as DockyardError).code).toBe('E_ARCHIVE_FORMAT');
      expect((e as DockyardError).message).toMatch(new RegExp(`^${name}: not a valid xz stream`));
    }
    await expect(xzBuffer(z, 'big', 1000)).rejects.toMatchObject({ code: 'E_LIMIT' });
    // xz-embedded has CRC32 and CRC64 (what dpkg-deb and Debian's archive use), not SHA-256: said so.
    await expect(xzBuffer(await xz(plain, ['--check=sha256']), 's', 1e9)).rejects.toThrow(/^s: not a valid xz stream \(options it does not support: an SHA-256 integrity check/);
  });
});

describe('xz on worker threads (the compiled module)', () => {
  const load = async (): Promise<XzModule> => (await import(pathToFileURL(join(root, 'dist/pkg/archive/xz.js')).href)) as XzModule;
  const pieces = (b: Buffer, n: number) =>
    (async function* () {
      for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
    })();
  const all = async (it: AsyncIterable<Buffer>) => {
    const parts: Buffer[] = [];
    for await (const c of it) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  };

  it('is used there (and not from the TypeScript sources); streams come back byte for byte, two at once', async () => {
    const m = await load();
    expect(m.xzOnWorkers).toBe(true);
    const { xzOnWorkers } = await import('../../../pkg/archive/xz.js');
    expect(xzOnWorkers).toBe(false);
    const big = Buffer.concat([plain, randomBytes(3 << 20), plain]);
    const [a, b] = await Promise.all([xz(plain, ['-0']), xz(big, ['-1'])]);
    const [pa, pb] = await Promise.all([all(m.xzChunks(pieces(a, 1 << 16), 'a')), all(m.xzChunks(pieces(b, 1 << 20), 'b'))]);
    expect(pa.equals(plain)).toBe(true);
    expect(pb.equals(big)).toBe(true);
  });

  it('corrupt, truncated and foreign streams are one E_ARCHIVE_FORMAT line; a source failure comes out as it is; the next stream decodes', async () => {
    const m = await load();
    const z = await xz(plain);
    const flipped = Buffer.from(z);
    flipped[Math.floor(z.length / 2)] ^= 0xff;
    for (const [bad, name] of [[flipped, 'flipped'], [z.subarray(0, z.length - 40), 'truncated'], [Buffer.from('not xz at all'), 'text']] as const) {
      const e = (await all(m.xzChunks(pieces(bad, 4096), name)).then(() => undefined, (err: unknown) => err)) as DockyardError;
      expect(e?.code, name).toBe('E_ARCHIVE_FORMAT');
      expect(e.message).toMatch(new RegExp(`^${name}: not a valid xz stream \\(`));
    }
    const cut = new RangeError('the source ended early');
    const failing = (async function* () {
      yield z.subarray(0, 1000);
      throw cut;
    })();
    await expect(all(m.xzChunks(failing, 'f'))).rejects.toBe(cut);
    expect((await all(m.xzChunks(pieces(z, 5000), 'again'))).equals(plain)).toBe(true);
  });

  it('a reader that stops after the first chunk ends the stream and its source; a whole stream decodes after it', async () => {
    const m = await load();
    const z = await xz(Buffer.alloc(64 << 20), ['-1']);
    let returned = false;
    const src = (async function* () {
      try {
        for (let i = 0; i < z.length; i += 1 << 12) yield z.subarray(i, i + (1 << 12));
      } finally {
        returned = true;
      }
    })();
    for await (const c of m.xzChunks(src, 'zeros')) {
      expect(c.length).toBeGreaterThan(0);
      break;
    }
    expect(returned).toBe(true);
    expect((await all(m.xzChunks(pieces(z, 1 << 20), 'zeros'))).length).toBe(64 << 20);
  });
});
