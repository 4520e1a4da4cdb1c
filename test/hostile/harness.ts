/**
 * What every hostile case needs: a sandbox (its own HOME, TMPDIR, cache and
 * output directory), the CLI run from outside through measure.py (exit
 * status, wall time, peak RSS by getrusage), and the checks every case makes:
 * one line naming the problem, no stack trace, nothing written outside the
 * output directory and the cache, nothing left in temp, and a next normal
 * build on the same cache that gives the same bytes as one on a fresh cache.
 */
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, expect } from 'vitest';
import { cliPath, dataDir, repoRoot } from '../harness/cli.js';

export const conformanceImages = join(dataDir, 'conformance/images');
export const imagesPy = join(repoRoot, 'test/hostile/images.py');
const measurePy = join(repoRoot, 'test/hostile/measure.py');

/** A spec that uses only the conformance images (127.0.0.1:5000/fixtures/*), so it builds offline from an imported cache. */
export const referenceSpec = `kernel:
  image: 127.0.0.1:5000/fixtures/kernel:1
  cmdline: "console=ttyS0"
init:
  - 127.0.0.1:5000/fixtures/init:1
onboot:
  - name: one
    image: 127.0.0.1:5000/fixtures/layered:1
services:
  - name: ro
    image: 127.0.0.1:5000/fixtures/ro:1
files:
  - path: etc/motd
    contents: "hello\\n"
`;

export interface Sandbox {
  root: string;
  home: string;
  tmp: string;
  work: string;
  out: string;
  cache: string;
  env: Record<string, string>;
}

/** The sandboxes this test file made: removed when the file ends (a 2 GB image case adds up over runs). */
const made: string[] = [];
afterAll(async () => {
  for (const root of made.splice(0)) await rm(root, { recursive: true, force: true });
});

export async function sandbox(name: string): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), `dy-hostile-${name}-`));
  made.push(root);
  const sb = {
    root,
    home: join(root, 'home'),
    tmp: join(root, 'tmp'),
    work: join(root, 'work'),
    out: join(root, 'out'),
    cache: join(root, 'cache'),
    env: {} as Record<string, string>,
  };
  for (const d of [sb.home, sb.tmp, sb.work, sb.out]) await mkdir(d, { recursive: true });
  sb.env = { HOME: sb.home, TMPDIR: sb.tmp, XDG_CACHE_HOME: join(sb.home, '.cache'), DOCKER_CONFIG: join(sb.home, '.docker'), SOURCE_DATE_EPOCH: '' };
  await writeFile(join(sb.work, 'ref.yml'), referenceSpec);
  return sb;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The lines of stderr that report a failure: all but warnings and progress lines. */
  errors: string[];
  wall: number;
  rssMB: number;
  timedOut: boolean;
}

export interface RunOptions {
  /** Kill the process past this many seconds (the case then fails on `timedOut`). */
  cap?: number;
  input?: string;
  env?: Record<string, string>;
  /** Send a signal once stderr matches `when` (or after `ms`). */
  signal?: { name: NodeJS.Signals; when?: RegExp; ms?: number };
  /** A command put in front (e.g. unshare … exec "$@"). */
  wrap?: string[];
}

let reportSeq = 0;

