/**
 * Writes only where they belong, and nothing left when a run is cut short
 * (issue 7, rows 1 and 16): outputs pointed at devices, FIFOs, sockets,
 * directories and links are refused and left as they were; SIGINT and
 * SIGTERM mid-build and mid-pull end the run at once with one line and
 * nothing left; after a SIGKILL, the next run on the same cache and
 * directory sweeps what the killed one left; a full output file system is
 * one line.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { lstat, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expectNothingLeft, expectOneLine, expectRecovers, freshDigests, hostileLayout, importImages, inMountNamespaceThen, isRoot, run, sandbox, snapshot, conformanceImages, type Sandbox } from './harness.js';
import { hostileRegistry, type HostileRegistry } from './server.js';

/** A node's identity and kind, to show it was left as it was. */
async function node(path: string): Promise<string> {
  const st = await lstat(path);
  return `${st.ino} ${st.mode.toString(8)} ${st.rdev} ${st.isFile() ? st.size : ''}`;
}

describe('an output never replaces what is not a regular file (row 1)', () => {
  let sb: Sandbox;
  const targets: [string, string, RegExp][] = [];
  beforeAll(async () => {
    sb = await sandbox('outputs');
    await importImages(sb);
    const t = join(sb.root, 'targets');
    await mkdir(t);
    if (isRoot) {
      // Private device nodes (never the host's /dev/null).
      await execa('mknod', [join(t, 'null'), 'c', '1', '3']);
      await execa('mknod', [join(t, 'full'), 'c', '1', '7']);
      targets.push(['a /dev/null copy', join(t, 'null'), /a character device/], ['a /dev/full copy', join(t, 'full'), /a character device/]);
    }
    await execa('mkfifo', [join(t, 'fifo')]);
    await execa('python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])', join(t, 'sock')]);
    await mkdir(join(t, 'dir'));
    await writeFile(join(t, 'victim'), 'keep me');
    await symlink(join(t, 'victim'), join(t, 'link'));
    targets.push(
      ['a FIFO', join(t, 'fifo'), /a FIFO/],
      ['a socket', join(t, 'sock'), /a socket/],
      ['a directory', join(t, 'dir'), /a directory/],
      ['a symbolic link to a file', join(t, 'link'), /a symbolic link/],
    );
  });

  it('-o onto each of them: one line, the node unchanged, no temp file beside it', async () => {
    expect(targets.length).toBeGreaterThanOrEqual(4);
    for (const [what, path, kind] of targets) {
      const was = await node(path);
      const before = await snapshot(sb.root, ['out', 'cache']);
      const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-o', path, 'ref.yml']);
      expectOneLine(r, new RegExp(`-o ${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} exists and is ${kind.source}; dockyard writes only regular files and never replaces anything else`));
      expect(await node(path), what).toBe(was);
      await expectNothingLeft(sb, before);
      expect((await readdir(join(sb.root, 'targets'))).filter((n) => n.endsWith('.tmp')), what).toEqual([]);
    }
    expect(await readFile(join(sb.root, 'targets/victim'), 'utf8')).toBe('keep me');
  });

  it('an output of --dir that is a FIFO or a link is refused before anything is pulled or written', async () => {
    const dir = join(sb.root, 'dir-out');
    await mkdir(dir);
    await execa('mkfifo', [join(dir, 'ref.tar')]);
    await symlink(join(sb.root, 'targets/victim'), join(dir, 'ref-kernel'));
    const was = [await node(join(dir, 'ref.tar')), await node(join(dir, 'ref-kernel'))];
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', dir, '--name', 'ref', 'ref.yml']);
    expectOneLine(r, /output .*dir-out\/ref\.tar exists and is a FIFO/);
    const r2 = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'kernel+initrd', '--dir', dir, '--name', 'ref', 'ref.yml']);
    expectOneLine(r2, /output .*dir-out\/ref-kernel exists and is a symbolic link/);
    expect([await node(join(dir, 'ref.tar')), await node(join(dir, 'ref-kernel'))]).toEqual(was);
    expect((await readdir(dir)).sort()).toEqual(['ref-kernel', 'ref.tar']);
  });

  it('cache export onto a FIFO', async () => {
    const r = await run(sb, ['cache', '--cache', sb.cache, 'export', '127.0.0.1:5000/fixtures/init:1', '-o', join(sb.root, 'targets/fifo')]);
    expectOneLine(r, /output .*targets\/fifo exists and is a FIFO/);
  });

  it('a regular file is replaced (atomically), and -o - still writes to standard output', async () => {
    const f = join(sb.root, 'targets/victim');
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-o', f, 'ref.yml']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await execa('tar', ['-tf', f])).stdout).toMatch(/etc\/motd/);
    const s = await run(sb, ['build', '--offline', '--cache', sb.cache, '-o', '-', 'ref.yml']);
    expect(s.exitCode, s.stderr).toBe(0);
    expect(s.stdout.length).toBeGreaterThan(10_000);
  });
});

