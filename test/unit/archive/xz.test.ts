/**
 * xz decompression (pkg/archive/xz.ts) of streams made by xz(1) itself:
 * the same bytes back whole or fed in small chunks; a corrupt, truncated
 * or foreign stream is one clear error; the output limit holds.
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { xzBuffer, xzChunks } from '../../../pkg/archive/xz.js';
import { DockyardError } from '../../../pkg/errors.js';

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
