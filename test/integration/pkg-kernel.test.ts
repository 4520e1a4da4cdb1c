/**
 * `layout: kernel`: a LinuxKit kernel image made by `dockyard pkg build` from
 * Debian's linux-image package (amd64). Judged by dpkg-deb (the kernel is
 * the package's vmlinuz byte for byte, kernel.tar holds its module tree),
 * by depmod (modules.dep, made from the modules' ELF symbols, gives every
 * module the dependencies depmod gives it), and by a boot: a spec whose
 * kernel is this image, with the fixture init and an onboot container,
 * boots under qemu and the init loads overlay.ko from the image's modules.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, readFile, writeFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { dockyard } from '../harness/cli.js';
import { bootKernel } from '../harness/qemu.js';
import { fixtureCache } from '../harness/fixtures.js';
import type { Lock } from '../../pkg/imagedef/lock.js';

let work: string;
let cache: string;
let lock: Lock;
let version: string;

/** Dependencies per module of a modules.dep text, as sets. */
function depSets(text: string): Map<string, string[]> {
  return new Map(
    text
      .trim()
      .split('\n')
      .map((l) => {
        const [k, v] = l.split(':');
        return [k, v.trim().split(/\s+/).filter(Boolean).sort()];
      }),
  );
}

/** An OCI layout tar of a kernel image: its (first arch's) layer into work/PREFIXimage, that image's kernel.tar into work/PREFIXmodules. */
async function unpackKernelImage(tar: string, prefix: string): Promise<void> {
  const lay = join(work, `${prefix}oci`);
  await mkdir(lay);
  await execa('tar', ['-xf', tar, '-C', lay]);
  const blob = (d: string) => join(lay, 'blobs/sha256', d.split(':')[1]);
  const idx = JSON.parse(await readFile(join(lay, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const top = JSON.parse(await readFile(blob(idx.manifests[0].digest), 'utf8')) as { manifests: { digest: string }[] };
  const man = JSON.parse(await readFile(blob(top.manifests[0].digest), 'utf8')) as { layers: { digest: string }[] };
  await mkdir(join(work, `${prefix}image`));
  await execa('tar', ['-xzf', blob(man.layers[0].digest), '-C', join(work, `${prefix}image`)]);
  await mkdir(join(work, `${prefix}modules`));
  await execa('tar', ['-xf', join(work, `${prefix}image/kernel.tar`), '-C', join(work, `${prefix}modules`)]);
}

beforeAll(async () => {
  ({ work, cache } = await fixtureCache('dockyard-pkg-kernel-'));
  await writeFile(
    join(work, 'kernel.yml'),
    'repositories:\n  - uri: http://deb.debian.org/debian\n    suites: [bookworm, bookworm-updates]\n    components: [main]\n  - uri: http://deb.debian.org/debian-security\n    suites: [bookworm-security]\n    components: [main]\nkeyring: [/usr/share/keyrings/debian-archive-keyring.gpg]\npackages: [linux-image-amd64]\narchs: [amd64]\nlayout: kernel\n',
  );
  const r = await dockyard(['pkg', 'build', '--cache', cache, '-o', join(work, 'kernel.tar'), join(work, 'kernel.yml')]);
  expect(r.exitCode, r.stderr).toBe(0);
  lock = JSON.parse(await readFile(join(work, 'kernel.lock.json'), 'utf8')) as Lock;
  // The image's one layer, unpacked by GNU tar; its kernel.tar too; the .deb by dpkg-deb.
  await unpackKernelImage(join(work, 'kernel.tar'), '');
  const image = lock.packages.amd64.find((p) => /^linux-image-\d/.test(p.name))!;
  await execa('dpkg-deb', ['-x', join(cache, 'debian/debs', `${image.sha256}.deb`), join(work, 'deb')]);
  version = image.name.replace(/^linux-image-/, '');
}, 900_000);

describe('pkg build, layout: kernel', () => {
  it('kernel is the package\'s vmlinuz byte for byte; kernel.tar holds its lib/modules tree, parents first, and modules.dep', async () => {
    const img = await readFile(join(work, 'image/kernel'));
    expect(img.equals(await readFile(join(work, 'deb/boot', `vmlinuz-${version}`)))).toBe(true);
    expect((await readFile(join(work, 'image/System.map'))).equals(await readFile(join(work, 'deb/boot', `System.map-${version}`)))).toBe(true);
    const listed = (await execa('tar', ['-tf', join(work, 'image/kernel.tar')])).stdout.split('\n').map((l) => l.replace(/\/$/, ''));
    expect(listed.slice(0, 3)).toEqual(['lib', 'lib/modules', `lib/modules/${version}`]);
    const fromDeb = (await execa('find', ['lib/modules', '-type', 'f'], { cwd: join(work, 'deb') })).stdout.split('\n').sort();
    const fromImage = (await execa('find', ['lib/modules', '-type', 'f'], { cwd: join(work, 'modules') })).stdout.split('\n').sort();
    expect(fromImage).toEqual([...fromDeb, `lib/modules/${version}/modules.dep`].sort());
    expect(fromDeb.filter((f) => f.endsWith('.ko')).length).toBeGreaterThan(1000);
  });

  it('modules.dep gives every module the dependencies depmod gives it', async () => {
    await execa('depmod', ['-b', join(work, 'deb'), version]);
    const theirs = depSets(await readFile(join(work, 'deb/lib/modules', version, 'modules.dep'), 'utf8'));
    const ours = depSets(await readFile(join(work, 'modules/lib/modules', version, 'modules.dep'), 'utf8'));
    expect(ours.size).toBe(theirs.size);
    const differ = [...theirs].filter(([m, deps]) => JSON.stringify(ours.get(m)) !== JSON.stringify(deps)).map(([m]) => m);
    expect(differ).toEqual([]);
    expect([...theirs.values()].filter((d) => d.length > 0).length).toBeGreaterThan(500);
  });

  it('kernel: modules: keeps the named modules and what modprobe would load with them, and modules.dep of those; no dtbs for []', async () => {
    // The same lock (kernel: is no input to resolution), under its own name and reference.
    await writeFile(join(work, 'small.yml'), (await readFile(join(work, 'kernel.yml'), 'utf8')).replace('layout: kernel\n', 'layout: kernel\nname: kernel\nkernel:\n  modules: [sr_mod, overlay, virtio-blk]\n  dtbs: []\n'));
    const r = await dockyard(['pkg', 'build', '--cache', cache, '-t', 'dockyard.local/kernel-small:latest', '-o', join(work, 'small.tar'), join(work, 'small.yml')]);
    expect(r.exitCode, r.stderr).toBe(0);
    await unpackKernelImage(join(work, 'small.tar'), 'small-');
    // The judge: kmod's modprobe on the whole tree, indexed by depmod.
    await execa('depmod', ['-b', join(work, 'deb'), version]);
    const shown = await execa('modprobe', ['-d', join(work, 'deb'), '-S', version, '--show-depends', '-a', 'sr_mod', 'overlay', 'virtio_blk']);
    const theirs = [...new Set([...shown.stdout.matchAll(/^insmod \S*\/lib\/modules\/[^/]+\/(\S+\.ko)/gm)].map((m) => m[1]))].sort();
    expect(theirs.length).toBeGreaterThan(3);
    const files = (await execa('find', ['.', '-type', 'f'], { cwd: join(work, 'small-modules/lib/modules', version) })).stdout.split('\n').map((f) => f.slice(2));
    expect(files.filter((f) => f.endsWith('.ko')).sort()).toEqual(theirs);
    expect(files.filter((f) => !f.endsWith('.ko')).sort()).toEqual(['modules.builtin', 'modules.builtin.modinfo', 'modules.dep', 'modules.order']);
    const dep = depSets(await readFile(join(work, 'small-modules/lib/modules', version, 'modules.dep'), 'utf8'));
    const full = depSets(await readFile(join(work, 'deb/lib/modules', version, 'modules.dep'), 'utf8'));
    expect([...dep.keys()].sort()).toEqual(theirs);
    for (const [m, deps] of dep) expect(deps, m).toEqual(full.get(m));
    expect(existsSync(join(work, 'small-modules/boot'))).toBe(false);
    // A module the package does not have: one line naming it.
    await writeFile(join(work, 'bad.yml'), (await readFile(join(work, 'small.yml'), 'utf8')).replace('[sr_mod, overlay, virtio-blk]', '[overlay, no_such_module]'));
    const bad = await dockyard(['pkg', 'build', '--cache', cache, '-t', 'dockyard.local/kernel-bad:latest', join(work, 'bad.yml')]);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/kernel: modules: .* has no module no_such_module/);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  }, 600_000);

  it('boots as a spec\'s kernel: the init loads overlay.ko from it, the onboot marker comes', async () => {
    await writeFile(
      join(work, 'spec.yml'),
      'kernel:\n  image: dockyard.local/kernel:latest\n  cmdline: "console=ttyS0 panic=-1"\ninit:\n  - dockyard.test/fixtures/init:latest\nonboot:\n  - name: hello\n    image: dockyard.test/fixtures/busybox:latest\n    readonly: true\n    command: ["/bin/sh", "-c", "echo \\"dockyard-marker: hello on $(uname -r)\\""]\n',
    );
    const b = await dockyard(['build', '--offline', '--cache', cache, '--arch', 'amd64', '--dir', join(work, 'out'), join(work, 'spec.yml')]);
    expect(b.exitCode, b.stderr).toBe(0);
    const res = await bootKernel({ arch: 'amd64', kernel: join(work, 'out/spec-kernel'), initrd: join(work, 'out/spec-initrd.img'), memoryMB: 2048, timeoutMs: 600_000, until: /dockyard-init: onboot done/ });
    expect(res.reason, res.console.slice(-3000)).toBe('until');
    expect(res.console).toMatch(new RegExp(`insmod /lib/modules/${version.replace(/\./g, '\\.')}/kernel/fs/overlayfs/overlay\\.ko`));
    expect(res.console).toContain(`dockyard-marker: hello on ${version}`);
  }, 700_000);
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
