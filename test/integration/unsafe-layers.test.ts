/**
 * Hostile layers: entries climbing out with "..", entries written through a
 * symlink the layer planted, hard links pointing outside the root. Each build
 * fails with one clear line, leaves no output, and writes nothing anywhere
 * else; absolute entry names are only made relative (as tar does).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtemp, writeFile, readdir, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { dockyard, repoRoot } from '../harness/cli.js';

const cases: Record<string, { entries: unknown[]; error?: RegExp }> = {
  dotdot: { entries: [{ name: 'etc', type: 'dir' }, { name: '../../escaped-file', type: 'file', data: 'x' }], error: /"\.\.\/\.\.\/escaped-file".*"\.\."/ },
  'through-symlink': {
    entries: [
      { name: 'evil', type: 'symlink', linkname: '/tmp' },
      { name: 'evil/planted', type: 'file', data: 'x' },
    ],
    error: /evil\/planted.*below the symlink "evil"/,
  },
  'hardlink-out': {
    entries: [
      { name: 'bin', type: 'dir' },
      { name: 'bin/pw', type: 'hardlink', linkname: '../../../etc/passwd' },
    ],
    error: /bin\/pw|\.\.\/\.\.\/\.\.\/etc\/passwd/,
  },
  absolute: { entries: [{ name: '/etc/abs', type: 'file', data: 'fine' }] },
};

let work: string;
let cache: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dockyard-unsafe-'));
  cache = join(work, 'cache');
  const layout = join(work, 'layout');
  for (const [name, c] of Object.entries(cases)) {
    const f = join(work, `${name}.json`);
    await writeFile(f, JSON.stringify(c.entries));
    await execa('python3', [join(repoRoot, 'test/harness/mklayout.py'), layout, `dockyard.test/unsafe/${name}:1`, f]);
  }
  const r = await dockyard(['cache', '--cache', cache, 'import', layout]);
  expect(r.exitCode, r.stderr).toBe(0);
}, 120_000);

describe('unsafe layers', () => {
  for (const [name, c] of Object.entries(cases)) {
    it(name, async () => {
      const dir = join(work, 'out', name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(work, `${name}.yml`), `onboot:\n  - name: x\n    image: dockyard.test/unsafe/${name}:1\n`);
      const r = await dockyard(['build', '--offline', '--no-sbom', '--cache', cache, '-f', 'tar', '--dir', dir, join(work, `${name}.yml`)]);
      const listing = await readdir(dir);
      if (!c.error) {
        expect(r.exitCode, r.stderr).toBe(0);
        const t = await execa('tar', ['-tvf', join(dir, `${name}.tar`)]);
        expect(t.stdout).toMatch(/containers\/onboot\/000-x\/lower\/etc\/abs\n/);
        return;
      }
      expect(r.exitCode).not.toBe(0);
      // Progress lines may precede it; the error itself is one line.
      const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('dockyard: '));
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(c.error);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(listing, 'no partial output').toEqual([]);
      expect(existsSync(join(work, 'escaped-file'))).toBe(false);
      expect(existsSync(join(work, 'out', 'escaped-file'))).toBe(false);
      expect(existsSync('/tmp/planted')).toBe(false);
    });
  }
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});