/** `dockyard ARGS` in the sandbox's work directory, measured by measure.py. */
export async function run(sb: Sandbox, args: string[], o: RunOptions = {}): Promise<RunResult> {
  const report = join(sb.root, `report-${reportSeq++}.json`);
  const cmd = [...(o.wrap ?? []), 'node', cliPath, ...args];
  const child = execa('python3', [measurePy, report, String(o.cap ?? 60), ...cmd], {
    cwd: sb.work,
    env: { ...sb.env, ...o.env },
    extendEnv: true,
    input: o.input,
    reject: false,
    stripFinalNewline: false,
    timeout: ((o.cap ?? 60) + 30) * 1000,
  });
  if (o.signal) {
    const s = o.signal;
    let sent = false;
    // To the measured process itself (by the pid measure.py wrote): a SIGKILL cannot be passed on.
    const send = async () => {
      if (sent) return;
      sent = true;
      for (let i = 0; i < 100; i++) {
        const pid = Number(await readFile(report + '.pid', 'utf8').catch(() => ''));
        if (pid > 0) {
          try {
            process.kill(pid, s.name);
          } catch {
            /* already gone */
          }
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    if (s.when) {
      let seen = '';
      child.stderr?.on('data', (c: Buffer) => {
        seen += c.toString();
        if (s.when!.test(seen)) void send();
      });
    }
    if (s.ms !== undefined) setTimeout(() => void send(), s.ms);
  }
  const r = await child;
  const m = JSON.parse(await readFile(report, 'utf8')) as { rc: number; wall: number; maxrss_kb: number; timed_out: boolean };
  const stderr = String(r.stderr);
  return {
    exitCode: m.rc,
    stdout: String(r.stdout),
    stderr,
    errors: stderr.split('\n').filter((l) => l !== '' && !/^(warning: |write |wrote |pull |pulled )/.test(l)),
    wall: m.wall,
    rssMB: m.maxrss_kb / 1024,
    timedOut: m.timed_out,
  };
}

/** The failure every hostile case must end in: the exit status, one line naming the problem, no trace, within the caps. */
export function expectOneLine(r: RunResult, pattern: RegExp, o: { exitCode?: number; maxSeconds?: number; maxRssMB?: number } = {}): void {
  const info = `stderr:\n${r.stderr}\n(wall ${r.wall.toFixed(2)} s, ${r.rssMB.toFixed(0)} MB)`;
  expect(r.timedOut, info).toBe(false);
  if (o.exitCode !== undefined) expect(r.exitCode, info).toBe(o.exitCode);
  else expect([0, 70].includes(r.exitCode), info).toBe(false);
  expect(r.errors, info).toHaveLength(1);
  expect(r.errors[0], info).toMatch(pattern);
  expect(r.stderr, info).not.toMatch(/\n\s+at |internal error|Unhandled|node:internal|\bRangeError\b|\bTypeError\b/);
  expect(r.wall, info).toBeLessThan(o.maxSeconds ?? 20);
  expect(r.rssMB, info).toBeLessThan(o.maxRssMB ?? 300);
}

/** Every path under `dir` (not following links) with its type and size; `skip` names top-level entries left out. */
export async function snapshot(dir: string, skip: string[] = []): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const name of await readdir(d).catch(() => [] as string[])) {
      const p = join(d, name);
      const rel = relative(dir, p);
      if (skip.includes(rel)) continue;
      const st = await lstat(p).catch(() => undefined);
      if (!st) continue;
      out.set(rel, `${st.mode.toString(8)} ${st.isDirectory() ? '' : st.size} ${st.isFile() ? st.mtimeMs : ''}`);
      if (st.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

/**
 * Nothing written outside the output directory and the cache (the sandbox
 * outside them is as `before` was, report files aside), nothing left in
 * TMPDIR, in the cache's tmp/ or as a temp file in the output directory.
 */
export async function expectNothingLeft(sb: Sandbox, before: Map<string, string>, o: { outputDir?: string; cache?: string } = {}): Promise<void> {
  const cache = o.cache ?? sb.cache;
  const skip = ['out', 'cache', relative(sb.root, cache), ...[...(await readdir(sb.root))].filter((n) => n.startsWith('report-'))];
  const after = await snapshot(sb.root, skip);
  for (const k of [...before.keys()]) if (k.startsWith('report-')) before.delete(k);
  expect([...after.entries()].sort(), 'written outside the output directory and the cache').toEqual([...before.entries()].sort());
  expect(await readdir(sb.tmp), 'left in TMPDIR').toEqual([]);
  expect(await readdir(join(cache, 'tmp')).catch(() => []), "left in the cache's tmp/").toEqual([]);
  const outDir = o.outputDir ?? sb.out;
  expect((await readdir(outDir).catch(() => [] as string[])).filter((n) => n.endsWith('.tmp')), 'temp files in the output directory').toEqual([]);
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Import the conformance images into `cache`. */
export async function importImages(sb: Sandbox, cache = sb.cache, layout = conformanceImages): Promise<void> {
  const r = await run(sb, ['cache', '--cache', cache, 'import', layout]);
  expect(r.exitCode, r.stderr).toBe(0);
}

/** The reference build (tar and kernel+initrd, offline) on `cache`: the digests of its outputs. */
export async function referenceBuild(sb: Sandbox, cache = sb.cache): Promise<Record<string, string>> {
  const out = await mkdtemp(join(sb.root, 'ref-out-'));
  const r = await run(sb, ['build', '--offline', '--cache', cache, '-f', 'tar,kernel+initrd', '--dir', out, '--name', 'ref', 'ref.yml']);
  expect(r.exitCode, r.stderr).toBe(0);
  const digests: Record<string, string> = {};
  for (const f of (await readdir(out)).sort()) digests[f] = await sha256File(join(out, f));
  await rm(out, { recursive: true, force: true });
  return digests;
}

let fresh: Promise<Record<string, string>> | undefined;

/** The reference build's digests on a fresh cache (computed once per file). */
export function freshDigests(): Promise<Record<string, string>> {
  fresh ??= (async () => {
    const sb = await sandbox('fresh');
    await importImages(sb);
    return referenceBuild(sb);
  })();
  return fresh;
}

/** The next normal build on the same cache gives the bytes a fresh cache gives. */
export async function expectRecovers(sb: Sandbox, cache = sb.cache): Promise<void> {
  expect(await referenceBuild(sb, cache)).toEqual(await freshDigests());
}

/** Write a layout of hostile images (test/hostile/images.py) and return its path. */
export async function hostileLayout(sb: Sandbox, name: string, images: unknown[]): Promise<string> {
  const dir = join(sb.root, `layout-${name}`);
  const spec = join(sb.root, `layout-${name}.json`);
  await writeFile(spec, JSON.stringify(images));
  await execa('python3', [imagesPy, dir, spec]);
  await rm(spec);
  return dir;
}

/** Root can make device nodes, mount tmpfs and bind mounts read-only: the cases that need that say so when it cannot. */
export const isRoot = process.getuid?.() === 0;

/** `unshare -m` with a command run first in the new mount namespace, then the measured command. */
export function inMountNamespace(setup: string): string[] {
  return ['unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', `${setup} && exec "$@"`, 'sh'];
}

/** Blob paths of an image in a cache (an OCI layout): its manifest, config and layers (amd64). */
export async function imageBlobs(cache: string, ref: string): Promise<{ manifest: string; config: string; layers: string[] }> {
  const blob = (d: string) => join(cache, 'blobs/sha256', d.slice(7));
  const idx = JSON.parse(await readFile(join(cache, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const top = idx.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
  if (!top) throw new Error(`${ref} not in ${cache}`);
  let digest = top.digest;
  let doc = JSON.parse(await readFile(blob(digest), 'utf8'));
  if (doc.manifests) {
    digest = doc.manifests.find((m: { platform?: { architecture: string } }) => m.platform?.architecture === 'amd64').digest;
    doc = JSON.parse(await readFile(blob(digest), 'utf8'));
  }
  return { manifest: blob(digest), config: blob(doc.config.digest), layers: doc.layers.map((l: { digest: string }) => blob(l.digest)) };
}

/** Flip one byte of a file at `at` (a fraction of its length). */
export async function flipByte(path: string, at = 0.5): Promise<void> {
  const b = await readFile(path);
  b[Math.min(b.length - 1, Math.floor(b.length * at))] ^= 0xff;
  await writeFile(path, b);
}

/** `unshare -m`: `setup` first in a private mount namespace, then the measured command, then `after` (its output on stdout); the command's status is kept. */
export function inMountNamespaceThen(setup: string, after: string): string[] {
  return ['unshare', '-m', '--propagation', 'private', '--', 'sh', '-c', `${setup} || exit 99; "$@"; rc=$?; ${after}; exit $rc`, 'sh'];
}
