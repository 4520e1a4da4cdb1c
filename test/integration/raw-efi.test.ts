/**
 * raw-efi: examples/hello.yml built with the CLI for amd64 and arm64 (on
 * this amd64 machine, no emulation), each disk booted under qemu through
 * OVMF / AAVMF from a virtio disk, the onboot markers read on the serial
 * console. The disk passes sgdisk -v and reads back with sfdisk --json
 * (one ESP at 1 MiB, LinuxKit's name and attribute), mtools at the ESP's
 * offset (the UKI at the removable-media path) and fsck.fat on the ESP's
 * bytes. A second build gives identical bytes; --size is honoured exactly;
 * a --size too small is one clear line and leaves nothing behind.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { readdir, rm, stat, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { dockyard, repoRoot } from '../harness/cli.js';
import { bootDiskUefi } from '../harness/qemu.js';
import { fixtureCache, sha256File } from '../harness/fixtures.js';

const MiB = 1024 * 1024;
const ESP = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';
const spec = join(repoRoot, 'examples/hello.yml');
const bootName = { amd64: 'BOOTX64.EFI', arm64: 'BOOTAA64.EFI' } as const;

let work: string;
let cache: string;

beforeAll(async () => {
  ({ work, cache } = await fixtureCache('dockyard-raw-efi-'));
}, 900_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const sha256 = sha256File;

async function build(arch: 'amd64' | 'arm64', dir: string, extra: string[] = []) {
  return dockyard(['build', '--offline', '--cache', cache, '--arch', arch, '-f', 'raw-efi', '--dir', dir, ...extra, spec], { timeout: 600_000 });
}

/** The partition's bytes as a file of their own (fsck.fat takes no offset). */
async function extract(img: string, offset: number, size: number, out: string): Promise<void> {
  const fh = await open(img, 'r');
  try {
    const b = Buffer.alloc(size);
    await fh.read(b, 0, size, offset);
    await writeFile(out, b);
  } finally {
    await fh.close();
  }
}

async function checkDisk(img: string, arch: 'amd64' | 'arm64'): Promise<{ start: number; sectors: number }> {
  const v = await execa('sgdisk', ['-v', img], { reject: false });
  expect(v.exitCode, v.stdout + v.stderr).toBe(0);
  expect(v.stdout).toMatch(/No problems found/);
  const t = JSON.parse((await execa('sfdisk', ['--json', img])).stdout).partitiontable;
  expect(t.label).toBe('gpt');
  expect(t.partitions).toHaveLength(1);
  const p = t.partitions[0];
  expect(p).toMatchObject({ start: 2048, type: ESP, name: 'EFI System', attrs: 'LegacyBIOSBootable' });
  const m = await execa('mdir', ['-/', '-b', '-i', `${img}@@1M`, '::']);
  expect(m.stdout.split('\n').sort()).toEqual(['::/EFI/', '::/EFI/BOOT/', `::/EFI/BOOT/${bootName[arch]}`]);
  const esp = `${img}.esp`;
  await extract(img, MiB, p.size * 512, esp);
  const f = await execa('fsck.fat', ['-n', esp], { reject: false });
  expect(f.exitCode, f.stdout + f.stderr).toBe(0);
  await rm(esp);
  // the UKI is a PE image: "MZ" at the start of the file
  const uki = await execa('mtype', ['-i', `${img}@@1M`, `::/EFI/BOOT/${bootName[arch]}`], { encoding: 'buffer', stripFinalNewline: false });
  expect(Buffer.from(uki.stdout).subarray(0, 2).toString('latin1')).toBe('MZ');
  return { start: p.start, sectors: p.size };
}

describe('raw-efi', () => {
  for (const arch of ['amd64', 'arm64'] as const) {
    it(`${arch}: a GPT disk that boots under ${arch === 'amd64' ? 'OVMF' : 'AAVMF'}, identical when built twice`, async () => {
      const a = join(work, `${arch}-a`);
      const b = join(work, `${arch}-b`);
      let r = await build(arch, a);
      expect(r.exitCode, r.stderr).toBe(0);
      r = await build(arch, b);
      expect(r.exitCode, r.stderr).toBe(0);
      const img = join(a, 'hello-efi.img');
      expect(await readdir(a)).toEqual(['hello-efi.img']);
      expect(await sha256(img)).toBe(await sha256(join(b, 'hello-efi.img')));
      const size = (await stat(img)).size;
      expect(size % MiB).toBe(0);
      const p = await checkDisk(img, arch);
      // the ESP fills the disk but for 1 MiB at each end
      expect(size).toBe(p.sectors * 512 + 2 * MiB);

      const res = await bootDiskUefi({ arch, disk: img, format: 'raw', timeoutMs: 180_000, until: /dockyard-init: onboot done/ });
      const c = res.console;
      expect(c, c).toMatch(new RegExp(`dockyard-marker: hello from a read-only container on ${arch === 'amd64' ? 'x86_64' : 'aarch64'}`));
      expect(c, c).toMatch(/built by dockyard/);
      expect(c, c).toMatch(/dockyard-marker: overlay root is writable: written/);
      expect(res.reason, c).toBe('until');
    }, 600_000);
  }

  it('--size: the disk is exactly that big with the ESP filling it (FAT32 from 512 MiB, boots too); too small is one clear line and leaves nothing', async () => {
    const dir = join(work, 'sized');
    let r = await build('amd64', dir, ['--size', '600M']);
    expect(r.exitCode, r.stderr).toBe(0);
    const img = join(dir, 'hello-efi.img');
    expect((await stat(img)).size).toBe(600 * MiB);
    const p = await checkDisk(img, 'amd64');
    expect(p.sectors * 512).toBe(598 * MiB);
    const fsType = (await execa('minfo', ['-i', `${img}@@1M`, '::'])).stdout;
    expect(fsType).toMatch(/fat32/i);
    const res = await bootDiskUefi({ arch: 'amd64', disk: img, format: 'raw', timeoutMs: 180_000, until: /dockyard-init: onboot done/ });
    expect(res.console, res.console).toMatch(/dockyard-marker: overlay root is writable: written/);
    await rm(dir, { recursive: true, force: true });

    const small = join(work, 'small');
    r = await build('amd64', small, ['--size', '4M']);
    expect(r.exitCode).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => !/^(pull|resolve|write|wrote|warning)/.test(l));
    expect(lines.at(-1)).toMatch(/raw-efi: the system needs \d+ MiB, --size gives 4 MiB/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const left = await readdir(small).catch(() => []);
    expect(left).toEqual([]);
    const tmpLeft = (await readdir(join(cache, 'tmp'))).filter((n) => n.startsWith('.raw-efi-'));
    expect(tmpLeft).toEqual([]);
  }, 600_000);
});
