/**
 * Second half of `npm run bench` (issue 3): every output format of
 * examples/hello.yml from a warm cache, timed alone beside kernel+initrd of the
 * same spec, then every format × both arches in ONE invocation against the sum
 * of the single runs (work shared: one initrd per arch). Target: the whole
 * matrix ≤ 2× its slowest single output. Every figure is the median of
 * RUNS invocations.
 */
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFixtures } from '../test/fixtures/build.js';
import { getFormat, formatNames } from '../pkg/formats/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cli = join(root, 'dist/cmd/dockyard.js');
const work = resolve(process.env.DOCKYARD_BENCH_DIR ?? join(root, '.bench'), 'formats');
const spec = join(root, 'examples/hello.yml');

/** Runs of each measurement; the median is reported (a shared VM's timings wander by ±15%). */
const RUNS = Number(process.env.DOCKYARD_BENCH_RUNS ?? 3);

async function once(args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await execa('node', [cli, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`dockyard ${args.join(' ')} failed:\n${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

async function timed(args: string[]): Promise<number> {
  const t: number[] = [];
  for (let i = 0; i < RUNS; i++) t.push(await once(args));
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

async function main(): Promise<void> {
  await mkdir(work, { recursive: true });
  const layout = join(work, 'layout');
  const cache = join(work, 'cache');
  if (!existsSync(join(layout, 'index.json'))) await buildFixtures(layout, { full: false, log: (m) => process.stderr.write(`fixtures: ${m}\n`) });
  await rm(cache, { recursive: true, force: true });
  await execa('node', [cli, 'cache', '--cache', cache, 'import', layout]);
  // dynamic-vhd writes NAME.vhd like vhd: it is timed alone but left out of the matrix.
  const formats = formatNames.filter((f) => f !== 'tar' && getFormat(f).input !== 'package');
  const matrix = formats.filter((f) => f !== 'dynamic-vhd');
  const build = (arch: string, fmts: string[], dir: string) => ['build', '--offline', '--cache', cache, '--arch', arch, '-f', fmts.join(','), '--dir', join(work, dir), spec];

  process.stderr.write('bench: warming the cache (every format once)\n');
  await once(build('amd64,arm64', matrix, 'warm'));
  await once(build('amd64', ['dynamic-vhd'], 'warm-dvhd'));

  // The matrix is timed between the single runs too (before, between the arches, after), so a drift of the machine's speed hits both sides.
  const matrixRuns: number[] = [await once(build('amd64,arm64', matrix, 'matrix'))];
  const rows: string[] = [];
  let sum = 0;
  let slowest = 0;
  for (const arch of ['amd64', 'arm64'] as const) {
    if (arch === 'arm64') matrixRuns.push(await once(build('amd64,arm64', matrix, 'matrix')));
    const base = await timed(build(arch, ['kernel+initrd'], `single-${arch}`));
    for (const f of formats) {
      if (!(getFormat(f).arches ?? ['amd64', 'arm64']).includes(arch)) continue;
      const s = await timed(build(arch, [f], `single-${arch}-${f}`));
      if (f !== 'dynamic-vhd') {
        sum += s;
        slowest = Math.max(slowest, s);
      }
      rows.push(`${arch.padEnd(6)} ${f.padEnd(18)} ${s.toFixed(2).padStart(6)} s   ×kernel+initrd ${(s / base).toFixed(2)}`);
    }
  }
  matrixRuns.push(await once(build('amd64,arm64', matrix, 'matrix')));
  const all = [...matrixRuns].sort((a, b) => a - b)[1];
  const out = [
    `warm builds of examples/hello.yml, one format per invocation (median of ${RUNS} runs):`,
    ...rows,
    '',
    `matrix: ${matrix.length} formats × both arches in one invocation: ${all.toFixed(2)} s (median of ${matrixRuns.map((t) => t.toFixed(2)).join(', ')}: before, between and after the singles)`,
    `  sum of the single runs: ${sum.toFixed(2)} s (×${(all / sum).toFixed(2)}); slowest single: ${slowest.toFixed(2)} s (×${(all / slowest).toFixed(2)}; target ≤ 2)`,
  ];
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
