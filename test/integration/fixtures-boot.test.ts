/**
 * The fixture images boot, independently of dockyard's own writer: for amd64
 * and arm64 an initrd is put together by hand (init image layers + the kernel
 * image's kernel.tar + one onboot bundle whose lower/ is the busybox image),
 * archived with the `cpio` tool, booted under qemu (TCG), and runc inside the
 * guest must print `hello-from-runc`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { buildFixtures, fixtureRefs } from '../fixtures/build.js';
import { INIT_DONE_LINE } from '../fixtures/init-script.js';
import { bootKernel, defaultConsole, type QemuArch } from '../harness/qemu.js';
import { dataDir } from '../harness/cli.js';

/** A config.json that LinuxKit wrote for an onboot container (from the corpus in the repository). */
const linuxkitConfig = join(dataDir, 'conformance/cases/01-onboot-image-config/expected/containers/onboot/000-hello/config.json');

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

let work: string;
let layout: string;

const blob = (digest: string): string => join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
const readJson = async <T>(digest: string): Promise<T> => JSON.parse(await readFile(blob(digest), 'utf8')) as T;

/** The layer blobs (bottom first) of `ref` for `arch`, read straight from the layout. */
async function layersOf(ref: string, arch: QemuArch): Promise<{ layers: string[]; config: Record<string, unknown> }> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] };
  const top = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === ref);
  expect(top, `index.json names ${ref}`).toBeDefined();
  expect(top!.annotations?.['io.containerd.image.name']).toBe(ref);
  const imageIndex = await readJson<{ manifests: Desc[] }>(top!.digest);
  const m = imageIndex.manifests.find((d) => d.platform?.architecture === arch && d.platform.os === 'linux');
  expect(m, `${ref} has linux/${arch}`).toBeDefined();
  const manifest = await readJson<{ config: Desc; layers: Desc[] }>(m!.digest);
  const config = await readJson<Record<string, unknown>>(manifest.config.digest);
  expect(config.architecture).toBe(arch);
  return { layers: manifest.layers.map((l) => blob(l.digest)), config };
}

async function untar(file: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  await execa('tar', ['-x', '-f', file, '-C', dest, '--numeric-owner']);
}

function runtimeConfig(): unknown {
  return {
    ociVersion: '1.0.2',
    process: {
      user: { uid: 0, gid: 0 },
      args: ['/bin/echo', 'hello-from-runc'],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
    },
    root: { path: 'rootfs' },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'nodev', 'noexec'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755', 'size=65536k'] },
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }] },
  };
}

/** Kernel path and a newc initrd made by hand for `arch`. */
async function makeBoot(arch: QemuArch): Promise<{ kernel: string; initrd: string }> {
  const dir = join(work, arch);
  const root = join(dir, 'root');
  const kdir = join(dir, 'kernel-image');
  for (const l of (await layersOf(fixtureRefs.init, arch)).layers) await untar(l, root);
  for (const l of (await layersOf(fixtureRefs.kernel, arch)).layers) await untar(l, kdir);
  await untar(join(kdir, 'kernel.tar'), root);
  const bundle = join(root, 'containers', 'onboot', '000-hello');
  for (const l of (await layersOf(fixtureRefs.busybox, arch)).layers) await untar(l, join(bundle, 'lower'));
  await mkdir(join(bundle, 'rootfs'), { recursive: true });
  await mkdir(join(bundle, 'tmp'), { recursive: true });
  await writeFile(join(bundle, 'config.json'), JSON.stringify(runtimeConfig(), null, 2));
  {
    // A second bundle run with the config LinuxKit itself wrote (its mounts,
    // namespaces, empty capabilities), only the command changed.
    const lk = JSON.parse(await readFile(linuxkitConfig, 'utf8')) as { process: { args: string[] } };
    lk.process.args = ['/bin/echo', 'hello-from-linuxkit-config'];
    const b2 = join(root, 'containers', 'onboot', '001-lkconfig');
    for (const l of (await layersOf(fixtureRefs.busybox, arch)).layers) await untar(l, join(b2, 'lower'));
    await mkdir(join(b2, 'rootfs'), { recursive: true });
    await mkdir(join(b2, 'tmp'), { recursive: true });
    await writeFile(join(b2, 'config.json'), JSON.stringify(lk, null, 2));
  }
  const initrd = join(dir, 'initrd.cpio');
  await execa('bash', ['-c', 'set -o pipefail; cd "$1" && find . -print0 | LC_ALL=C sort -z | cpio --null --quiet -o -H newc -R 0:0 > "$2"', 'mkcpio', root, initrd]);
  return { kernel: join(kdir, 'kernel'), initrd };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-fixtures-boot-'));
  layout = join(work, 'layout');
  const t0 = Date.now();
  await buildFixtures(layout, { full: false });
  console.log(`fixtures layout ready in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('fixture images boot under qemu and run an onboot container with runc', () => {
  for (const arch of ['amd64', 'arm64'] as const) {
    it(`${arch}: hello-from-runc`, { timeout: 600_000 }, async () => {
      const { kernel, initrd } = await makeBoot(arch);
      const r = await bootKernel({
        arch,
        kernel,
        initrd,
        cmdline: `console=${defaultConsole(arch)} panic=-1`,
        timeoutMs: 480_000,
      });
      console.log(`${arch}: qemu ${r.reason} after ${(r.ms / 1000).toFixed(1)}s`);
      if (process.env.FIXTURES_BOOT_VERBOSE) console.log(r.console);
      const shown = r.console.slice(-6000);
      expect(r.console, shown).toMatch(/^hello-from-runc\r?$/m);
      expect(r.console, shown).toMatch(/dockyard-init: onboot hello exited 0/);
      expect(r.console, shown).toMatch(/^hello-from-linuxkit-config\r?$/m);
      expect(r.console, shown).toMatch(/dockyard-init: onboot lkconfig exited 0/);
      expect(r.console, shown).toContain(INIT_DONE_LINE);
      expect(r.exitedByItself, shown).toBe(true);
    });
  }
});
