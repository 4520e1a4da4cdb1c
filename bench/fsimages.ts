/**
 * Part of `npm run bench` (issue 10): the "full" kernel spec (Debian's whole
 * module tree, ~400 MB) to kernel+squashfs and kernel+erofs, wall time and
 * peak RSS, beside the floor measured in the same run on the same machine:
 * `mksquashfs` (gzip, its defaults: level 9, 128 KiB blocks, every core) and
 * `mkfs.erofs` (uncompressed) of the same tree already unpacked on disk
 * (dockyard's tar output, extracted once). dockyard also reads the tree out
 * of the images' compressed layers. Every figure is the median of RUNS.
 * Targets: kernel+squashfs ≤ 1× mksquashfs's time, peak RSS ≤ 200 MB.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, stat } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixtures } from '../test/fixtures/build.js';
import { FULL_KERNEL_SPEC } from './fullspec.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'dist/cmd/dockyard.js');
const hook = join(root, 'dist/bench/rss-hook.js');
const base = resolve(process.env.DOCKYARD_BENCH_DIR ?? join(root, '.bench'));
const work = join(base, 'fsimages');
const RUNS = Number(process.env.DOCKYARD_BENCH_RUNS ?? 3);

const spec = FULL_KERNEL_SPEC;

interface Run {
  seconds: number;
  peak?: number;
}

const median = (runs: Run[]): Run => [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)];

/** A dockyard build: wall time and peak RSS (bench/rss-hook.ts), after a sync so earlier writeback is not charged to it. */
async function dockyard(args: string[]): Promise<Run> {
  const rssFile = join(work, 'rss.txt');
  await rm(rssFile, { force: true });
  await execa('sync');
  const t0 = performance.now();
  const r = await execa('node', ['--import', hook, cli, ...args], { env: { DOCKYARD_BENCH_RSS_FILE: rssFile }, reject: false });
  const seconds = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`dockyard ${args.join(' ')} failed:\n${r.stderr}`);
  return { seconds, peak: Number((await readFile(rssFile, 'utf8')).trim().split('\n').pop()) };
}

async function tool(cmd: string, args: string[], before?: () => Promise<void>): Promise<Run> {
  await before?.();
  await execa('sync');
  const t0 = performance.now();
  await execa(cmd, args);
  return { seconds: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const layout = join(base, 'layout');
  const cache = join(work, 'cache');
  const out = join(work, 'out');
  if (!existsSync(join(layout, 'index.json'))) await buildFixtures(layout, { full: true, log: (m) => process.stderr.write(`fixtures: ${m}\n`) });
  await rm(cache, { recursive: true, force: true });
  await execa('node', [cli, 'cache', '--cache', cache, 'import', layout]);
  await writeFile(join(work, 'bench.yml'), spec);
  const build = (fmt: string) => ['build', '--offline', '--no-sbom', '--cache', cache, '--arch', 'amd64', '-f', fmt, '--dir', out, '--name', 'bench', join(work, 'bench.yml')];

  // The tree on disk, as the floor's tools read it: the tar output without boot/ (what the images hold).
  process.stderr.write('bench: the tree on disk for mksquashfs and mkfs.erofs\n');
  const tree = join(work, 'tree');
  await rm(tree, { recursive: true, force: true });
  await mkdir(tree, { recursive: true });
  await dockyard(build('tar'));
  await execa('tar', ['-xpf', join(out, 'bench.tar'), '-C', tree, '--numeric-owner', '--anchored', '--exclude=boot', '--exclude=./boot']);
  const treeBytes = Number((await execa('du', ['-sb', tree])).stdout.split(/\s/)[0]);

  const rows: string[] = [];
  const pair: Record<string, { ours: Run; floor: Run }> = {};
  for (const [fmt, floorName, floor] of [
    ['kernel+squashfs', 'mksquashfs -comp gzip', (img: string) => tool('mksquashfs', [tree, img, '-comp', 'gzip', '-noappend', '-no-progress', '-quiet'], () => rm(img, { force: true }))],
    ['kernel+erofs', 'mkfs.erofs (uncompressed)', (img: string) => tool('mkfs.erofs', ['--quiet', img, tree], () => rm(img, { force: true }))],
  ] as const) {
    const ours: Run[] = [];
    const theirs: Run[] = [];
    for (let i = 0; i < RUNS; i++) {
      ours.push(await dockyard(build(fmt)));
      theirs.push(await floor(join(work, `floor-${fmt.replace('+', '-')}.img`)));
    }
    const o = median(ours);
    const t = median(theirs);
    pair[fmt] = { ours: o, floor: t };
    const img = join(out, `bench-${fmt.split('+')[1]}.img`);
    const size = (await stat(img)).size;
    const floorSize = (await stat(join(work, `floor-${fmt.replace('+', '-')}.img`))).size;
    const row =
      `${fmt.padEnd(16)} ${o.seconds.toFixed(2).padStart(6)} s  peak ${(o.peak! / 1e6).toFixed(0).padStart(4)} MB  image ${(size / 1e6).toFixed(1)} MB` +
        `   ${floorName}: ${t.seconds.toFixed(2)} s, ${(floorSize / 1e6).toFixed(1)} MB   ×${(o.seconds / t.seconds).toFixed(2)}`;
    rows.push(row);
    process.stderr.write(`bench: ${row}\n`);
  }
  const sq = pair['kernel+squashfs'];
  const report = [
    `the "full" kernel spec (${(treeBytes / 1e6).toFixed(0)} MB tree) to root filesystem images, median of ${RUNS} runs, beside the same tree on disk:`,
    ...rows,
    `targets: kernel+squashfs ≤ 1× mksquashfs (${(sq.ours.seconds / sq.floor.seconds).toFixed(2)}×), peak RSS ≤ 200 MB (${(sq.ours.peak! / 1e6).toFixed(0)} MB)`,
  ].join('\n');
  process.stdout.write(report + '\n');
  await rm(tree, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
