/**
 * U-Boot legacy images, judged by u-boot-tools' own mkimage: the same bytes
 * for the same inputs (SOURCE_DATE_EPOCH fixes its time), and `mkimage -l`
 * reads ours.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { scriptImage, uimage, uimageHeader } from '../../../pkg/uboot/uimage.js';
import { crc32 } from '../../../pkg/disk/crc32.js';

const EPOCH = 1700000000;
let dir: string;
let have = true;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockyard-uimage-'));
  have = (await execa('mkimage', ['-V'], { reject: false })).exitCode === 0;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function mkimage(args: string[], data: Buffer, name: string): Promise<Buffer> {
  const input = join(dir, `${name}.in`);
  const out = join(dir, `${name}.img`);
  await writeFile(input, data);
  await execa('mkimage', [...args, '-d', input, out], { env: { SOURCE_DATE_EPOCH: String(EPOCH) } });
  return readFile(out);
}

describe('u-boot legacy images', () => {
  it('a boot script: the same bytes as mkimage -T script, and mkimage -l reads it', async () => {
    if (!have) return expect.fail('mkimage (u-boot-tools) is not installed');
    const script = 'setenv bootargs "console=ttyS1,115200"\nload mmc 0:1 ${kernel_addr_r} kernel.uimg\nbootm ${kernel_addr_r} ${ramdisk_addr_r} ${fdt_addr}\n';
    const ours = scriptImage({ arch: 'arm64', name: 'dockyard boot script', time: EPOCH }, script);
    const theirs = await mkimage(['-A', 'arm64', '-O', 'linux', '-T', 'script', '-C', 'none', '-a', '0', '-e', '0', '-n', 'dockyard boot script'], Buffer.from(script), 'script');
    expect(ours.equals(theirs)).toBe(true);
    await writeFile(join(dir, 'ours.scr'), ours);
    const l = (await execa('mkimage', ['-l', join(dir, 'ours.scr')])).stdout;
    expect(l).toMatch(/Image Name:\s+dockyard boot script/);
    expect(l).toMatch(/Image Type:\s+AArch64 Linux Script \(uncompressed\)/);
  });

  it('a kernel and a ramdisk: the same bytes as mkimage -T kernel / -T ramdisk', async () => {
    if (!have) return expect.fail('mkimage (u-boot-tools) is not installed');
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    const k = uimage({ type: 'kernel', arch: 'arm64', load: 0x80000, entry: 0x80000, name: 'Linux', time: EPOCH }, data);
    expect(k.equals(await mkimage(['-A', 'arm64', '-O', 'linux', '-T', 'kernel', '-C', 'none', '-a', '0x80000', '-e', '0x80000', '-n', 'Linux'], data, 'kernel'))).toBe(true);
    const r = uimage({ type: 'ramdisk', arch: 'arm64', comp: 'gzip', name: 'initrd', time: EPOCH }, data);
    expect(r.equals(await mkimage(['-A', 'arm64', '-O', 'linux', '-T', 'ramdisk', '-C', 'gzip', '-a', '0', '-e', '0', '-n', 'initrd'], data, 'ramdisk'))).toBe(true);
    // The header alone, with the CRC continued over chunks, is the same header.
    let c = 0;
    for (let i = 0; i < data.length; i += 65536) c = crc32(data.subarray(i, i + 65536), c);
    expect(uimageHeader({ type: 'kernel', arch: 'arm64', load: 0x80000, entry: 0x80000, name: 'Linux', time: EPOCH, size: data.length, dataCrc: c }).equals(k.subarray(0, 64))).toBe(true);
  });

  it('a name over 31 bytes or a size past 32 bits is refused', () => {
    expect(() => uimageHeader({ type: 'kernel', arch: 'arm64', name: 'x'.repeat(32), time: 0, size: 0, dataCrc: 0 })).toThrow(/over 31 bytes/);
    expect(() => uimageHeader({ type: 'kernel', arch: 'arm64', name: 'k', time: 0, size: 2 ** 32, dataCrc: 0 })).toThrow(/does not fit 32 bits/);
  });
});
