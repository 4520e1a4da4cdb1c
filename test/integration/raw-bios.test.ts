/**
 * raw-bios: examples/hello.yml built with the CLI for amd64, booted under
 * qemu's SeaBIOS from a virtio disk by dockyard's own MBR loader, the
 * onboot markers read on the serial console. sfdisk --json reads one
 * bootable FAT partition at 1 MiB; mtools reads kernel, initrd.img and
 * cmdline on it, the same bytes as the kernel+initrd build; fsck.fat is
 * clean. A second build gives identical bytes; --size is exact; too small,
 * or arm64, is one clear line with nothing left.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dockyard, repoRoot } from '../harness/cli.js';
import { bootDiskBios } from '../harness/qemu.js';
import { fixtureCache, sha256File } from '../harness/fixtures.js';

const MiB = 1024 * 1024;
const spec = join(repoRoot, 'examples/hello.yml');

let work: string;
let cache: string;

beforeAll(async () => {
  ({ work, cache } = await fixtureCache('dockyard-raw-bios-'));
}, 900_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const sha256 = sha256File;

async function build(dir: string, extra: string[] = [], format = 'raw-bios') {
  return dockyard(['build', '--offline', '--cache', cache, '-f', format, '--dir', dir, ...extra, spec], { timeout: 600_000 });
}

async function checkDisk(img: string): Promise<{ sectors: number }> {
  const t = JSON.parse((await execa('sfdisk', ['--json', img])).stdout).partitiontable;
  expect(t.label).toBe('dos');
  expect(t.partitions).toHaveLength(1);
  const p = t.partitions[0];
  expect(p).toMatchObject({ start: 2048, bootable: true });
  expect(['1', 'e', 'c']).toContain(p.type);
  const m = await execa('mdir', ['-/', '-b', '-i', `${img}@@1M`, '::']);
  expect(m.stdout.split('\n').sort()).toEqual(['::/cmdline', '::/initrd.img', '::/kernel']);
  const part = `${img}.part`;
  const fh = await open(img, 'r');
  const b = Buffer.alloc(p.size * 512);
  await fh.read(b, 0, b.length, MiB);
  await fh.close();
  await writeFile(part, b);
  const f = await execa('fsck.fat', ['-n', part], { reject: false });
  expect(f.exitCode, f.stdout + f.stderr).toBe(0);
  await rm(part);
  return { sectors: p.size };
}

describe('raw-bios', () => {
  it('amd64: an MBR disk that boots under SeaBIOS with no installer, holding the build\u2019s kernel and initrd, identical when built twice', async () => {
    const a = join(work, 'a');
    const b = join(work, 'b');
    const ki = join(work, 'ki');
    for (const [d, f] of [[a, 'raw-bios'], [b, 'raw-bios'], [ki, 'kernel+initrd']]) {
      const r = await build(d, [], f);
      expect(r.exitCode, r.stderr).toBe(0);
    }
    const img = join(a, 'hello-bios.img');
    expect(await readdir(a)).toEqual(['hello-bios.img']);
    expect(await sha256(img)).toBe(await sha256(join(b, 'hello-bios.img')));
    const size = (await stat(img)).size;
    const p = await checkDisk(img);
    expect(size).toBe(p.sectors * 512 + MiB);
    for (const [file, ref] of [['kernel', 'hello-kernel'], ['initrd.img', 'hello-initrd.img']]) {
      const out = join(work, `x-${file}`);
      await execa('mcopy', ['-n', '-i', `${img}@@1M`, `::/${file}`, out]);
      expect(await sha256(out), file).toBe(await sha256(join(ki, ref)));
    }
    const cmdline = await readFile(join(ki, 'hello-cmdline'), 'utf8');
    expect((await execa('mtype', ['-i', `${img}@@1M`, '::/cmdline'], { stripFinalNewline: false })).stdout).toBe(`${cmdline}\n`);

    const res = await bootDiskBios({ disk: img, format: 'raw', timeoutMs: 180_000, until: /dockyard-init: onboot done/ });
    const c = res.console;
    expect(c, c).toMatch(/dockyard-marker: hello from a read-only container on x86_64/);
    expect(c, c).toMatch(/built by dockyard/);
    expect(c, c).toMatch(/dockyard-marker: overlay root is writable: written/);
    expect(c, c).toContain(`Command line: ${cmdline}`);
    expect(res.reason, c).toBe('until');
  }, 600_000);

  it('--size is exact; too small, or arm64, is one clear line and leaves nothing', async () => {
    const dir = join(work, 'sized');
    let r = await build(dir, ['--size', '64M']);
    expect(r.exitCode, r.stderr).toBe(0);
    const img = join(dir, 'hello-bios.img');
    expect((await stat(img)).size).toBe(64 * MiB);
    expect((await checkDisk(img)).sectors * 512).toBe(63 * MiB);

    const small = join(work, 'small');
    r = await build(small, ['--size', '3M']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/raw-bios: the system needs \d+ MiB, --size gives 3 MiB/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await readdir(small).catch(() => [])).toEqual([]);

    const arm = join(work, 'arm');
    r = await dockyard(['build', '--offline', '--cache', cache, '--arch', 'arm64', '-f', 'raw-bios', '--dir', arm, spec]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/raw-bios/);
    expect(r.stderr).toMatch(/arm64/);
    expect(await readdir(arm).catch(() => [])).toEqual([]);
    expect((await readdir(join(cache, 'tmp'))).filter((n) => n.startsWith('.raw-bios-'))).toEqual([]);
  }, 600_000);
});
