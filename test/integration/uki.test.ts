/**
 * The `uki` format: examples/hello.yml built to NAME.efi for amd64 and arm64
 * from a cache loaded with the fixture layout (which carries the
 * systemd-boot component under its default reference), read by binutils'
 * objdump (sections of a UKI, in ukify's order), built twice to identical
 * bytes, and booted by OVMF / AAVMF from a FAT directory served by qemu's
 * vvfat as \EFI\BOOT\BOOT{X64,AA64}.EFI; the onboot markers are read from the
 * serial console.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { link, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { dockyard, repoRoot } from '../harness/cli.js';
import { bootDiskUefi } from '../harness/qemu.js';
import { fixtureCache } from '../harness/fixtures.js';
import { EFI_BOOT_NAME } from '../../pkg/pe/uki.js';
import { parsePe } from '../../pkg/pe/pe.js';

let work: string;
let cache: string;
const spec = join(repoRoot, 'examples/hello.yml');

beforeAll(async () => {
  ({ work, cache } = await fixtureCache('dockyard-uki-'));
}, 900_000);

const OBJDUMP = { amd64: 'objdump', arm64: 'aarch64-linux-gnu-objdump' } as const;

describe('uki', () => {
  for (const arch of ['amd64', 'arm64'] as const) {
    it(`${arch}: hello.efi is a UKI, reproducible, and boots under ${arch === 'amd64' ? 'OVMF' : 'AAVMF'}`, async () => {
      const build = async (dir: string) => {
        const t0 = Date.now();
        const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', arch, '-f', 'uki', '--dir', dir, spec]);
        expect(b.exitCode, b.stderr).toBe(0);
        return { file: join(dir, 'hello.efi'), ms: Date.now() - t0 };
      };
      const one = await build(join(work, `${arch}-1`));
      const two = await build(join(work, `${arch}-2`));
      const bytes = await readFile(one.file);
      expect(bytes.equals(await readFile(two.file)), 'two builds differ').toBe(true);

      // objdump reads it as an EFI application with the UKI sections after the stub's.
      const h = await execa(OBJDUMP[arch], ['-h', one.file]);
      expect(h.stdout).toMatch(arch === 'amd64' ? /file format pei-x86-64/ : /file format pei-aarch64-little/);
      const names = [...h.stdout.matchAll(/^\s*\d+\s+(\S+)\s/gm)].map((m) => m[1]);
      expect(names.slice(-5)).toEqual(['.osrel', '.cmdline', '.uname', '.initrd', '.linux']);
      const pe = parsePe(bytes);
      const text = (n: string) => {
        const s = pe.sections.find((x) => x.name === n)!;
        return bytes.toString('utf8', s.pointerToRawData, s.pointerToRawData + s.virtualSize);
      };
      expect(text('.cmdline')).toBe(await readFile(join(repoRoot, 'examples/hello.yml'), 'utf8').then((y) => /cmdline: "([^"]*)"/.exec(y)![1]));
      expect(text('.osrel')).toMatch(/^NAME=dockyard\n/);
      expect(text('.osrel')).toMatch(/IMAGE_ID=hello\n/);
      expect(text('.uname')).toMatch(arch === 'amd64' ? /^\d+\.\d+\.\d+-\d+-amd64$/ : /^\d+\.\d+\.\d+-\d+-arm64$/);

      // Boot it: qemu's vvfat serves a directory as a FAT disk; the firmware finds the removable-media path.
      const esp = join(work, `${arch}-esp`);
      await mkdir(join(esp, 'EFI/BOOT'), { recursive: true });
      await link(one.file, join(esp, 'EFI/BOOT', EFI_BOOT_NAME[arch]));
      const res = await bootDiskUefi({ arch, disk: `fat:${esp}`, format: 'raw', timeoutMs: 240_000, until: /dockyard-init: onboot done/ });
      const c = res.console;
      expect(c, c).toMatch(new RegExp(`dockyard-marker: hello from a read-only container on ${arch === 'amd64' ? 'x86_64' : 'aarch64'}`));
      expect(c, c).toMatch(/built by dockyard/);
      expect(c, c).toMatch(/dockyard-marker: overlay root is writable: written/);
      expect(c, c).toMatch(/onboot writer exited 0/);
      expect(res.reason, c).toBe('until');
      console.log(`uki ${arch}: build ${one.ms} ms / ${two.ms} ms, ${bytes.length} bytes, boot to markers ${res.ms} ms`);
    }, 400_000);
  }

  it('a missing systemd-boot component is one clear line naming it, and nothing is written', async () => {
    const out = join(work, 'missing');
    const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', 'amd64', '-f', 'uki', '--component', 'systemd-boot=dockyard.dev/boot/nope:none', '--dir', out, spec]);
    expect(b.exitCode).not.toBe(0);
    expect(b.stderr).toMatch(/systemd-boot/);
    expect(b.stderr.trim().split('\n').length, b.stderr).toBe(1);
    const left = await execa('find', [out, '-type', 'f'], { reject: false });
    expect(left.stdout.trim()).toBe('');
    const d = await dockyard(['--debug', 'build', '--offline', '--cache', cache, '--arch', 'amd64', '-f', 'uki', '--component', 'systemd-boot=dockyard.dev/boot/nope:none', '--dir', out, spec]);
    expect(d.stderr, 'the typed error names its code').toMatch(/E_COMPONENT/);
  });
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
