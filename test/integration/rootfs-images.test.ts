/**
 * kernel+squashfs, kernel+erofs and kernel+iso: examples/hello.yml built to
 * each for amd64 and arm64 (one invocation per format: all three write
 * NAME-kernel, so they go to different --dir), the images read by their
 * own tools (unsquashfs, fsck.erofs, xorriso) against the tar output, rebuilt
 * byte for byte, and each booted under qemu (TCG) with its root filesystem
 * read from the image: a virtio disk (squashfs, erofs) or a virtio-scsi CD
 * (iso). Debian's kernels build squashfs, erofs, isofs and the disk drivers
 * as modules, so the boot goes through a small initramfs — kernel+initrd of
 * the kernel and the fixture init alone — that loads them, mounts
 * dockyard.root and switches to it (test/fixtures/init-script.ts); the
 * onboot markers then come from containers whose bundles are on the image.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { dockyard, repoRoot } from '../harness/cli.js';
import { bootKernel } from '../harness/qemu.js';
import { fixtureCache, sha256File } from '../harness/fixtures.js';

const ARCHES = ['amd64', 'arm64'] as const;
const FORMATS = ['kernel+squashfs', 'kernel+erofs', 'kernel+iso'] as const;
const image = { 'kernel+squashfs': 'hello-squashfs.img', 'kernel+erofs': 'hello-erofs.img', 'kernel+iso': 'hello.iso' } as const;

let work: string;
let cache: string;

const build = (dir: string, formats: readonly string[], spec: string) =>
  dockyard(['build', '--offline', '--cache', cache, '--arch', 'amd64,arm64', ...formats.flatMap((f) => ['-f', f]), '--dir', join(work, dir), spec]);
/** Where a format's outputs are: out/FORMAT/ARCH. */
const outOf = (f: string, arch: string, top = 'out') => join(work, top, f, arch);

beforeAll(async () => {
  ({ work, cache } = await fixtureCache('dockyard-rootfs-'));
  const hello = join(repoRoot, 'examples/hello.yml');
  for (const f of [...FORMATS, 'tar']) {
    const b = await build(join('out', f), [f], hello);
    expect(b.exitCode, b.stderr).toBe(0);
  }
  // The loader: the kernel's modules and the fixture init, nothing else.
  const loader = join(work, 'loader.yml');
  await writeFile(loader, 'kernel:\n  image: dockyard.test/fixtures/kernel:latest\n  cmdline: "console=ttyS0 console=ttyAMA0 panic=-1"\ninit:\n  - dockyard.test/fixtures/init:latest\n');
  const l = await dockyard(['build', '--offline', '--cache', cache, '--arch', 'amd64,arm64', '-f', 'kernel+initrd', '--name', 'loader', '--dir', join(work, 'loader'), loader]);
  expect(l.exitCode, l.stderr).toBe(0);
}, 900_000);

/** `path type mode uid gid size target` for every entry of a tree on disk (find's view), boot/ left out. */
async function listTree(dir: string): Promise<string[]> {
  const r = await execa('find', ['.', '-mindepth', '1', '-printf', '%P %y %#m %U %G %s %l\\n'], { cwd: dir });
  return r.stdout
    .split('\n')
    .filter((l) => l !== '' && !/^boot[ /]/.test(l))
    .map((l) => l.replace(/^(\S+ d \S+ \S+ \S+) \d+/, '$1 -')) // directory sizes differ between filesystems
    .sort();
}

