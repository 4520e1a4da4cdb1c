/**
 * Fifth part of `npm run bench` (issue 9): `dockyard pkg build` of the init
 * image (examples/init-image.yml: runc with its libraries, busybox-static;
 * amd64 and arm64), cold (no .deb and no layer cached; the indices and the
 * lock are, as they would be for a CI job with a lock checked in) and warm
 * (everything cached, the lock unchanged), beside the floor in the same
 * run: `apt-get download` of the same locked .debs into an empty folder and
 * `dpkg-deb -x` of each (apt reading the very same indices, through its own
 * configuration). Targets: cold ≤ 1× the floor; warm under 1 s. Every
 * figure is the median of RUNS runs.
 */
import { execa } from 'execa';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { aptJudge, type AptJudge } from '../test/harness/aptsim.js';
import { loadIndex } from '../pkg/debian/archive.js';
import { readKeyring } from '../pkg/debian/release.js';
import type { Lock } from '../pkg/imagedef/lock.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'dist/cmd/dockyard.js');
const work = resolve(process.env.DOCKYARD_BENCH_DIR ?? join(root, '.bench'), 'pkgbuild');
const RUNS = Number(process.env.DOCKYARD_BENCH_RUNS ?? 3);
const TARGET_COLD = 1;
const TARGET_WARM_S = 1;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function seconds(f: () => Promise<unknown>): Promise<number> {
  await execa('sync');
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const def = join(work, 'init.yml');
  await writeFile(def, await readFile(join(root, 'examples/init-image.yml'), 'utf8'));
  const cache = join(work, 'cache');
  const run = async (args: string[]) => {
    const r = await execa('node', [cli, 'pkg', ...args], { reject: false });
    if (r.exitCode !== 0) throw new Error(`dockyard pkg ${args.join(' ')} failed:\n${r.stderr}`);
  };
  // The lock and the indices, once (not timed).
  await run(['lock', '--cache', cache, def]);
  const lock = JSON.parse(await readFile(join(work, 'init.lock.json'), 'utf8')) as Lock;

  // Cold: the indices stay; packages, layers and image blobs go.
  const coldRuns: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const d of ['debian/debs', 'debian/layers', 'blobs', 'index.json']) await rm(join(cache, d), { recursive: true, force: true });
    coldRuns.push(await seconds(() => run(['build', '--cache', cache, def])));
  }
  const warmRuns: number[] = [];
  for (let i = 0; i < RUNS; i++) warmRuns.push(await seconds(() => run(['build', '--cache', cache, def])));

  // The floor: apt-get download + dpkg-deb -x of the same locked packages, apt reading the same index bytes.
  const keyring = await readKeyring(await readFile('/usr/share/keyrings/debian-archive-keyring.gpg'), 'debian-archive-keyring.gpg');
  const repos = [
    { uri: 'http://deb.debian.org/debian', suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
    { uri: 'http://deb.debian.org/debian-security', suites: ['bookworm-security'], components: ['main'] },
  ];
  const judges: { arch: 'amd64' | 'arm64'; apt: AptJudge }[] = [];
  for (const arch of ['amd64', 'arm64'] as const) {
    await mkdir(join(cache, 'tmp'), { recursive: true });
    const { suites } = await loadIndex(repos, arch, { keyring, cacheDir: join(cache, 'debian'), tmpDir: join(cache, 'tmp'), offline: true });
    judges.push({ arch, apt: await aptJudge(arch, suites) });
  }
  const floorRuns: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const dl = join(work, 'floor');
      await rm(dl, { recursive: true, force: true });
      floorRuns.push(
        await seconds(async () => {
          for (const { arch, apt } of judges) {
            const dir = join(dl, arch);
            await mkdir(join(dir, 'root'), { recursive: true });
            await apt.download(lock.packages[arch], dir);
            for (const f of (await readdir(dir)).filter((n) => n.endsWith('.deb'))) await execa('dpkg-deb', ['-x', join(dir, f), join(dir, 'root')]);
          }
        }),
      );
    }
  } finally {
    for (const j of judges) await j.apt.close();
  }

  const cold = median(coldRuns);
  const warm = median(warmRuns);
  const floor = median(floorRuns);
  const n = (a: 'amd64' | 'arm64') => lock.packages[a].length;
  process.stdout.write(
    [
      '',
      `pkg build of the init image (examples/init-image.yml: ${n('amd64')} + ${n('arm64')} packages, amd64 + arm64; median of ${RUNS})`,
      `cold (indices and lock cached)          ${cold.toFixed(2).padStart(6)} s`,
      `warm (everything cached)                ${warm.toFixed(2).padStart(6)} s`,
      `floor: apt-get download + dpkg-deb -x   ${floor.toFixed(2).padStart(6)} s`,
      `cold ÷ floor: ${(cold / floor).toFixed(2)}× (target ≤ ${TARGET_COLD}×) ${cold / floor <= TARGET_COLD ? 'ok' : 'MISSED'}; warm ${warm.toFixed(2)} s (target < ${TARGET_WARM_S} s) ${warm < TARGET_WARM_S ? 'ok' : 'MISSED'}`,
      '',
    ].join('\n'),
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