describe('cut short: signals and a full disk (row 16)', () => {
  let sb: Sandbox;
  let hostile: HostileRegistry;
  beforeAll(async () => {
    sb = await sandbox('signals');
    await importImages(sb);
    // A build that takes a few seconds: 1 GiB of zeros to inflate, write and cache.
    const layout = await hostileLayout(sb, 'slow', [{ ref: 'dockyard.test/hostile/gig:1', layers: [{ zeros: 1 << 30, name: 'gig' }] }]);
    await importImages(sb, sb.cache, layout);
    await writeFile(join(sb.work, 'gig.yml'), 'init:\n  - dockyard.test/hostile/gig:1\n');
    hostile = await hostileRegistry(conformanceImages);
  }, 120_000);
  afterAll(async () => hostile?.close());

  const cacheTmp = async () => readdir(join(sb.cache, 'tmp')).catch(() => [] as string[]);

  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${sig} mid-build: exit ${code}, one line, nothing left`, async () => {
      const before = await snapshot(sb.root, ['out', 'cache']);
      const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'gig.yml'], { signal: { name: sig, when: /^write /m } });
      expectOneLine(r, new RegExp(`^dockyard: interrupted \\(${sig}\\)$`), { exitCode: code, maxSeconds: 15 });
      expect(await readdir(sb.out)).toEqual([]);
      expect(await cacheTmp()).toEqual([]);
      await expectNothingLeft(sb, before);
    });
  }

  it('SIGKILL mid-build leaves temp files; the next run on the same cache sweeps them, wherever they are', async () => {
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'gig.yml'], { signal: { name: 'SIGKILL', when: /^write /m } });
    expect(r.exitCode).toBe(-9);
    expect((await cacheTmp()).length, 'the killed run left its scratch directory').toBe(1);
    expect((await readdir(sb.out)).filter((n) => n.endsWith('.tmp')).length, 'and a temp file beside its output').toBe(1);
    // Another build on the same cache, into another directory: it holds the cache lock and sweeps both.
    const other = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', join(sb.root, 'other-out'), 'ref.yml']);
    expect(other.exitCode, other.stderr).toBe(0);
    expect(await cacheTmp()).toEqual([]);
    expect(await readdir(sb.out)).toEqual([]);
    const ok = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', sb.out, 'gig.yml'], { cap: 120 });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(await cacheTmp()).toEqual([]);
    expect(await readdir(sb.out)).toEqual(['gig.tar']);
    expect((await lstat(join(sb.out, 'gig.tar'))).size).toBeGreaterThan(1 << 30);
  }, 180_000);

  it('SIGKILL mid-pull leaves a partial blob; the next pull sweeps it and completes', async () => {
    // A cache without the kernel image; its 11 KB layer trickles at 320 bytes/s: half a minute to pull.
    const cache = join(sb.root, 'cache-pull');
    const tmp = () => readdir(join(cache, 'tmp')).catch(() => [] as string[]);
    const ref = `${hostile.host}/slowblob/kernel:1`;
    const r = await run(sb, ['cache', '--cache', cache, 'pull', ref], { signal: { name: 'SIGKILL', ms: 2000 } });
    expect(r.exitCode).toBe(-9);
    const runs = await tmp();
    expect(runs.length).toBe(1);
    expect((await readdir(join(cache, 'tmp', runs[0]))).some((n) => n.startsWith('blob-'))).toBe(true);
    // SIGTERM mid-pull: one line, 143, and its own temp files gone (the killed run's swept).
    const t = await run(sb, ['cache', '--cache', cache, 'pull', ref], { signal: { name: 'SIGTERM', ms: 2000 } });
    expectOneLine(t, /^dockyard: interrupted \(SIGTERM\)$/, { exitCode: 143 });
    expect(await tmp()).toEqual([]);
    const ok = await run(sb, ['cache', '--cache', cache, 'pull', `${hostile.host}/ok/kernel:1`]);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(await tmp()).toEqual([]);
  }, 60_000);

  it.skipIf(!isRoot)('the output directory on a full file system: one line, no temp file left there', async () => {
    const full = join(sb.root, 'full-out');
    await mkdir(full);
    const before = await snapshot(sb.root, ['out', 'cache']);
    const r = await run(sb, ['build', '--offline', '--cache', sb.cache, '-f', 'tar', '--dir', full, 'gig.yml'], {
      wrap: inMountNamespaceThen(`mount -t tmpfs -o size=8m tmpfs "${full}"`, `echo "LEFT-OUT:$(ls -A "${full}" | tr '\\n' ' ')"`),
      cap: 120,
    });
    expectOneLine(r, /cannot write .*full-out\/gig\.tar: no space left on device/, { maxSeconds: 60 });
    expect(r.stdout).toMatch(/^LEFT-OUT:\s*$/m);
    expect(await cacheTmp()).toEqual([]);
    await expectNothingLeft(sb, before);
  }, 180_000);

  it.skipIf(!isRoot)('a cache on a full file system mid-pull and mid-import: one line, nothing left, nothing committed', async () => {
    // A registry serving a 1 MB layer; the cache on a 512 KiB tmpfs.
    const layout = await hostileLayout(sb, 'zeros', [{ ref: '127.0.0.1:5000/fixtures/zeros:1', layers: [{ zeros: 1 << 30, name: 'z' }] }]);
    const reg = await hostileRegistry(layout);
    const small = join(sb.root, 'small-cache');
    await mkdir(small);
    const report = `echo "LEFT:$(ls -A "${small}/tmp" 2>/dev/null | tr '\n' ' ')|BLOBS:$(ls "${small}/blobs/sha256" 2>/dev/null | wc -l)"`;
    try {
      for (const args of [
        ['cache', '--cache', small, 'pull', `${reg.host}/ok/zeros:1`],
        ['cache', '--cache', small, 'import', layout],
      ]) {
        const r = await run(sb, args, { wrap: inMountNamespaceThen(`mount -t tmpfs -o size=512k tmpfs "${small}"`, report) });
        expectOneLine(r, /cannot store blob sha256:[0-9a-f]{64} in the cache .*small-cache: no space left on device|cannot write to the cache .*: no space left on device/);
        // Its temp files gone; the config may be stored, the layer is not.
        expect(r.stdout).toMatch(/^LEFT:\s*\|BLOBS:\s*[01]$/m);
      }
    } finally {
      await reg.close();
    }
  }, 60_000);

  it('the same cache then builds the reference system byte for byte', async () => {
    expect(Object.keys(await freshDigests()).length).toBeGreaterThan(0);
    await expectRecovers(sb);
  });
});