describe('root filesystem images', () => {
  for (const arch of ARCHES) {
    it(`${arch}: the images hold the tar output's tree (owners, modes, sizes, links), read by unsquashfs, fsck.erofs and xorriso`, async () => {
      const ref = join(work, `ref-${arch}`);
      await mkdir(ref, { recursive: true });
      await execa('tar', ['-xpf', join(outOf('tar', arch), 'hello.tar'), '-C', ref, '--numeric-owner']);
      await execa('rm', ['-rf', join(ref, 'boot')]);
      const want = await listTree(ref);
      expect(want.length).toBeGreaterThan(100);

      const sq = join(work, `sq-${arch}`);
      await execa('unsquashfs', ['-no-progress', '-d', sq, join(outOf('kernel+squashfs', arch), 'hello-squashfs.img')]);
      expect(await listTree(sq)).toEqual(want);

      const ef = join(work, `erofs-${arch}`);
      await execa('fsck.erofs', [`--extract=${ef}`, join(outOf('kernel+erofs', arch), 'hello-erofs.img')]);
      expect(await listTree(ef)).toEqual(want);

      const iso = join(work, `iso-${arch}`);
      await execa('xorriso', ['-osirrox', 'on', '-indev', join(outOf('kernel+iso', arch), 'hello.iso'), '-extract', '/', iso]);
      expect(await listTree(iso)).toEqual(want);

      // The bytes too: every file's digest.
      const sums = async (d: string) => (await execa('sh', ['-c', "find . -type f -print0 | sort -z | xargs -0 sha256sum"], { cwd: d })).stdout;
      const ours = await sums(ref);
      for (const d of [sq, ef, iso]) expect(await sums(d)).toBe(ours);

      for (const f of FORMATS) expect(await readFile(join(outOf(f, arch), 'hello-cmdline'), 'utf8'), f).toBe('console=ttyS0 console=ttyAMA0 panic=-1');
    }, 300_000);
  }

  it('every output is the same bytes when built again', async () => {
    for (const f of FORMATS) {
      const b = await build(join('again', f), [f], join(repoRoot, 'examples/hello.yml'));
      expect(b.exitCode, b.stderr).toBe(0);
    }
    for (const arch of ARCHES)
      for (const f of FORMATS)
        for (const file of ['hello-kernel', 'hello-cmdline', image[f]]) expect(await sha256File(join(outOf(f, arch, 'again'), file)), `${arch} ${file}`).toBe(await sha256File(join(outOf(f, arch), file)));
  }, 600_000);

  for (const arch of ARCHES)
    for (const f of FORMATS) {
      it(`${arch} ${f}: boots with its root read from the image, onboot markers on the console`, async () => {
        const out = outOf(f, arch);
        const cd = f === 'kernel+iso';
        const [dev, type] = cd ? ['/dev/sr0', 'iso9660'] : ['/dev/vda', f === 'kernel+squashfs' ? 'squashfs' : 'erofs'];
        const file = join(out, image[f]);
        const drive = cd
          ? ['-device', 'virtio-scsi-pci,id=scsi', '-drive', `file=${file},format=raw,if=none,id=root,media=cdrom,readonly=on`, '-device', 'scsi-cd,drive=root,bus=scsi.0']
          : ['-drive', `file=${file},format=raw,if=none,id=root,readonly=on`, '-device', 'virtio-blk-pci,drive=root'];
        const cmdline = (await readFile(join(out, 'hello-cmdline'), 'utf8')) + ` dockyard.root=${dev} dockyard.rootfstype=${type}`;
        const res = await bootKernel({
          arch,
          kernel: join(out, 'hello-kernel'),
          initrd: join(work, 'loader', arch, 'loader-initrd.img'),
          cmdline,
          timeoutMs: 240_000,
          until: /dockyard-init: onboot done/,
          extraArgs: drive,
        });
        const c = res.console;
        expect(c, c).toMatch(new RegExp(`dockyard-init: root ${dev} ${type}`));
        expect(c, c).toMatch(new RegExp(`dockyard-marker: hello from a read-only container on ${arch === 'amd64' ? 'x86_64' : 'aarch64'}`));
        expect(c, c).toMatch(/built by dockyard/);
        expect(c, c).toMatch(/dockyard-marker: overlay root is writable: written/);
        expect(c, c).toMatch(/onboot writer exited 0/);
        expect(res.reason, c).toBe('until');
      }, 300_000);
    }
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
