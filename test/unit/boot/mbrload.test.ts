/**
 * The BIOS loader: the bytes shipped in mbrload.ts are what GNU as makes of
 * mbrload.S today; the load table is where the writer fills it in; the boot
 * protocol fields of the prepared setup are those Documentation/arch/x86/boot.rst
 * names; bad kernels are refused with one clear line. (raw-bios.test.ts boots it.)
 */
import { describe, it, expect } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { MBRLOAD, MBRLOAD_TABLE, mbrLoader } from '../../../pkg/boot/mbrload.js';
import { initrdAddress, lowImage, parseBzImage } from '../../../pkg/boot/bzimage.js';
import { repoRoot } from '../../harness/cli.js';

function fakeBzImage(o: { setupSects?: number; version?: number; loadflags?: number; initSize?: number; pref?: number } = {}): Buffer {
  const b = Buffer.alloc(64 * 1024);
  b[0x1f1] = o.setupSects ?? 30;
  b.writeUInt16LE(0xaa55, 0x1fe);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(o.version ?? 0x020f, 0x206);
  b[0x211] = o.loadflags ?? 0x01;
  b.writeUInt32LE(0x7fffffff, 0x22c);
  b.writeUInt32LE(2047, 0x238);
  b.writeBigUInt64LE(BigInt(o.pref ?? 0x1000000), 0x258);
  b.writeUInt32LE(o.initSize ?? 0x2000000, 0x260);
  return b;
}

describe('mbrload', () => {
  it('the shipped bytes are the assembly of mbrload.S', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dockyard-mbrload-'));
    try {
      await execa('as', ['--32', '-o', join(dir, 'm.o'), join(repoRoot, 'pkg/boot/mbrload.S')]);
      await execa('ld', ['-m', 'elf_i386', '-Ttext=0x7c00', '--oformat=binary', '-o', join(dir, 'm.bin'), join(dir, 'm.o')]);
      expect((await readFile(join(dir, 'm.bin'))).equals(MBRLOAD)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fills the load table', () => {
    const b = mbrLoader([
      { lba: 1, sectors: 120, dest: 0x90000 },
      { lba: 5000, sectors: 16000, dest: 0x100000 },
      { lba: 30000, sectors: 13000, dest: 0x5000000 },
    ]);
    expect(b.length).toBe(440);
    expect(b.toString('latin1', MBRLOAD_TABLE, MBRLOAD_TABLE + 4)).toBe('DYLD');
    const t = (i: number) => b.readUInt32LE(MBRLOAD_TABLE + 4 + 4 * i);
    expect([...Array(9).keys()].map(t)).toEqual([1, 120, 0x90000, 5000, 16000, 0x100000, 30000, 13000, 0x5000000]);
    expect(b.subarray(0, MBRLOAD_TABLE).equals(MBRLOAD.subarray(0, MBRLOAD_TABLE))).toBe(true);
  });

  it('prepares the real-mode setup as the boot protocol says', () => {
    const k = fakeBzImage();
    const h = parseBzImage(k);
    expect(h.setupBytes).toBe(31 * 512);
    const addr = initrdAddress(h, 8 * 1024 * 1024, 10 * 1024 * 1024);
    expect(addr).toBe(0x1000000 + 0x2000000); // above pref_address + init_size
    const low = lowImage(k, h, { cmdline: 'console=ttyS0 panic=-1', initrdAddr: addr, initrdSize: 12345 });
    expect(low[0x210]).toBe(0xff); // type_of_loader
    expect(low[0x211]).toBe(0x81); // LOADED_HIGH | CAN_USE_HEAP
    expect(low.readUInt32LE(0x218)).toBe(addr); // ramdisk_image
    expect(low.readUInt32LE(0x21c)).toBe(12345); // ramdisk_size
    expect(low.readUInt16LE(0x224)).toBe(0xde00); // heap_end_ptr
    expect(low.readUInt32LE(0x228)).toBe(0x9e000); // cmd_line_ptr
    expect(low.toString('latin1', 0xe000, 0xe000 + 23)).toBe('console=ttyS0 panic=-1\0');
    expect(low.length % 512).toBe(0);
  });

  it('refuses what it cannot boot', () => {
    expect(() => parseBzImage(Buffer.alloc(4096))).toThrow(/needs an x86 bzImage kernel: no setup header/);
    expect(() => parseBzImage(fakeBzImage({ version: 0x0201 }))).toThrow(/older than 2\.02/);
    expect(() => parseBzImage(fakeBzImage({ loadflags: 0 }))).toThrow(/zImage/);
    const h = parseBzImage(fakeBzImage());
    expect(() => lowImage(fakeBzImage(), h, { cmdline: 'x'.repeat(3000), initrdAddr: 0, initrdSize: 0 })).toThrow(/command line is 3000 bytes/);
    expect(() => initrdAddress(h, 1 << 20, 0x7fffffff)).toThrow(/initrd_addr_max/);
  });
});
