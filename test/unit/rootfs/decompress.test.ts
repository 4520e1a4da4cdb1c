import { describe, it, expect } from 'vitest';
import { gzipSync } from 'node:zlib';
import { decompressKernel } from '../../../pkg/rootfs/decompress.js';

const vmlinux = Buffer.concat([Buffer.from('\x7fELF'), Buffer.alloc(5000, 7)]);

function bzImage(payload: Buffer): Buffer {
  const setupSects = 3;
  const payloadOffset = 100;
  const start = (setupSects + 1) * 512 + payloadOffset;
  const b = Buffer.alloc(start + payload.length + 64);
  b[0x1f1] = setupSects;
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt32LE(payloadOffset, 0x248);
  b.writeUInt32LE(payload.length, 0x24c);
  payload.copy(b, start);
  return b;
}

describe('decompressKernel', () => {
  it('gunzips a gzip Image', () => {
    expect(decompressKernel(gzipSync(vmlinux), 'k').equals(vmlinux)).toBe(true);
  });
  it('extracts the vmlinux of a bzImage with a gzip payload', () => {
    expect(decompressKernel(bzImage(gzipSync(vmlinux)), 'k').equals(vmlinux)).toBe(true);
  });
  it('names the compression it cannot undo', () => {
    const xz = Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100)]);
    expect(() => decompressKernel(bzImage(xz), 'kernel image x: /kernel')).toThrow(/xz-compressed.*gzip only/);
    expect(() => decompressKernel(Buffer.alloc(4096, 1), 'k')).toThrow(expect.objectContaining({ code: 'E_KERNEL' }));
  });
});
