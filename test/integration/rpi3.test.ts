/**
 * rpi3: examples/hello.yml built for arm64 to NAME.tar, read by GNU tar, its
 * U-Boot images judged by u-boot-tools (`mkimage -l`, and mkimage itself
 * wrapping kernel+initrd's kernel and initramfs gives the same bytes),
 * rebuilt byte for byte, and booted under `qemu-system-aarch64 -M raspi3b`
 * from an SD card holding the tar's files on a FAT partition.
 *
 * The boot goes through U-Boot (the tar's u-boot.bin, Debian's u-boot-rpi)
 * and the tar's boot.scr: qemu's raspi3b model does not run the GPU
 * firmware (bootcode.bin, start.elf), so qemu does its part — it starts
 * u-boot.bin (config.txt's `kernel=`) with the tar's device tree (`-dtb`).
 * U-Boot's distro boot finds boot.scr on the card, which loads kernel.uimg,
 * the device tree and initrd.uimg and `bootm`s them: the onboot markers come
 * on the PL011 (ttyAMA0, qemu's first serial), U-Boot's own console on the
 * mini UART (the second).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, readFile, readdir, writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { dockyard, repoRoot } from '../harness/cli.js';
import { runQemu } from '../harness/qemu.js';
import { fixtureCache, sha256File } from '../harness/fixtures.js';

let work: string;
let cache: string;
const hello = join(repoRoot, 'examples/hello.yml');

const build = (dir: string, formats: string[], spec = hello) =>
  dockyard(['build', '--offline', '--cache', cache, '--arch', 'arm64', ...formats.flatMap((f) => ['-f', f]), '--dir', join(work, dir), spec]);

/** SOURCE_DATE_EPOCH of the builds (the harness's environment, else dockyard's default 0). */
const epoch = process.env.SOURCE_DATE_EPOCH ?? '0';

