/**
 * Third part of `npm run bench` (issue 8): the engine packages of
 * examples/engine.yml (deb, rpm, pacman × amd64, arm64) in one invocation
 * from a warm cache, and beside them in the same run the floor: dpkg-deb
 * --build -Zgzip of the same tree already unpacked on disk, against
 * dockyard's deb alone (which also reads the binaries out of an image).
 * Targets: dockyard's deb ≤ 1.5 × dpkg-deb's time; peak RSS ≤ 200 MB,
 * whatever the binaries' size. Every figure is the median of RUNS runs.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixtures } from '../test/fixtures/build.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'dist/cmd/dockyard.js');
const hook = join(root, 'dist/bench/rss-hook.js');
const work = resolve(process.env.DOCKYARD_BENCH_DIR ?? join(root, '.bench'), 'packages');
const spec = join(root, 'examples/engine.yml');
const RUNS = Number(process.env.DOCKYARD_BENCH_RUNS ?? 3);
const TARGET_RATIO = 1.5;
const TARGET_RSS = 200e6;

interface Run {
  seconds: number;
  peak: number;
}

function median(runs: Run[]): Run {
  const s = [...runs].sort((a, b) => a.seconds - b.seconds);
  return s[Math.floor(s.length / 2)];
}

/** One command, after a sync (the previous step's writeback is not charged to it); peak RSS for dockyard. */
async function once(cmd: string, args: string[], rss: boolean): Promise<Run> {
  const rssFile = join(work, 'rss.txt');
  await rm(rssFile, { force: true });
  await execa('sync');
  const t0 = performance.now();
  const r = await execa(cmd, rss ? ['--import', hook, ...args] : args, { env: rss ? { DOCKYARD_BENCH_RSS_FILE: rssFile } : {}, reject: false });
  const seconds = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  const peak = rss ? Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop()) : 0;
  return { seconds, peak };
}

async function timed(cmd: string, args: string[], rss = false): Promise<Run> {
  const got: Run[] = [];
  for (let i = 0; i < RUNS; i++) got.push(await once(cmd, args, rss));
  return median(got);
}

const mb = (b: number) => `${(b / 1e6).toFixed(0)} MB`;

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const layout = join(work, 'layout');
  const cache = join(work, 'cache');
  if (!existsSync(join(layout, 'index.json'))) await buildFixtures(layout, { full: false, log: (m) => process.stderr.write(`fixtures: ${m}\n`) });
  await rm(cache, { recursive: true, force: true });
  await execa('node', [cli, 'cache', '--cache', cache, 'import', layout]);
  const build = (arch: string, fmts: string, dir: string) => [cli, 'build', '--offline', '--cache', cache, '--arch', arch, '-f', fmts, '--dir', join(work, dir), spec];

  // Warm: the images are in the cache; nothing is derived between package builds.
  await once('node', build('amd64,arm64', 'deb,rpm,pacman', 'all'), false);
  const all = await timed('node', build('amd64,arm64', 'deb,rpm,pacman', 'all'), true);
  const deb = await timed('node', build('amd64', 'deb', 'deb'), true);

  // The floor: the same tree on disk, packed by dpkg-deb (gzip, its default level 9).
  const debFile = join(work, 'deb', 'dockyard-engine_27.0.0-1_amd64.deb');
  const tree = join(work, 'tree');
  await rm(tree, { recursive: true, force: true });
  await execa('dpkg-deb', ['-R', debFile, tree]);
  const floorOut = join(work, 'floor.deb');
  const floor = await timed('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', tree, floorOut]);
  const size = (await stat(debFile)).size;

  const ratio = deb.seconds / floor.seconds;
  process.stdout.write(
    [
      '',
      `engine packages (examples/engine.yml, warm; median of ${RUNS})`,
      'run                                        wall     peak RSS',
      `deb+rpm+pacman × amd64+arm64 (one run)  ${all.seconds.toFixed(2).padStart(6)} s  ${mb(all.peak).padStart(8)}`,
      `deb amd64 alone                         ${deb.seconds.toFixed(2).padStart(6)} s  ${mb(deb.peak).padStart(8)}   (${mb(size)} package)`,
      `floor: dpkg-deb --build -Zgzip (tree)   ${floor.seconds.toFixed(2).padStart(6)} s`,
      `deb ÷ dpkg-deb: ${ratio.toFixed(2)}× (target ≤ ${TARGET_RATIO}×) ${ratio <= TARGET_RATIO ? 'ok' : 'MISSED'}; peak RSS ${mb(Math.max(all.peak, deb.peak))} (target ≤ ${mb(TARGET_RSS)}) ${Math.max(all.peak, deb.peak) <= TARGET_RSS ? 'ok' : 'MISSED'}`,
      '',
    ].join('\n'),
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
});