beforeAll(async () => {
  ({ work, cache } = await fixtureCache('dockyard-rpi3-'));
  for (const [dir, f] of [['out', 'rpi3'], ['again', 'rpi3'], ['kin', 'kernel+initrd']] as const) {
    const r = await build(dir, [f]);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  await mkdir(join(work, 'x'));
  await execa('tar', ['-xf', join(work, 'out/hello.tar'), '-C', join(work, 'x')]);
}, 900_000);

const FILES = [
  'LICENCE.broadcom',
  'boot.scr',
  'bootcode.bin',
  'config.txt',
  'dtb/',
  'dtb/broadcom/',
  'dtb/broadcom/bcm2837-rpi-3-b-plus.dtb',
  'dtb/broadcom/bcm2837-rpi-3-b.dtb',
  'fixup.dat',
  'fixup_cd.dat',
  'fixup_x.dat',
  'initrd.uimg',
  'kernel.uimg',
  'start.elf',
  'start_cd.elf',
  'start_x.elf',
  'u-boot.bin',
];

async function mkimage(args: string[], input: string, out: string): Promise<Buffer> {
  await execa('mkimage', [...args, '-d', input, out], { env: { SOURCE_DATE_EPOCH: epoch } });
  return readFile(out);
}

describe('rpi3', () => {
  it('GNU tar lists the boot partition: firmware, U-Boot, device trees, config.txt, boot.scr and the two uImages, root-owned, in name order', async () => {
    const r = await execa('tar', ['--numeric-owner', '-tvf', join(work, 'out/hello.tar')]);
    const lines = r.stdout.split('\n');
    expect(lines.map((l) => l.split(/\s+/).pop())).toEqual(FILES);
    for (const l of lines) {
      const [mode, owner] = l.split(/\s+/);
      expect(owner, l).toBe('0/0');
      expect(mode, l).toBe(l.startsWith('d') ? 'drwxr-xr-x' : '-rw-r--r--');
    }
    const config = await readFile(join(work, 'x/config.txt'), 'utf8');
    expect(config).toMatch(/^kernel=u-boot\.bin$/m);
    expect(config).toMatch(/^arm_64bit=1$/m);
    expect(config).toMatch(/^enable_uart=1$/m);
    // The components' files: Debian's U-Boot for the Pi 3, the firmware's licence.
    expect((await readFile(join(work, 'x/u-boot.bin')).then((b) => b.toString('latin1')))).toMatch(/U-Boot 20\d\d\.\d\d/);
    expect(await readFile(join(work, 'x/LICENCE.broadcom'), 'utf8')).toMatch(/Broadcom/);
  });

  it('mkimage -l reads the three U-Boot images, and mkimage wrapping kernel+initrd\'s kernel, initramfs and the script gives the same bytes', async () => {
    const l = async (f: string) => (await execa('mkimage', ['-l', join(work, 'x', f)])).stdout;
    expect(await l('kernel.uimg')).toMatch(/Image Type:\s+AArch64 Linux Kernel Image \((uncompressed|gzip compressed)\)[\s\S]*Load Address:\s+00200000[\s\S]*Entry Point:\s+00200000/);
    expect(await l('initrd.uimg')).toMatch(/Image Type:\s+AArch64 Linux RAMDisk Image/);
    expect(await l('boot.scr')).toMatch(/Image Type:\s+AArch64 Linux Script/);

    const kernel = join(work, 'kin/hello-kernel');
    const head = (await readFile(kernel)).subarray(0, 2);
    const comp = head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : 'none';
    const k = await mkimage(['-A', 'arm64', '-O', 'linux', '-T', 'kernel', '-C', comp, '-a', '0x200000', '-e', '0x200000', '-n', 'Linux kernel'], kernel, join(work, 'k.uimg'));
    expect(k.equals(await readFile(join(work, 'x/kernel.uimg')))).toBe(true);
    const i = await mkimage(['-A', 'arm64', '-O', 'linux', '-T', 'ramdisk', '-C', 'none', '-a', '0', '-e', '0', '-n', 'initramfs'], join(work, 'kin/hello-initrd.img'), join(work, 'i.uimg'));
    expect(i.equals(await readFile(join(work, 'x/initrd.uimg')))).toBe(true);

    // The script: after the 64-byte header, a length table (one length, then 0) and the text.
    const scr = await readFile(join(work, 'x/boot.scr'));
    const text = scr.subarray(72).toString('utf8');
    const cmdline = (await readFile(join(work, 'kin/hello-cmdline'), 'utf8')).trim();
    expect(text).toContain(`setenv bootargs "${cmdline}"`);
    expect(text).toMatch(/^load \$\{devtype\} \$\{devnum\}:\$\{distro_bootpart\} 0x08000000 kernel\.uimg$/m);
    expect(text).toMatch(/^bootm 0x08000000 0x0c000000 0x06000000$/m);
    await writeFile(join(work, 'script.txt'), text);
    const s = await mkimage(['-A', 'arm64', '-O', 'linux', '-T', 'script', '-C', 'none', '-a', '0', '-e', '0', '-n', 'dockyard rpi3'], join(work, 'script.txt'), join(work, 's.scr'));
    expect(s.equals(scr)).toBe(true);
  });

  it('rebuilt: the same bytes', async () => {
    expect(await sha256File(join(work, 'again/hello.tar'))).toBe(await sha256File(join(work, 'out/hello.tar')));
  });

  it('a kernel without the Pi 3 device trees: one clear line, nothing written', async () => {
    const spec = join(work, 'nodtb.yml');
    await writeFile(spec, 'kernel:\n  image: dockyard.test/fixtures/kernel:latest\n  cmdline: "console=ttyAMA0"\n  tar: none\ninit:\n  - dockyard.test/fixtures/init:latest\n');
    const r = await build('nodtb', ['rpi3'], spec);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/rpi3: the system has no \/boot\/dtb\/broadcom\/bcm2837-rpi-3-b\*\.dtb/);
    expect(await readdir(join(work, 'nodtb')).catch(() => [])).toEqual([]);
  });

  it('boots under qemu -M raspi3b from an SD card: U-Boot runs boot.scr, the onboot markers come on the console', async () => {
    // The card: an MBR with one FAT partition (type 0x0c) at 1 MiB holding the tar's files.
    const sd = join(work, 'sd.img');
    await execa('truncate', ['-s', '128M', sd]);
    await execa('sfdisk', ['-q', sd], { input: 'start=2048, type=c\n' });
    await execa('mkfs.vfat', ['--offset', '2048', '-n', 'BOOT', sd, String((128 * 1024 * 1024 - 2048 * 512) / 1024)]);
    const top = (await readdir(join(work, 'x'))).map((f) => join(work, 'x', f));
    await execa('mcopy', ['-s', '-i', `${sd}@@1M`, ...top, '::']);
    const listing = (await execa('mdir', ['-b', '-i', `${sd}@@1M`, '::'])).stdout;
    expect(listing).toMatch(/kernel\.uimg/);

    const uboot = join(work, 'uboot-console.log');
    const res = await runQemu(
      'qemu-system-aarch64',
      [
        '-M', 'raspi3b',
        '-kernel', join(work, 'x/u-boot.bin'),
        '-dtb', join(work, 'x/dtb/broadcom/bcm2837-rpi-3-b.dtb'),
        '-drive', `if=sd,format=raw,file=${sd}`,
        '-display', 'none', '-monitor', 'none', '-no-reboot',
        '-serial', 'stdio',
        '-serial', `file:${uboot}`,
      ],
      { timeoutMs: 600_000, until: /dockyard-init: onboot done/ },
    );
    const c = res.console;
    const u = await readFile(uboot, 'utf8').catch(() => '');
    expect(res.reason, `${c}\n[u-boot]\n${u}`).toBe('until');
    expect(u).toMatch(/## Executing script at/);
    expect(u).toMatch(/## Booting kernel from Legacy Image at 08000000/);
    expect(u).toMatch(/## Loading init Ramdisk from Legacy Image at 0c000000/);
    expect(c).toMatch(/Machine model: Raspberry Pi 3 Model B/);
    expect(c).toMatch(/Kernel command line: console=ttyS0 console=ttyAMA0 panic=-1/);
    expect(c).toMatch(/dockyard-marker: hello from a read-only container on aarch64/);
    expect(c).toMatch(/dockyard-marker: overlay root is writable: written/);
  }, 700_000);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
